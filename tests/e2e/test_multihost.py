"""Manifest 7: a consortium formed by the genesis ceremony (each organisation's keys
in its own folder, only cards exchanged), every node on its own host — a Linux
network namespace with its own address on a bridge — under financing load; one
host's link is cut and healed. At the end every node has the same headers at
every height and every acknowledged transaction. Without namespaces the same
scenario runs on loopback (the cut becomes SIGSTOP/SIGCONT) and says so."""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

import pytest

from node.tools.launcher import Consortium
from node.tools.participants import Participants
from tests.e2e.formation import form, places
from tests.e2e.manifests import BackgroundLoad, Manifest, Net, emit

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

NODES = 4
CUT_S = 5.0  # longer than the view-change timeout: the cut node must catch up afterwards


def _check_everything(net: Net, acks: list, head: int) -> None:
    net.wait_heights(head, net.names, timeout=60)
    net.assert_agreement(net.names, head)
    clients = {n: net.client(n) for n in net.names}
    try:
        for ack in acks:
            for name, c in clients.items():
                doc = c.tx(ack.tx_id)
                assert (doc["status"], int(doc["height"]), doc["result"]) == ("committed", ack.height, ack.result), (
                    name,
                    ack,
                    doc,
                )
    finally:
        for c in clients.values():
            c.close()


def test_ceremony_formed_consortium_across_hosts(tmp_path: Path) -> None:
    p = Participants.generate(devices=4)
    with contextlib.ExitStack() as stack:
        where, wraps, hosts = places(stack, NODES)
        testnet = form(tmp_path, "e2e-multihost", p, where, view_change_timeout_ms=1000)
        wrap = dict(zip((n["name"] for n in testnet.nodes), wraps))
        net = Net(tmp_path, Manifest("multihost"), formed=(testnet, Consortium(testnet, wrap=wrap), p))
        stack.callback(net.stop_all)
        net.start()
        acks = net.run_round(via=net.names, cases=2, reports_per_case=3)

        # a backup's link is cut (cutting the primary's, and one-way cuts: test_partitions)
        primary = net.primary()
        victim = next(n for n in reversed(net.names) if n != primary)
        index = net.names.index(victim)
        others = [n for n in net.names if n != victim]
        with BackgroundLoad(net, via=others, cases=2, reports_per_case=3) as load:
            load.wait_acks(20, timeout=60)
            cut_at = time.monotonic()
            if hosts is not None:
                hosts.isolate(index)
            else:
                net.cons.procs[victim].send_signal(signal.SIGSTOP)
            before = len(load.acks)
            load.wait_acks(before + 40, timeout=60)  # the other three keep committing
            time.sleep(max(0.0, CUT_S - (time.monotonic() - cut_at)))
            committed_while_cut = len(load.acks) - before
            if hosts is not None:
                hosts.heal(index)
            else:
                net.cons.procs[victim].send_signal(signal.SIGCONT)
            cut_s = time.monotonic() - cut_at
            load.wait_acks(len(load.acks) + 20, timeout=60)
        assert load.error is None, load.error
        acks += load.acks
        head = max(a.height for a in acks)
        caught_up_from = time.monotonic()
        _check_everything(net, acks, head)
        emit(
            "multihost",
            namespaces=hosts is not None,
            acked=len(acks),
            head=head,
            committed_while_cut=committed_while_cut,
            cut_node=victim,
            view_after=int(net.status(others[0])["view"]),
            cut_s=round(cut_s, 1),
            check_s=round(time.monotonic() - caught_up_from, 1),
        )
        assert committed_while_cut >= 40
