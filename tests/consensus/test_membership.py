"""Validator-set changes in the replica: which set judges which height, the hand-over at a
checkpoint boundary, replicas outside the set, and the schedule's own rules
(`consensus.membership`)."""

from __future__ import annotations

import pytest

from consensus.actions import Broadcast, FetchBlocks
from consensus.membership import ValidatorChange, after_height_for
from consensus.messages import Checkpoint, CommitVote, Message, Prepare, PrePrepare, ViewChange, checkpoint_vote_bytes
from consensus.replica import Replica
from consensus.signing import Ed25519Verifier, FakeSigner
from primitives.block import Commit, commit_vote_bytes
from primitives.errors import Code
from primitives.hashing import sha256
from tests.consensus.harness import IDS, Cluster, config, replica
from tests.consensus.test_replica import CHAIN, _new_view, _signed_vc, codes, commit, pp, prepare

POOL = (*IDS, "v4")
NEW = ("v4", "v0", "v1", "v2")
"""v3 leaves, v4 joins and is the primary of view 0."""
KW: dict[str, int | bool] = {"reconfigurable": True, "checkpoint_interval": 2, "window": 2}
"""high span 2·2+2 = 6: a change approved by block 1 governs the heights after 8."""
ROOT = sha256(b"root")


def checkpoint(h: int, sender: str, root: bytes = ROOT) -> Checkpoint:
    return Checkpoint(h, root, sender, FakeSigner(sender).sign(checkpoint_vote_bytes(CHAIN, h, root)))


def restarted(me: str = "v1", last_executed: int = 2) -> Replica:
    """A replica that executed 1..`last_executed`, block 1 having approved NEW after height 8."""
    change = ValidatorChange(8, NEW, {"v4": b""})
    return replica(me, last_executed=last_executed, changes=(change,), **KW)


def stable_at(r: Replica, h: int) -> Replica:
    """Checkpoint h made stable by three validators of the old set (other than `r`)."""
    for s in [i for i in IDS if i != r.config.node_id][:3]:
        r.step(checkpoint(h, s))
    assert r.stable_checkpoint == h
    return r


def sent(ready_actions: object) -> list[Message]:
    return [a.message for a in ready_actions if isinstance(a, Broadcast)]  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the schedule


def test_after_height_is_a_boundary_a_lead_above_the_approval() -> None:
    cfg = config("v0", **KW)
    assert cfg.lead == 6 and [after_height_for(cfg, h) for h in (1, 2, 3)] == [8, 8, 10]
    short = config("v0", **(KW | {"change_lead": 1}))
    assert [after_height_for(short, h) for h in (1, 2, 3, 4)] == [2, 4, 4, 6]  # the first boundary after h


def test_schedule_refuses_what_a_replica_must_not_apply() -> None:
    with pytest.raises(ValueError, match="fixed"):
        replica("v1").schedule_validators(8, NEW, {})
    r = replica("v1", **KW)
    with pytest.raises(ValueError, match="boundary"):
        r.schedule_validators(9, NEW, {})
    with pytest.raises(ValueError, match="may be judged"):
        r.schedule_validators(6, NEW, {})  # heights up to 8 may already be voted on
    r.schedule_validators(8, NEW, {"v4": b""})
    assert r.schedule_validators(8, NEW, {"v4": b""}).actions == ()  # told again: nothing changes
    with pytest.raises(ValueError, match="in order"):
        r.schedule_validators(6, IDS, {})
    assert r.validators_at(8) == IDS and r.validators_at(9) is None  # until block 2, another change may come
    r.on_executed(1, ROOT)
    r.on_executed(2, ROOT)
    assert r.validators_at(9) == NEW and r.peers() == POOL


def test_a_later_decision_for_the_same_boundary_replaces_the_earlier() -> None:
    r = replica("v1", **KW)
    r.schedule_validators(8, NEW, {"v4": b""})
    r.schedule_validators(8, ("v0", "v1", "v2"), {})
    r.schedule_validators(10, ("v0", "v1", "v2"), {})  # the same set again: no boundary
    for h in range(1, 5):
        r.on_executed(h, ROOT)
    assert r.validators_at(8) == IDS and r.validators_at(9) == r.validators_at(12) == ("v0", "v1", "v2")


def test_heights_beyond_the_known_schedule_are_not_judged_but_show_we_are_behind() -> None:
    r = replica("v3", fetch_after=1, **KW)  # executed nothing: sets known up to 8
    assert r.validators_at(8) == IDS and r.validators_at(9) is None
    for s in ("v0", "v1"):
        assert codes(r.step(commit(0, 30, b"z", s))) == [Code.OUT_OF_WINDOW]
    assert codes(r.step(prepare(0, 9, b"z", "v0"))) == [Code.OUT_OF_WINDOW]
    fetches = [a for _ in range(2) for a in r.tick().actions if isinstance(a, FetchBlocks)]
    assert (fetches[0].from_height, fetches[0].to_height) == (1, 8)  # no further than it can judge


def test_an_unknown_id_hints_that_we_are_behind() -> None:
    r = replica("v3", fetch_after=1, **KW)
    assert codes(r.step(prepare(0, 30, b"z", "v7"))) == [Code.UNKNOWN_SENDER]
    fetches = [a for _ in range(2) for a in r.tick().actions if isinstance(a, FetchBlocks)]
    assert (fetches[0].from_height, fetches[0].to_height) == (1, 8)


def test_restart_with_the_committed_changes_rebuilds_the_schedule() -> None:
    r = restarted()
    assert r.validators_at(8) == IDS and r.validators_at(10) == NEW and r.validators_at(11) is None
    assert r.validators == IDS and r.is_validator
    assert restarted("v3").is_validator and not stable_at(restarted("v3"), 8).is_validator


def test_ed25519_verifier_learns_keys_but_keeps_an_id_to_its_key() -> None:
    v = Ed25519Verifier({"v0": b"a" * 32})
    v.add_keys({"v4": b"b" * 32, "v0": b"a" * 32})
    with pytest.raises(ValueError, match="another key"):
        v.add_keys({"v4": b"c" * 32})


# ---------------------------------------------------------------- who may vote at a height


def test_removed_validator_is_refused_after_the_switch() -> None:
    r = stable_at(restarted(), 8)
    assert r.validators == NEW
    for msg in (prepare(0, 9, b"x", "v3"), commit(0, 9, b"x", "v3"), checkpoint(10, "v3")):
        assert codes(r.step(msg)) == [Code.UNKNOWN_SENDER], msg
    v = ViewChange(1, 8, b"", (), (), "v3", b"")
    assert codes(r.step(ViewChange(1, 8, b"", (), (), "v3", FakeSigner("v3").sign(v.signed_bytes(CHAIN))))) == [
        Code.UNKNOWN_SENDER
    ]
    assert codes(r.step(pp(0, 9, b"x", sender="v3"))) == [Code.NOT_PRIMARY]
    for msg in (prepare(0, 9, b"x", "v4"), commit(0, 9, b"x", "v4"), checkpoint(10, "v4")):
        assert codes(r.step(msg)) == [], msg  # the validator that joined counts


def test_removed_validator_still_counts_up_to_the_switch() -> None:
    r = stable_at(restarted(), 6)
    assert codes(r.step(prepare(0, 8, b"x", "v3"))) == []
    assert codes(r.step(checkpoint(8, "v3"))) == []


def test_new_validator_is_refused_before_its_start_height() -> None:
    before = replica("v1", **KW)  # has not learnt of the change: v4 is nobody
    assert codes(before.step(prepare(0, 3, b"x", "v4"))) == [Code.UNKNOWN_SENDER]
    r = restarted()
    for msg in (prepare(0, 3, b"x", "v4"), commit(0, 3, b"x", "v4"), checkpoint(8, "v4")):
        assert codes(r.step(msg)) == [Code.UNKNOWN_SENDER], msg
    assert codes(r.step(pp(0, 3, b"x", sender="v4"))) == [Code.NOT_PRIMARY]
    v = ViewChange(1, 0, b"", (), (), "v4", b"")
    assert codes(r.step(ViewChange(1, 0, b"", (), (), "v4", FakeSigner("v4").sign(v.signed_bytes(CHAIN))))) == [
        Code.UNKNOWN_SENDER
    ]


def test_certificates_are_judged_by_the_set_governing_their_height() -> None:
    def cert(h: int, signers: tuple[str, ...]) -> Commit:
        d = sha256(b"x")
        votes = tuple((s, FakeSigner(s).sign(commit_vote_bytes(CHAIN, h, 0, d))) for s in signers)
        return Commit(CHAIN, h, 0, d, votes)

    r = restarted(last_executed=8)
    assert codes(r.on_fetched(b"x", cert(9, ("v0", "v1", "v3")))) == [Code.BAD_CERTIFICATE]  # old set's quorum
    assert codes(r.on_fetched(b"x", cert(9, ("v0", "v3", "v4")))) == [Code.BAD_CERTIFICATE]  # v3 is out
    assert [e.height for e in r.on_fetched(b"x", cert(9, ("v4", "v0", "v1"))).executes] == [9]


# ---------------------------------------------------------------- the hand-over at the boundary


def test_backup_holds_a_proposal_past_the_boundary_until_its_checkpoint_is_stable() -> None:
    r = stable_at(restarted(), 6)
    assert r.step(pp(0, 9, b"c", sender="v4")).actions == ()  # checkpoint 8 not stable: held
    ready = r.step(checkpoint(8, "v0"))
    ready2 = r.step(checkpoint(8, "v2"))
    ready3 = r.step(checkpoint(8, "v3"))
    assert sent(ready.actions) == [] and sent(ready2.actions) == []
    assert [(type(m).__name__, m.height) for m in sent(ready3.actions)] == [("Prepare", 9)]  # type: ignore[union-attr]


def _switching_cluster() -> Cluster:
    """v0..v3 commit block 1, which approves NEW after height 2 (lead 1); block 2 commits but
    its CHECKPOINTs are lost, so checkpoint 2 is not stable anywhere."""
    c = Cluster(POOL, validators=IDS, reconfigurable=True, checkpoint_interval=2, window=2, change_lead=1)
    c.approvals[1] = (c.reps["v0"].after_height_for(1), NEW)
    assert c.approvals[1][0] == 2
    c.propose(b"a")
    c.deliver_all()
    c.blocked = lambda a, b, m: isinstance(m, Checkpoint)
    c.propose(b"b")
    c.deliver_all()
    assert all(c.reps[i].last_committed == 2 and c.reps[i].stable_checkpoint == 0 for i in POOL)
    return c


def test_no_proposal_past_the_boundary_before_its_checkpoint_is_stable() -> None:
    c = _switching_cluster()
    new_primary, old_primary = c.reps["v4"], c.reps["v0"]
    assert new_primary.next_height == 3 and not new_primary.can_propose
    ready = new_primary.propose(b"c")
    assert codes(ready) == [Code.OUT_OF_WINDOW] and ready.outbound == ()
    assert codes(old_primary.propose(b"c")) == [Code.NOT_PRIMARY]  # height 3 is the new set's
    c.blocked = lambda a, b, m: False
    c.tick(c.reps["v0"].config.resend_interval)  # the boundary's CHECKPOINTs are offered again
    assert all(c.reps[i].stable_checkpoint == 2 for i in POOL)
    assert new_primary.can_propose
    c.log.clear()
    c.propose(b"c", primary="v4")
    c.deliver_all()
    assert all(c.chains[i][2][0] == b"c" for i in POOL)  # the removed v3 follows too
    signers = {s for s, _ in c.chains["v1"][2][1].votes}
    assert signers <= set(NEW) and len(signers) >= 3
    assert not [line for line in c.log if line.startswith("v3 ->")]  # it signs nothing for height 3


def test_view_change_after_the_switch_runs_in_the_new_set() -> None:
    c = _switching_cluster()
    c.blocked = lambda a, b, m: False
    c.tick(c.reps["v0"].config.resend_interval)
    c.log.clear()
    c.blocked = lambda a, b, m: "v4" in (a, b)  # the new primary is silent
    for i in NEW[1:]:
        c.handle(i, c.reps[i].expect_progress())
    c.tick(80, who=("v0", "v1", "v2", "v3"))
    assert all(c.reps[i].view == 1 and not c.reps[i].in_view_change for i in ("v0", "v1", "v2"))
    assert c.reps["v0"].is_primary  # NEW[1]
    assert not [line for line in c.log if line.startswith("v3 ->") and "ViewChange" in line]
    c.propose(b"c", primary="v0")
    c.deliver_all()
    assert all(len(c.chains[i]) == 3 for i in ("v0", "v1", "v2", "v3"))


def test_new_view_of_the_old_set_is_refused_past_the_boundary() -> None:
    r = stable_at(restarted("v2"), 8)
    vcs = (_signed_vc("v0", 1), _signed_vc("v1", 1), _signed_vc("v3", 1))
    nv = _new_view(1, vcs, (), "v1")  # the old set's primary of view 1, on old-set VIEW-CHANGEs
    assert codes(r.step(nv)) == [Code.NOT_PRIMARY]
    nv = _new_view(1, vcs, (), "v0")  # NEW[1], but v3 is not a member any more
    assert codes(r.step(nv)) == [Code.BAD_CERTIFICATE]


# ---------------------------------------------------------------- replicas outside the set


def test_an_observer_follows_the_chain_and_signs_nothing() -> None:
    c = Cluster((*IDS, "o1"), validators=IDS, reconfigurable=True, checkpoint_interval=2)
    for k in range(5):
        c.propose(b"x%d" % k)
        c.deliver_all()
    assert [p for p, _ in c.chains["o1"]] == [b"x%d" % k for k in range(5)]
    assert c.reps["o1"].stable_checkpoint == 4 and not c.reps["o1"].is_validator
    assert not [line for line in c.log if line.startswith("o1 ->")]
    observer = c.reps["o1"]
    observer.expect_progress()
    assert all(not [a for a in observer.tick().actions if isinstance(a, Broadcast)] for _ in range(100))


def test_an_observer_with_work_and_no_progress_fetches_instead_of_asking_for_a_view_change() -> None:
    r = replica("o1", IDS, request_timeout=3, **KW)
    r.expect_progress()
    actions = [a for _ in range(4) for a in r.tick().actions]
    assert [(a.from_height, a.to_height) for a in actions if isinstance(a, FetchBlocks)] == [(1, 8)]
    assert not any(isinstance(a, Broadcast) for a in actions)


def test_a_replica_that_missed_the_hand_over_adopts_it_from_a_view_change() -> None:
    r = restarted("v4")  # joins after 8; its checkpoint is 6, so it cannot take part yet
    stable_at(r, 6)
    assert not r.is_validator
    cert = tuple(sorted((s, FakeSigner(s).sign(checkpoint_vote_bytes(CHAIN, 8, ROOT))) for s in ("v0", "v2", "v3")))
    body = ViewChange(1, 8, ROOT, cert, (), "v0", b"")
    vc = ViewChange(1, 8, ROOT, cert, (), "v0", FakeSigner("v0").sign(body.signed_bytes(CHAIN)))
    assert codes(r.step(vc)) == []
    assert r.stable_checkpoint == 8 and r.is_validator


def test_removed_validator_sends_nothing_for_heights_past_the_switch() -> None:
    r = stable_at(restarted("v3", last_executed=8), 8)
    ready = r.step(pp(0, 9, b"x", sender="v4"))
    assert codes(ready) == [] and ready.outbound == ()  # accepted, not voted on
    for s in ("v4", "v0", "v1"):
        ready = r.step(prepare(0, 9, b"x", s))
        assert ready.outbound == ()
    for s in ("v4", "v0", "v1"):
        ready = r.step(commit(0, 9, b"x", s))
    assert [e.height for e in ready.executes] == [9] and ready.outbound == ()
    assert not [a for _ in range(50) for a in r.tick().actions if isinstance(a, Broadcast)]


def test_prepare_from_unknown_height_is_not_counted() -> None:
    r = restarted()
    assert codes(r.step(Prepare(0, 11, sha256(b"x"), "v4", b"s" * 64))) == [Code.OUT_OF_WINDOW]
    assert codes(r.step(CommitVote(0, 11, sha256(b"x"), "v4", b"s" * 64))) == [Code.OUT_OF_WINDOW]
    assert codes(r.step(PrePrepare(0, 11, sha256(b"x"), b"x", "v4", b"s" * 64))) == [Code.OUT_OF_WINDOW]
