"""Manifest 9: the soak — a 4-node consortium (f=1) under paced financing load
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
from pathlib import Path
from typing import Any

import pytest

from node.load.soak import ClientLedger, FaultInjector, Monitor, Nodes, PacedLoad, SoakConfig, judge, run_soak, wait_for
from node.tools import testnet as tn
from node.tools.launcher import Consortium
from node.tools.testnet import init_testnet
from tests.e2e.manifests import MakeNet, Manifest

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


@pytest.mark.e2e
@pytest.mark.timeout(SHORT.time_bound_s())
def test_soak(make_net: MakeNet) -> None:
    soak(make_net, "soak", SHORT)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(LONG.time_bound_s())
def test_long_soak(make_net: MakeNet) -> None:
    soak(make_net, "long-soak", LONG)


def _block(height: int, block_hash: str, txs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"height": height, "hash": block_hash, "txs": [{"tx_id": t, "result": r} for t, r in txs]}


def test_the_checks_see_broken_promises(tmp_path: Path) -> None:
    """The soak's verdict can fail: a fork, one block served with different results, an
    acknowledged transaction missing from a chain, an unacknowledged one committed on
    some nodes only, a node left behind."""
    testnet = tn.Testnet(
        tmp_path, "c", ({"name": "a", "rpc_url": "127.0.0.1:1"}, {"name": "b", "rpc_url": "127.0.0.1:2"})
    )
    nodes = Nodes(testnet, 1.0)
    monitor, ledger = Monitor(nodes), ClientLedger()
    ledger.ack("t1", {"height": 1, "index": 0, "result": "ok"}, "a")
    monitor.record("a", 1, _block(1, "h1", [("t1", "ok")]))
    monitor.record("b", 1, _block(1, "h1'", [("t2", "ok")]))
    monitor.record("a", 2, _block(2, "h2", [("t3", "ok")]))
    monitor.record("b", 2, _block(2, "h2", [("t3", "bad_nonce")]))
    fates = {"u1": {"a": "committed@1:ok", "b": "absent"}, "u2": {"a": "absent", "b": "absent"}}
    injector = FaultInjector(Consortium(testnet), nodes, monitor, SHORT, print)
    result = judge(SHORT, ledger, monitor, injector, fates, {"a": 1, "b": 0})
    f = result.figures
    assert (f["lost"], f["forks"], f["result_mismatches"]) == (1, 1, 1)
    assert (f["unacked_split"], f["unacked_nowhere"], f["behind"]) == (1, 1, ["b"])
    assert len(result.problems) == 5, result.problems


def test_a_client_gives_up_and_says_so(tmp_path: Path) -> None:
    """With no node answering, the load gives its transactions up after `give_up_s` and
    keeps them as unacknowledged (to be looked up at the end), without failing."""
    net = init_testnet(tmp_path / "net", nodes=4)  # never started: every request is refused
    ledger = ClientLedger()
    load = PacedLoad(net, dataclasses.replace(SHORT, give_up_s=1.0), ledger, print)
    load.start()
    assert wait_for(lambda: len(ledger.unacked) > 0, 20.0)
    load.finish()
    assert load.error is None and not ledger.acks
    assert ledger.counts["unanswered_requests"] > 0 and ledger.counts["submitted"] >= len(ledger.unacked)
