"""Pending transactions, admitted by the cheap checks and handed out in nonce order.

Admission (decode, signature, chain id, sender, role, body shape, nonce window)
runs against committed state; `take` hands out, per sender, only the run of
consecutive nonces that follows what is committed or already taken, so a block
never carries a nonce gap.

Under load a primary holds tens of thousands of transactions from thousands of
senders, and the engines ask `ready()` on every turn of their loop: so the set
of senders whose next nonce is here is kept up to date as transactions come and
go, and `take` makes a single pass in arrival order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from primitives.errors import Code, Rejected
from primitives.tx import SignedTx


class Mempool:
    def __init__(
        self,
        admit: Callable[[SignedTx], None],
        next_nonce: Callable[[str], int],
        max_txs: int = 200_000,
    ) -> None:
        self._admit = admit
        self._next_nonce = next_nonce
        self._max = max_txs
        self._txs: OrderedDict[bytes, SignedTx] = OrderedDict()
        self._slots: dict[str, dict[int, bytes]] = {}  # sender -> nonce -> tx id
        self._taken: dict[str, int] = {}  # sender -> next nonce after txs handed out but not committed
        self._ready: set[str] = set()  # senders whose next nonce to hand out is pending

    def __len__(self) -> int:
        return len(self._txs)

    @property
    def capacity(self) -> int:
        return self._max

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._txs

    def get(self, tx_id: bytes) -> SignedTx | None:
        return self._txs.get(tx_id)

    def pending(self) -> list[SignedTx]:
        """What is pending, in arrival order (not what was taken into proposals)."""
        return list(self._txs.values())

    def next_nonce(self, sender: str) -> int:
        """The nonce a sender's next transaction should carry, counting what is pending."""
        pending = self._slots.get(sender)
        nxt = max(self._next_nonce(sender), self._taken.get(sender, 0))
        while pending and nxt in pending:
            nxt += 1
        return nxt

    def add(self, stx: SignedTx) -> None:
        """Admit one transaction or raise `Rejected` with its code."""
        if stx.tx_id in self._txs:
            raise Rejected(Code.DUPLICATE, "transaction already pending")
        if len(self._txs) >= self._max:
            raise Rejected(Code.MEMPOOL_FULL, "mempool is full; retry later")
        if stx.tx.nonce in self._slots.get(stx.tx.sender, {}):
            raise Rejected(Code.BAD_NONCE, f"nonce {stx.tx.nonce} of {stx.tx.sender} is already pending")
        if stx.tx.nonce < self._taken.get(stx.tx.sender, 0):
            raise Rejected(Code.BAD_NONCE, f"nonce {stx.tx.nonce} of {stx.tx.sender} is already in a block")
        sender = stx.tx.sender
        self._admit(stx)  # the nonce window bounds how far ahead of the committed one it may be
        self._txs[stx.tx_id] = stx
        self._slots.setdefault(sender, {})[stx.tx.nonce] = stx.tx_id
        if stx.tx.nonce == self._expected(sender):
            self._ready.add(sender)

    def _expected(self, sender: str) -> int:
        """The nonce of the sender's next transaction to hand out."""
        return max(self._next_nonce(sender), self._taken.get(sender, 0))

    def _recheck(self, senders: Iterable[str]) -> None:
        for sender in senders:
            slots = self._slots.get(sender)
            if slots and self._expected(sender) in slots:
                self._ready.add(sender)
            else:
                self._ready.discard(sender)

    def take(self, limit: int) -> list[SignedTx]:
        """Up to `limit` transactions in arrival order, each sender's nonces consecutive.
        A transaction that arrived before the nonce it follows (e.g. through another
        node) goes right after that one; nothing is taken ahead of its arrival turn."""
        out: list[SignedTx] = []
        expected: dict[str, int] = {}
        early: dict[str, dict[int, SignedTx]] = {}  # skipped in this pass, waiting for their predecessor
        for stx in self._txs.values():
            if len(out) >= limit:
                break
            sender, nonce = stx.tx.sender, stx.tx.nonce
            want = expected.get(sender)
            if want is None:
                want = self._expected(sender)
            if nonce != want:
                if nonce > want:
                    early.setdefault(sender, {})[nonce] = stx
                expected[sender] = want
                continue
            out.append(stx)
            want += 1
            waiting = early.get(sender)
            while waiting and want in waiting and len(out) < limit:
                out.append(waiting.pop(want))
                want += 1
            expected[sender] = want
        for stx in out:
            self._taken[stx.tx.sender] = stx.tx.nonce + 1
            self._drop(stx.tx_id)
        self._recheck(expected)
        return out

    def in_turn(self, stx: SignedTx) -> bool:
        """Whether this pending transaction is its sender's next to commit (a correct
        primary can order it now: no nonce gap before it)."""
        return stx.tx.nonce == self._next_nonce(stx.tx.sender)

    def ready(self) -> bool:
        """Whether at least one transaction could be taken now."""
        return bool(self._ready)

    def committed(self, txs: list[SignedTx] | tuple[SignedTx, ...]) -> None:
        """Forget what a committed block carried and whatever it made stale."""
        senders = set()
        for stx in txs:
            self._drop(stx.tx_id)
            senders.add(stx.tx.sender)
        for sender in senders:
            nxt = self._next_nonce(sender)
            if self._taken.get(sender, 0) <= nxt:
                self._taken.pop(sender, None)
            stale = [tid for n, tid in self._slots.get(sender, {}).items() if n < nxt]
            for tid in stale:
                self._drop(tid)
        self._recheck(senders)

    def release(self, txs: list[SignedTx] | tuple[SignedTx, ...]) -> None:
        """Put back transactions of a proposal that did not commit (e.g. after a view change)."""
        for stx in txs:
            if stx.tx_id not in self._txs and stx.tx.nonce >= self._next_nonce(stx.tx.sender):
                self._txs[stx.tx_id] = stx
                self._slots.setdefault(stx.tx.sender, {})[stx.tx.nonce] = stx.tx_id
        self._taken.clear()
        self._recheck(list(self._slots))

    def _drop(self, tx_id: bytes) -> None:
        stx = self._txs.pop(tx_id, None)
        if stx is not None:
            slots = self._slots.get(stx.tx.sender)
            if slots is not None:
                slots.pop(stx.tx.nonce, None)
                if not slots:
                    del self._slots[stx.tx.sender]
                    self._ready.discard(stx.tx.sender)
