"""The bench's `_Heights`: when every node has reached a height, which is what a batch's
commit latency is measured against. A node first seen at height 0 must count (it used to
be ignored, so latencies ended before it caught up), skipped heights take the jump's time,
and a late lower height changes nothing. A hypothesis property checks `all_reached`
against a direct definition.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.load.loadgen import _Heights


def test_node_first_seen_at_height_zero_counts() -> None:
    hs = _Heights()
    hs.see("a", 0, 1.0)
    assert hs.current == {"a": 0}
    hs.see("b", 3, 2.0)
    assert hs.current == {"a": 0, "b": 3}
    # "a" has reached nothing yet, so no height is reached by all.
    assert hs.all_reached(1) is None
    hs.see("a", 1, 5.0)
    assert hs.all_reached(1) == 5.0
    assert hs.all_reached(2) is None


def test_all_reached_waits_for_every_node_then_takes_latest_time() -> None:
    hs = _Heights()
    assert hs.all_reached(1) is None  # no node seen at all
    hs.see("a", 1, 1.0)
    hs.see("b", 0, 1.5)
    hs.see("c", 0, 1.6)
    assert hs.all_reached(1) is None
    hs.see("c", 1, 3.0)
    assert hs.all_reached(1) is None
    hs.see("b", 1, 2.0)  # earlier time than c's, seen later: the max is still c's
    assert hs.all_reached(1) == 3.0
    hs.see("a", 2, 4.0)
    hs.see("b", 2, 4.5)
    hs.see("c", 2, 4.2)
    assert hs.all_reached(2) == 4.5
    assert hs.all_reached(1) == 3.0  # earlier heights keep their times
    assert hs.all_reached(3) is None


def test_skipped_heights_get_the_jumps_time() -> None:
    hs = _Heights()
    hs.see("a", 2, 1.0)
    hs.see("a", 6, 7.0)
    assert hs.reached["a"] == {0: 1.0, 1: 1.0, 2: 1.0, 3: 7.0, 4: 7.0, 5: 7.0, 6: 7.0}
    assert hs.current["a"] == 6
    for h in (1, 2):
        assert hs.all_reached(h) == 1.0
    for h in (3, 4, 5, 6):
        assert hs.all_reached(h) == 7.0
    assert hs.all_reached(7) is None


def test_lower_or_equal_height_seen_later_changes_nothing() -> None:
    hs = _Heights()
    hs.see("a", 4, 1.0)
    hs.see("b", 4, 2.0)
    before = ({n: dict(m) for n, m in hs.reached.items()}, dict(hs.current))
    hs.see("a", 2, 9.0)
    hs.see("a", 4, 9.0)
    hs.see("b", 0, 9.0)
    assert ({n: dict(m) for n, m in hs.reached.items()}, dict(hs.current)) == before
    assert hs.all_reached(4) == 2.0


def first_time_at_or_above(seen: list[tuple[str, int, float]], node: str, height: int) -> float | None:
    for n, h, t in seen:
        if n == node and h >= height:
            return t
    return None


@st.composite
def sightings(draw: st.DrawFn) -> list[tuple[str, int, float]]:
    steps = draw(
        st.lists(
            st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 12), st.integers(0, 3)),
            max_size=40,
        )
    )
    out: list[tuple[str, int, float]] = []
    now = 0.0
    for node, height, dt in steps:
        now += dt  # non-decreasing times, with ties
        out.append((node, height, now))
    return out


@settings(max_examples=300, deadline=None)
@given(sightings())
def test_all_reached_matches_definition(seen: list[tuple[str, int, float]]) -> None:
    hs = _Heights()
    for node, height, at in seen:
        hs.see(node, height, at)
    nodes = {n for n, _, _ in seen}
    assert set(hs.current) == nodes
    for node in nodes:
        assert hs.current[node] == max(h for n, h, _ in seen if n == node)
    for height in range(1, 15):
        firsts = [first_time_at_or_above(seen, n, height) for n in nodes]
        expected = None if not firsts or any(t is None for t in firsts) else max(t for t in firsts if t is not None)
        assert hs.all_reached(height) == expected


def test_all_reached_height_zero_is_first_sighting_time() -> None:
    hs = _Heights()
    hs.see("a", 0, 1.0)
    hs.see("b", 2, 2.0)
    assert hs.all_reached(0) == 2.0
