"""Manifest 7: the soak — a 4-node consortium (f=1) under paced financing load
through every node while one node at a time is killed (-9) and restarted or
paused (SIGSTOP) and resumed, on a seeded schedule. Nothing acknowledged is
lost, no two nodes ever serve different blocks for one height, nobody is left
behind; the longest recovery per fault kind is reported, asserted only against
the generous bound of `SoakConfig`.

A 2-minute soak runs by default; the long one (`-m slow`) lasts
GODOWN_SOAK_SECONDS (15 minutes unless set). GODOWN_SOAK_SEED replays a
schedule; the figures are one JSON line (`pytest -s`)."""

from __future__ import annotations

import dataclasses
import os
import random

import pytest

from node.load.soak import SoakConfig, run_soak
from tests.e2e.manifests import MakeNet, Manifest

pytestmark = pytest.mark.e2e

SHORT = SoakConfig(duration_s=120.0)
LONG = SoakConfig(duration_s=float(os.environ.get("GODOWN_SOAK_SECONDS", "900")))


def soak(make_net: MakeNet, name: str, cfg: SoakConfig) -> None:
    seed = int(os.environ.get("GODOWN_SOAK_SEED") or random.randrange(2**32))
    net = make_net(Manifest(name))
    result = run_soak(net.testnet, net.cons, dataclasses.replace(cfg, seed=seed))
    for line in result.lines():
        print(line, flush=True)
    f = result.figures
    replay = f"seed {seed} (replay with GODOWN_SOAK_SEED={seed}), node logs in {net.testnet.dir}"
    assert result.problems == [], f"{replay}:\n" + "\n".join(result.problems[:20])
    assert (f["lost"], f["forks"], f["result_mismatches"], f["unacked_split"], f["behind"]) == (0, 0, 0, 0, []), replay
    assert f["acknowledged"] > 0 and sum(f["faults"].values()) > 0, (replay, f)
    assert all(s is None or s <= cfg.bound_s for s in f["recovery_max_s"].values()), (replay, f)


@pytest.mark.timeout(SHORT.time_bound_s())
def test_soak(make_net: MakeNet) -> None:
    soak(make_net, "soak", SHORT)


@pytest.mark.slow
@pytest.mark.timeout(LONG.time_bound_s())
def test_long_soak(make_net: MakeNet) -> None:
    soak(make_net, "long-soak", LONG)
