"""Free space on the filesystem that holds a store, and the reserve kept for commits.

Why a reserve: a node that runs out of space cannot persist the blocks the others
commit, nor its own consensus votes, and must stop (see docs/storage-faults.md). Refusing
new transactions while free space is below a reserve keeps that wall away: the room
left goes to blocks already under way, and the operator gets a clear `disk_full`
answer on submission (HTTP 507) and a log line well before the node has to stop.
The reserve scales with the filesystem (a tenth of it, within fixed bounds) so that
neither a small volume nor a large disk needs a setting.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from primitives.errors import Code, NodeFault

MIB = 1024 * 1024
RESERVE_MIN = 1 * MIB
RESERVE_MAX = 64 * MIB
SAMPLE_EVERY_S = 0.25
"""How long a free-space reading is reused: submissions ask on every transaction."""


def reserve_for(total: int) -> int:
    """Bytes kept free for commits on a filesystem of `total` bytes."""
    return max(RESERVE_MIN, min(RESERVE_MAX, total // 10))


@dataclass(frozen=True)
class Space:
    """One reading of a filesystem: free and total bytes, and the reserve."""

    path: Path
    free: int
    total: int

    @property
    def reserve(self) -> int:
        return reserve_for(self.total)

    @property
    def low(self) -> bool:
        """Whether free space is below the reserve (new transactions are refused)."""
        return self.free < self.reserve

    def refusal(self, consequence: str = "new transactions are refused until space is freed") -> NodeFault:
        """The `disk_full` error for work refused while space is low."""
        return NodeFault(
            Code.DISK_FULL,
            f"disk nearly full on this node: {self.free} bytes free on the filesystem of {self.path}, below the"
            f" {self.reserve}-byte reserve kept for committing blocks; {consequence}",
        )


def measure(path: Path) -> Space:
    """Read free and total space of the filesystem holding `path` (statvfs)."""
    st = os.statvfs(path)
    return Space(path, st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize)


class SpaceWatch:
    """Free-space readings of one store's filesystem, each reused for `SAMPLE_EVERY_S`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._last: Space | None = None
        self._at = 0.0

    def sample(self) -> Space:
        """A recent reading (at most `SAMPLE_EVERY_S` old)."""
        now = time.monotonic()
        if self._last is None or now - self._at >= SAMPLE_EVERY_S:
            self._last, self._at = measure(self.path), now
        return self._last

    def require_room(self, consequence: str) -> None:
        """Raise `disk_full` (saying `consequence`) if free space is below the reserve, by a fresh reading."""
        self._last = None
        space = self.sample()
        if space.low:
            raise space.refusal(consequence)
