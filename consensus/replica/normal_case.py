"""The normal case: ordering blocks in a settled view (PRE-PREPARE, PREPARE, COMMIT).

The primary proposes at most `window` heights above the last committed one; a
backup accepts a proposal only in the current view, inside the watermarks, above
the view's floor, and (with the node's `validate` / `parent_of`) only if it
extends the block this replica holds below it — a proposal whose parent has not
arrived is held until it does. 2f+1 matching PREPAREs make a prepared proof;
COMMIT for height h is sent only once every height between the last committed one
and h is prepared in this view (see `NormalCase.send_commits`); 2f+1 COMMITs make
the block's `Commit` certificate, and committed heights are handed to the driver
strictly in order. Everything a replica signs here is first written to its log
(`sign_vote`), so it never signs two blocks for one (view, height).

Each height is judged by the validator set governing it (`consensus.membership`):
its primary, the senders counted, the quorum. A proposal above an epoch boundary
waits until the checkpoint at that boundary is stable here; a replica that is not a
member at a height accepts and counts but signs nothing there, so it follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.membership import Epoch
from consensus.messages import Checkpoint, CommitVote, Prepare, PrePrepare, Proof
from consensus.records import ProofRecord, VoteRecord
from consensus.replica.catch_up import CatchUp
from consensus.replica.context import Context
from primitives.block import Commit
from primitives.errors import Code

_Key = tuple[int, int, bytes]  # (view, height, digest)


@dataclass(eq=False)
class NormalCase:
    """The log of proposals, votes and proofs between the stable checkpoint and the high watermark."""

    ctx: Context = field(repr=False)
    catch_up: CatchUp = field(repr=False)
    progressed: Callable[[], None] = field(repr=False)
    """Called for each height committed: the view-change and fetch timers start afresh."""

    floor: int = 0
    """Heights at or below come only from NEW-VIEW in this view."""
    next_height: int = 1
    pp: dict[int, PrePrepare] = field(default_factory=dict)
    future_pp: dict[tuple[int, int], PrePrepare] = field(default_factory=dict)
    """Verified pre-prepares of a view not entered yet, by (view, height)."""
    waiting_pp: dict[int, PrePrepare] = field(default_factory=dict)
    """Proposals whose parent proposal has not arrived."""
    payloads: dict[bytes, bytes] = field(default_factory=dict)
    prep_votes: dict[_Key, dict[str, bytes]] = field(default_factory=dict)
    commit_votes: dict[_Key, dict[str, bytes]] = field(default_factory=dict)
    seen: dict[tuple[str, int, int, str], bytes] = field(default_factory=dict)
    """(kind, view, height, sender) -> digest of every peer vote counted."""
    proofs: dict[int, Proof] = field(default_factory=dict)
    stable_proof: Proof | None = None
    """The proof of the block at the stable checkpoint, if we hold one: VIEW-CHANGE carries it
    so that NEW-VIEW can check its first re-proposal extends that block."""
    my_votes: dict[tuple[str, int, int], bytes] = field(default_factory=dict)
    """(kind, view, height) -> digest of every vote this replica signed (also in its log)."""
    decided: dict[int, tuple[bytes, Commit]] = field(default_factory=dict)
    """Certified heights not yet handed to the driver (a gap below them)."""
    last_cert: Commit | None = None

    # ------------------------------------------------------------------ queries

    @property
    def can_propose(self) -> bool:
        """True when this replica is the primary, in a settled view, with room in the window."""
        ctx, h = self.ctx, self.next_height
        return (
            self._primary_of_next()
            and not ctx.in_view_change
            and h <= ctx.last_committed + ctx.config.window
            and h <= ctx.stable_height + ctx.config.high_span
            and ctx.started(h)
        )

    def _primary_of_next(self) -> bool:
        """This replica is the current view's primary in the set governing the next height."""
        ep = self.ctx.epoch(self.next_height)
        return ep is not None and ep.primary_of(self.ctx.view) == self.ctx.me

    def busy(self) -> bool:
        """Proposals or certified blocks above the last committed height are waiting."""
        return any(h > self.ctx.last_committed for h in self.pp) or bool(self.decided)

    def digest_at(self, height: int) -> bytes | None:
        """The digest this replica holds at `height`: committed, else proposed in this
        view, else its best proof; None if it knows none (e.g. below its log)."""
        committed = self._committed_digest(height)
        if committed is not None:
            return committed
        pp = self.pp.get(height)
        if pp is not None:
            return pp.digest
        proof = self.proofs.get(height)
        return proof.digest if proof is not None else None

    def in_flight_payloads(self) -> list[bytes]:
        """Payloads accepted or proven above the last committed height."""
        top = self.ctx.last_committed
        out = [pp.payload for h, pp in sorted(self.pp.items()) if h > top]
        out += [p.payload for h, p in sorted(self.proofs.items()) if h > top]
        return out

    def proofs_in_window(self) -> tuple[Proof, ...]:
        """The proofs a VIEW-CHANGE carries, in height order: the stable block's, then those above."""
        above = tuple(self.proofs[h] for h in sorted(self.proofs) if self.ctx.in_window(h))
        return above if self.stable_proof is None else (self.stable_proof,) + above

    def _stable_proof_at(self, h: int) -> Proof | None:
        """The proof to keep for a new stable height h: a commit certificate, or any proof of a
        block we have committed (then it names that block)."""
        p = self.proofs.get(h)
        if p is None or h == 0 or not (p.kind == "commit" or h <= self.ctx.last_committed):
            return None
        return p

    def _committed_digest(self, h: int) -> bytes | None:
        if h in self.decided:
            return self.decided[h][1].block_hash
        if self.last_cert is not None and self.last_cert.height == h:
            return self.last_cert.block_hash
        proof = self.proofs.get(h)
        if proof is not None and proof.kind == "commit":
            return proof.digest
        return None

    def _parent_digest(self, h: int) -> tuple[bool, bytes | None]:
        """(known, digest) of the block at height h for validating its child: a committed
        block or this view's proposal. (True, None): h is committed and handed to the
        node (or is genesis), so the node checks the parent against its own store.
        Unknown (False): hold the child until the parent is proposed or fetched."""
        if h <= 0:
            return True, None
        committed = self._committed_digest(h)
        if committed is not None:
            return True, committed
        pp = self.pp.get(h)
        if pp is not None and pp.view == self.ctx.view:
            return True, pp.digest
        if h <= self.ctx.last_committed:
            return True, None
        return False, None

    # ------------------------------------------------------------------ signing

    def sign_vote(self, kind: str, view: int, h: int, digest: bytes) -> bytes:
        """Sign a PREPARE or COMMIT vote, recording it first; refuses (AssertionError) to sign
        a second digest for one (kind, view, height) — the invariant the log protects."""
        key = (kind, view, h)
        old = self.my_votes.get(key)
        assert old is None or old == digest, "refusing to sign two blocks for one view and height"
        if old is None:
            self.ctx.persist(VoteRecord(kind, view, h, digest))
        self.my_votes[key] = digest
        return self.ctx.signer.sign(self.ctx.vote_bytes(kind, view, h, digest))

    def signed_preprepare(self, view: int, h: int, digest: bytes, payload: bytes) -> PrePrepare:
        """Our proposal of `payload` at (view, h); it is also our PREPARE vote."""
        return PrePrepare(view, h, digest, payload, self.ctx.me, self.sign_vote("prepare", view, h, digest))

    # ------------------------------------------------------------------ pre-prepare

    def propose(self, payload: bytes) -> None:
        ctx = self.ctx
        if not self._primary_of_next() or ctx.in_view_change:
            return ctx.reject(Code.NOT_PRIMARY, "not the primary of a settled view")
        if not ctx.started(self.next_height):
            return ctx.reject(Code.OUT_OF_WINDOW, "the checkpoint handing over to this validator set is not stable yet")
        if not self.can_propose:
            return ctx.reject(Code.OUT_OF_WINDOW, "window full")
        digest = ctx.digest_of(payload)
        if digest is None:
            return ctx.reject(Code.BAD_BLOCK, "payload has no digest")
        h = self.next_height
        if ("prepare", ctx.view, h) in self.my_votes:  # restarted mid-view: skip used height
            self.next_height = max(self.next_height, h + 1)
            return
        pp = self.signed_preprepare(ctx.view, h, digest, payload)
        ctx.broadcast(pp)
        self.next_height = h + 1
        self._install_pp(pp)

    def on_preprepare(self, m: PrePrepare) -> None:
        ctx = self.ctx
        ep = ctx.epoch(m.height)
        early = m.view > ctx.view or (m.view == ctx.view and ctx.in_view_change)
        if early and self._keep_early(m, ep):
            return
        if early or m.view != ctx.view:
            return ctx.reject(Code.WRONG_VIEW, f"pre-prepare for view {m.view}")
        if ep is None:
            return ctx.reject(Code.OUT_OF_WINDOW, f"height {m.height} is beyond the validator schedule known here")
        if m.sender != ep.primary_of(m.view):
            return ctx.reject(Code.NOT_PRIMARY, f"{m.sender} is not the primary of view {m.view}")
        if not ctx.in_window(m.height) or m.height <= ctx.last_committed or m.height <= self.floor:
            return ctx.reject(Code.OUT_OF_WINDOW, f"height {m.height} outside the window")
        old = self.pp.get(m.height)
        if old is not None:
            if old.digest == m.digest:
                return ctx.reject(Code.DUPLICATE, "pre-prepare already accepted")
            return ctx.reject(Code.EQUIVOCATION, f"second pre-prepare at view {m.view} height {m.height}")
        if not ctx.signed_by_sender(m):
            return ctx.reject(Code.BAD_SIGNATURE, "pre-prepare signature")
        if ctx.digest_of(m.payload) != m.digest:
            return ctx.reject(Code.BAD_BLOCK, "payload does not match digest")
        if self._must_wait(m.height):
            if len(self.waiting_pp) < ctx.config.window * 2:
                self.waiting_pp[m.height] = m  # judged again once its parent arrives or its epoch starts
            return
        if self._checks_parent():
            _, parent = self._parent_digest(m.height - 1)
            if not self._fits_parent(m, parent):
                return
        self._accept_pp(m)

    def _checks_parent(self) -> bool:
        return self.ctx.validate is not None or self.ctx.parent_of is not None

    def _must_wait(self, h: int) -> bool:
        """A verified proposal at h is held: its epoch has not started here (the checkpoint
        below it is not stable yet), or the node checks parents and h-1 is unknown."""
        if not self.ctx.started(h):
            return True
        return self._checks_parent() and not self._parent_digest(h - 1)[0]

    def _keep_early(self, m: PrePrepare, ep: Epoch | None) -> bool:
        """Keep a few verified pre-prepares of a view we have not entered yet."""
        ctx = self.ctx
        if (
            ep is not None
            and m.sender == ep.primary_of(m.view)
            and ctx.in_window(m.height)
            and m.view <= ctx.view + ep.n
            and len(self.future_pp) < 4 * ctx.config.high_span
            and ctx.signed_by_sender(m)
        ):
            self.future_pp[(m.view, m.height)] = m
            return True
        return False

    def _fits_parent(self, m: PrePrepare, parent: bytes | None) -> bool:
        """The node's checks: the proposal extends our block below it and is valid."""
        ctx = self.ctx
        if ctx.parent_of is not None and parent is not None and ctx.parent_of(m.payload) != parent:
            ctx.reject(Code.BAD_BLOCK, f"proposal at height {m.height} does not extend our block {m.height - 1}")
            return False
        if ctx.validate is not None and not ctx.validate(m.height, m.payload, parent):
            ctx.reject(Code.BAD_BLOCK, f"proposal at height {m.height} refused by the node's validity check")
            return False
        return True

    def _accept_pp(self, m: PrePrepare) -> None:
        """Install a valid pre-prepare and, unless we sent it, sign and send our PREPARE."""
        ctx = self.ctx
        mine = self.my_votes.get(("prepare", m.view, m.height))
        if mine is not None and mine != m.digest:
            return ctx.reject(Code.EQUIVOCATION, f"already prepared another block at {m.view}/{m.height}")
        if m.sender != ctx.me and mine is None and ctx.member_at(m.height):
            sig = self.sign_vote("prepare", m.view, m.height, m.digest)
            ctx.broadcast(Prepare(m.view, m.height, m.digest, ctx.me, sig))
            self.prep_votes.setdefault((m.view, m.height, m.digest), {})[ctx.me] = sig
        self._install_pp(m)

    def _install_pp(self, m: PrePrepare) -> None:
        self.pp[m.height] = m
        self.payloads[m.digest] = m.payload
        self.prep_votes.setdefault((m.view, m.height, m.digest), {})[m.sender] = m.sig
        self._check_prepared(m.view, m.height, m.digest)
        self._check_committed(m.view, m.height, m.digest)
        self.release_waiting()

    def release_waiting(self) -> None:
        """Re-examine held proposals whose parent is now known (or whose epoch started)."""
        for h in sorted(self.waiting_pp):
            if h in self.waiting_pp and not self._must_wait(h):
                self.on_preprepare(self.waiting_pp.pop(h))

    # ------------------------------------------------------------------ prepare and commit

    def _first_vote(self, kind: str, m: Prepare | CommitVote) -> bool:
        """One vote per sender, kind, view and height: a repeat is a duplicate, a vote for
        another digest is equivocation (and is not stored, which bounds memory); then the
        signature must hold."""
        ctx = self.ctx
        old = self.seen.get((kind, m.view, m.height, m.sender))
        if old is not None:
            if old == m.digest:
                ctx.reject(Code.DUPLICATE, f"{kind} already counted")
            else:
                ctx.reject(Code.EQUIVOCATION, f"{m.sender} voted twice at {m.view}/{m.height}")
            return False
        if not ctx.signed_by_sender(m):
            ctx.reject(Code.BAD_SIGNATURE, f"{kind} signature")
            return False
        return True

    def _count(self, kind: str, m: Prepare | CommitVote, votes: dict[_Key, dict[str, bytes]]) -> None:
        self.seen[(kind, m.view, m.height, m.sender)] = m.digest
        votes.setdefault((m.view, m.height, m.digest), {})[m.sender] = m.sig

    def on_prepare(self, m: Prepare) -> None:
        ctx = self.ctx
        ep = ctx.epoch(m.height)
        if ep is None:
            return ctx.reject(Code.OUT_OF_WINDOW, f"height {m.height} is beyond the validator schedule known here")
        if m.sender not in ep.members:
            return ctx.reject(Code.UNKNOWN_SENDER, f"{m.sender!r} is not a validator at height {m.height}")
        if m.view < ctx.view or m.view > ctx.view + ep.n:
            return ctx.reject(Code.WRONG_VIEW, f"prepare for view {m.view}")
        if not ctx.in_window(m.height) or m.height <= ctx.last_committed:
            return ctx.reject(Code.OUT_OF_WINDOW, f"height {m.height} outside the window")
        if not self._first_vote("prepare", m):
            return
        self._count("prepare", m, self.prep_votes)  # kept even for a view we are still entering
        if m.view == ctx.view and not ctx.in_view_change:
            self._check_prepared(m.view, m.height, m.digest)

    def _check_prepared(self, view: int, h: int, digest: bytes) -> None:
        pp = self.pp.get(h)
        if pp is None or pp.view != view or pp.digest != digest:
            return
        votes = self.prep_votes.get((view, h, digest), {})
        ep = self.ctx.epoch(h)
        if ep is None or len(votes) < ep.quorum:
            return
        old = self.proofs.get(h)
        if old is None or old.view < view:
            self._keep_proof(Proof("prepare", view, h, digest, pp.payload, tuple(sorted(votes.items()))))
        self.send_commits()

    def _keep_proof(self, proof: Proof) -> None:
        self.proofs[proof.height] = proof
        self.ctx.persist(ProofRecord(proof))

    def _prepared_here(self, h: int) -> PrePrepare | None:
        """This view's proposal at h if this view also holds its prepared proof."""
        pp, proof = self.pp.get(h), self.proofs.get(h)
        view = self.ctx.view
        if pp is not None and proof is not None and pp.view == view and proof.view == view:
            return pp if proof.digest == pp.digest else None
        return None

    def send_commits(self) -> None:
        """Send COMMIT for each height prepared in this view, walking up from the last
        committed height and stopping at the first height that is neither prepared in
        this view nor committed. So a committed height always sits on heights that were
        prepared in its own view (or committed) by a quorum: NEW-VIEW keeps them all,
        and the parent a block was validated against is the one that gets committed."""
        ctx = self.ctx
        if ctx.in_view_change:
            return
        h = max(ctx.stable_height, ctx.last_committed) + 1
        while True:
            pp = self._prepared_here(h)
            if pp is None:
                if h in self.decided:
                    h += 1
                    continue
                return
            view = ctx.view
            if ("commit", view, h) not in self.my_votes and ctx.member_at(h):
                sig = self.sign_vote("commit", view, h, pp.digest)
                ctx.broadcast(CommitVote(view, h, pp.digest, ctx.me, sig))
                self.commit_votes.setdefault((view, h, pp.digest), {})[ctx.me] = sig
                self._check_committed(view, h, pp.digest)
            h += 1

    def on_commit(self, m: CommitVote) -> None:
        ctx = self.ctx
        ep = ctx.epoch(m.height)
        if ep is None:
            return self.note_beyond(m)
        if m.sender not in ep.members:
            return ctx.reject(Code.UNKNOWN_SENDER, f"{m.sender!r} is not a validator at height {m.height}")
        if m.view > ctx.view + ep.n:
            return ctx.reject(Code.WRONG_VIEW, f"commit for view {m.view}")
        if not self._first_vote("commit", m):
            return
        self.catch_up.note_height(m.sender, m.height)
        if m.height <= ctx.last_committed or m.height in self.decided:
            return
        if not ctx.in_window(m.height):
            return ctx.reject(Code.OUT_OF_WINDOW, f"height {m.height} outside the window")
        self._count("commit", m, self.commit_votes)
        self._check_committed(m.view, m.height, m.digest)

    def note_beyond(self, m: CommitVote | Checkpoint) -> None:
        """A COMMIT or CHECKPOINT for a height whose validator set this replica cannot know
        yet: not counted, but a validly signed one still shows how far its sender got."""
        ctx = self.ctx
        if ctx.signed_by_sender(m):
            self.catch_up.note_beyond(m.sender, m.height)
        ctx.reject(Code.OUT_OF_WINDOW, f"height {m.height} is beyond the validator schedule known here")

    def _check_committed(self, view: int, h: int, digest: bytes) -> None:
        if h <= self.ctx.last_committed or h in self.decided:
            return
        votes = self.commit_votes.get((view, h, digest), {})
        payload = self.payloads.get(digest)
        ep = self.ctx.epoch(h)
        if ep is None or len(votes) < ep.quorum or payload is None:
            return
        cert = Commit(self.ctx.config.chain_id, h, view, digest, tuple(sorted(votes.items())))
        self._decide(h, payload, cert)

    def commit_certified(self, payload: bytes, certificate: Commit) -> None:
        """A block fetched from a peer: committed if its certificate carries 2f+1 valid
        validator signatures over the payload's digest."""
        ctx, h, digest = self.ctx, certificate.height, certificate.block_hash
        if certificate.chain_id != ctx.config.chain_id:
            ctx.reject(Code.WRONG_CHAIN, "certificate of another chain")
        elif h <= ctx.last_committed or h in self.decided:
            ctx.reject(Code.DUPLICATE, f"height {h} already committed")
        elif ctx.digest_of(payload) != digest:
            ctx.reject(Code.BAD_BLOCK, f"payload does not match certificate of height {h}")
        elif (ep := ctx.epoch(h)) is None:
            ctx.reject(Code.OUT_OF_WINDOW, f"height {h} is beyond the validator schedule known here")
        elif not ctx.quorum_signed(certificate.votes, ctx.vote_bytes("commit", certificate.view, h, digest), h):
            ctx.reject(Code.BAD_CERTIFICATE, f"certificate of height {h} lacks {ep.quorum} valid signatures")
        else:
            self.payloads[digest] = payload
            self._decide(h, payload, certificate)

    def _decide(self, h: int, payload: bytes, cert: Commit) -> None:
        ctx = self.ctx
        self.decided[h] = (payload, cert)
        if self.last_cert is None or h > self.last_cert.height:
            self.last_cert = cert
        if h > ctx.stable_height:
            self._keep_proof(Proof("commit", cert.view, h, cert.block_hash, payload, cert.votes))
        elif h == ctx.stable_height:  # the stable block itself, fetched: it anchors NEW-VIEW
            self.stable_proof = Proof("commit", cert.view, h, cert.block_hash, payload, cert.votes)
            ctx.persist(ProofRecord(self.stable_proof))
        while ctx.last_committed + 1 in self.decided:
            k = ctx.last_committed + 1
            p, c = self.decided.pop(k)
            ctx.execute(k, p, c)
            ctx.last_committed = k
            self.progressed()
        for k in [k for k in self.pp if k <= ctx.last_committed]:
            del self.pp[k]
        if self.waiting_pp:
            self.release_waiting()
        if self.next_height <= ctx.last_committed and ctx.is_primary:
            self.next_height = ctx.last_committed + 1
        self.send_commits()

    # ------------------------------------------------------------------ views, checkpoints, restart

    def leave_view(self, new_view: int) -> None:
        """A view change to `new_view` starts: this view's proposals are void."""
        self.waiting_pp = {}
        self.pp = {}
        self.prep_votes = {k: v for k, v in self.prep_votes.items() if k[0] >= new_view}

    def enter_view(self, view: int, floor: int) -> None:
        """A NEW-VIEW for `view` is accepted: heights up to `floor` come only from it."""
        self.floor = floor
        self.leave_view(view)

    def adopt_new_view(self, pre_prepares: tuple[PrePrepare, ...]) -> None:
        """Take the NEW-VIEW's re-proposals, then the early pre-prepares kept for this view."""
        ctx = self.ctx
        for pp in pre_prepares:
            if pp.height > ctx.last_committed and pp.height > ctx.stable_height:
                if pp.sender == ctx.me:
                    self._install_pp(pp)
                else:
                    self._accept_pp(pp)
        self.next_height = max(self.floor, ctx.last_committed) + 1
        w = ctx.view
        for (v, _), pp in sorted(self.future_pp.items()):
            if v == w:
                self.on_preprepare(pp)
        self.future_pp = {k: v for k, v in self.future_pp.items() if k[0] > w}
        self.send_commits()

    def truncate(self, h: int) -> None:
        """Height h is stable: forget everything at or below it."""
        self.pp = {k: v for k, v in self.pp.items() if k > h}
        self.stable_proof = self._stable_proof_at(h)
        self.proofs = {k: v for k, v in self.proofs.items() if k > h}
        self.prep_votes = {k: v for k, v in self.prep_votes.items() if k[1] > h}
        self.commit_votes = {k: v for k, v in self.commit_votes.items() if k[1] > h}
        self.seen = {k: v for k, v in self.seen.items() if k[2] > h}
        self.future_pp = {k: v for k, v in self.future_pp.items() if k[1] > h}
        keep = {p.digest for p in self.pp.values()} | {p.digest for p in self.proofs.values()}
        keep |= {c.block_hash for _, c in self.decided.values()}
        self.payloads = {d: p for d, p in self.payloads.items() if d in keep}

    def restore(self, record: VoteRecord | ProofRecord) -> None:
        """Replay one record of this replica's log."""
        if isinstance(record, VoteRecord):
            self.my_votes[(record.kind, record.view, record.height)] = record.digest
            return
        p = record.proof
        old = self.proofs.get(p.height)
        if old is None or old.view <= p.view:
            self.proofs[p.height] = p

    def restart(self, floor: int) -> None:
        """After the log is replayed (and the view known): keep proofs above the stable
        checkpoint with their payloads, and never propose at a height already used."""
        ctx = self.ctx
        self.stable_proof = self._stable_proof_at(ctx.stable_height)
        self.proofs = {h: p for h, p in self.proofs.items() if h > ctx.stable_height}
        self.payloads = {p.digest: p.payload for p in self.proofs.values()}
        self.floor = floor
        used = [h for (kind, v, h) in self.my_votes if kind == "prepare" and v == ctx.view]
        self.next_height = max([self.floor, ctx.last_committed] + used) + 1
