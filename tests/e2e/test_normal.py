"""Manifest 1: four nodes, load sent to every node in turn, no faults —
all four agree on every block hash and header."""

from __future__ import annotations

import time

import pytest

from tests.e2e.manifests import MakeNet, Manifest, emit

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_four_nodes_agree_at_every_height(make_net: MakeNet) -> None:
    net = make_net(Manifest("normal"))
    net.start()
    started = time.monotonic()
    acks = net.run_round(via=net.names, cases=3, reports_per_case=4)
    acks += net.run_round(via=list(reversed(net.names)), cases=2, reports_per_case=4)
    elapsed = time.monotonic() - started
    head = max(a.height for a in acks)
    net.wait_heights(head, net.names, timeout=30)
    # the chain goes quiet: the primary cuts one empty block that certifies the latest state
    assert net.wait_settled(net.names) == head + 1
    empty = net.client(net.names[0]).block(head + 1)
    assert empty["txs"] == [] and empty["header"]["state_root"] == net.status(net.names[0])["state_root"]
    net.assert_agreement(net.names, head + 1)
    roots = {n: net.status(n)["state_root"] for n in net.names}
    assert len({net.status(n)["head_hash"] for n in net.names}) == 1
    assert len(set(roots.values())) == 1, roots
    # a correct primary is never timed out: no request passed its deadline, no view changed
    assert {n: net.status(n)["view"] for n in net.names} == {n: 0 for n in net.names}
    for n in net.names:
        metrics = str(net.client(n).get("/metrics"))
        assert "godown_requests_overdue_total 0.0" in metrics, f"{n} timed out a correct primary"
    emit(
        "normal_operation",
        txs=len(acks),
        blocks=head,
        seconds=round(elapsed, 2),
        tx_per_s=round(len(acks) / elapsed, 1),
    )
