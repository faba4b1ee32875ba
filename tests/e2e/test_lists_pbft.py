"""The web platform's lists on a real four-validator consortium (#12): every node's
transaction index answers the same transactions for the same filters (it is built in
each node's own commit batch from the same blocks), the block lists agree on hashes,
and `/v1/validators/health` names each validator once, itself as `is_self`, its peers
connected, and the heights they last signed, all against the OpenAPI schemas."""

from __future__ import annotations

import time

import pytest

from node.server.openapi import openapi_document
from node.tools.demo import run_step
from node.tools.demo_steps import demo_steps
from node.tools.participants import participants_of
from tests.e2e.manifests import MakeNet, Manifest, wait_until
from tests.node.conftest import Reply, http
from tests.openapi_check import Spec

pytestmark = [pytest.mark.e2e]


def _get(node: dict[str, object], path: str) -> Reply:
    token = node.get("token")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = http(str(node["rpc_url"]), "GET", path, headers=headers)
    assert r.status == 200, (path, r.status, r.body[:200])
    return r


@pytest.mark.timeout(240)
def test_every_node_lists_the_same_history_and_sees_its_validators(make_net: MakeNet) -> None:
    net = make_net(Manifest("lists"))
    net.start()
    p = participants_of(net.testnet)
    steps = demo_steps(p, net.testnet.chain_id, int(time.time() * 1000))[:8]
    c = net.client(net.names[0])
    try:
        for step in steps:
            run_step(c, step)
    finally:
        c.close()
    head = net.wait_settled(net.names)
    spec = Spec(openapi_document())
    queries = [
        f"/v1/txs?party={p.bank.id}&before={head + 1}&limit=500",
        f"/v1/txs?lot=L1&before={head + 1}&limit=500",
        f"/v1/txs?before={head + 1}&limit=500",
        f"/v1/reports?before={head + 1}&limit=500",
        "/v1/cases?limit=500",
        "/v1/lots?limit=500",
    ]
    answers = {}
    for name in net.names:
        node = net.node(name)
        got = []
        for q in queries:
            r = _get(node, q)
            spec.check(q.split("?")[0], "get", r)
            got.append(r.doc)
        blocks = _get(node, f"/v1/blocks?before={head + 1}&limit=500")
        spec.check("/v1/blocks", "get", blocks)
        assert [b["height"] for b in blocks.doc["blocks"]] == list(range(head, 0, -1))
        got.append([(b["height"], b["hash"], b["tx_count"]) for b in blocks.doc["blocks"]])
        assert all(b["signers"] >= 3 for b in blocks.doc["blocks"])  # a quorum of four
        answers[name] = got
    first = answers[net.names[0]]
    assert first[0]["txs"] and first[1]["txs"] and first[3]["reports"]
    for name in net.names[1:]:
        assert answers[name] == first, name

    validator_ids = {v["node_id"] for v in _get(net.node(net.names[0]), "/v1/validators").doc["validators"]}
    for name in net.names:
        node = net.node(name)
        me = net.status(name)["node_id"]

        def all_connected(node: dict[str, object] = node) -> bool:
            return all(v["connected"] for v in _get(node, "/v1/validators/health").doc["validators"])

        assert wait_until(all_connected, timeout=30), name
        r = _get(node, "/v1/validators/health")
        spec.check("/v1/validators/health", "get", r)
        health = r.doc["validators"]
        assert {v["node_id"] for v in health} == validator_ids
        assert [v["node_id"] for v in health if v["is_self"]] == [me]
        signed = [v["last_signed_height"] for v in health if v["last_signed_height"] is not None]
        assert len(signed) >= 3 and all(1 <= h <= head for h in signed)  # each certificate holds a quorum
