"""Per-request deadlines at a backup, so that a primary cannot censor one party
(Castro–Liskov §4.4: a backup whose request is not executed within its timeout
starts a view change, even while the primary keeps ordering other requests).

Every transaction this node admits (from its clients, or relayed by another node)
is timed from its arrival or from the start of the current view, whichever is
later. The oldest one that a correct primary could order now — its sender's next
nonce, no gap before it — decides:

- at half the request timeout it and the other waiting ones go to every validator
  (as a PBFT client retransmits to all replicas), so the other backups hold it
  too and time the primary themselves;
- at the request timeout this backup asks for the next view. If the same request
  is still waiting in the next view, its timeout doubles (a request no primary
  orders, e.g. refused by their mempools, cannot keep the consortium changing views).

A correct primary orders the oldest transactions first (the mempool hands them out
in arrival order), so under any load it can carry the request timeout is not reached.
Clock values come in as arguments; the decisions are plain functions of them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from node.server.mempool import Mempool
from primitives.tx import SignedTx

SCAN = 64
"""Oldest pending transactions looked at for one in its sender's turn."""
MAX_DOUBLINGS = 4


@dataclass(frozen=True)
class Verdict:
    """What the oldest waiting request asks for: relay these to every validator, and/or
    start a view change."""

    relay: tuple[SignedTx, ...] = ()
    overdue: bool = False


NOTHING = Verdict()


class RequestDeadlines:
    def __init__(self, timeout_s: float, max_tracked: int, max_relay: int = 2000) -> None:
        self.timeout_s = timeout_s
        self.max_tracked = max_tracked
        self.max_relay = max_relay
        self._arrived: OrderedDict[bytes, float] = OrderedDict()  # tx id -> arrival, in arrival order
        self._view_start = 0.0
        self._relayed: bytes | None = None  # the oldest request relayed to every validator in this view
        self._strikes = 0  # view changes this request caused already
        self._striker: bytes | None = None

    def arrived(self, tx_id: bytes, now: float) -> None:
        if tx_id not in self._arrived:
            self._arrived[tx_id] = now

    def new_view(self, now: float) -> None:
        """Every deadline starts again for the new primary."""
        self._view_start = now
        self._relayed = None

    def check(self, mempool: Mempool, now: float) -> Verdict:
        """What the oldest request in its sender's turn asks for at `now`."""
        self._prune(mempool)
        oldest = self._oldest_in_turn(mempool)
        if oldest is None:
            return NOTHING
        tx_id, arrived = oldest
        if tx_id != self._striker:
            self._striker, self._strikes = tx_id, 0
        age = now - max(arrived, self._view_start)
        relay: tuple[SignedTx, ...] = ()
        if age >= self.timeout_s / 2 and self._relayed != tx_id:
            self._relayed = tx_id
            relay = self._waiting(mempool, now - self.timeout_s / 2)
        overdue = age >= self.timeout_s * (1 << min(self._strikes, MAX_DOUBLINGS))
        if overdue:
            self._strikes += 1
        return Verdict(relay, overdue)

    def _prune(self, mempool: Mempool) -> None:
        """Forget what committed: lazily from the front, fully when the map grows past its bound."""
        arrived = self._arrived
        while arrived:
            tx_id = next(iter(arrived))
            if tx_id in mempool:
                break
            del arrived[tx_id]
        if len(arrived) > self.max_tracked:
            self._arrived = OrderedDict((t, at) for t, at in arrived.items() if t in mempool)

    def _oldest_in_turn(self, mempool: Mempool) -> tuple[bytes, float] | None:
        for i, (tx_id, at) in enumerate(self._arrived.items()):
            if i >= SCAN:
                break
            stx = mempool.get(tx_id)
            if stx is not None and mempool.in_turn(stx):
                return tx_id, at
        return None

    def _waiting(self, mempool: Mempool, before: float) -> tuple[SignedTx, ...]:
        out: list[SignedTx] = []
        for tx_id, at in self._arrived.items():
            if at > before or len(out) >= self.max_relay:
                break
            stx = mempool.get(tx_id)
            if stx is not None:
                out.append(stx)
        return tuple(out)
