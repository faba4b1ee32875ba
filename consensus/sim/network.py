"""The simulated network and clock: one event queue, ordered by (virtual ms, sequence).

Randomness comes only from the scenario's seeded `Rng`, so a seed
replays exactly.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from primitives.seeded import Rng


@dataclass(order=True)
class Event:
    at: int
    seq: int
    kind: str = field(compare=False)
    data: tuple[Any, ...] = field(compare=False, default=())


class Network:
    """Virtual clock plus links with delay, drop, duplication and partitions."""

    def __init__(self, nodes: list[str], rng: Rng, max_delay_ms: int) -> None:
        self.rng = rng
        self.now = 0
        self._seq = 0
        self._queue: list[Event] = []
        self.max_delay = max(1, max_delay_ms)
        self.base = {(a, b): rng.randint(1, max(1, self.max_delay // 2)) for a in nodes for b in nodes}
        self.drop = 0.0
        self.duplicate = 0.0
        self.groups: dict[str, int] | None = None
        self.sent = 0

    def schedule(self, delay: int, kind: str, *data: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, Event(self.now + max(0, delay), self._seq, kind, data))

    def pop(self) -> Event | None:
        if not self._queue:
            return None
        ev = heapq.heappop(self._queue)
        self.now = max(self.now, ev.at)
        return ev

    def connected(self, a: str, b: str) -> bool:
        return self.groups is None or self.groups.get(a) == self.groups.get(b)

    def send(self, src: str, dst: str, kind: str, *data: Any) -> None:
        """Queue a message; it may be dropped, duplicated, delayed (so reordered) or cut by a partition."""
        self.sent += 1
        if not self.connected(src, dst) or (self.drop and self.rng.random() < self.drop):
            return
        copies = 2 if self.duplicate and self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            delay = self.base[(src, dst)] + self.rng.randint(0, self.max_delay)
            self.schedule(delay, kind, src, dst, *data)
