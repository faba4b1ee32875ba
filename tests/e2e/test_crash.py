"""Manifests 2 and 3: crash faults (kill -9) of a backup under load and of the primary."""

from __future__ import annotations

import time

import pytest

from tests.e2e.manifests import BackgroundLoad, MakeNet, Manifest, emit, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_killed_backup_catches_up(make_net: MakeNet) -> None:
    net = make_net(Manifest("backup-crash"))
    net.start()
    primary = net.primary()
    victim = next(n for n in reversed(net.names) if n != primary)
    others = [n for n in net.names if n != victim]

    with BackgroundLoad(net, via=others, cases=2, reports_per_case=6) as load:
        load.wait_acks(20, timeout=30)
        net.kill(victim)
        killed_at = len(load.acks)
        load.wait_acks(killed_at + 150, timeout=60)  # the other three keep committing
    assert load.error is None, load.error
    assert len(load.acks) >= killed_at + 150, f"only {len(load.acks) - killed_at} commits after the kill"

    target = max(net.heights(others).values())
    behind = int(load.acks[killed_at - 1].height) if killed_at else 0
    started = time.monotonic()
    net.start_node(victim)
    first = int(net.status(victim)["height"])
    answered = time.monotonic()
    net.wait_heights(target, [victim], timeout=60)
    done = time.monotonic()
    net.assert_agreement(net.names, target)
    txs = net.txs_in(others[0], first, target)
    emit(
        "backup_catch_up",
        node=victim,
        from_height=first,
        to_height=target,
        height_at_kill_about=behind,
        txs=txs,
        seconds=round(done - answered, 2),
        seconds_incl_start=round(done - started, 2),
        tx_per_s=round(txs / max(done - answered, 1e-3), 1),
    )

    # and it takes part again: new load through the restarted node commits everywhere
    acks = net.run_round(via=[victim], cases=1, reports_per_case=2)
    head = max(a.height for a in acks)
    net.wait_heights(head, net.names, timeout=30)
    net.assert_agreement(net.names, head)


def test_killed_primary_view_change(make_net: MakeNet) -> None:
    net = make_net(Manifest("primary-crash", view_change_timeout_ms=1000))
    net.start()
    acks = net.run_round(via=net.names, cases=1, reports_per_case=2)
    primary = net.primary()
    others = [n for n in net.names if n != primary]
    views = {n: int(net.status(n)["view"]) for n in others}
    height = max(net.heights(others).values())
    assert height >= max(a.height for a in acks)  # (+1 once the certifying empty block is in)

    phases = net.load.next_round(cases=1, reports_per_case=2)
    killed = time.monotonic()
    net.kill(primary)
    acks = net.submit_phases(phases[:1], via=[others[0]], wait_ms=60_000)
    assert wait_until(lambda: min(net.heights(others).values()) > height, timeout=30)
    first_commit = time.monotonic()
    new_views = {n: int(net.status(n)["view"]) for n in others}
    assert all(new_views[n] > views[n] for n in others), (views, new_views)
    new_primary = net.primary(others)
    assert new_primary != primary and new_primary in others
    emit(
        "primary_crash",
        killed=primary,
        new_primary=new_primary,
        views=new_views,
        seconds_kill_to_commit=round(first_commit - killed, 2),
        view_change_timeout_ms=net.manifest.view_change_timeout_ms,
    )

    # commits resume in the new view, through every surviving node
    acks += net.submit_phases(phases[1:], via=others)
    head = max(a.height for a in acks)
    net.wait_heights(head, others, timeout=30)
    net.assert_agreement(others, head)

    # the old primary restarts as a backup of the new view and catches up
    net.start_node(primary)
    net.wait_heights(head, [primary], timeout=60)
    net.assert_agreement(net.names, head)
    more = net.run_round(via=[primary], cases=1, reports_per_case=1)
    net.wait_heights(max(a.height for a in more), net.names, timeout=30)
    assert int(net.status(primary)["view"]) == new_views[others[0]]
