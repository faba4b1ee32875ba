"""NEW-VIEW's first re-proposal must extend the block at the stable checkpoint.

Regression for a linkage violation found by hypothesis (seed 340 below): view 6 prepared
heights 9..11 on a block 9 that was never committed; view 7 committed another block 9
(stable checkpoint 9); the NEW-VIEW of view 8 re-proposed view 6's height 10, whose
parent is view 6's block 9, because `_plan_new_view` only checked links *inside* the
plan, never the first re-proposal against the block at the checkpoint. A VIEW-CHANGE
now carries the proof of its stable block, and the plan is anchored on it.
"""

from __future__ import annotations

import random

import pytest

from consensus.actions import Broadcast
from consensus.config import ReplicaConfig
from consensus.messages import (
    NewView,
    PrePrepare,
    Proof,
    ViewChange,
    checkpoint_vote_bytes,
    prepare_vote_bytes,
)
from consensus.records import compact
from consensus.replica import Replica
from consensus.signing import FakeSigner, FakeVerifier
from consensus.sim import Scenario, run_scenario
from primitives.block import commit_vote_bytes
from primitives.errors import Code
from primitives.hashing import sha256
from tests.consensus.harness import IDS, Cluster, replica

CHAIN = "test"
ROOT = sha256(b"root after 2")


def _linked(parent: bytes | None, body: bytes) -> bytes:
    return (parent or bytes(32)) + body


def _linked_replica(me: str) -> Replica:
    return Replica(
        ReplicaConfig(CHAIN, IDS, me, checkpoint_interval=2),
        FakeSigner(me),
        FakeVerifier(IDS),
        lambda p: sha256(p) if p else None,
        random.Random(1),
        parent_of=lambda p: p[:32] if len(p) >= 32 else None,
    )


def _proof(kind: str, view: int, h: int, payload: bytes) -> Proof:
    d = sha256(payload)
    signed = prepare_vote_bytes(CHAIN, view, h, d) if kind == "prepare" else commit_vote_bytes(CHAIN, h, view, d)
    return Proof(kind, view, h, d, payload, tuple((s, FakeSigner(s).sign(signed)) for s in ("v0", "v1", "v2")))


def _vc(sender: str, new_view: int, proofs: tuple[Proof, ...]) -> ViewChange:
    votes = tuple((s, FakeSigner(s).sign(checkpoint_vote_bytes(CHAIN, 2, ROOT))) for s in ("v0", "v1", "v2"))
    vc = ViewChange(new_view, 2, ROOT, votes, proofs, sender, b"")
    return ViewChange(new_view, 2, ROOT, votes, proofs, sender, FakeSigner(sender).sign(vc.signed_bytes(CHAIN)))


def _nv(view: int, vcs: tuple[ViewChange, ...], pps: tuple[PrePrepare, ...], sender: str) -> NewView:
    nv = NewView(view, vcs, pps, sender, b"")
    return NewView(view, vcs, pps, sender, FakeSigner(sender).sign(nv.signed_bytes(CHAIN)))


def _pp(view: int, h: int, payload: bytes, sender: str) -> PrePrepare:
    d = sha256(payload)
    return PrePrepare(view, h, d, payload, sender, FakeSigner(sender).sign(prepare_vote_bytes(CHAIN, view, h, d)))


A = _linked(None, b"a")
B = _linked(sha256(A), b"b")  # committed at height 2 in view 1: the stable block
STALE_B = _linked(sha256(A), b"b-view0")  # prepared at height 2 in view 0, committed nowhere
STALE_C = _linked(sha256(STALE_B), b"c-view0")  # prepared at height 3 in view 0 on top of it
GOOD_C = _linked(sha256(B), b"c")


def test_new_view_refuses_a_first_re_proposal_that_does_not_extend_the_stable_block() -> None:
    cert = _proof("commit", 1, 2, B)
    stale = _proof("prepare", 0, 3, STALE_C)
    vcs = (_vc("v1", 2, (cert, stale)), _vc("v2", 2, (cert,)), _vc("v3", 2, (stale,)))
    r = _linked_replica("v3")
    assert [h for h, _, _ in r._plan_new_view(list(vcs))[3]] == []  # noqa: SLF001
    # the NEW-VIEW that re-proposes the stale block is refused; the one that does not is entered
    assert Code.BAD_CERTIFICATE in [x.code for x in r.step(_nv(2, vcs, (_pp(2, 3, STALE_C, "v2"),), "v2")).rejections]
    ready = r.step(_nv(2, vcs, (), "v2"))
    assert ready.rejections == () and r.view == 2 and not r.in_view_change and r.stable_checkpoint == 2


def test_new_view_keeps_a_first_re_proposal_that_extends_the_stable_block() -> None:
    good = _proof("prepare", 0, 3, GOOD_C)
    vcs = (_vc("v1", 2, (_proof("commit", 1, 2, B), good)), _vc("v2", 2, ()), _vc("v3", 2, (good,)))
    assert [h for h, _, _ in _linked_replica("v3")._plan_new_view(list(vcs))[3]] == [3]  # noqa: SLF001


def test_the_stable_blocks_proof_outranks_a_stale_one_at_that_height() -> None:
    # a view-change from below the checkpoint may still carry view 0's stale block 2
    low = ViewChange(2, 0, b"", (), (_proof("prepare", 0, 2, STALE_B), _proof("prepare", 0, 3, STALE_C)), "v3", b"")
    low = ViewChange(2, 0, b"", (), low.proofs, "v3", FakeSigner("v3").sign(low.signed_bytes(CHAIN)))
    vcs = (_vc("v1", 2, (_proof("commit", 1, 2, B),)), _vc("v2", 2, ()), low)
    assert [h for h, _, _ in _linked_replica("v2")._plan_new_view(list(vcs))[3]] == []  # noqa: SLF001


def test_view_change_carries_the_stable_blocks_certificate_across_a_restart() -> None:
    c = Cluster(checkpoint_interval=2, request_timeout=2)
    c.propose(b"x0")
    c.propose(b"x1")
    c.deliver_all()
    assert all(c.reps[i].stable_checkpoint == 2 and c.reps[i].last_committed == 2 for i in IDS)
    for records in (c.records["v1"], compact(c.records["v1"])):
        r = replica("v1", records=records, last_executed=2, checkpoint_interval=2, request_timeout=2)
        vcs = []
        r.expect_progress()
        for _ in range(4):
            vcs += [
                a.message for a in r.tick().actions if isinstance(a, Broadcast) and isinstance(a.message, ViewChange)
            ]
        assert vcs, "no view change started"
        assert vcs[0].proofs, "the view-change does not carry the stable block"
        first = vcs[0].proofs[0]
        assert (vcs[0].stable_height, first.kind, first.height, first.payload) == (2, "commit", 2, b"x1")


@pytest.mark.parametrize(
    ("seed", "crash", "drop", "modes"),
    [
        (340, 2, 0.1, ("equivocate",)),  # the reported counterexample
        (1747, 2, 0.1, ("equivocate",)),
        (959, 0, 0.2, ("equivocate", "conflict")),  # no crash needed
    ],
)
def test_linkage_counterexamples(seed: int, crash: int, drop: float, modes: tuple[str, ...]) -> None:
    s = Scenario(
        nodes=4,
        byzantine=1,
        crash=crash,
        drop=drop,
        duplicate=0.0,
        partition=False,
        seed=seed,
        blocks=12,
        byzantine_modes=modes,
        max_delay_ms=1,
        tick_ms=10,
        fault_ms=3000,
        liveness_ms=60000,
        window=4,
        checkpoint_interval=1,
        request_timeout=30,
        view_change_timeout=30,
    )
    result = run_scenario(s)
    assert result.ok, f"seed {seed}: {result.violation}\n" + "\n".join(result.trace[-30:])
