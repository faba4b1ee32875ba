"""One PBFT replica (Castro–Liskov, one block per height) as a pure state machine.

Inputs: `step(message)`, `tick()`, `propose(payload)`, `on_executed(height, root)`,
`on_fetched(payload, certificate)`, `expect_progress()`, and
`schedule_validators(after_height, validators, keys)`. Each returns one
`Ready` whose actions the driver performs in order (see `consensus.actions`).
Nothing here reads a clock, touches a socket or a disk, or draws randomness
other than from the injected `Rng` — so the simulator runs this very
code under every fault and replays a failure from its seed.

`Replica` only composes the protocol's parts, each in its own module with its own
state: `normal_case` (PRE-PREPARE / PREPARE / COMMIT in a settled view),
`view_change` (VIEW-CHANGE / NEW-VIEW and their timers), `checkpoints` (stable
checkpoints and log truncation) and `catch_up` (fetching blocks peers have
committed), sharing one `context.Context` (identity, keys, view, watermarks, outbox).

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
- Validator-set changes (with `ReplicaConfig.reconfigurable`): each height is
  judged by the set governing it, a new set starts only from a stable checkpoint
  at its boundary, and a replica outside the set follows without signing; the rules
  and why they are safe are in `consensus.membership`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from consensus.actions import Ready
from consensus.config import ReplicaConfig
from consensus.membership import ValidatorChange, after_height_for
from consensus.messages import Checkpoint, CommitVote, Message, NewView, Prepare, PrePrepare, Proof, ViewChange
from consensus.records import ProofRecord, Record, StableRecord, ViewChangeRecord, ViewRecord, VoteRecord, decode_record
from consensus.replica.catch_up import CatchUp
from consensus.replica.checkpoints import Checkpoints
from consensus.replica.context import Context, DigestFn, ParentFn, ValidateFn
from consensus.replica.normal_case import NormalCase
from consensus.replica.view_change import Plan, ViewChanges, plan_new_view
from consensus.signing import KeyRing, Signer, Verifier
from primitives.block import Commit
from primitives.errors import Code
from primitives.seeded import Rng

__all__ = ["DigestFn", "ParentFn", "Replica", "ValidateFn"]


def _height_of(msg: Message) -> int:
    """The height a message is about (a VIEW-CHANGE's stable checkpoint; a NEW-VIEW's highest)."""
    if isinstance(msg, ViewChange):
        return msg.stable_height
    if isinstance(msg, NewView):
        return max([vc.stable_height for vc in msg.view_changes], default=0)
    return msg.height


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
    block chosen below it (see `NormalCase.send_commits`).

    `changes` (with `config.reconfigurable`) is the validator schedule after a restart:
    every change already committed (approved by a block ≤ `last_executed`), in
    order, including those already in effect — `config.validators` governs the heights
    up to the first one."""

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
        changes: Iterable[ValidatorChange] = (),
    ) -> None:
        self.config = config
        ctx = Context(config, signer, verifier, digest_of, rng, validate, parent_of, last_committed=last_executed)
        self._ctx = ctx
        for change in changes:
            self._learn(change, check_known=False)
        ctx.membership.executed(last_executed)
        self._catch_up = CatchUp(ctx)
        self._normal = NormalCase(ctx, self._catch_up, self._progressed)
        self._checkpoints = Checkpoints(ctx, self._normal, self._catch_up, last_executed=last_executed)
        self._view_changes = ViewChanges(ctx, self._normal, self._checkpoints)
        self._checkpoints.entered_epoch = self._entered_epoch
        self._restore(records)

    # ------------------------------------------------------------------ properties

    @property
    def view(self) -> int:
        return self._ctx.view

    @property
    def primary_id(self) -> str:
        return self._ctx.primary

    @property
    def is_primary(self) -> bool:
        return self._ctx.is_primary

    @property
    def in_view_change(self) -> bool:
        return self._ctx.in_view_change

    @property
    def last_committed(self) -> int:
        """Highest height handed to the driver with `Execute` (all below it too)."""
        return self._ctx.last_committed

    @property
    def last_executed(self) -> int:
        return self._checkpoints.last_executed

    @property
    def stable_checkpoint(self) -> int:
        """The low watermark: height of the last stable checkpoint."""
        return self._ctx.stable_height

    @property
    def can_propose(self) -> bool:
        """True when this replica is the primary, in a settled view, with room in the window."""
        return self._normal.can_propose

    @property
    def next_height(self) -> int:
        """The height the next `propose` will use (the node builds its block for it)."""
        return self._normal.next_height

    def digest_at(self, height: int) -> bytes | None:
        """The digest this replica holds at `height`: committed, else proposed in this
        view, else its best proof; None if it knows none (e.g. below its log)."""
        return self._normal.digest_at(height)

    @property
    def validators(self) -> tuple[str, ...]:
        """The validator set of this replica's epoch (the heights after its stable checkpoint)."""
        return self._ctx.current.validators

    @property
    def is_validator(self) -> bool:
        """A member of `validators`; otherwise this replica only follows the chain."""
        return self._ctx.is_member

    def validators_at(self, height: int) -> tuple[str, ...] | None:
        """The set governing `height`, None if this replica cannot know it yet."""
        ep = self._ctx.epoch(height)
        return ep.validators if ep is not None else None

    def peers(self) -> tuple[str, ...]:
        """Every validator of every epoch known here, in order of appearance (whom to reach)."""
        return self._ctx.membership.peers

    def after_height_for(self, approved_at: int) -> int:
        """The `after_height` for a change approved by block `approved_at` (same on every replica)."""
        return after_height_for(self.config, approved_at)

    def authentic_proposal(self, pp: PrePrepare) -> bool:
        """Whether this PRE-PREPARE could be accepted here, now or once the chain gets to it:
        sent by the primary of its view (in the set governing its height), for a view not
        behind ours and at most n ahead, inside the window, its payload matching its digest,
        and signed. Cheap checks first, the signature last. The driver asks before it
        holds, decodes or checks anything of a proposal, so a replica that is not the
        primary cannot make a node spend memory or CPU on proposals."""
        ctx = self._ctx
        ep = ctx.epoch(pp.height)
        if ep is None or pp.sender != ep.primary_of(pp.view) or pp.sender == ctx.me:
            return False
        if not ctx.view <= pp.view <= ctx.view + ep.n or not ctx.in_window(pp.height):
            return False
        return ctx.digest_of(pp.payload) == pp.digest and ctx.signed_by_sender(pp)

    def in_flight_payloads(self) -> list[bytes]:
        """Payloads accepted or proven above the last committed height (the driver skips
        re-proposing what they carry)."""
        return self._normal.in_flight_payloads()

    # ------------------------------------------------------------------ inputs

    def propose(self, payload: bytes) -> Ready:
        """As primary, order `payload` at the next height. Refused (no action) when not
        the primary, in a view change, the window is full or the payload is undecodable."""
        self._normal.propose(payload)
        return self._ctx.flush()

    def expect_progress(self) -> Ready:
        """The driver has client work waiting: start the request timer if it is not running."""
        self._view_changes.pending = True
        return self._ctx.flush()

    def request_overdue(self) -> Ready:
        """The driver has held a client request past its deadline while this view's primary
        did not order it, though it may be ordering others (a censoring primary): ask for
        the next view, as at a request timeout (Castro–Liskov keep a timer per request).
        Ignored outside the validator set and during a view change."""
        ctx = self._ctx
        if ctx.is_member and not ctx.in_view_change:
            self._view_changes.start(ctx.view + 1)
        return ctx.flush()

    def request_suspect(self) -> Ready:
        """The driver has held a client request past its deadline without evidence that the
        primary passed it over: for the next few ticks join the first other validator that
        asks for a later view (instead of waiting for f+1 of them)."""
        self._view_changes.suspect()
        return self._ctx.flush()

    def step(self, msg: Message) -> Ready:
        """Handle one message from a peer. Invalid input changes nothing and is listed in
        `Ready.rejections` with its code."""
        ctx = self._ctx
        if msg.sender not in ctx.membership.everyone:
            if ctx.config.reconfigurable:
                self._catch_up.hint(_height_of(msg))  # perhaps a validator of a set we have yet to learn
            ctx.reject(Code.UNKNOWN_SENDER, f"{msg.sender!r} is not a validator")
        elif msg.sender == ctx.me:
            ctx.reject(Code.DUPLICATE, "message from ourselves")
        elif isinstance(msg, PrePrepare):
            self._normal.on_preprepare(msg)
        elif isinstance(msg, Prepare):
            self._normal.on_prepare(msg)
        elif isinstance(msg, CommitVote):
            self._normal.on_commit(msg)
        elif isinstance(msg, Checkpoint):
            self._checkpoints.on_checkpoint(msg)
        elif isinstance(msg, ViewChange):
            self._view_changes.on_view_change(msg)
        elif isinstance(msg, NewView):
            self._view_changes.on_new_view(msg)
        else:  # pragma: no cover - the Message union is closed
            ctx.reject(Code.MALFORMED, "unknown message")
        return ctx.flush()

    def tick(self) -> Ready:
        """Advance time by one tick: request, view-change, re-send and fetch timers."""
        self._ctx.ticks += 1
        self._view_changes.tick()
        self._checkpoints.tick()
        self._catch_up.tick()
        return self._ctx.flush()

    def on_executed(self, height: int, state_root: bytes) -> Ready:
        """The driver executed `height`; at checkpoint heights this signs a CHECKPOINT."""
        self._checkpoints.on_executed(height, state_root)
        return self._ctx.flush()

    def schedule_validators(self, after_height: int, validators: tuple[str, ...], keys: Mapping[str, bytes]) -> Ready:
        """For heights above `after_height` the validators are `validators` (in order), with
        these Ed25519 public keys. Call it for a change approved by block h after applying
        h and before `on_executed(h)`, with `after_height = after_height_for(h)`, on every
        replica. Telling a change again is a no-op. A call this replica must not apply
        (fixed set, not a checkpoint boundary, out of order, or heights up to `after_height`
        possibly judged already) raises ValueError: it is a driver bug, not peer input."""
        before = self._ctx.current
        self._learn(ValidatorChange(after_height, tuple(validators), dict(keys)), check_known=True)
        if self._ctx.current is not before:  # our stable checkpoint is that very boundary
            self._entered_epoch()
        return self._ctx.flush()

    def on_fetched(self, payload: bytes, certificate: Commit) -> Ready:
        """A block fetched from a peer, with its commit certificate. Accepted only if the
        certificate carries 2f+1 valid validator signatures over the payload's digest."""
        self._normal.commit_certified(payload, certificate)
        return self._ctx.flush()

    # ------------------------------------------------------------------ wiring

    def _learn(self, change: ValidatorChange, *, check_known: bool) -> None:
        """Add a change to the schedule, and its keys to the verifier."""
        verifier = self._ctx.verifier
        if change.keys and not isinstance(verifier, KeyRing):
            raise ValueError("the verifier cannot learn the keys of new validators")
        if self._ctx.membership.schedule(change, check_known=check_known) and isinstance(verifier, KeyRing):
            verifier.add_keys(change.keys)

    def _entered_epoch(self) -> None:
        """The stable checkpoint crossed into another set's heights: forget VIEW-CHANGEs of ids
        outside it, and judge the proposals that waited for that checkpoint."""
        self._view_changes.on_epoch()
        self._normal.release_waiting()

    def _progressed(self) -> None:
        """A height was committed: the back-off, request and fetch timers start afresh."""
        self._view_changes.on_commit()
        self._catch_up.on_commit()

    def _restore(self, records: Iterable[bytes]) -> None:
        """Rebuild from the write-ahead log: own votes, proofs, stable checkpoint, view."""
        ctx = self._ctx
        entered, vc_view, floor = 0, 0, 0
        for raw in records:
            rec: Record = decode_record(raw)
            if isinstance(rec, (VoteRecord, ProofRecord)):
                self._normal.restore(rec)
            elif isinstance(rec, ViewChangeRecord):
                vc_view = max(vc_view, rec.new_view)
            elif isinstance(rec, ViewRecord):
                if rec.view >= entered:
                    entered, floor = rec.view, rec.floor
            elif isinstance(rec, StableRecord) and rec.height > ctx.stable_height:
                self._checkpoints.restore(rec)
        ctx.view = max(entered, vc_view)
        self._normal.restart(floor if entered == ctx.view else 0)
        ctx.in_view_change = vc_view > entered
        self._view_changes.restored = ctx.in_view_change

    # ------------------------------------------------------------------ for white-box tests

    @property
    def _proofs(self) -> dict[int, Proof]:
        return self._normal.proofs

    @property
    def _my_votes(self) -> dict[tuple[str, int, int], bytes]:
        return self._normal.my_votes

    def _plan_new_view(self, vcs: list[ViewChange]) -> Plan:
        return plan_new_view(vcs, self._ctx.parent_of)
