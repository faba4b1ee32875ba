"""Committed-block events fanned out to WebSocket subscribers, and replayed from the
store for a subscriber that resumes (`/v1/events?from_height=H`).

Each subscriber has a bounded queue; a subscriber too slow to keep up is
dropped (with a final `lagged` notice) rather than slowing the node down.

One function, `height_events`, builds the events of a height both live (from the
block just executed) and on replay (from the stored block, its results and the
contracts' events stored with it), so a replay gives exactly what a live subscriber saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from primitives import codec
from primitives.block import Block
from primitives.codec import jsonable
from primitives.errors import Code, GodownError
from storage.chain import ChainStore

QUEUE_LIMIT = 10_000
MAX_REPLAY_HEIGHTS = 10_000
"""How far back a subscriber may resume; further back is `history_unavailable`."""


def height_events(
    block: Block, results: Sequence[str], contract_events: Sequence[Mapping[str, Any]], with_txs: bool
) -> list[dict[str, Any]]:
    """The events of one committed height, in order: the block, its transactions (only
    `with_txs`: building them costs a little per transaction), the contracts' events."""
    h = block.header
    events: list[dict[str, Any]] = [
        {
            "kind": "block",
            "height": h.height,
            "hash": block.hash().hex(),
            "txs": len(block.txs),
            "time_ms": h.time_ms,
            "proposer": h.proposer,
        }
    ]
    if with_txs:
        for index, (stx, code) in enumerate(zip(block.txs, results)):
            loc = {"tx_id": stx.tx_id_hex, "height": h.height, "index": index, "result": code}
            events.append({"kind": "tx", "type": stx.tx.type, "sender": stx.tx.sender, **loc})
    for ev in contract_events:
        doc = dict(jsonable(ev))
        doc.setdefault("kind", "event")
        doc["height"] = h.height
        events.append(doc)
    return events


def check_resume(store: ChainStore, from_height: int) -> None:
    """Refuse a resume point the node cannot replay: above the next height (`malformed`),
    or further back than it keeps or will replay (`history_unavailable`)."""
    head = store.head_height
    if not 1 <= from_height <= head + 1:
        raise GodownError(Code.MALFORMED, f"from_height must be 1..{head + 1} (the head is {head})")
    oldest = max(head + 1 - MAX_REPLAY_HEIGHTS, 1)
    if from_height <= head and (from_height < oldest or store.get_events(from_height) is None):
        raise GodownError(
            Code.HISTORY_UNAVAILABLE,
            f"events from height {from_height} are not kept here; resume from {oldest} or later"
            " (or read the blocks with GET /v1/blocks/{height})",
        )


def stored_events(store: ChainStore, height: int, with_txs: bool) -> list[dict[str, Any]]:
    """The events of a committed height, rebuilt from the store as `height_events` built them."""
    block, raw = store.get_block(height), store.get_events(height)
    if block is None or raw is None:
        raise GodownError(Code.HISTORY_UNAVAILABLE, f"events of height {height} are not kept here")
    return height_events(block, block.results, codec.decode(raw), with_txs)


@dataclass(eq=False)  # identity, not value: subscriptions live in a set
class Subscription:
    """A subscriber's filters: event kinds, and optional equality filters on event fields."""

    kinds: frozenset[str]
    match: Mapping[str, str]
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    lagged: bool = False

    def takes_kind(self, kind: str) -> bool:
        return not self.kinds or takes(self.kinds, kind)

    def wants(self, event: Mapping[str, Any]) -> bool:
        if not self.takes_kind(str(event.get("kind"))):
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
        return any(sub.takes_kind(kind) for sub in self._subs)

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
