"""Catch-up: noticing that this replica fell behind, and asking the driver to fetch.

Peers show how far they got in their signed COMMITs and CHECKPOINTs. When at least
one correct peer (the (f+1)-th highest claim) or the stable checkpoint is above
our last committed height and we made no progress for `fetch_after` ticks, the
driver is asked to fetch certified blocks (`FetchBlocks`); it hands them back
through `Replica.on_fetched`, which the normal case checks and commits. Asking
again waits `fetch_after` ticks unless the target grew. A fetch asks any node that
follows the chain, and never past the heights whose validator set is known here
(their certificates could not be judged yet); the rest comes in the next round.
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
    beyond: int = 0
    """The highest height shown above the heights whose validator set we know: we are
    behind. One such claim suffices to fetch (a lie costs one fetch), since the set
    whose claims we could count is exactly what we do not know yet."""
    fetch_target: int = 0
    fetch_wait: int = 0
    """Ticks before a fetch up to at most `fetch_target` may be asked again."""
    no_progress: int = 0
    """Ticks since the last commit."""

    def note_height(self, peer: str, height: int) -> None:
        if height > self.peer_heights.get(peer, 0):
            self.peer_heights[peer] = height

    def note_beyond(self, peer: str, height: int) -> None:
        """A validly signed COMMIT or CHECKPOINT above the known schedule."""
        self.note_height(peer, height)
        self.beyond = max(self.beyond, height)

    def hint(self, height: int) -> None:
        """A message we cannot authenticate (from an id of a set we do not know yet) at
        `height`: worth fetching up to the known schedule's end, no further."""
        self.beyond = max(self.beyond, min(height, self.ctx.membership.known_through))

    def probe(self) -> None:
        """Ask for whatever peers hold above our last committed height, as far as we can judge."""
        self.request(self.ctx.membership.known_through)

    def on_commit(self) -> None:
        self.no_progress = 0

    def target(self) -> int:
        """A height that at least one correct peer has reached: the (f+1)-th highest claim."""
        f = self.ctx.current.f
        claims = sorted(self.peer_heights.values(), reverse=True)
        best = claims[f] if len(claims) > f else 0
        return max(best, self.ctx.stable_height, self.beyond)

    def request(self, target: int) -> None:
        """Ask the driver for the blocks above our last committed one up to `target`."""
        ctx = self.ctx
        if target <= ctx.last_committed:
            return
        if self.fetch_wait > 0 and target <= self.fetch_target:
            return
        top = min(target, ctx.membership.known_through)  # certificates above it cannot be judged yet
        if top <= ctx.last_committed:
            return
        self.fetch_target = target
        self.fetch_wait = ctx.config.fetch_after
        peers = [v for v in ctx.membership.peers if v != ctx.me]
        ctx.rng.shuffle(peers)
        ctx.fetch(ctx.last_committed + 1, top, tuple(peers))

    def tick(self) -> None:
        self.no_progress += 1
        target = self.target()
        if target > self.ctx.last_committed and self.no_progress >= self.ctx.config.fetch_after:
            self.request(target)
        if self.fetch_wait > 0:
            self.fetch_wait -= 1
