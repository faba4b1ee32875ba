"""Client transactions on their way to the primary. A backup that admits a
transaction forwards it to the primary only (not to every validator), in one
frame per event-loop turn, and keeps it in its mempool until it commits, so that
it can be forwarded again if the frame is lost or a view change replaces the
primary. When the primary looks gone, waiting transactions go to every
validator, as a PBFT client retransmits to all replicas."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from consensus.replica import Replica
from node.server.core import NodeCore
from node.server.pbft.frames import FORWARDED_TXS
from primitives.tx import SignedTx

log = logging.getLogger("godown.pbft")

FORWARD_MAX_TXS = 2000
RESEND_AFTER_S = 10.0  # a forwarded transaction still pending this long goes to the primary again

SendFrame = Callable[[str | None, dict[str, Any]], None]
"""Send a frame to one peer, or to every validator when the peer is None."""


class Forwarder:
    """Forwards admitted client transactions to the primary, and again when they wait."""

    def __init__(
        self,
        core: NodeCore,
        replica: Replica,
        send: SendFrame,
        connected: Callable[[], list[str]],
        stall_s: float,
    ) -> None:
        self.core = core
        self.replica = replica
        self.send = send
        self.connected = connected
        self.stall_s = stall_s
        self._alerted_at = 0.0  # when we last sent waiting transactions to every validator,
        self._alerted_view = -1  # and in which view
        self._outbox: list[bytes] = []  # admitted client transactions on their way to the primary
        self._forwarded_at: OrderedDict[bytes, float] = OrderedDict()  # tx id -> when last forwarded

    def forward(self, stx: SignedTx) -> None:
        """Queue an admitted transaction for the primary, unless we are it. Everything
        admitted in one turn of the event loop (e.g. one RPC batch) leaves as one frame
        right after it: py-libp2p's cost is per frame, the latency budget per round trip.
        The transaction stays in our mempool until it commits, so it can be forwarded
        again if a view change replaces the primary or the frame is lost."""
        r = self.replica
        if r.primary_id == self.core.node_id and not r.in_view_change:
            return
        self._forwarded_at[stx.tx_id] = time.monotonic()
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self.flush)
        self._outbox.append(stx.encode())
        if len(self._outbox) >= FORWARD_MAX_TXS:
            self.flush()

    def flush(self) -> None:
        if not self._outbox:
            return
        r = self.replica
        if r.in_view_change:  # whoever is primary next (perhaps us, if they follow) needs them: to everyone
            self.send(None, {"t": FORWARDED_TXS, "txs": self._outbox})
        elif r.primary_id != self.core.node_id:
            self.send(r.primary_id, {"t": FORWARDED_TXS, "txs": self._outbox})
        self._outbox = []

    def on_view_changed(self, pending: Iterable[SignedTx]) -> None:
        """Everything not yet committed, to the new primary."""
        self._forwarded_at.clear()
        for stx in pending:
            self.forward(stx)
        self.flush()

    def relay_to_all(self, txs: Iterable[SignedTx]) -> None:
        """Waiting transactions to every validator (a request past half its deadline): the
        other backups then hold them too and time the primary themselves."""
        raws = [stx.encode() for stx in txs]
        log.info("relaying waiting transactions to every validator", extra={"txs": len(raws)})
        for i in range(0, len(raws), FORWARD_MAX_TXS):
            self.send(None, {"t": FORWARDED_TXS, "txs": raws[i : i + FORWARD_MAX_TXS]})

    def resend_stale(self) -> None:
        """Forwarded transactions that still wait. If the primary looks gone — our stream
        to it is down, or we are in a view change — send them to every validator, as a
        PBFT client retransmits to all replicas: the other backups then hold them too,
        time the primary and join the view change, and the next primary has them. Else
        send the ones waiting `RESEND_AFTER_S` to the primary again (a frame lost on the
        way, or a primary that restarted with an empty mempool)."""
        since, mempool, r = self._forwarded_at, self.core.mempool, self.replica
        if not since:
            return
        if r.primary_id == self.core.node_id and not r.in_view_change:
            since.clear()  # ours to propose now: sending them to every validator (we are no peer
            return  # of our own, so "the primary looks gone") only floods the others
        now = time.monotonic()
        suspect = (r.in_view_change and self._alerted_view != r.view) or (
            now - self._alerted_at >= self.stall_s and r.primary_id not in self.connected()
        )
        wait = 0.0 if suspect else RESEND_AFTER_S
        stale: list[SignedTx] = []
        while since:
            tx_id, at = next(iter(since.items()))
            stx = mempool.get(tx_id)
            if stx is not None and now - at < wait:
                break
            del since[tx_id]
            if stx is not None:
                stale.append(stx)
        if not stale:
            return
        if suspect:
            self._alerted_at, self._alerted_view = now, r.view
        log.info("forwarding waiting transactions again", extra={"txs": len(stale), "to_all": suspect})
        for i in range(0, len(stale), FORWARD_MAX_TXS):
            frame = {"t": FORWARDED_TXS, "txs": [t.encode() for t in stale[i : i + FORWARD_MAX_TXS]]}
            self.send(None if suspect else r.primary_id, frame)
        for stx in stale:
            since[stx.tx_id] = now
