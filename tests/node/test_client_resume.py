"""The resume cursor: whatever events a chain produced and wherever connections drop,
a subscriber that reconnects at `Cursor.reconnecting()` — the node replaying from that
height exactly what it sent live — delivers every event once, in order. And the
back-off between attempts doubles up to its bound, never above it."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from node.client.resume import Backoff, Cursor


@st.composite
def chains(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Events of heights 1..n, zero or more per height (a filter may leave none)."""
    out = []
    for height in range(1, draw(st.integers(1, 12)) + 1):
        out += [{"height": height, "i": i} for i in range(draw(st.integers(0, 4)))]
    return out


@given(chains(), st.lists(st.integers(0, 60), max_size=8))
def test_reconnecting_delivers_each_event_once(events: list[dict[str, Any]], drops: list[int]) -> None:
    cursor = Cursor(1)
    delivered: list[dict[str, Any]] = []
    sent_since_connect = 0
    stream = list(events)  # what the node sends on this connection
    drops = sorted(set(drops))
    while True:
        if not stream:
            break
        event = stream.pop(0)
        sent_since_connect += 1
        if cursor.offer(event):
            delivered.append(event)
        if drops and sent_since_connect >= drops[0]:
            drops.pop(0)
            start = cursor.reconnecting()
            stream = [e for e in events if e["height"] >= start]  # the replay from `start`
            sent_since_connect = 0
    assert delivered == events


def test_backoff_doubles_up_to_its_bound() -> None:
    b = Backoff(first=0.1, most=1.0)
    assert [b.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert b.delay(10_000) == 1.0
