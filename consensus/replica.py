"""One PBFT replica (Castro–Liskov, one block per height) as a pure state machine.

Inputs: `step(message)`, `tick()`, `propose(payload)`, `on_executed(height, root)`,
`on_fetched(payload, certificate)`, `expect_progress()`. Each returns one
`Ready` whose actions the driver performs in order (see `consensus.actions`).
Nothing here reads a clock, touches a socket or a disk, or draws randomness
other than from the injected `Rng` — so the simulator runs this very
code under every fault and replays a failure from its seed.

Protocol notes beyond the textbook:
- A replica sends COMMIT for height h only once every height between its last
  committed one and h is prepared in the same view. Then any committed height is
  backed, in every quorum of VIEW-CHANGEs, by a contiguous run of proofs, and
  NEW-VIEW re-proposes exactly the contiguous prefix above the highest stable
  checkpoint — no null blocks are needed ("no empty blocks") — and a committed
  block's parent (which the node's `validate` checked) is the block committed
  below it.
- PRE-PREPARE signs the same bytes as PREPARE, so the primary's proposal is its
  prepare vote; COMMIT signs `primitives.block.commit_vote_bytes`, so 2f+1 of
  them are the block's `primitives.block.Commit` certificate.
- A replica that sees f+1 peers committing above it (or a stable checkpoint,
  or a NEW-VIEW whose checkpoint is above it) and makes no progress asks its
  driver to fetch certified blocks; it accepts only blocks whose certificate
  verifies against the validator set.
- A replica that receives a VIEW-CHANGE for a view it has already entered
  answers with that view's NEW-VIEW, so a replica that missed it rejoins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from consensus.actions import Action, Broadcast, Execute, FetchBlocks, Persist, Ready, Send
from consensus.config import ReplicaConfig
from consensus.messages import (
    Checkpoint,
    CommitVote,
    Message,
    NewView,
    Prepare,
    PrePrepare,
    Proof,
    ViewChange,
    Votes,
    checkpoint_vote_bytes,
    commit_bytes,
    prepare_vote_bytes,
)
from consensus.records import (
    ProofRecord,
    Record,
    StableRecord,
    ViewChangeRecord,
    ViewRecord,
    VoteRecord,
    decode_record,
    encode_record,
)
from consensus.signing import Signer, Verifier
from consensus.types import Rejection
from primitives.block import Commit
from primitives.errors import Code
from primitives.seeded import Rng

DigestFn = Callable[[bytes], "bytes | None"]
ParentFn = Callable[[bytes], "bytes | None"]
"""The digest of the block a payload extends (a header's prev_hash); pure."""
ValidateFn = Callable[[int, bytes, "bytes | None"], bool]
"""(height, payload, digest of the block this replica holds at height-1 or None) -> acceptable?"""
_Key = tuple[int, int, bytes]  # (view, height, digest)


class Replica:
    """A PBFT replica. Construct it fresh, or with `records` (its write-ahead log)
    and `last_executed` (the height its block store holds) after a restart.

    `digest_of(payload)` names a payload (None: undecodable, refused). The optional
    `validate(height, payload, parent_digest)` is the node's validity check of a
    fresh proposal (header height, link to the parent, block time); a refused
    proposal is not prepared. Re-proposals in a NEW-VIEW are not re-validated:
    they may already be committed somewhere. With `parent_of(payload)` (the digest
    the payload extends, e.g. header.prev_hash) the replica itself refuses fresh
    proposals that do not extend its block at height-1, and NEW-VIEW re-proposes
    only a linked prefix — safe, because a committed block's parent is always the
    block chosen below it (see `_send_commits`)."""

    def __init__(
        self,
        config: ReplicaConfig,
        signer: Signer,
        verifier: Verifier,
        digest_of: DigestFn,
        rng: Rng,
        *,
        records: Iterable[bytes] = (),
        last_executed: int = 0,
        validate: ValidateFn | None = None,
        parent_of: ParentFn | None = None,
    ) -> None:
        self.config = config
        self._me = config.node_id
        self._signer = signer
        self._verifier = verifier
        self._digest_of = digest_of
        self._validate = validate
        self._parent_of = parent_of
        self._rng = rng
        self._q = config.quorum
        self._f = config.f
        self._validators = frozenset(config.validators)

        self._view = 0
        self._in_vc = False
        self._attempt = 0
        self._floor = 0  # heights at or below come only from NEW-VIEW in this view
        self._next_height = 1

        self._low = 0
        self._low_root = b""
        self._low_votes: Votes = ()
        self._last_committed = last_executed
        self._last_executed = last_executed

        self._pp: dict[int, PrePrepare] = {}
        self._future_pp: dict[tuple[int, int], PrePrepare] = {}
        self._waiting_pp: dict[int, PrePrepare] = {}  # proposals whose parent proposal has not arrived
        self._payloads: dict[bytes, bytes] = {}
        self._prep_votes: dict[_Key, dict[str, bytes]] = {}
        self._commit_votes: dict[_Key, dict[str, bytes]] = {}
        self._seen: dict[tuple[str, int, int, str], bytes] = {}  # (kind, view, height, sender) -> digest
        self._proofs: dict[int, Proof] = {}
        self._my_votes: dict[tuple[str, int, int], bytes] = {}
        self._decided: dict[int, tuple[bytes, Commit]] = {}
        self._checkpoints: dict[tuple[int, bytes], dict[str, bytes]] = {}
        self._my_checkpoint: Checkpoint | None = None
        self._last_cert: Commit | None = None
        self._vcs: dict[int, dict[str, ViewChange]] = {}
        self._my_vc: ViewChange | None = None
        self._nv: NewView | None = None
        self._replied: dict[tuple[str, int, str], int] = {}  # (peer, view, kind) -> tick of last answer
        self._ticks = 0

        self._pending = False
        self._idle = 0
        self._vc_wait: int | None = None
        self._resend = 0
        self._no_progress = 0
        self._peer_heights: dict[str, int] = {}
        self._fetch_target = 0
        self._fetch_wait = 0
        self._restored_vc = False

        self._persist: list[Action] = []
        self._send: list[Action] = []
        self._exec: list[Action] = []
        self._fetch: list[Action] = []
        self._rej: list[Rejection] = []

        self._restore(records)

    # ------------------------------------------------------------------ properties

    @property
    def view(self) -> int:
        return self._view

    @property
    def primary_id(self) -> str:
        return self.config.primary_of(self._view)

    @property
    def is_primary(self) -> bool:
        return self.primary_id == self._me

    @property
    def in_view_change(self) -> bool:
        return self._in_vc

    @property
    def last_committed(self) -> int:
        """Highest height handed to the driver with `Execute` (all below it too)."""
        return self._last_committed

    @property
    def last_executed(self) -> int:
        return self._last_executed

    @property
    def stable_checkpoint(self) -> int:
        """The low watermark: height of the last stable checkpoint."""
        return self._low

    @property
    def can_propose(self) -> bool:
        """True when this replica is the primary, in a settled view, with room in the window."""
        h = self._next_height
        return (
            self.is_primary
            and not self._in_vc
            and h <= self._last_committed + self.config.window
            and h <= self._low + self.config.high_span
        )

    @property
    def next_height(self) -> int:
        """The height the next `propose` will use (the node builds its block for it)."""
        return self._next_height

    def digest_at(self, height: int) -> bytes | None:
        """The digest this replica holds at `height`: committed, else proposed in this
        view, else its best proof; None if it knows none (e.g. below its log)."""
        if height in self._decided:
            return self._decided[height][1].block_hash
        if self._last_cert is not None and self._last_cert.height == height:
            return self._last_cert.block_hash
        proof = self._proofs.get(height)
        if proof is not None and proof.kind == "commit":
            return proof.digest
        pp = self._pp.get(height)
        if pp is not None:
            return pp.digest
        return proof.digest if proof is not None else None

    def in_flight_payloads(self) -> list[bytes]:
        """Payloads accepted or proven above the last committed height (the driver skips
        re-proposing what they carry)."""
        out = [pp.payload for h, pp in sorted(self._pp.items()) if h > self._last_committed]
        out += [p.payload for h, p in sorted(self._proofs.items()) if h > self._last_committed]
        return out

    # ------------------------------------------------------------------ inputs

    def propose(self, payload: bytes) -> Ready:
        """As primary, order `payload` at the next height. Refused (no action) when not
        the primary, in a view change, the window is full or the payload is undecodable."""
        if not self.is_primary or self._in_vc:
            self._reject(Code.NOT_PRIMARY, "not the primary of a settled view")
            return self._flush()
        if not self.can_propose:
            self._reject(Code.OUT_OF_WINDOW, "window full")
            return self._flush()
        digest = self._digest_of(payload)
        if digest is None:
            self._reject(Code.BAD_BLOCK, "payload has no digest")
            return self._flush()
        h = self._next_height
        if ("prepare", self._view, h) in self._my_votes:  # restarted mid-view: skip used height
            self._next_height = max(self._next_height, h + 1)
            return self._flush()
        sig = self._sign_vote(
            "prepare", self._view, h, digest, prepare_vote_bytes(self.config.chain_id, self._view, h, digest)
        )
        pp = PrePrepare(self._view, h, digest, payload, self._me, sig)
        self._send.append(Broadcast(pp))
        self._next_height = h + 1
        self._install_pp(pp)
        return self._flush()

    def expect_progress(self) -> Ready:
        """The driver has client work waiting: start the request timer if it is not running."""
        self._pending = True
        return self._flush()

    def step(self, msg: Message) -> Ready:
        """Handle one message from a peer. Invalid input changes nothing and is listed in
        `Ready.rejections` with its code."""
        if msg.sender not in self._validators:
            self._reject(Code.UNKNOWN_SENDER, f"{msg.sender!r} is not a validator")
        elif msg.sender == self._me:
            self._reject(Code.DUPLICATE, "message from ourselves")
        elif isinstance(msg, PrePrepare):
            self._on_preprepare(msg)
        elif isinstance(msg, Prepare):
            self._on_prepare(msg)
        elif isinstance(msg, CommitVote):
            self._on_commit(msg)
        elif isinstance(msg, Checkpoint):
            self._on_checkpoint(msg)
        elif isinstance(msg, ViewChange):
            self._on_view_change(msg)
        elif isinstance(msg, NewView):
            self._on_new_view(msg)
        else:  # pragma: no cover - the Message union is closed
            self._reject(Code.MALFORMED, "unknown message")
        return self._flush()

    def tick(self) -> Ready:
        """Advance time by one tick: request, view-change, re-send and fetch timers."""
        cfg = self.config
        self._ticks += 1
        if self._restored_vc:
            self._restored_vc = False
            self._start_view_change(self._view, restore=True)
        if not self._in_vc:
            busy = self._pending or any(h > self._last_committed for h in self._pp) or bool(self._decided)
            self._idle = self._idle + 1 if busy else 0
            if self._idle >= cfg.request_timeout << min(self._attempt, cfg.max_backoff_exponent):
                self._start_view_change(self._view + 1)
        else:
            self._resend += 1
            if self._resend >= cfg.resend_interval and self._my_vc is not None:
                self._resend = 0
                self._send.append(Broadcast(self._my_vc))
            if self._vc_wait is not None:
                self._vc_wait += 1
                if self._vc_wait >= cfg.view_change_timeout << min(max(0, self._attempt - 1), cfg.max_backoff_exponent):
                    self._start_view_change(self._view + 1)
        if not self._in_vc:
            self._resend += 1
            if self._resend >= cfg.resend_interval:
                self._resend = 0
                if self._my_checkpoint is not None and self._my_checkpoint.height > self._low:
                    self._send.append(Broadcast(self._my_checkpoint))
        self._no_progress += 1
        target = self._peer_target()
        if target > self._last_committed and self._no_progress >= cfg.fetch_after:
            self._request_fetch(target)
        if self._fetch_wait > 0:
            self._fetch_wait -= 1
        return self._flush()

    def on_executed(self, height: int, state_root: bytes) -> Ready:
        """The driver executed `height`; at checkpoint heights this signs a CHECKPOINT."""
        self._last_executed = max(self._last_executed, height)
        if height % self.config.checkpoint_interval == 0 and height > self._low:
            sig = self._signer.sign(checkpoint_vote_bytes(self.config.chain_id, height, state_root))
            cp = Checkpoint(height, state_root, self._me, sig)
            self._my_checkpoint = cp
            self._send.append(Broadcast(cp))
            self._checkpoints.setdefault((height, state_root), {})[self._me] = sig
            self._check_stable(height, state_root)
        return self._flush()

    def on_fetched(self, payload: bytes, certificate: Commit) -> Ready:
        """A block fetched from a peer, with its commit certificate. Accepted only if the
        certificate carries 2f+1 valid validator signatures over the payload's digest."""
        h = certificate.height
        if certificate.chain_id != self.config.chain_id:
            self._reject(Code.WRONG_CHAIN, "certificate of another chain")
        elif h <= self._last_committed or h in self._decided:
            self._reject(Code.DUPLICATE, f"height {h} already committed")
        elif self._digest_of(payload) != certificate.block_hash:
            self._reject(Code.BAD_BLOCK, f"payload does not match certificate of height {h}")
        elif not self._quorum_signed(
            certificate.votes, commit_bytes(self.config.chain_id, certificate.view, h, certificate.block_hash)
        ):
            self._reject(Code.BAD_CERTIFICATE, f"certificate of height {h} lacks {self._q} valid signatures")
        else:
            self._payloads[certificate.block_hash] = payload
            self._decide(h, payload, certificate)
        return self._flush()

    # ------------------------------------------------------------------ normal case

    def _on_preprepare(self, m: PrePrepare) -> None:
        if m.view > self._view or (m.view == self._view and self._in_vc):
            # Early pre-prepare of a view we have not entered yet: keep a few, verified.
            if (
                m.sender == self.config.primary_of(m.view)
                and self._in_window(m.height)
                and m.view <= self._view + self.config.n
                and len(self._future_pp) < 4 * self.config.high_span
                and self._verifier.verify(m.sender, m.signed_bytes(self.config.chain_id), m.sig)
            ):
                self._future_pp[(m.view, m.height)] = m
                return
            return self._reject(Code.WRONG_VIEW, f"pre-prepare for view {m.view}")
        if m.view != self._view or self._in_vc:
            return self._reject(Code.WRONG_VIEW, f"pre-prepare for view {m.view}")
        if m.sender != self.primary_id:
            return self._reject(Code.NOT_PRIMARY, f"{m.sender} is not the primary of view {m.view}")
        if not self._in_window(m.height) or m.height <= self._last_committed or m.height <= self._floor:
            return self._reject(Code.OUT_OF_WINDOW, f"height {m.height} outside the window")
        old = self._pp.get(m.height)
        if old is not None:
            if old.digest == m.digest:
                return self._reject(Code.DUPLICATE, "pre-prepare already accepted")
            return self._reject(Code.EQUIVOCATION, f"second pre-prepare at view {m.view} height {m.height}")
        if not self._verifier.verify(m.sender, m.signed_bytes(self.config.chain_id), m.sig):
            return self._reject(Code.BAD_SIGNATURE, "pre-prepare signature")
        if self._digest_of(m.payload) != m.digest:
            return self._reject(Code.BAD_BLOCK, "payload does not match digest")
        if self._validate is not None or self._parent_of is not None:
            known, parent = self._parent_digest(m.height - 1)
            if not known:
                if len(self._waiting_pp) < self.config.window * 2:
                    self._waiting_pp[m.height] = m  # validated once its parent arrives
                return
            if self._parent_of is not None and parent is not None and self._parent_of(m.payload) != parent:
                return self._reject(
                    Code.BAD_BLOCK, f"proposal at height {m.height} does not extend our block {m.height - 1}"
                )
            if self._validate is not None and not self._validate(m.height, m.payload, parent):
                return self._reject(
                    Code.BAD_BLOCK, f"proposal at height {m.height} refused by the node's validity check"
                )
        self._accept_pp(m)

    def _accept_pp(self, m: PrePrepare) -> None:
        """Install a valid pre-prepare and, unless we sent it, sign and send our PREPARE."""
        mine = self._my_votes.get(("prepare", m.view, m.height))
        if mine is not None and mine != m.digest:
            return self._reject(Code.EQUIVOCATION, f"already prepared another block at {m.view}/{m.height}")
        if m.sender != self._me and mine is None:
            sig = self._sign_vote(
                "prepare",
                m.view,
                m.height,
                m.digest,
                prepare_vote_bytes(self.config.chain_id, m.view, m.height, m.digest),
            )
            self._send.append(Broadcast(Prepare(m.view, m.height, m.digest, self._me, sig)))
            self._prep_votes.setdefault((m.view, m.height, m.digest), {})[self._me] = sig
        self._install_pp(m)

    def _install_pp(self, m: PrePrepare) -> None:
        self._pp[m.height] = m
        self._payloads[m.digest] = m.payload
        self._prep_votes.setdefault((m.view, m.height, m.digest), {})[m.sender] = m.sig
        self._check_prepared(m.view, m.height, m.digest)
        self._check_committed(m.view, m.height, m.digest)
        self._release_waiting()

    def _release_waiting(self) -> None:
        """Re-examine held proposals whose parent is now known."""
        for h in sorted(self._waiting_pp):
            if h in self._waiting_pp and self._parent_digest(h - 1)[0]:
                self._on_preprepare(self._waiting_pp.pop(h))

    def _parent_digest(self, h: int) -> tuple[bool, bytes | None]:
        """(known, digest) of the block at height h for validating its child: a committed
        block or this view's proposal. (True, None): h is committed and handed to the
        node (or is genesis), so the node checks the parent against its own store.
        Unknown (False): hold the child until the parent is proposed or fetched."""
        if h <= 0:
            return True, None
        if h in self._decided:
            return True, self._decided[h][1].block_hash
        if self._last_cert is not None and self._last_cert.height == h:
            return True, self._last_cert.block_hash
        proof = self._proofs.get(h)
        if proof is not None and proof.kind == "commit":
            return True, proof.digest
        pp = self._pp.get(h)
        if pp is not None and pp.view == self._view:
            return True, pp.digest
        if h <= self._last_committed:
            return True, None
        return False, None

    def _on_prepare(self, m: Prepare) -> None:
        if m.view < self._view or m.view > self._view + self.config.n:
            return self._reject(Code.WRONG_VIEW, f"prepare for view {m.view}")
        if not self._in_window(m.height) or m.height <= self._last_committed:
            return self._reject(Code.OUT_OF_WINDOW, f"height {m.height} outside the window")
        if not self._first_vote("prepare", m):
            return
        if not self._verifier.verify(m.sender, m.signed_bytes(self.config.chain_id), m.sig):
            return self._reject(Code.BAD_SIGNATURE, "prepare signature")
        self._seen[("prepare", m.view, m.height, m.sender)] = m.digest
        votes = self._prep_votes.setdefault((m.view, m.height, m.digest), {})
        votes[m.sender] = m.sig  # kept even for a view we are still entering
        if m.view == self._view and not self._in_vc:
            self._check_prepared(m.view, m.height, m.digest)

    def _check_prepared(self, view: int, h: int, digest: bytes) -> None:
        pp = self._pp.get(h)
        if pp is None or pp.view != view or pp.digest != digest:
            return
        votes = self._prep_votes.get((view, h, digest), {})
        if len(votes) < self._q:
            return
        old = self._proofs.get(h)
        if old is None or old.view < view:
            proof = Proof("prepare", view, h, digest, pp.payload, tuple(sorted(votes.items())))
            self._proofs[h] = proof
            self._persist.append(Persist(encode_record(ProofRecord(proof))))
        self._send_commits()

    def _send_commits(self) -> None:
        """Send COMMIT for each height prepared in this view, walking up from the last
        committed height and stopping at the first height that is neither prepared in
        this view nor committed. So a committed height always sits on heights that were
        prepared in its own view (or committed) by a quorum: NEW-VIEW keeps them all,
        and the parent a block was validated against is the one that gets committed."""
        if self._in_vc:
            return
        h = max(self._low, self._last_committed) + 1
        while True:
            pp = self._pp.get(h)
            proof = self._proofs.get(h)
            prepared_here = (
                pp is not None
                and proof is not None
                and pp.view == self._view
                and proof.view == self._view
                and proof.digest == pp.digest
            )
            if not prepared_here:
                if h in self._decided:
                    h += 1
                    continue
                return
            assert pp is not None
            key = ("commit", self._view, h)
            if key not in self._my_votes:
                sig = self._sign_vote(
                    "commit", self._view, h, pp.digest, commit_bytes(self.config.chain_id, self._view, h, pp.digest)
                )
                self._send.append(Broadcast(CommitVote(self._view, h, pp.digest, self._me, sig)))
                self._commit_votes.setdefault((self._view, h, pp.digest), {})[self._me] = sig
                self._check_committed(self._view, h, pp.digest)
            h += 1

    def _on_commit(self, m: CommitVote) -> None:
        if m.view > self._view + self.config.n:
            return self._reject(Code.WRONG_VIEW, f"commit for view {m.view}")
        key = (m.view, m.height, m.digest)
        if not self._first_vote("commit", m):
            return
        if not self._verifier.verify(m.sender, m.signed_bytes(self.config.chain_id), m.sig):
            return self._reject(Code.BAD_SIGNATURE, "commit signature")
        if m.height > self._peer_heights.get(m.sender, 0):
            self._peer_heights[m.sender] = m.height
        if m.height <= self._last_committed or m.height in self._decided:
            return
        if not self._in_window(m.height):
            return self._reject(Code.OUT_OF_WINDOW, f"height {m.height} outside the window")
        self._seen[("commit", m.view, m.height, m.sender)] = m.digest
        self._commit_votes.setdefault(key, {})[m.sender] = m.sig
        self._check_committed(*key)

    def _check_committed(self, view: int, h: int, digest: bytes) -> None:
        if h <= self._last_committed or h in self._decided:
            return
        votes = self._commit_votes.get((view, h, digest), {})
        payload = self._payloads.get(digest)
        if len(votes) < self._q or payload is None:
            return
        cert = Commit(self.config.chain_id, h, view, digest, tuple(sorted(votes.items())))
        self._decide(h, payload, cert)

    def _decide(self, h: int, payload: bytes, cert: Commit) -> None:
        self._decided[h] = (payload, cert)
        if self._last_cert is None or h > self._last_cert.height:
            self._last_cert = cert
        if h > self._low:
            proof = Proof("commit", cert.view, h, cert.block_hash, payload, cert.votes)
            self._proofs[h] = proof
            self._persist.append(Persist(encode_record(ProofRecord(proof))))
        while self._last_committed + 1 in self._decided:
            k = self._last_committed + 1
            p, c = self._decided.pop(k)
            self._exec.append(Execute(k, p, c))
            self._last_committed = k
            self._attempt = 0
            self._idle = 0
            self._no_progress = 0
            self._pending = False
        for k in [k for k in self._pp if k <= self._last_committed]:
            del self._pp[k]
        if self._waiting_pp:
            self._release_waiting()
        if self._next_height <= self._last_committed and self.is_primary:
            self._next_height = self._last_committed + 1
        self._send_commits()

    # ------------------------------------------------------------------ checkpoints and catch-up

    def _on_checkpoint(self, m: Checkpoint) -> None:
        if m.height % self.config.checkpoint_interval or m.height <= self._low:
            return self._reject(Code.OUT_OF_WINDOW, f"checkpoint {m.height} not above the stable one")
        votes = self._checkpoints.setdefault((m.height, m.state_root), {})
        if m.sender in votes:
            return self._reject(Code.DUPLICATE, "checkpoint already counted")
        if not self._verifier.verify(m.sender, m.signed_bytes(self.config.chain_id), m.sig):
            return self._reject(Code.BAD_SIGNATURE, "checkpoint signature")
        votes[m.sender] = m.sig
        if m.height > self._peer_heights.get(m.sender, 0):
            self._peer_heights[m.sender] = m.height
        self._check_stable(m.height, m.state_root)

    def _check_stable(self, h: int, root: bytes) -> None:
        votes = self._checkpoints.get((h, root), {})
        if h > self._low and len(votes) >= self._q:
            self._set_stable(h, root, tuple(sorted(votes.items())))

    def _set_stable(self, h: int, root: bytes, votes: Votes) -> None:
        self._low, self._low_root, self._low_votes = h, root, votes
        self._persist.append(Persist(encode_record(StableRecord(h, root, votes))))
        self._pp = {k: v for k, v in self._pp.items() if k > h}
        self._proofs = {k: v for k, v in self._proofs.items() if k > h}
        self._prep_votes = {k: v for k, v in self._prep_votes.items() if k[1] > h}
        self._commit_votes = {k: v for k, v in self._commit_votes.items() if k[1] > h}
        self._seen = {k: v for k, v in self._seen.items() if k[2] > h}
        self._checkpoints = {k: v for k, v in self._checkpoints.items() if k[0] > h}
        self._future_pp = {k: v for k, v in self._future_pp.items() if k[1] > h}
        keep = {p.digest for p in self._pp.values()} | {p.digest for p in self._proofs.values()}
        keep |= {c.block_hash for _, c in self._decided.values()}
        self._payloads = {d: p for d, p in self._payloads.items() if d in keep}
        if self._last_committed < h:
            self._request_fetch(h)
        self._send_commits()

    def _peer_target(self) -> int:
        """A height that at least one correct peer has reached: the (f+1)-th highest claim."""
        claims = sorted(self._peer_heights.values(), reverse=True)
        best = claims[self._f] if len(claims) > self._f else 0
        return max(best, self._low)

    def _request_fetch(self, target: int) -> None:
        if target <= self._last_committed:
            return
        if self._fetch_wait > 0 and target <= self._fetch_target:
            return
        self._fetch_target = target
        self._fetch_wait = self.config.fetch_after
        peers = [v for v in self.config.validators if v != self._me]
        self._rng.shuffle(peers)
        self._fetch.append(FetchBlocks(self._last_committed + 1, target, tuple(peers)))

    # ------------------------------------------------------------------ view change

    def _start_view_change(self, new_view: int, *, restore: bool = False) -> None:
        # Back-off: every view change without a commit in between doubles the next waits.
        self._attempt = min(self._attempt + 1, self.config.max_backoff_exponent + 1)
        self._view = new_view
        self._in_vc = True
        self._waiting_pp = {}
        self._idle = 0
        self._resend = 0
        self._vc_wait = None
        self._pp = {}
        self._prep_votes = {k: v for k, v in self._prep_votes.items() if k[0] >= new_view}
        top = self._low + self.config.high_span
        proofs = tuple(self._proofs[h] for h in sorted(self._proofs) if self._low < h <= top)
        vc = ViewChange(new_view, self._low, self._low_root, self._low_votes, proofs, self._me, b"")
        vc = ViewChange(
            vc.new_view,
            vc.stable_height,
            vc.stable_root,
            vc.stable_votes,
            vc.proofs,
            self._me,
            self._signer.sign(vc.signed_bytes(self.config.chain_id)),
        )
        self._my_vc = vc
        if not restore:
            self._persist.append(Persist(encode_record(ViewChangeRecord(new_view))))
        self._send.append(Broadcast(vc))
        self._vcs.setdefault(new_view, {})[self._me] = vc
        self._vcs = {v: m for v, m in self._vcs.items() if v >= new_view}
        self._check_vc_quorum(new_view)

    def _valid_proof(self, p: Proof, above: int) -> bool:
        if p.height <= above or self._digest_of(p.payload) != p.digest:
            return False
        if p.kind == "prepare":
            msg = prepare_vote_bytes(self.config.chain_id, p.view, p.height, p.digest)
        else:
            msg = commit_bytes(self.config.chain_id, p.view, p.height, p.digest)
        return self._quorum_signed(p.votes, msg)

    def _quorum_signed(self, votes: Votes, message: bytes) -> bool:
        good: set[str] = set()
        for sender, sig in votes:
            if sender in self._validators and sender not in good and self._verifier.verify(sender, message, sig):
                good.add(sender)
                if len(good) >= self._q:
                    return True
        return False

    def _valid_view_change(self, m: ViewChange) -> bool:
        if not self._verifier.verify(m.sender, m.signed_bytes(self.config.chain_id), m.sig):
            self._reject(Code.BAD_SIGNATURE, "view-change signature")
            return False
        if m.stable_height:
            ok = m.stable_height % self.config.checkpoint_interval == 0 and self._quorum_signed(
                m.stable_votes, checkpoint_vote_bytes(self.config.chain_id, m.stable_height, m.stable_root)
            )
            if not ok:
                self._reject(Code.BAD_CERTIFICATE, "view-change checkpoint proof")
                return False
        heights = [p.height for p in m.proofs]
        if len(set(heights)) != len(heights) or any(h > m.stable_height + self.config.high_span for h in heights):
            self._reject(Code.BAD_CERTIFICATE, "view-change proofs repeat heights or leave the window")
            return False
        for p in m.proofs:
            if p.view >= m.new_view or not self._valid_proof(p, m.stable_height):
                self._reject(Code.BAD_CERTIFICATE, f"view-change proof for height {p.height}")
                return False
        return True

    def _on_view_change(self, m: ViewChange) -> None:
        w = m.new_view
        if w < self._view or (w == self._view and not self._in_vc):
            # The sender is behind: answer once with the latest NEW-VIEW we entered.
            if self._nv is not None and self._nv.view >= w and self._may_answer(m.sender, w, "nv"):
                self._send.append(Send(m.sender, self._nv))
            return self._reject(Code.WRONG_VIEW, f"view-change to old view {w}")
        have = self._vcs.get(w, {})
        if m.sender in have:
            self._hint_progress(have[m.sender])
            return self._reject(Code.DUPLICATE, "view-change already counted")
        if any(v > w and m.sender in by for v, by in self._vcs.items()):
            return self._reject(Code.WRONG_VIEW, f"{m.sender} already asked for a later view than {w}")
        if not self._valid_view_change(m):
            return
        for by in self._vcs.values():  # keep only each sender's latest view-change
            by.pop(m.sender, None)
        self._vcs = {v: by for v, by in self._vcs.items() if by}
        self._vcs.setdefault(w, {})[m.sender] = m
        self._hint_progress(m)
        # f+1 peers want a higher view: join the smallest of them (PBFT liveness rule).
        latest: dict[str, int] = {}
        for v, by in self._vcs.items():
            if v > self._view:
                for s in by:
                    if s != self._me:
                        latest[s] = max(latest.get(s, 0), v)
        if len(latest) >= self._f + 1:
            self._start_view_change(min(latest.values()))
        self._check_vc_quorum(self._view)

    def _hint_progress(self, vc: ViewChange) -> None:
        """A peer asking for a view change that has committed less than we have gets the
        signed COMMITs of our latest certificate (forwarded, still verifiable), so it
        learns it is behind and fetches — or commits at once if it holds the payload."""
        theirs = max([vc.stable_height] + [p.height for p in vc.proofs if p.kind == "commit"])
        cert = self._last_cert
        if cert is None or not theirs < cert.height <= self._last_committed:
            return
        if self._may_answer(vc.sender, vc.new_view, "commit"):
            for sender, sig in cert.votes:
                self._send.append(Send(vc.sender, CommitVote(cert.view, cert.height, cert.block_hash, sender, sig)))

    def _check_vc_quorum(self, w: int) -> None:
        if not self._in_vc or w != self._view:
            return
        # The NEW-VIEW timer starts once 2f+1 replicas have given up on views below w
        # (a VIEW-CHANGE for w or any later view), so lost VIEW-CHANGEs cannot freeze it.
        support = {s for v, by in self._vcs.items() if v >= w for s in by}
        if self._vc_wait is None and len(support) >= self._q:
            self._vc_wait = 0
        vcs = self._vcs.get(w, {})
        if len(vcs) < self._q or self._me not in vcs or self.config.primary_of(w) != self._me:
            return
        chosen = [vcs[self._me]] + [vcs[s] for s in sorted(vcs) if s != self._me][: self._q - 1]
        chosen.sort(key=lambda vc: vc.sender)
        _, _, _, plan = self._plan_new_view(chosen)
        pps = []
        for h, d, payload in plan:
            sig = self._sign_vote("prepare", w, h, d, prepare_vote_bytes(self.config.chain_id, w, h, d))
            pps.append(PrePrepare(w, h, d, payload, self._me, sig))
        nv = NewView(w, tuple(chosen), tuple(pps), self._me, b"")
        nv = NewView(
            w, nv.view_changes, nv.pre_prepares, self._me, self._signer.sign(nv.signed_bytes(self.config.chain_id))
        )
        self._send.append(Broadcast(nv))
        self._enter_view(nv)

    def _plan_new_view(self, vcs: list[ViewChange]) -> tuple[int, bytes, Votes, list[tuple[int, bytes, bytes]]]:
        """Deterministic content of NEW-VIEW: the highest stable checkpoint, then for each
        following height the proof of the highest view, as long as heights are contiguous
        (and, with `parent_of`, each block extends the one chosen below it)."""
        top = max(vcs, key=lambda vc: (vc.stable_height, vc.sender))
        min_s = top.stable_height
        best: dict[int, Proof] = {}
        for vc in vcs:
            for p in vc.proofs:
                if p.height > min_s:
                    old = best.get(p.height)
                    if old is None or (p.view, p.digest) > (old.view, old.digest):
                        best[p.height] = p
        plan: list[tuple[int, bytes, bytes]] = []
        h = min_s + 1
        while h in best:
            if self._parent_of is not None and plan and self._parent_of(best[h].payload) != plan[-1][1]:
                break  # not linked, hence committed nowhere: proposed afresh in the new view
            plan.append((h, best[h].digest, best[h].payload))
            h += 1
        return min_s, top.stable_root, top.stable_votes, plan

    def _on_new_view(self, m: NewView) -> None:
        w = m.view
        if w < self._view or (w == self._view and not self._in_vc):
            return self._reject(Code.WRONG_VIEW, f"new-view for old view {w}")
        if m.sender != self.config.primary_of(w):
            return self._reject(Code.NOT_PRIMARY, f"{m.sender} is not the primary of view {w}")
        if not self._verifier.verify(m.sender, m.signed_bytes(self.config.chain_id), m.sig):
            return self._reject(Code.BAD_SIGNATURE, "new-view signature")
        senders = {vc.sender for vc in m.view_changes}
        if (
            len(senders) != len(m.view_changes)
            or len(senders) < self._q
            or not senders <= self._validators
            or any(vc.new_view != w for vc in m.view_changes)
        ):
            return self._reject(Code.BAD_CERTIFICATE, "new-view lacks a quorum of view-changes")
        for vc in m.view_changes:
            if not self._valid_view_change(vc):
                return
        _, _, _, plan = self._plan_new_view(list(m.view_changes))
        if len(plan) != len(m.pre_prepares):
            return self._reject(Code.BAD_CERTIFICATE, "new-view re-proposals do not follow from its view-changes")
        for (h, d, payload), pp in zip(plan, m.pre_prepares):
            if (pp.view, pp.height, pp.digest, pp.payload, pp.sender) != (w, h, d, payload, m.sender):
                return self._reject(Code.BAD_CERTIFICATE, "new-view re-proposals do not follow from its view-changes")
            if not self._verifier.verify(pp.sender, pp.signed_bytes(self.config.chain_id), pp.sig):
                return self._reject(Code.BAD_SIGNATURE, "new-view pre-prepare signature")
        self._enter_view(m)

    def _enter_view(self, nv: NewView) -> None:
        w = nv.view
        min_s, root, votes, plan = self._plan_new_view(list(nv.view_changes))
        floor = max([min_s] + [h for h, _, _ in plan])
        self._view, self._in_vc, self._floor = w, False, floor
        self._idle = self._resend = 0
        self._vc_wait = None
        self._nv = nv
        self._pp = {}
        self._waiting_pp = {}
        self._prep_votes = {k: v for k, v in self._prep_votes.items() if k[0] >= w}
        self._vcs = {v: m for v, m in self._vcs.items() if v > w}
        self._persist.append(Persist(encode_record(ViewRecord(w, floor))))
        if min_s > self._low:
            self._set_stable(min_s, root, votes)
        for pp in nv.pre_prepares:
            if pp.height > self._last_committed and pp.height > self._low:
                if pp.sender == self._me:
                    self._install_pp(pp)
                else:
                    self._accept_pp(pp)
        self._next_height = max(floor, self._last_committed) + 1
        for (v, h), pp in sorted(self._future_pp.items()):
            if v == w:
                self._on_preprepare(pp)
        self._future_pp = {k: v for k, v in self._future_pp.items() if k[0] > w}
        self._send_commits()

    # ------------------------------------------------------------------ helpers

    def _first_vote(self, kind: str, m: Prepare | CommitVote) -> bool:
        """One vote per sender, kind, view and height: a repeat is a duplicate, a vote for
        another digest is equivocation (and is not stored, which bounds memory)."""
        old = self._seen.get((kind, m.view, m.height, m.sender))
        if old is None:
            return True
        if old == m.digest:
            self._reject(Code.DUPLICATE, f"{kind} already counted")
        else:
            self._reject(Code.EQUIVOCATION, f"{m.sender} voted twice at {m.view}/{m.height}")
        return False

    def _may_answer(self, peer: str, view: int, kind: str) -> bool:
        """Rate-limit answers to a peer's re-sent VIEW-CHANGE to one per re-send interval."""
        key = (peer, view, kind)
        last = self._replied.get(key)
        if last is not None and self._ticks - last < self.config.resend_interval:
            return False
        if len(self._replied) > 16 * self.config.n:
            self._replied.clear()
        self._replied[key] = self._ticks
        return True

    def _in_window(self, h: int) -> bool:
        return self._low < h <= self._low + self.config.high_span

    def _sign_vote(self, kind: str, view: int, h: int, digest: bytes, message: bytes) -> bytes:
        """Sign a vote, recording it first; refuses (AssertionError) to sign a second digest
        for one (kind, view, height) — the invariant the write-ahead log protects."""
        key = (kind, view, h)
        old = self._my_votes.get(key)
        assert old is None or old == digest, "refusing to sign two blocks for one view and height"
        if old is None:
            self._persist.append(Persist(encode_record(VoteRecord(kind, view, h, digest))))
        self._my_votes[key] = digest
        return self._signer.sign(message)

    def _reject(self, code: Code, reason: str) -> None:
        self._rej.append(Rejection(code, reason))

    def _flush(self) -> Ready:
        ready = Ready(tuple(self._persist + self._send + self._exec + self._fetch), tuple(self._rej))
        self._persist, self._send, self._exec, self._fetch, self._rej = [], [], [], [], []
        return ready

    def _restore(self, records: Iterable[bytes]) -> None:
        entered, vc_view, floor = 0, 0, 0
        for raw in records:
            rec: Record = decode_record(raw)
            if isinstance(rec, VoteRecord):
                self._my_votes[(rec.kind, rec.view, rec.height)] = rec.digest
            elif isinstance(rec, ProofRecord):
                p = rec.proof
                old = self._proofs.get(p.height)
                if old is None or old.view <= p.view:
                    self._proofs[p.height] = p
            elif isinstance(rec, ViewChangeRecord):
                vc_view = max(vc_view, rec.new_view)
            elif isinstance(rec, ViewRecord):
                if rec.view >= entered:
                    entered, floor = rec.view, rec.floor
            elif isinstance(rec, StableRecord) and rec.height > self._low:
                self._low, self._low_root, self._low_votes = rec.height, rec.state_root, rec.votes
        self._proofs = {h: p for h, p in self._proofs.items() if h > self._low}
        self._payloads = {p.digest: p.payload for p in self._proofs.values()}
        self._view = max(entered, vc_view)
        self._floor = floor if entered == self._view else 0
        self._in_vc = vc_view > entered
        self._restored_vc = self._in_vc
        used = [h for (kind, v, h) in self._my_votes if kind == "prepare" and v == self._view]
        self._next_height = max([self._floor, self._last_committed] + used) + 1
