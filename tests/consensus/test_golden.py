"""Golden traces: the exact action sequence of three small scenarios (normal case, a
view change with a re-proposal, a catch-up). A protocol change shows up as a diff;
regenerate deliberately with GODOWN_REGEN_GOLDEN=1."""

from __future__ import annotations

import os
from pathlib import Path

from consensus.messages import CommitVote, Message
from tests.consensus.harness import Cluster

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, log: list[str]) -> None:
    path = GOLDEN / f"{name}.txt"
    text = "\n".join(log) + "\n"
    if os.environ.get("GODOWN_REGEN_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with GODOWN_REGEN_GOLDEN=1"
    assert text == path.read_text(), f"trace differs from {path}"


def test_normal_case_golden() -> None:
    c = Cluster()
    c.propose(b"a")
    c.propose(b"b")
    c.deliver_all()
    assert all([p for p, _ in c.chains[i]] == [b"a", b"b"] for i in c.ids)
    assert all(c.reps[i].last_committed == 2 for i in c.ids)
    check_golden("normal_case", c.log)


def test_view_change_golden() -> None:
    c = Cluster(request_timeout=5, view_change_timeout=5)
    no_commits = lambda a, b, m: isinstance(m, CommitVote)  # noqa: E731
    c.blocked = no_commits
    c.propose(b"a")
    c.deliver_all()
    assert all(c.reps[i].last_committed == 0 for i in c.ids)

    def primary_dead(a: str, b: str, m: Message | None) -> bool:
        return "v0" in (a, b) or (isinstance(m, CommitVote) and m.view == 0)

    c.blocked = primary_dead
    c.log.append("-- v0 crashes; view-0 commits stay lost --")
    for i in ("v1", "v2", "v3"):
        c.handle(i, c.reps[i].expect_progress())
    c.tick(8, who=("v1", "v2", "v3"))
    for i in ("v1", "v2", "v3"):
        r = c.reps[i]
        assert (r.view, r.in_view_change, r.last_committed) == (1, False, 1)
        assert c.chains[i][0][0] == b"a" and c.chains[i][0][1].view == 1
    c.propose(b"b", primary="v1")
    c.deliver_all()
    assert all(len(c.chains[i]) == 2 for i in ("v1", "v2", "v3"))
    check_golden("view_change", c.log)


def test_catch_up_golden() -> None:
    c = Cluster(checkpoint_interval=4, fetch_after=3)

    def isolated(a: str, b: str, m: Message | None) -> bool:
        return "v3" in (a, b)

    c.blocked = isolated
    for k in range(5):
        c.propose(b"b%d" % k)
        c.deliver_all()
    assert c.reps["v0"].stable_checkpoint == 4 and c.reps["v3"].last_committed == 0
    c.blocked = lambda a, b, m: False
    c.log.append("-- v3 reconnects --")
    c.propose(b"b5")
    c.deliver_all()
    c.tick(4)
    assert [p for p, _ in c.chains["v3"]] == [b"b%d" % k for k in range(6)]
    check_golden("catch_up", c.log)
