"""Fixtures: a fresh testnet per test, always stopped, with log tails shown on failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.manifests import Manifest, Net


@pytest.fixture
def make_net(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[Manifest], Net]]:
    nets: list[Net] = []

    def make(manifest: Manifest) -> Net:
        net = Net(tmp_path / manifest.name, manifest)
        nets.append(net)
        return net

    yield make
    for net in nets:
        net.stop_all()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            for name in net.names:
                print(f"--- {name} node.log tail ---\n{net.cons.log_tail(name, 25)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
