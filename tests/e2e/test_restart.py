"""Manifest 4: every node stopped (SIGTERM) and started again — nothing committed
is lost, and the restarted consortium keeps committing."""

from __future__ import annotations

import time

import pytest

from tests.e2e.manifests import MakeNet, Manifest, emit

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_full_restart_loses_nothing(make_net: MakeNet) -> None:
    net = make_net(Manifest("full-restart"))
    net.start()
    acks = net.run_round(via=net.names, cases=2, reports_per_case=4)
    head = max(a.height for a in acks)
    net.wait_heights(head, net.names, timeout=30)
    head = net.wait_settled(net.names)  # the certifying empty block is in: nothing more comes
    before = {n: net.status(n) for n in net.names}

    stopped = time.monotonic()
    net.stop_all()
    net.start()
    restart_s = time.monotonic() - stopped

    for n in net.names:
        after = net.status(n)
        assert (int(after["height"]), after["head_hash"], after["state_root"]) == (
            int(before[n]["height"]),
            before[n]["head_hash"],
            before[n]["state_root"],
        ), f"{n}: {before[n]} -> {after}"
        assert int(after["height"]) == head
    clients = {n: net.client(n) for n in net.names}
    try:
        for i, ack in enumerate(acks):
            c = clients[net.names[i % len(net.names)]]
            doc = c.tx(ack.tx_id)
            assert doc["status"] == "committed", (c.url, ack, doc)
            assert (int(doc["height"]), int(doc["index"]), doc["result"]) == (ack.height, ack.index, ack.result), (
                c.url,
                ack,
                doc,
            )
    finally:
        for c in clients.values():
            c.close()
    net.assert_agreement(net.names, head)

    more = net.run_round(via=list(reversed(net.names)), cases=1, reports_per_case=2)
    new_head = max(a.height for a in more)
    assert new_head > head
    net.wait_heights(new_head, net.names, timeout=30)
    net.assert_agreement(net.names, new_head)
    emit(
        "full_restart",
        acked_before=len(acks),
        head_before=head,
        head_after=new_head,
        checked_txs=len(acks),
        seconds_stop_to_ready=round(restart_s, 2),
    )
