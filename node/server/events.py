"""Committed-block events fanned out to WebSocket subscribers.

Each subscriber has a bounded queue; a subscriber too slow to keep up is
dropped (with a final `lagged` notice) rather than slowing the node down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

QUEUE_LIMIT = 10_000


@dataclass(eq=False)  # identity, not value: subscriptions live in a set
class Subscription:
    """A subscriber's filters: event kinds, and optional equality filters on event fields."""

    kinds: frozenset[str]
    match: Mapping[str, str]
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    lagged: bool = False

    def wants(self, event: Mapping[str, Any]) -> bool:
        if self.kinds and not takes(self.kinds, str(event.get("kind"))):
            return False
        return all(str(event.get(k)) == v for k, v in self.match.items())


def takes(kinds: frozenset[str], kind: str) -> bool:
    """A kind filter takes an event kind by name or by family: `alarm` takes `alarm_raised`
    and `alarm_resolved` (what the README and OpenAPI promise for `?kinds=alarm`)."""
    return kind in kinds or kind.split("_", 1)[0] in kinds


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, kinds: frozenset[str], match: Mapping[str, str]) -> Subscription:
        sub = Subscription(kinds, dict(match))
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def wants(self, kind: str) -> bool:
        """Whether any subscriber takes events of this kind (worth building them)."""
        return any(not sub.kinds or takes(sub.kinds, kind) for sub in self._subs)

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Called on the event loop after a block is committed."""
        for sub in list(self._subs):
            for event in events:
                if not sub.wants(event):
                    continue
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    sub.lagged = True
                    self._subs.discard(sub)
                    break
