"""Unit tests for each message handler of the replica, the action order, the
write-ahead records and the certificates it hands to the node."""

from __future__ import annotations

import random

import pytest

from consensus.actions import Broadcast, Execute, FetchBlocks, Persist, Ready
from consensus.config import ReplicaConfig
from consensus.messages import (
    Checkpoint,
    CommitVote,
    NewView,
    Prepare,
    PrePrepare,
    ViewChange,
    checkpoint_vote_bytes,
    prepare_vote_bytes,
)
from consensus.replica import Replica
from consensus.signing import Ed25519Signer, Ed25519Verifier, FakeSigner, FakeVerifier
from primitives.block import Block, Commit, Header, commit_vote_bytes, txs_root
from primitives.errors import Code
from primitives.hashing import sha256
from primitives.keys import KeyPair
from tests.consensus.harness import IDS, Cluster, replica

CHAIN = "test"


def pp(view: int, h: int, payload: bytes, sender: str = "v0") -> PrePrepare:
    d = sha256(payload)
    return PrePrepare(view, h, d, payload, sender, FakeSigner(sender).sign(prepare_vote_bytes(CHAIN, view, h, d)))


def prepare(view: int, h: int, payload: bytes, sender: str) -> Prepare:
    d = sha256(payload)
    return Prepare(view, h, d, sender, FakeSigner(sender).sign(prepare_vote_bytes(CHAIN, view, h, d)))


def commit(view: int, h: int, payload: bytes, sender: str) -> CommitVote:
    d = sha256(payload)
    return CommitVote(view, h, d, sender, FakeSigner(sender).sign(commit_vote_bytes(CHAIN, h, view, d)))


def codes(ready: Ready) -> list[Code]:
    return [r.code for r in ready.rejections]


def kinds(ready: Ready) -> list[str]:
    return [
        type(a).__name__ + (":" + type(a.message).__name__ if isinstance(a, Broadcast) else "") for a in ready.actions
    ]


# ---------------------------------------------------------------- PRE-PREPARE


def test_preprepare_persists_before_it_prepares() -> None:
    r = replica("v1")
    ready = r.step(pp(0, 1, b"a"))
    assert codes(ready) == []
    assert kinds(ready) == ["Persist", "Broadcast:Prepare"]


@pytest.mark.parametrize(
    "msg, code",
    [
        (pp(0, 1, b"a", sender="v2"), Code.NOT_PRIMARY),
        (PrePrepare(0, 1, sha256(b"a"), b"a", "v0", b"x" * 64), Code.BAD_SIGNATURE),
        (
            PrePrepare(
                0, 1, sha256(b"b"), b"a", "v0", FakeSigner("v0").sign(prepare_vote_bytes(CHAIN, 0, 1, sha256(b"b")))
            ),
            Code.BAD_BLOCK,
        ),
        (PrePrepare(0, 1, b"", b"", "v0", FakeSigner("v0").sign(prepare_vote_bytes(CHAIN, 0, 1, b""))), Code.BAD_BLOCK),
        (pp(0, 1000, b"a"), Code.OUT_OF_WINDOW),
        (pp(0, 0, b"a"), Code.OUT_OF_WINDOW),
        (PrePrepare(0, 1, sha256(b"a"), b"a", "mallory", b"x" * 64), Code.UNKNOWN_SENDER),
    ],
)
def test_preprepare_rejections(msg: PrePrepare, code: Code) -> None:
    r = replica("v1")
    ready = r.step(msg)
    assert codes(ready) == [code]
    assert ready.actions == ()


def test_second_preprepare_is_duplicate_or_equivocation() -> None:
    r = replica("v1")
    r.step(pp(0, 1, b"a"))
    assert codes(r.step(pp(0, 1, b"a"))) == [Code.DUPLICATE]
    ready = r.step(pp(0, 1, b"evil"))
    assert codes(ready) == [Code.EQUIVOCATION] and ready.actions == ()


def test_preprepare_of_old_view_is_wrong_view() -> None:
    r = replica("v1", request_timeout=1)
    r.expect_progress()
    r.tick()
    assert r.in_view_change and r.view == 1
    assert codes(r.step(pp(0, 1, b"a"))) == [Code.WRONG_VIEW]


# ---------------------------------------------------------------- PREPARE / COMMIT


def test_prepare_quorum_persists_proof_then_commits() -> None:
    r = replica("v1")
    r.step(pp(0, 1, b"a"))
    assert codes(r.step(prepare(0, 1, b"a", "v9"))) == [Code.UNKNOWN_SENDER]
    bad = Prepare(0, 1, sha256(b"a"), "v2", b"y" * 64)
    assert codes(r.step(bad)) == [Code.BAD_SIGNATURE]
    ready = r.step(prepare(0, 1, b"a", "v2"))  # v0 (pre-prepare), v1 (own), v2: quorum 3
    assert kinds(ready) == ["Persist", "Persist", "Broadcast:CommitVote"]
    assert codes(r.step(prepare(0, 1, b"a", "v2"))) == [Code.DUPLICATE]


def test_commit_quorum_executes_with_a_certificate() -> None:
    r = replica("v1")
    r.step(pp(0, 1, b"a"))
    r.step(prepare(0, 1, b"a", "v2"))
    r.step(commit(0, 1, b"a", "v0"))
    ready = r.step(commit(0, 1, b"a", "v2"))
    ex = ready.executes
    assert len(ex) == 1 and ex[0].height == 1 and ex[0].payload == b"a"
    cert = ex[0].certificate
    assert cert.block_hash == sha256(b"a") and [v for v, _ in cert.votes] == ["v0", "v1", "v2"]
    assert r.last_committed == 1
    # order: persist the commit proof, then execute
    assert kinds(ready) == ["Persist", "Execute"]


def test_commit_before_prepare_waits_for_payload() -> None:
    r = replica("v3")
    for s in ("v0", "v1", "v2"):
        assert r.step(commit(0, 1, b"a", s)).executes == ()
    ready = r.step(pp(0, 1, b"a"))  # payload arrives: 3 commits already in
    assert [e.height for e in ready.executes] == [1]


def test_commit_is_sent_only_when_lower_heights_have_proofs() -> None:
    r = replica("v1")
    r.step(pp(0, 1, b"a"))
    r.step(pp(0, 2, b"b"))
    ready = r.step(prepare(0, 2, b"b", "v2"))  # height 2 prepared, height 1 not yet
    assert "Broadcast:CommitVote" not in kinds(ready)
    ready = r.step(prepare(0, 1, b"a", "v2"))  # now both go out, in order
    sent = [a.message for a in ready.actions if isinstance(a, Broadcast)]
    assert [(type(m).__name__, m.height) for m in sent] == [("CommitVote", 1), ("CommitVote", 2)]


def test_bad_commit_signature() -> None:
    r = replica("v1")
    assert codes(r.step(CommitVote(0, 1, sha256(b"a"), "v2", b"z" * 64))) == [Code.BAD_SIGNATURE]


# ---------------------------------------------------------------- propose


def test_propose_refusals() -> None:
    assert codes(replica("v1").propose(b"a")) == [Code.NOT_PRIMARY]
    p = replica("v0", window=2)
    assert codes(p.propose(b"")) == [Code.BAD_BLOCK]
    assert kinds(p.propose(b"a")) == ["Persist", "Broadcast:PrePrepare"]
    p.propose(b"b")
    assert not p.can_propose
    assert codes(p.propose(b"c")) == [Code.OUT_OF_WINDOW]


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_becomes_stable_and_discards_the_log() -> None:
    c = Cluster(checkpoint_interval=2)
    for k in range(3):
        c.propose(b"x%d" % k)
    c.deliver_all()
    for i in IDS:
        r = c.reps[i]
        assert r.stable_checkpoint == 2 and r.last_committed == 3
        assert all(h > 2 for h in r._proofs)  # noqa: SLF001 - the log below is gone


def test_checkpoint_rejections() -> None:
    r = replica("v1", checkpoint_interval=4)
    root = sha256(b"r")
    assert codes(r.step(Checkpoint(3, root, "v2", FakeSigner("v2").sign(checkpoint_vote_bytes(CHAIN, 3, root))))) == [
        Code.OUT_OF_WINDOW
    ]
    assert codes(r.step(Checkpoint(4, root, "v2", b"q" * 64))) == [Code.BAD_SIGNATURE]


def test_stable_checkpoint_above_us_triggers_fetch() -> None:
    r = replica("v3", checkpoint_interval=4)
    root = sha256(b"r")
    out = [
        r.step(Checkpoint(4, root, s, FakeSigner(s).sign(checkpoint_vote_bytes(CHAIN, 4, root))))
        for s in ("v0", "v1", "v2")
    ]
    fetches = [a for a in out[-1].actions if isinstance(a, FetchBlocks)]
    assert r.stable_checkpoint == 4 and fetches and (fetches[0].from_height, fetches[0].to_height) == (1, 4)


# ---------------------------------------------------------------- view change


def _view_change_cluster() -> Cluster:
    c = Cluster(request_timeout=3, view_change_timeout=3)
    c.propose(b"a")
    c.deliver_all()
    c.blocked = lambda a, b, m: "v0" in (a, b)
    for i in ("v1", "v2", "v3"):
        c.handle(i, c.reps[i].expect_progress())
    return c


def test_silent_primary_is_replaced() -> None:
    c = _view_change_cluster()
    c.tick(4, who=("v1", "v2", "v3"))
    assert all(c.reps[i].view == 1 and not c.reps[i].in_view_change for i in ("v1", "v2", "v3"))
    assert c.reps["v1"].is_primary and c.reps["v1"].can_propose
    c.propose(b"b", primary="v1")
    c.deliver_all()
    assert all([p for p, _ in c.chains[i]] == [b"a", b"b"] for i in ("v1", "v2", "v3"))


def test_f_plus_one_view_changes_pull_a_replica_along() -> None:
    c = _view_change_cluster()
    c.tick(3, who=("v1", "v2"))  # v3 does not time out itself
    assert c.reps["v3"].view >= 1


def _signed_vc(sender: str, new_view: int, proofs: tuple = ()) -> ViewChange:  # type: ignore[type-arg]
    vc = ViewChange(new_view, 0, b"", (), proofs, sender, b"")
    return ViewChange(new_view, 0, b"", (), proofs, sender, FakeSigner(sender).sign(vc.signed_bytes(CHAIN)))


def test_view_change_with_forged_proof_is_refused() -> None:
    from consensus.messages import Proof

    forged = Proof("prepare", 0, 1, sha256(b"a"), b"a", (("v0", b"1" * 64), ("v1", b"2" * 64), ("v2", b"3" * 64)))
    r = replica("v1")
    assert codes(r.step(_signed_vc("v2", 1, (forged,)))) == [Code.BAD_CERTIFICATE]
    vc = _signed_vc("v2", 1)
    assert codes(r.step(ViewChange(1, 0, b"", (), (), "v2", b"w" * 64))) == [Code.BAD_SIGNATURE]
    assert codes(r.step(vc)) == []


def _new_view(view: int, vcs: tuple[ViewChange, ...], pps: tuple[PrePrepare, ...], sender: str) -> NewView:
    nv = NewView(view, vcs, pps, sender, b"")
    return NewView(view, vcs, pps, sender, FakeSigner(sender).sign(nv.signed_bytes(CHAIN)))


def test_new_view_checks() -> None:
    vcs = tuple(_signed_vc(s, 1) for s in ("v1", "v2", "v3"))
    r = replica("v2")
    assert codes(r.step(_new_view(1, vcs, (), "v3"))) == [Code.NOT_PRIMARY]
    assert codes(r.step(_new_view(1, vcs[:2], (), "v1"))) == [Code.BAD_CERTIFICATE]
    # a re-proposal that no view-change justifies
    assert codes(r.step(_new_view(1, vcs, (pp(1, 1, b"x", sender="v1"),), "v1"))) == [Code.BAD_CERTIFICATE]
    ready = r.step(_new_view(1, vcs, (), "v1"))
    assert codes(ready) == [] and r.view == 1 and not r.in_view_change
    assert kinds(ready)[0] == "Persist"  # the view entered is recorded


def test_view_change_backoff_doubles() -> None:
    from consensus.messages import NewView as NV

    c = Cluster(request_timeout=2, view_change_timeout=4)
    c.blocked = lambda a, b, m: isinstance(m, NV)
    for i in IDS:
        c.handle(i, c.reps[i].expect_progress())
    starts = []
    for t in range(1, 80):
        before = c.reps["v2"].view
        c.tick(1)
        if c.reps["v2"].view != before:
            starts.append(t)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(gaps) >= 3 and gaps[1] >= 2 * gaps[0] - 1 and gaps[2] >= 2 * gaps[1] - 1


# ---------------------------------------------------------------- catch-up


def _certified(payload: bytes, h: int, signers: tuple[str, ...] = ("v0", "v1", "v2")) -> Commit:
    d = sha256(payload)
    return Commit(CHAIN, h, 0, d, tuple((s, FakeSigner(s).sign(commit_vote_bytes(CHAIN, h, 0, d))) for s in signers))


def test_fetched_blocks_need_a_valid_certificate() -> None:
    r = replica("v3")
    assert codes(r.on_fetched(b"a", _certified(b"a", 1, ("v0", "v1")))) == [Code.BAD_CERTIFICATE]
    assert codes(r.on_fetched(b"a", _certified(b"a", 1, ("v0", "v0", "v1")))) == [Code.BAD_CERTIFICATE]
    assert codes(r.on_fetched(b"b", _certified(b"a", 1))) == [Code.BAD_BLOCK]
    other = Commit("other", 1, 0, sha256(b"a"), _certified(b"a", 1).votes)
    assert codes(r.on_fetched(b"a", other)) == [Code.WRONG_CHAIN]
    assert r.on_fetched(b"b", _certified(b"b", 2)).executes == ()  # held until height 1
    ready = r.on_fetched(b"a", _certified(b"a", 1))
    assert [e.height for e in ready.executes] == [1, 2]
    assert codes(r.on_fetched(b"a", _certified(b"a", 1))) == [Code.DUPLICATE]


def test_peers_committing_above_us_trigger_a_fetch() -> None:
    r = replica("v3", fetch_after=2)
    for s in ("v0", "v1"):
        r.step(commit(0, 30, b"z", s))  # f+1 peers claim height 30 (outside the window)
    actions = [a for _ in range(3) for a in r.tick().actions]
    fetches = [a for a in actions if isinstance(a, FetchBlocks)]
    assert fetches and (fetches[0].from_height, fetches[0].to_height) == (1, 30)


# ---------------------------------------------------------------- write-ahead records


def test_restart_never_signs_a_second_block_for_one_view_and_height() -> None:
    records: list[bytes] = []
    r = replica("v1")
    records += [a.record for a in r.step(pp(0, 1, b"a")).actions if isinstance(a, Persist)]
    again = replica("v1", records=records)
    ready = again.step(pp(0, 1, b"evil"))  # an equivocating primary tries the restarted replica
    assert codes(ready) == [Code.EQUIVOCATION] and ready.outbound == ()
    forgetful = replica("v1")
    assert forgetful.step(pp(0, 1, b"evil")).outbound  # without its records it would sign


def test_restarted_primary_does_not_reuse_a_height() -> None:
    p = replica("v0")
    records = [a.record for a in p.propose(b"a").actions if isinstance(a, Persist)]
    again = replica("v0", records=records)
    ready = again.propose(b"b")  # height 1 was used before the crash
    sent = [a.message for a in ready.actions if isinstance(a, Broadcast)]
    assert [(m.height, m.payload) for m in sent] == [(2, b"b")]  # type: ignore[union-attr]


def test_restart_during_view_change_resumes_it() -> None:
    r = replica("v1", request_timeout=1)
    r.expect_progress()
    records = [a.record for a in r.tick().actions if isinstance(a, Persist)]
    again = replica("v1", records=records, request_timeout=1)
    assert again.view == 1 and again.in_view_change
    assert any(isinstance(a, Broadcast) and isinstance(a.message, ViewChange) for a in again.tick().actions)


# ---------------------------------------------------------------- with the node's real block and keys


def test_certificate_verifies_as_a_primitives_commit_with_ed25519() -> None:
    keys = {i: KeyPair(i, "bank", sha256(i.encode()), sha256(b"e" + i.encode()), alias=i) for i in IDS}
    verifier = Ed25519Verifier({i: k.sign_pub for i, k in keys.items()})

    def block_digest(payload: bytes) -> bytes | None:
        try:
            return Block.decode(payload).hash()
        except Exception:
            return None

    reps = {
        i: Replica(ReplicaConfig(CHAIN, IDS, i), Ed25519Signer(keys[i]), verifier, block_digest, random.Random(1))
        for i in IDS
    }
    header = Header(CHAIN, 1, bytes(32), 1_000, 0, "v0", txs_root(()), bytes(32), bytes(32))
    block = Block(header, ())
    queue = [("v0", a) for a in reps["v0"].propose(block.encode()).actions]
    executed: list[Execute] = []
    while queue:
        src, action = queue.pop(0)
        if isinstance(action, Broadcast):
            for t in IDS:
                if t != src:
                    queue += [(t, a) for a in reps[t].step(action.message).actions]
        elif isinstance(action, Execute):
            executed.append(action)
    assert len(executed) == 4
    for e in executed:
        e.certificate.verify({i: k.sign_pub for i, k in keys.items()}, header)  # raises if invalid
    assert codes(reps["v1"].propose(b"not a block")) == [Code.NOT_PRIMARY]
    assert codes(reps["v0"].propose(b"not a block")) == [Code.BAD_BLOCK]


def test_node_validity_check_refuses_a_fresh_proposal() -> None:
    seen: list[tuple[int, bytes, bytes | None]] = []

    def validate(h: int, payload: bytes, parent: bytes | None) -> bool:
        seen.append((h, payload, parent))
        return payload != b"late block"

    r = Replica(
        ReplicaConfig(CHAIN, IDS, "v1"),
        FakeSigner("v1"),
        FakeVerifier(IDS),
        lambda p: sha256(p) if p else None,
        random.Random(1),
        validate=validate,
    )
    assert r.step(pp(0, 1, b"a")).outbound
    ready = r.step(pp(0, 2, b"late block"))
    assert codes(ready) == [Code.BAD_BLOCK] and ready.outbound == ()
    assert seen == [(1, b"a", None), (2, b"late block", sha256(b"a"))]
    assert r.digest_at(1) == sha256(b"a") and r.next_height == 1


def test_compacted_records_restore_the_same_replica() -> None:
    from consensus.records import StableRecord, compact, decode_record

    c = Cluster(checkpoint_interval=2, request_timeout=2)
    for k in range(5):
        c.propose(b"x%d" % k)
    c.deliver_all()
    c.blocked = lambda a, b, m: "v0" in (a, b)
    for i in IDS:
        c.handle(i, c.reps[i].expect_progress())
    c.tick(3, who=("v1", "v2", "v3"))
    records = c.records["v2"]
    small = compact(records)
    assert len(small) < len(records)
    assert c.stable_flags["v2"] == [isinstance(decode_record(r), StableRecord) for r in records]
    assert any(c.stable_flags["v2"])
    assert [decode_record(r, checked=False) for r in records] == [decode_record(r) for r in records]
    full, compacted = replica("v2", records=records, last_executed=5), replica("v2", records=small, last_executed=5)
    for attr in ("view", "in_view_change", "stable_checkpoint", "next_height"):
        assert getattr(full, attr) == getattr(compacted, attr), attr
    above = {k: v for k, v in full._my_votes.items() if k[2] > full.stable_checkpoint}  # noqa: SLF001
    assert above == compacted._my_votes  # noqa: SLF001


# ---------------------------------------------------------------- parent linkage


def _linked(parent: bytes | None, body: bytes) -> bytes:
    return (parent or bytes(32)) + body


def _linked_replica(me: str) -> Replica:
    return Replica(
        ReplicaConfig(CHAIN, IDS, me),
        FakeSigner(me),
        FakeVerifier(IDS),
        lambda p: sha256(p) if p else None,
        random.Random(1),
        parent_of=lambda p: p[:32] if len(p) >= 32 else None,
    )


def test_fresh_proposal_must_extend_our_block() -> None:
    r = _linked_replica("v1")
    a = _linked(None, b"a")
    assert r.step(pp(0, 1, a)).outbound
    ready = r.step(pp(0, 2, _linked(sha256(b"other"), b"b")))
    assert codes(ready) == [Code.BAD_BLOCK] and ready.outbound == ()


def test_proposal_waits_for_its_parent() -> None:
    r = _linked_replica("v1")
    a = _linked(None, b"a")
    b = _linked(sha256(a), b"b")
    assert r.step(pp(0, 2, b)).actions == ()  # parent not here yet: held
    ready = r.step(pp(0, 1, a))
    prepared = [a_.message.height for a_ in ready.actions if isinstance(a_, Broadcast)]
    assert prepared == [1, 2]


def test_new_view_stops_at_an_unlinked_re_proposal() -> None:
    from consensus.messages import Proof

    x = _linked(None, b"x")
    stale = _linked(sha256(b"not x"), b"y")  # prepared at height 2 in view 0 on another parent

    def proof(view: int, h: int, payload: bytes) -> Proof:
        d = sha256(payload)
        votes = tuple((s, FakeSigner(s).sign(prepare_vote_bytes(CHAIN, view, h, d))) for s in ("v0", "v1", "v2"))
        return Proof("prepare", view, h, d, payload, votes)

    vcs = (_signed_vc("v1", 2, (proof(1, 1, x), proof(0, 2, stale))), _signed_vc("v2", 2), _signed_vc("v3", 2))
    r = _linked_replica("v3")
    plan = r._plan_new_view(list(vcs))[3]  # noqa: SLF001
    assert [h for h, _, _ in plan] == [1]
    assert [h for h, _, _ in replica("v3")._plan_new_view(list(vcs))[3]] == [1, 2]  # noqa: SLF001 - without parent_of


@pytest.mark.parametrize("raw", [b"\xc1", b"\x81\xa1r\xa4nope", b"\x93\x01\x02\x03", b""])
def test_a_damaged_record_is_store_damaged_checked_or_not(raw: bytes) -> None:
    from consensus.records import decode_record
    from primitives.errors import GodownError

    for checked in (True, False):
        with pytest.raises(GodownError) as exc:
            decode_record(raw, checked=checked)
        assert exc.value.code is Code.STORE_DAMAGED
