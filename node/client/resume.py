"""Where an event subscription resumes after a dropped connection, and which replayed
events it has delivered already. Pure bookkeeping, shared by the sync and async streams.

The node replays a height's events exactly as a live subscriber saw them, in the same
order and under the same filters (`node.server.events.height_events`). So the cursor
resumes at the height of the last event delivered (the last fully seen height + 1 when
that height ended cleanly) and skips as many events of it as were delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnection attempts: doubling from `first`, never above `most`."""

    first: float = 0.1
    most: float = 5.0

    def delay(self, failures: int) -> float:
        assert failures >= 1
        return float(min(self.most, self.first * 2 ** min(failures - 1, 30)))


class Cursor:
    """The resume point of a subscription: `height`, and how many of its events were delivered."""

    def __init__(self, from_height: int) -> None:
        assert from_height >= 1
        self.height = from_height
        self.delivered = 0
        self._skip = 0

    def reconnecting(self) -> int:
        """The `from_height` to resume at; the events of it delivered before are skipped."""
        self._skip = self.delivered
        return self.height

    def offer(self, event: Mapping[str, Any]) -> bool:
        """Whether `event` is new (deliver it) rather than one already delivered."""
        h = int(event["height"])
        if h < self.height:
            return False
        if h == self.height:
            if self._skip:
                self._skip -= 1
                return False
            self.delivered += 1
            return True
        self.height, self.delivered, self._skip = h, 1, 0
        return True
