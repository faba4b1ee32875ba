"""Catch-up: noticing that this replica fell behind, and asking the driver to fetch.

Peers show how far they got in their signed COMMITs and CHECKPOINTs. When at least
one correct peer (the (f+1)-th highest claim) or the stable checkpoint is above
our last committed height and we made no progress for `fetch_after` ticks, the
driver is asked to fetch certified blocks (`FetchBlocks`); it hands them back
through `Replica.on_fetched`, which the normal case checks and commits. Asking
again waits `fetch_after` ticks unless the target grew.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from consensus.replica.context import Context


@dataclass(eq=False)
class CatchUp:
    """What peers have shown they hold, and the fetch timer."""

    ctx: Context = field(repr=False)
    peer_heights: dict[str, int] = field(default_factory=dict)
    """The highest height each peer has signed a COMMIT or CHECKPOINT for."""
    fetch_target: int = 0
    fetch_wait: int = 0
    """Ticks before a fetch up to at most `fetch_target` may be asked again."""
    no_progress: int = 0
    """Ticks since the last commit."""

    def note_height(self, peer: str, height: int) -> None:
        if height > self.peer_heights.get(peer, 0):
            self.peer_heights[peer] = height

    def on_commit(self) -> None:
        self.no_progress = 0

    def target(self) -> int:
        """A height that at least one correct peer has reached: the (f+1)-th highest claim."""
        f = self.ctx.f
        claims = sorted(self.peer_heights.values(), reverse=True)
        best = claims[f] if len(claims) > f else 0
        return max(best, self.ctx.stable_height)

    def request(self, target: int) -> None:
        """Ask the driver for the blocks above our last committed one up to `target`."""
        ctx = self.ctx
        if target <= ctx.last_committed:
            return
        if self.fetch_wait > 0 and target <= self.fetch_target:
            return
        self.fetch_target = target
        self.fetch_wait = ctx.config.fetch_after
        peers = [v for v in ctx.config.validators if v != ctx.me]
        ctx.rng.shuffle(peers)
        ctx.fetch(ctx.last_committed + 1, target, tuple(peers))

    def tick(self) -> None:
        self.no_progress += 1
        target = self.target()
        if target > self.ctx.last_committed and self.no_progress >= self.ctx.config.fetch_after:
            self.request(target)
        if self.fetch_wait > 0:
            self.fetch_wait -= 1
