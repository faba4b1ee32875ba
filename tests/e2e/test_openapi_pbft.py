"""The answers only a PBFT consortium gives — the engine's status fields, a validator set
from genesis, readiness lost with the quorum (503 not_ready) — match the OpenAPI
document's schemas, unknown fields refused (tests/node/test_openapi.py covers the rest
on a single node)."""

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


def _get(net_node: dict[str, object], path: str) -> Reply:
    token = net_node.get("token")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http(str(net_node["rpc_url"]), "GET", path, headers=headers)


@pytest.mark.timeout(180)
def test_consortium_status_and_readiness_match_their_schemas(make_net: MakeNet) -> None:
    net = make_net(Manifest("openapi"))
    net.start()
    spec = Spec(openapi_document())
    first = demo_steps(participants_of(net.testnet), net.testnet.chain_id, int(time.time() * 1000))[0]
    c = net.client(net.names[0])
    try:
        assert run_step(c, first)[0] == first.expected
    finally:
        c.close()
    net.wait_settled(net.names)
    for name in net.names:
        node = net.node(name)
        for path, template in (("/v1/status", "/v1/status"), ("/v1/ready", "/v1/ready")):
            r = _get(node, path)
            assert r.status == 200, (name, path, r.body[:200])
            spec.check(template, "get", r)
        spec.check("/v1/validators", "get", _get(node, "/v1/validators"))
        spec.check("/v1/blocks/{height}", "get", _get(node, "/v1/blocks/latest"))
    assert {"in_view_change", "stable_checkpoint", "quorum", "peers_down"} <= set(net.status(net.names[0]))

    # two of four validators down: the others lose their quorum and say so
    for name in net.names[2:]:
        net.kill(name)
    node = net.node(net.names[0])
    answers: list[Reply] = []

    def not_ready() -> bool:
        answers.append(_get(node, "/v1/ready"))
        return answers[-1].status == 503

    assert wait_until(not_ready, timeout=30), "still ready without a quorum"
    r = answers[-1]  # (a dropped peer may look connected for a moment: the answer may flap)
    spec.check("/v1/ready", "get", r)
    assert r.doc["error"]["code"] == "not_ready" and "no_quorum" in {x["reason"] for x in r.doc["reasons"]}
    spec.check("/v1/status", "get", _get(node, "/v1/status"))
