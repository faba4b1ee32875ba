"""Four PBFT nodes, a financing round: every node replays the same events from
genesis (`/v1/events?from_height=1`), whichever node a client resumes on — what the
contracts emitted is stored with each block on every node, and a height's events are
rebuilt by the function that built them live."""

from __future__ import annotations

from typing import Any

import pytest

from node.client import Client
from tests.e2e.manifests import MakeNet, Manifest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def replay(url: str, head: int) -> list[dict[str, Any]]:
    """Every event of heights 1..head, read until the head's block event and its followers."""
    out: list[dict[str, Any]] = []
    with Client(url).subscribe(from_height=1, kinds=("block", "tx", "alarm", "case")) as stream:
        while True:
            event = stream.next(timeout=30)
            if event["height"] > head:
                break
            out.append(event)
            if event["kind"] == "block" and event["height"] == head and event["txs"] == 0:
                break  # the certifying empty block ends the quiet chain: nothing follows it
    return out


def test_every_node_replays_the_same_events(make_net: MakeNet) -> None:
    net = make_net(Manifest("events-replay"))
    net.start()
    acks = net.run_round(via=net.names, cases=2, reports_per_case=3)
    head = max(a.height for a in acks)
    net.wait_heights(head, net.names, timeout=30)
    settled = net.wait_settled(net.names)
    lists = {n: replay(net.node(n)["rpc_url"], settled) for n in net.names}
    first = lists[net.names[0]]
    assert [e["height"] for e in first if e["kind"] == "block"] == list(range(1, settled + 1))
    assert {e["kind"] for e in first} >= {"block", "tx", "case"}
    for name, events in lists.items():
        assert events == first, name
