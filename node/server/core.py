"""What every node does whatever its consensus engine: admit transactions, apply
committed blocks, answer queries, notify subscribers and waiting clients.

The engines (`node/server/solo.py` for one validator, `node/server/pbft/` for PBFT)
decide *which* block commits; they all hand it to `NodeCore.apply`.

Storage faults (docs/storage-faults.md): while free space on the data dir is below its
reserve, `submit` refuses with `disk_full` (HTTP 507) and accepts again by itself once
space returns; a block that cannot be stored, or whose execution finds the store
unreadable, ends the process (`stop_for_storage_fault`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

import contracts
from node.server.events import EventBus, height_events
from node.server.ledger import Ledger, stop_for_storage_fault
from node.server.mempool import Mempool
from node.server.metrics import NodeMetrics
from node.server.sigpool import SignaturePool
from primitives.block import Block, Commit
from primitives.errors import VOID_RESULTS, Code, GodownError, NodeFault, Rejected
from primitives.genesis import Genesis
from primitives.keys import KeyPair
from primitives.tx import SignedTx
from storage.kv import WriteFailed

log = logging.getLogger("godown.node")


def now_ms() -> int:
    return int(time.time() * 1000)


class NodeCore:
    def __init__(
        self,
        name: str,
        key: KeyPair,
        genesis: Genesis,
        ledger: Ledger,
        mempool_max: int = 200_000,
        member_id: str = "",
    ) -> None:
        self.name = name
        self.key = key  # the node's key, not its member's
        self.member_id = member_id  # the member running this node
        self.genesis = genesis
        self.ledger = ledger
        self.metrics = NodeMetrics()
        self.events = EventBus()
        self.mempool = Mempool(self._admit, self._next_nonce, mempool_max)
        self.signatures = SignaturePool(ledger.signatures)
        self.tx_arrived = asyncio.Event()
        self._waiters: dict[bytes, list[asyncio.Future[dict[str, Any]]]] = {}
        self.engine_status: dict[str, Any] = {}
        self._space_low = False  # last free-space verdict, to log each change once
        self.on_admitted: list[Callable[[SignedTx], None]] = []  # e.g. forward to the primary
        self.metrics.height.set(ledger.height)

    @property
    def node_id(self) -> str:
        return self.key.id

    def _admit(self, stx: SignedTx) -> None:
        self.ledger.admit(stx, now_ms())

    def _next_nonce(self, sender: str) -> int:
        return contracts.next_nonce(self.ledger.state, sender)

    # --- transactions -------------------------------------------------------
    def submit(self, stx: SignedTx) -> None:
        """Admit one transaction to the mempool (a client's or one another node forwarded);
        raises `Rejected` with its code, or `disk_full` while free space is below the reserve."""
        self._require_room()
        try:
            self.mempool.add(stx)
        except GodownError as exc:
            if exc.code is Code.BAD_NONCE and self.ledger.store.get_tx(stx.tx_id) is not None:
                exc = Rejected(Code.DUPLICATE, "transaction already committed")  # a replay, said plainly
            self.metrics.refused.labels(exc.code.value).inc()
            raise exc from None
        self.metrics.admitted.inc()
        self.metrics.show_mempool(len(self.mempool), self.mempool.capacity)
        self.tx_arrived.set()
        for hook in self.on_admitted:
            hook(stx)

    def _require_room(self) -> None:
        """Refuse new work while the data dir's filesystem is below its reserve; log each
        change of verdict once (not once per refused transaction)."""
        watch = self.ledger.space
        if watch is None:
            return
        space = watch.sample()
        if space.low != self._space_low:
            self._space_low = space.low
            fields = {"free_bytes": space.free, "reserve_bytes": space.reserve, "path": str(space.path)}
            if space.low:
                log.error("disk nearly full: refusing new transactions", extra={"code": Code.DISK_FULL.value, **fields})
            else:
                log.info("disk space back: accepting transactions again", extra=fields)
        if space.low:
            self.metrics.refused.labels(Code.DISK_FULL.value).inc()
            raise space.refusal()

    def check_signatures(self, txs: Iterable[SignedTx]) -> list[Future[None]]:
        """Start checking these signatures on worker threads (see `node.server.sigpool`)."""
        return self.signatures.check(self.ledger.state, txs)

    async def check_signatures_now(self, txs: Iterable[SignedTx]) -> None:
        """Check these signatures on worker threads while the event loop goes on."""
        futs = self.check_signatures(txs)
        if futs:
            await asyncio.gather(*(asyncio.wrap_future(f) for f in futs))

    def close(self) -> None:
        self.signatures.close()
        self.ledger.close()

    def wait_committed(self, tx_id: bytes) -> asyncio.Future[dict[str, Any]]:
        """A future resolved with the tx's location and result once it commits."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        found = self.tx_location(tx_id)
        if found is not None:
            fut.set_result(found)
        else:
            waiters = self._waiters.setdefault(tx_id, [])
            waiters.append(fut)
            fut.add_done_callback(lambda f: self._forget(tx_id, f))
        return fut

    def _forget(self, tx_id: bytes, fut: asyncio.Future[dict[str, Any]]) -> None:
        waiters = self._waiters.get(tx_id)
        if waiters is not None and fut.cancelled():
            if fut in waiters:
                waiters.remove(fut)
            if not waiters:
                del self._waiters[tx_id]

    def tx_location(self, tx_id: bytes) -> dict[str, Any] | None:
        loc = self.ledger.store.get_tx(tx_id)
        if loc is None:
            return None
        return {"tx_id": tx_id.hex(), "height": loc.height, "index": loc.index, "result": loc.result}

    # --- blocks ---------------------------------------------------------------
    def apply(self, block: Block, commit: Commit, outcome: contracts.BlockOutcome | None = None) -> None:
        """Execute (unless already executed) and persist a committed block, then tell everyone."""
        c0 = time.thread_time()
        t0 = time.perf_counter()
        try:
            if outcome is None:
                outcome = self.ledger.execute(block)
            t1 = time.perf_counter()
            c1 = time.thread_time()
            self.ledger.commit(block, commit, outcome)
        except NodeFault as fault:  # never skip a committed block: stop, recover from disk at the next start
            if not isinstance(fault, WriteFailed) and fault.code is not Code.STORE_DAMAGED:
                raise
            stop_for_storage_fault(fault, f"applying committed block {block.height}", height=block.height)
        t2 = time.perf_counter()
        c2 = time.thread_time()
        self.mempool.committed([t for t, r in zip(block.txs, outcome.results) if r not in VOID_RESULTS])
        m = self.metrics
        m.execute_seconds.observe(t1 - t0)
        m.commit_seconds.observe(t2 - t1)
        m.blocks.inc()
        m.height.set(block.height)
        m.show_mempool(len(self.mempool), self.mempool.capacity)
        for code, count in Counter(outcome.results).items():
            m.txs.labels(code).inc(count)
        log.info(
            "block committed",
            extra={
                "height": block.height,
                "txs": len(block.txs),
                "exec_ms": round((t1 - t0) * 1000, 1),
                "commit_ms": round((t2 - t1) * 1000, 1),
                "exec_cpu_ms": round((c1 - c0) * 1000, 1),
                "commit_cpu_ms": round((c2 - c1) * 1000, 1),
            },
        )
        self._notify(block, outcome)

    def _notify(self, block: Block, outcome: contracts.BlockOutcome) -> None:
        """Resolve waiting clients, count alarms, and publish events — built only when
        someone listens, the per-transaction ones only when a subscriber wants them
        (this runs for every committed block)."""
        if self._waiters:
            for index, (stx, code) in enumerate(zip(block.txs, outcome.results)):
                waiters = self._waiters.pop(stx.tx_id, None) if code not in VOID_RESULTS else None
                if not waiters:
                    continue
                loc = {"tx_id": stx.tx_id_hex, "height": block.height, "index": index, "result": code}
                for fut in waiters:
                    if not fut.done():
                        fut.set_result(loc)
        self.metrics.alarms.inc(sum(1 for ev in outcome.events if ev.get("kind") == "alarm_raised"))
        if self.events.subscribers > 0:
            with_txs = self.events.wants("tx")
            self.events.publish(height_events(block, outcome.results, outcome.events, with_txs))

    def status(self) -> dict[str, Any]:
        return {
            "chain_id": self.genesis.chain_id,
            "node_id": self.node_id,
            "member_id": self.member_id,
            "name": self.name,
            "height": self.ledger.height,
            "head_hash": self.ledger.head_hash().hex(),
            "state_root": self.ledger.store.state_root.hex(),
            # the state (and results) after the head are certified by the head's own header;
            # false until the next block, an empty one on a quiet chain (docs/protocol.md)
            "state_certified": self.ledger.head().settled,
            "validators": [v.node_id for v in contracts.validator_schedule(self.ledger.state)[0]],
            "mempool": len(self.mempool),
            "storage": self._storage_status(),
            **self.engine_status,
        }

    def _storage_status(self) -> dict[str, Any]:
        """Free space and the reserve of the data dir's filesystem, and whether new
        transactions are accepted ({} for a store in memory)."""
        watch = self.ledger.space
        if watch is None:
            return {}
        space = watch.sample()
        return {"free_bytes": space.free, "reserve_bytes": space.reserve, "accepting": not space.low}
