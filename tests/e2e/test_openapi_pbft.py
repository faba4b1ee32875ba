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


def _answer(net_node: dict[str, object], path: str, status: int) -> Reply:
    """The first answer with this status: readiness may flap for a moment while peers
    (re)connect or a dropped one still looks connected."""
    answers: list[Reply] = []

    def got() -> bool:
        answers.append(_get(net_node, path))
        return answers[-1].status == status

    assert wait_until(got, timeout=30), f"{path} never answered {status}: {answers[-1].body[:200]!r}"
    return answers[-1]


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
        spec.check("/v1/status", "get", _get(node, "/v1/status"))
        spec.check("/v1/ready", "get", _answer(node, "/v1/ready", 200))
        spec.check("/v1/validators", "get", _get(node, "/v1/validators"))
        spec.check("/v1/blocks/{height}", "get", _get(node, "/v1/blocks/latest"))
    assert {"in_view_change", "stable_checkpoint", "quorum", "peers_down"} <= set(net.status(net.names[0]))

    # two of four validators down: the others lose their quorum and say so
    for name in net.names[2:]:
        net.kill(name)
    node = net.node(net.names[0])
    r = _answer(node, "/v1/ready", 503)
    spec.check("/v1/ready", "get", r)
    assert r.doc["error"]["code"] == "not_ready" and "no_quorum" in {x["reason"] for x in r.doc["reasons"]}
    spec.check("/v1/status", "get", _get(node, "/v1/status"))
