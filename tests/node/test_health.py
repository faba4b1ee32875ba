"""`/v1/health`, `/v1/ready` and the metrics operators alert on (docs/operations.md):
the readiness rules and the catch-up gauge's source on their own, then real nodes —
a single validator (probes answer without the bearer token) and a local 4-node
consortium losing one node (still ready, one peer down) and then a second (no
quorum: 503 `not_ready`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consensus.actions import FetchBlocks
from node.server.health import CATCHING_UP, NO_QUORUM, NOT_VALIDATOR, EngineHealth, not_ready_reasons
from node.server.pbft.catchup import BlockFetcher
from storage.chain import ChainStore
from storage.kv import MemoryKV
from tests.e2e.manifests import Manifest, Net
from tests.node.conftest import NodeThread, http, make_testnet, node_config, token_guarded
from tests.waiting import wait_until

IDS = ("a", "b", "c", "d")


def _status(**fields: Any) -> dict[str, Any]:
    """The engine status of a PBFT validator that reaches all four validators."""
    return {"sync": "synced", **EngineHealth("a", IDS, frozenset(IDS[1:]), 0, False).status_fields(), **fields}


def _reasons(status: dict[str, Any], scheduled: bool = False) -> list[str]:
    return [r.reason for r in not_ready_reasons(status, scheduled)]


def test_engine_health_counts_the_validators_it_reaches() -> None:
    h = EngineHealth("a", IDS, frozenset({"b", "x"}), 0, False)  # x: not a validator of this epoch
    assert h.validator and h.peers_down == ("c", "d") and h.reachable == 2 and h.quorum == 3
    observer = EngineHealth("o", IDS, frozenset(IDS), 0, False)
    assert not observer.validator and observer.peers_down == () and observer.reachable == 4


def test_readiness_rules() -> None:
    assert _reasons(_status()) == []
    assert _reasons({"sync": "solo", "view": 0}) == []  # one validator: the whole quorum
    assert _reasons(_status(sync="catching up")) == [CATCHING_UP]
    assert _reasons(_status(blocks_behind=3)) == [CATCHING_UP]
    assert _reasons(_status(validators_reachable=2)) == [NO_QUORUM]
    assert _reasons(_status(validator=False)) == [NOT_VALIDATOR]
    assert _reasons(_status(validator=False), scheduled=True) == []  # observing until its set governs
    assert _reasons({}) == [CATCHING_UP, NO_QUORUM, NOT_VALIDATOR]  # no engine status yet
    (only,) = not_ready_reasons(_status(validators_reachable=1), False)
    assert "1 validators reachable" in only.message and "quorum is 3" in only.message


def test_blocks_behind_is_what_the_replica_asked_to_fetch_above_the_head() -> None:
    sent: list[tuple[str | None, dict[str, Any]]] = []
    fetcher = BlockFetcher(ChainStore(MemoryKV()), lambda peer, doc: sent.append((peer, doc)))
    assert fetcher.peak == 0 and fetcher.behind(0) == 0
    fetcher.request(FetchBlocks(5, 200, ("b", "c")))
    assert sent and sent[0][1]["from"] == 5 and fetcher.catching_up
    assert fetcher.peak == 200 and fetcher.behind(4) == 196 and fetcher.behind(250) == 0
    fetcher.request(FetchBlocks(70, 120, ("b",)))  # a lower target later does not lower the peak
    assert fetcher.peak == 200


@pytest.fixture
def solo(tmp_path: Path) -> Iterator[NodeThread]:
    node = NodeThread(node_config(make_testnet(tmp_path / "net")))
    try:
        node.start()
        yield node
    finally:
        node.stop()


def test_a_single_validator_is_alive_and_ready_without_a_token(solo: NodeThread) -> None:
    r = http(solo.url, "GET", "/v1/health")
    assert r.status == 200 and r.doc == {"alive": True}
    r = http(solo.url, "GET", "/v1/ready")
    assert r.status == 200 and r.doc["ready"] is True and r.doc["reasons"] == [] and r.doc["height"] == 0
    with token_guarded(solo, solo.core) as url:
        assert http(url, "GET", "/v1/status").code == "unauthorized"
        assert http(url, "GET", "/v1/health").status == 200
        assert http(url, "GET", "/v1/ready").status == 200
    doc = http(solo.url, "GET", "/openapi.json").doc
    assert doc["security"] == [{"bearer": []}]
    assert doc["paths"]["/v1/health"]["get"]["security"] == []
    ready = doc["paths"]["/v1/ready"]["get"]
    assert ready["security"] == [] and "503" in ready["responses"]
    assert "security" not in doc["paths"]["/v1/status"]["get"]


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found is not None, f"{name} not in /metrics"
    return float(found.group(1))


def _metrics(net: Net, name: str) -> str:
    return str(net.client(name).get("/metrics"))


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_a_consortium_losing_nodes_reports_peers_down_and_then_not_ready(tmp_path: Path) -> None:
    net = Net(tmp_path / "net", Manifest("health"))
    try:
        net.start()
        for name in net.names:  # every node connects to the three others
            wait_until(lambda: http(net.node(name)["rpc_url"], "GET", "/v1/ready").status == 200, what=f"{name} ready")
        text = _metrics(net, net.names[0])
        for gauge, value in [("godown_peers_down", 0), ("godown_in_view_change", 0), ("godown_blocks_behind", 0)]:
            assert _metric(text, gauge) == value, gauge
        assert _metric(text, "godown_mempool_fullness") == 0
        assert _metric(text, 'godown_txs_refused_total{code="mempool_full"}') == 0

        first, second = net.names[-1], net.names[-2]  # never the primary of view 0
        net.kill(first)
        rest = [n for n in net.names if n != first]
        for name in rest:
            wait_until(lambda: _metric(_metrics(net, name), "godown_peers_down") == 1, what=f"{name} sees one down")
            # the one down is the one killed (allowing a live peer's stream a moment to reopen)
            wait_until(lambda: net.status(name)["peers_down"] == [net.node(first)["node_id"]], what=f"{name}: {first}")
            r = http(net.node(name)["rpc_url"], "GET", "/v1/ready")
            assert r.status == 200, r.doc  # three of four: still a quorum

        net.kill(second)
        for name in rest[:2]:
            url = net.node(name)["rpc_url"]
            wait_until(lambda: http(url, "GET", "/v1/ready").status == 503, what=f"{name} not ready")
            r = http(url, "GET", "/v1/ready")
            assert r.code == "not_ready" and r.doc["ready"] is False
            assert [x["reason"] for x in r.doc["reasons"]] == [NO_QUORUM]
            assert http(url, "GET", "/v1/health").status == 200  # alive all the same
            assert _metric(_metrics(net, name), "godown_peers_down") == 2
    finally:
        net.stop_all()
