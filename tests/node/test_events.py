"""EventBus: `wants` tells the node whether building events of a kind is worth it (any
subscriber for that kind, or one taking all kinds); `publish` delivers only what each
subscriber asked for, and a subscriber whose bounded queue fills is marked lagged and
dropped without holding up the others.
"""

from __future__ import annotations

import asyncio
from typing import Any

from node.server.events import QUEUE_LIMIT, EventBus, Subscription


def drain(sub: Subscription) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


def test_wants_follows_subscriptions() -> None:
    bus = EventBus()
    assert not bus.wants("block")
    assert not bus.wants("tx")

    blocks = bus.subscribe(frozenset({"block"}), {})
    assert bus.wants("block")
    assert not bus.wants("tx")

    # Field filters do not matter to `wants`: the kind is still wanted.
    txs = bus.subscribe(frozenset({"tx", "alarm"}), {"sender": "someone"})
    assert bus.wants("tx") and bus.wants("alarm") and bus.wants("block")
    assert not bus.wants("other")

    bus.unsubscribe(blocks)
    assert not bus.wants("block")
    assert bus.wants("tx")
    bus.unsubscribe(txs)
    bus.unsubscribe(txs)  # twice is harmless
    assert bus.subscribers == 0
    assert not bus.wants("tx")


def test_empty_kinds_takes_every_kind() -> None:
    bus = EventBus()
    everything = bus.subscribe(frozenset(), {})
    for kind in ("block", "tx", "alarm", "anything-at-all", ""):
        assert bus.wants(kind)
    bus.unsubscribe(everything)
    assert not bus.wants("block")


def test_subscriptions_work_inside_a_running_loop() -> None:
    async def main() -> list[dict[str, Any] | None]:
        bus = EventBus()
        sub = bus.subscribe(frozenset({"block"}), {})
        bus.publish([{"kind": "block", "height": 1}])
        return [await asyncio.wait_for(sub.queue.get(), timeout=5)]

    assert asyncio.run(main()) == [{"kind": "block", "height": 1}]


def test_publish_delivers_only_wanted_events() -> None:
    bus = EventBus()
    blocks = bus.subscribe(frozenset({"block"}), {})
    txs_of_a = bus.subscribe(frozenset({"tx"}), {"sender": "a"})
    everything = bus.subscribe(frozenset(), {})
    high = bus.subscribe(frozenset(), {"height": "2"})
    events: list[dict[str, Any]] = [
        {"kind": "block", "height": 1},
        {"kind": "tx", "height": 1, "sender": "a"},
        {"kind": "tx", "height": 1, "sender": "b"},
        {"kind": "block", "height": 2},
        {"kind": "tx", "height": 2, "sender": "a"},
    ]
    bus.publish(events)
    assert drain(blocks) == [events[0], events[3]]
    assert drain(txs_of_a) == [events[1], events[4]]
    assert drain(everything) == events
    assert drain(high) == [events[3], events[4]]  # match compares the field's str()
    assert bus.subscribers == 4
    assert not any(s.lagged for s in (blocks, txs_of_a, everything, high))


def test_full_queue_marks_subscriber_lagged_and_drops_it() -> None:
    bus = EventBus()
    slow = bus.subscribe(frozenset({"block"}), {})
    other = bus.subscribe(frozenset({"block"}), {})
    for h in range(QUEUE_LIMIT):
        slow.queue.put_nowait({"kind": "block", "height": h})
    assert slow.queue.full()

    # Events the slow subscriber does not want do not overflow it.
    bus.publish([{"kind": "tx", "height": 0}])
    assert not slow.lagged and bus.subscribers == 2

    extra = [{"kind": "block", "height": QUEUE_LIMIT}, {"kind": "block", "height": QUEUE_LIMIT + 1}]
    bus.publish(extra)
    assert slow.lagged
    assert bus.subscribers == 1
    assert not bus.wants("tx")
    assert bus.wants("block")  # still wanted by the subscriber that keeps up
    # The queue keeps what fitted; the rest is gone (no partial delivery after the overflow).
    assert slow.queue.qsize() == QUEUE_LIMIT
    assert not other.lagged
    assert drain(other) == extra

    # Once dropped, the lagged subscriber gets nothing more even after it drains.
    drain(slow)
    bus.publish([{"kind": "block", "height": QUEUE_LIMIT + 2}])
    assert slow.queue.empty()
    assert drain(other) == [{"kind": "block", "height": QUEUE_LIMIT + 2}]


def test_overflow_during_one_publish_drops_subscriber() -> None:
    bus = EventBus()
    sub = bus.subscribe(frozenset(), {})
    events = [{"kind": "block", "height": h} for h in range(QUEUE_LIMIT + 5)]
    bus.publish(events)
    assert sub.lagged
    assert bus.subscribers == 0
    assert not bus.wants("block")
    assert drain(sub) == events[:QUEUE_LIMIT]


def test_a_kind_filter_takes_its_family() -> None:
    """`?kinds=alarm` (as the README and OpenAPI say) delivers alarm_raised and alarm_resolved."""
    bus = EventBus()
    alarms = bus.subscribe(frozenset({"alarm"}), {})
    assert bus.wants("alarm_raised") and bus.wants("alarm_resolved") and not bus.wants("block")
    bus.publish(
        [
            {"kind": "alarm_raised", "alarm": "a1"},
            {"kind": "block", "height": 3},
            {"kind": "alarm_resolved", "alarm": "a1"},
            {"kind": "alarmist", "x": 1},
        ]
    )
    assert [e["kind"] for e in drain(alarms) if e is not None] == ["alarm_raised", "alarm_resolved"]
    exact = bus.subscribe(frozenset({"alarm_resolved"}), {})
    bus.publish([{"kind": "alarm_raised"}, {"kind": "alarm_resolved"}])
    assert [e["kind"] for e in drain(exact) if e is not None] == ["alarm_resolved"]
