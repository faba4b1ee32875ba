"""Checkpoints: agreeing on executed state, so that the log below it can be forgotten.

After executing a multiple of `checkpoint_interval` a replica signs a CHECKPOINT of
its state root; 2f+1 matching ones make that height stable. The stable checkpoint
is the low watermark: everything at or below it is truncated, VIEW-CHANGEs carry
its certificate instead of the proofs below it, and a replica that has committed
less than it asks to fetch the missing blocks. While the view is settled, our
latest CHECKPOINT is re-sent until it becomes stable — and, at an epoch boundary,
until a later checkpoint is, since the next validator set starts only from a
stable boundary. A CHECKPOINT for c is judged by the set governing c.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.messages import Checkpoint, Votes, checkpoint_vote_bytes
from consensus.records import StableRecord
from consensus.replica.catch_up import CatchUp
from consensus.replica.context import Context
from consensus.replica.normal_case import NormalCase
from primitives.errors import Code


@dataclass(eq=False)
class Checkpoints:
    """Checkpoint votes and the stable checkpoint's certificate (its height is `Context.stable_height`)."""

    ctx: Context = field(repr=False)
    normal: NormalCase = field(repr=False)
    catch_up: CatchUp = field(repr=False)

    last_executed: int = 0
    stable_root: bytes = b""
    stable_votes: Votes = ()
    votes: dict[tuple[int, bytes], dict[str, bytes]] = field(default_factory=dict)
    """(height, state root) -> sender -> signature, above the stable checkpoint."""
    mine: Checkpoint | None = None
    resend: int = 0
    """Ticks since our CHECKPOINT was last (re-)sent in this view."""
    entered_epoch: Callable[[], None] | None = field(default=None, repr=False)
    """Called when the stable checkpoint crosses into another validator set's heights."""

    def on_executed(self, height: int, state_root: bytes) -> None:
        """The driver executed `height`; at checkpoint heights this signs a CHECKPOINT."""
        ctx = self.ctx
        self.last_executed = max(self.last_executed, height)
        ctx.membership.executed(height)
        if height % ctx.config.checkpoint_interval == 0 and height > ctx.stable_height and ctx.member_at(height):
            sig = ctx.signer.sign(checkpoint_vote_bytes(ctx.config.chain_id, height, state_root))
            cp = Checkpoint(height, state_root, ctx.me, sig)
            self.mine = cp
            ctx.broadcast(cp)
            self.votes.setdefault((height, state_root), {})[ctx.me] = sig
            self._check_stable(height, state_root)

    def on_checkpoint(self, m: Checkpoint) -> None:
        ctx = self.ctx
        if m.height % ctx.config.checkpoint_interval or m.height <= ctx.stable_height:
            return ctx.reject(Code.OUT_OF_WINDOW, f"checkpoint {m.height} not above the stable one")
        ep = ctx.epoch(m.height)
        if ep is None:
            return self.normal.note_beyond(m)
        if m.sender not in ep.members:
            return ctx.reject(Code.UNKNOWN_SENDER, f"{m.sender!r} is not a validator at height {m.height}")
        votes = self.votes.setdefault((m.height, m.state_root), {})
        if m.sender in votes:
            return ctx.reject(Code.DUPLICATE, "checkpoint already counted")
        if not ctx.signed_by_sender(m):
            return ctx.reject(Code.BAD_SIGNATURE, "checkpoint signature")
        votes[m.sender] = m.sig
        self.catch_up.note_height(m.sender, m.height)
        self._check_stable(m.height, m.state_root)

    def _check_stable(self, h: int, root: bytes) -> None:
        votes = self.votes.get((h, root), {})
        ep = self.ctx.epoch(h)
        if h > self.ctx.stable_height and ep is not None and len(votes) >= ep.quorum:
            self.set_stable(h, root, tuple(sorted(votes.items())))

    def set_stable(self, h: int, root: bytes, votes: Votes) -> None:
        """Height h is stable (by 2f+1 CHECKPOINTs here or in a NEW-VIEW): truncate below it."""
        ctx = self.ctx
        record = StableRecord(h, root, votes)
        before = ctx.current
        self.restore(record)
        ctx.persist(record)
        self.normal.truncate(h)
        self.votes = {k: v for k, v in self.votes.items() if k[0] > h}
        if ctx.last_committed < h:
            self.catch_up.request(h)
        if ctx.current is not before and self.entered_epoch is not None:
            self.entered_epoch()
        self.normal.send_commits()

    def restore(self, record: StableRecord) -> None:
        """Adopt a stable checkpoint (from the log on restart, or `set_stable`)."""
        self.ctx.stable_height, self.stable_root, self.stable_votes = record.height, record.state_root, record.votes

    def restart_resend(self) -> None:
        """A view was entered: the re-send timer starts afresh."""
        self.resend = 0

    def tick(self) -> None:
        """While the view is settled, re-send our latest unstable CHECKPOINT now and then (and
        the one handing over to the next validator set, even during a view change: the new
        members may be needed to end it)."""
        ctx = self.ctx
        if ctx.in_view_change and not self._hands_over():
            return
        self.resend += 1
        if self.resend >= ctx.config.resend_interval:
            self.resend = 0
            if self.mine is not None and (self.mine.height > ctx.stable_height or self._hands_over()):
                ctx.broadcast(self.mine)

    def _hands_over(self) -> bool:
        """Our CHECKPOINT is the stable one at an epoch boundary: the next set can start only
        once it sees that checkpoint stable, so keep offering it until a later one is."""
        mine, ctx = self.mine, self.ctx
        return mine is not None and mine.height == ctx.stable_height and ctx.membership.is_boundary(mine.height)
