"""One PBFT replica (Castro–Liskov, one block per height) as a pure state machine.

Inputs: `step(message)`, `tick()`, `propose(payload)`, `on_executed(height, root)`,
`on_fetched(payload, certificate)`, `expect_progress()`. Each returns one
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
"""

from __future__ import annotations

from collections.abc import Iterable

from consensus.actions import Ready
from consensus.config import ReplicaConfig
from consensus.messages import Checkpoint, CommitVote, Message, NewView, Prepare, PrePrepare, Proof, ViewChange
from consensus.records import ProofRecord, Record, StableRecord, ViewChangeRecord, ViewRecord, VoteRecord, decode_record
from consensus.replica.catch_up import CatchUp
from consensus.replica.checkpoints import Checkpoints
from consensus.replica.context import Context, DigestFn, ParentFn, ValidateFn
from consensus.replica.normal_case import NormalCase
from consensus.replica.view_change import Plan, ViewChanges, plan_new_view
from consensus.signing import Signer, Verifier
from primitives.block import Commit
from primitives.errors import Code
from primitives.seeded import Rng

__all__ = ["DigestFn", "ParentFn", "Replica", "ValidateFn"]


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
    block chosen below it (see `NormalCase.send_commits`)."""

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
        ctx = Context(config, signer, verifier, digest_of, rng, validate, parent_of, last_committed=last_executed)
        self._ctx = ctx
        self._catch_up = CatchUp(ctx)
        self._normal = NormalCase(ctx, self._catch_up, self._progressed)
        self._checkpoints = Checkpoints(ctx, self._normal, self._catch_up, last_executed=last_executed)
        self._view_changes = ViewChanges(ctx, self._normal, self._checkpoints)
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

    def step(self, msg: Message) -> Ready:
        """Handle one message from a peer. Invalid input changes nothing and is listed in
        `Ready.rejections` with its code."""
        ctx = self._ctx
        if msg.sender not in ctx.validators:
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

    def on_fetched(self, payload: bytes, certificate: Commit) -> Ready:
        """A block fetched from a peer, with its commit certificate. Accepted only if the
        certificate carries 2f+1 valid validator signatures over the payload's digest."""
        self._normal.commit_certified(payload, certificate)
        return self._ctx.flush()

    # ------------------------------------------------------------------ wiring

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
