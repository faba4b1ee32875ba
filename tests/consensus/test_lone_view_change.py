"""A validator left alone in a view change (its request timed out, the others' did not) is
brought back: after `lone_join` ticks of it asking for the next view the others join it.
And `request_overdue` / `request_suspect`, the driver's per-request deadline inputs."""

from __future__ import annotations

from consensus.actions import Broadcast
from consensus.messages import ViewChange
from consensus.replica import Replica
from tests.consensus.harness import replica


def _view_changes(ready_actions: tuple[object, ...]) -> list[ViewChange]:
    return [a.message for a in ready_actions if isinstance(a, Broadcast) and isinstance(a.message, ViewChange)]


def _lone(asker: Replica) -> ViewChange:
    vcs = _view_changes(asker.request_overdue().actions)
    assert len(vcs) == 1 and vcs[0].new_view == 1 and asker.in_view_change
    return vcs[0]


def test_others_join_a_lone_asker_only_after_lone_join_ticks() -> None:
    vc = _lone(replica("v2", request_timeout=2))
    r = replica("v1", request_timeout=2)
    assert r.config.lone_join == 40
    r.step(vc)
    assert not r.in_view_change  # one asker is not f+1
    for _ in range(r.config.lone_join - 1):
        assert not _view_changes(r.tick().actions)
    joined = _view_changes(r.tick().actions)
    assert joined and joined[0].new_view == 1 and r.in_view_change


def test_a_suspect_joins_the_next_asker_at_once_but_only_for_the_next_view() -> None:
    vc = _lone(replica("v2"))
    r = replica("v1")
    r.request_suspect()
    r.step(vc)
    assert r.in_view_change and r.view == 1
    far = replica("v2")
    far._view_changes.start(3)  # white box: v2 asks for view 3 straight away
    assert far._view_changes.mine is not None and far._view_changes.mine.new_view == 3
    other = replica("v1")
    other.request_suspect()
    other.step(far._view_changes.mine)
    assert not other.in_view_change, "a suspect must not follow one asker far ahead"


def test_request_overdue_starts_a_view_change_once() -> None:
    r = replica("v1")
    assert _view_changes(r.request_overdue().actions)
    assert not _view_changes(r.request_overdue().actions)  # already in it
