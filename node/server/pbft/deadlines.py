"""Per-request deadlines at a backup, so that a primary cannot censor one party
(Castro–Liskov §4.4: a backup whose request is not executed within its timeout
starts a view change, even while the primary keeps ordering other requests).

Every transaction this node admits (from its own clients, or relayed by another
node) is timed from its arrival, from when it came into its sender's turn here
(its predecessor committed), or from the start of the current view, whichever is
latest. The oldest one that a correct primary could order now — its sender's
next nonce, no gap before it — decides:

- at half the request timeout it (with the few waiting right behind it) goes to
  every validator, as a PBFT client retransmits to all replicas, so the other
  backups hold it too and time the primary themselves (only a few: under a long
  queue the oldest request waits at half its timeout at a correct primary too);
- at the request timeout, if the primary has meanwhile committed a transaction
  that reached this node from its own clients *after* it (it was overtaken), or
  put a copy of it into a block that did not commit it (a void result: a forged
  signature, a nonce out of turn), this backup asks for the next view (`overdue`);
- at the request timeout without that evidence, the backup only becomes a
  suspect-er (`suspect`): it joins the first other validator that asks for the
  next view instead of waiting for f+1 of them.

Why the evidence: a correct primary hands out transactions in arrival order, and a
backup forwards its clients' transactions to it in arrival order, so a correct
primary never commits a later one of them first — however long its queue. Age
alone is no evidence: an overloaded correct primary's queue can be longer than any
timeout. A backup whose own clients are all censored has no evidence of its own;
the others, holding the relayed request and seeing their clients' later ones
commit, do, and it joins them. If the same request is still waiting in the next
view, its timeout doubles (one that no primary can order, e.g. refused by their
mempools, cannot keep the consortium changing views). Clock values come in as
arguments; the decisions are plain functions of them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from node.server.mempool import Mempool
from primitives.tx import SignedTx

SCAN = 64
"""Oldest pending transactions looked at for one in its sender's turn."""
MAX_DOUBLINGS = 4
MAX_VOIDED = 10_000
MAX_SENDERS = 100_000


@dataclass(frozen=True)
class Verdict:
    """What the oldest waiting request asks for: relay these to every validator; start a
    view change (`overdue`), or join one (`suspect`)."""

    relay: tuple[SignedTx, ...] = ()
    overdue: bool = False
    suspect: bool = False


NOTHING = Verdict()


class RequestDeadlines:
    def __init__(self, timeout_s: float, max_tracked: int, max_relay: int = 16) -> None:
        self.timeout_s = timeout_s
        self.max_tracked = max_tracked
        self.max_relay = max_relay
        self._arrived: OrderedDict[bytes, tuple[float, bool]] = OrderedDict()  # tx id -> (arrival, own client's)
        self._view_start = 0.0
        self._newest_own_committed = float("-inf")  # arrival of the latest own tx committed in this view
        self._voided: set[bytes] = set()  # pending txs of which this view's blocks carried a void copy
        self._relayed: bytes | None = None  # the oldest request relayed to every validator in this view
        self._strikes = 0  # view changes this request caused already
        self._striker: bytes | None = None
        self._sender_committed: OrderedDict[str, float] = OrderedDict()  # sender -> its last commit here
        self._forgotten_before = float("-inf")  # senders dropped from that map last committed before this

    def arrived(self, tx_id: bytes, now: float, own: bool) -> None:
        """A transaction admitted here: `own` if from this node's clients, not relayed."""
        if tx_id not in self._arrived:
            self._arrived[tx_id] = (now, own)

    def committed(self, txs: Iterable[SignedTx], mempool: Mempool, now: float) -> None:
        """After a block executed (and left the mempool): note the newest own arrival in it,
        and when each of its senders' next transaction came into turn."""
        arrived, senders = self._arrived, self._sender_committed
        for stx in txs:
            if stx.tx_id not in mempool:  # not a void copy (which leaves the nonce where it was)
                senders[stx.tx.sender] = now
                senders.move_to_end(stx.tx.sender)
            entry = arrived.get(stx.tx_id)
            if entry is None:
                continue
            if stx.tx_id in mempool:  # a void copy: the real one is still pending
                if len(self._voided) < MAX_VOIDED:
                    self._voided.add(stx.tx_id)
            elif entry[1]:
                self._newest_own_committed = max(self._newest_own_committed, entry[0])
        while len(senders) > MAX_SENDERS:
            self._forgotten_before = senders.popitem(last=False)[1]

    def new_view(self, now: float) -> None:
        """Every deadline starts again for the new primary."""
        self._view_start = now
        self._relayed = None
        self._newest_own_committed = float("-inf")
        self._voided.clear()

    def check(self, mempool: Mempool, now: float) -> Verdict:
        """What the oldest request in its sender's turn asks for at `now`."""
        self._prune(mempool)
        oldest = self._oldest_in_turn(mempool)
        if oldest is None:
            return NOTHING
        stx, arrived = oldest
        tx_id = stx.tx_id
        if tx_id != self._striker:
            self._striker, self._strikes = tx_id, 0
        # Timed from when it could first be ordered here: one that arrived before the
        # nonce it follows committed goes, at a correct primary, right after that one —
        # behind everything that arrived meanwhile, which then commits first.
        arrived = max(arrived, self._in_turn_since(stx))
        age = now - max(arrived, self._view_start)
        relay: tuple[SignedTx, ...] = ()
        if age >= self.timeout_s / 2 and self._relayed != tx_id:
            self._relayed = tx_id
            relay = self._waiting(mempool, now - self.timeout_s / 2)
        late = age >= self.timeout_s * (1 << min(self._strikes, MAX_DOUBLINGS))
        overtaken = self._newest_own_committed > arrived or tx_id in self._voided
        if late and overtaken:
            self._strikes += 1
        return Verdict(relay, overdue=late and overtaken, suspect=late and not overtaken)

    def _in_turn_since(self, stx: SignedTx) -> float:
        """When `stx`, now its sender's next, came into turn: its predecessor's commit
        here (never earlier than the truth, so a deadline is never early)."""
        return self._sender_committed.get(stx.tx.sender, self._forgotten_before)

    def _prune(self, mempool: Mempool) -> None:
        """Forget what committed: lazily from the front, fully when the map grows past its bound."""
        arrived = self._arrived
        while arrived:
            tx_id = next(iter(arrived))
            if tx_id in mempool:
                break
            del arrived[tx_id]
        if len(arrived) > self.max_tracked:
            self._arrived = OrderedDict((t, e) for t, e in arrived.items() if t in mempool)

    def _oldest_in_turn(self, mempool: Mempool) -> tuple[SignedTx, float] | None:
        for i, (tx_id, (at, _)) in enumerate(self._arrived.items()):
            if i >= SCAN:
                break
            stx = mempool.get(tx_id)
            if stx is not None and mempool.in_turn(stx):
                return stx, at
        return None

    def _waiting(self, mempool: Mempool, before: float) -> tuple[SignedTx, ...]:
        out: list[SignedTx] = []
        for tx_id, (at, _) in self._arrived.items():
            if at > before or len(out) >= self.max_relay:
                break
            stx = mempool.get(tx_id)
            if stx is not None:
                out.append(stx)
        return tuple(out)
