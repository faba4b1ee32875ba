"""The PBFT engine of a consortium node: drives the pure `consensus.Replica`
with the wall clock, the write-ahead log, the libp2p transport and the ledger.

Order per replica output (see `consensus.actions`): persist every record
(synced) → send → execute → fetch. Frames between nodes are canonical msgpack
maps, batched so that one frame carries everything for one peer at a time:

    {"t": "c", "m": [consensus message bytes, …]}   consensus messages
    {"t": "x", "txs": [signed tx bytes, …]}          client transactions, forwarded to the primary
    {"t": "f", "from": h, "to": h}                   please send committed blocks
    {"t": "b", "blocks": [[block bytes, commit bytes], …]}

Application checks the pure replica cannot make (the block extends our executed
head, its roots and time are right) happen here, before a PRE-PREPARE reaches
the replica: a proposal for a height we have not executed up to yet waits until
we have; an invalid one is dropped, and the request timer replaces its primary.
The primary proposes height h only once it has executed h-1, because header h
carries the state root after h-1 (DESIGN §3).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent import futures
from concurrent.futures import Future
from typing import Any

import msgpack

from consensus.actions import Broadcast, Execute, FetchBlocks, Persist, Ready, Send
from consensus.config import ReplicaConfig
from consensus.messages import PrePrepare, decode_message, encode_message
from consensus.records import StableRecord, compact, decode_record
from consensus.replica import Replica
from consensus.signing import Ed25519Signer, Ed25519Verifier
from node.server.config import NodeConfig
from node.server.core import NodeCore, now_ms
from p2p.service import P2PService
from primitives.block import Block, Commit
from primitives.errors import Code, GodownError
from primitives.tx import SignedTx

log = logging.getLogger("godown.pbft")

MAX_FETCH_BLOCKS = 64
MAX_FETCH_BYTES = 8 * 1024 * 1024
FORWARD_MAX_TXS = 2000
RESEND_AFTER_S = 10.0  # a forwarded transaction still pending this long goes to every validator
WAL_COMPACT_EVERY = 4  # stable checkpoints between write-ahead log compactions
MAX_FRAME = 48 * 1024 * 1024
STATUS_EVERY_TICKS = 10  # refresh what /v1/status shows of consensus (it lists peers: not free)


def _digest_of(payload: bytes) -> bytes | None:
    """The consensus digest of a payload: its block hash (None if it is no block)."""
    try:
        return Block.hash_of(payload)
    except GodownError:
        return None


def _parent_of(payload: bytes) -> bytes | None:
    """The block a payload extends (its prev_hash), so consensus keeps blocks linked
    across view changes."""
    try:
        return Block.header_of(payload).prev_hash
    except GodownError:
        return None


class ReplicaDriver:
    def __init__(self, core: NodeCore, config: NodeConfig) -> None:
        self.core = core
        self.config = config
        genesis = core.genesis
        params = genesis.consensus
        self.tick_s = params.tick_ms / 1000
        ticks = max(1, params.view_change_timeout_ms // params.tick_ms)
        rconf = ReplicaConfig(
            chain_id=genesis.chain_id,
            validators=genesis.validators,
            node_id=core.node_id,
            window=params.window,
            checkpoint_interval=params.checkpoint_interval,
            request_timeout=ticks,
            view_change_timeout=ticks,
            resend_interval=max(1, 500 // params.tick_ms),
            fetch_after=max(1, 300 // params.tick_ms),
        )
        validators = genesis.validator_keys()
        store = core.ledger.store
        self.replica = Replica(
            rconf,
            Ed25519Signer(core.key),
            Ed25519Verifier(validators),
            _digest_of,
            random.Random(core.node_id),
            records=store.wal_records(),
            last_executed=core.ledger.height,
            parent_of=_parent_of,
        )
        addrs = {p.id: p.p2p_addr for p in config.peers}
        peers = {v: (pub, addrs[v]) for v, pub in validators.items() if v in addrs}
        # VIEW-CHANGE and NEW-VIEW carry the prepared blocks above the stable checkpoint
        self.p2p = P2PService(
            core.key.sign_seed, config.p2p_port, peers, listen_host=config.p2p_host, max_frame=MAX_FRAME
        )
        self.max_txs = params.max_block_txs
        self.batch_timeout_s = params.batch_timeout_ms / 1000
        self.max_drift_ms = params.max_clock_drift_ms
        self.stall_s = params.view_change_timeout_ms / 2000
        self._alerted_at = 0.0  # when we last sent waiting transactions to every validator,
        self._alerted_view = -1  # and in which view
        self._inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._held: dict[int, tuple[str, PrePrepare]] = {}
        self._decoded: dict[bytes, Block] = {}  # proposals decoded while voting, until executed
        self._sig_checks: dict[bytes, list[Future[None]]] = {}  # proposals' signatures being checked
        self._tasks: set[asyncio.Task[None]] = set()
        self._outbox: list[bytes] = []  # admitted client transactions on their way to the primary
        self._forwarded_at: OrderedDict[bytes, float] = OrderedDict()  # tx id -> when last forwarded
        self._proposed: dict[int, list[SignedTx]] = {}
        self._proposed_at: dict[int, float] = {}  # our proposals: when, for the round-time metric
        self._ready_since: float | None = None
        self._stable_seen = 0
        self._wal_unsynced = False  # write-ahead records appended without a sync since
        self._ticks = 0
        self._fetch_turn = 0
        self._view = self.replica.view
        self._fetching_until = 0.0
        core.on_admitted.append(self._forward_tx)
        self._update_status()

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def on_frame(peer: str, frame: bytes) -> None:  # called on the p2p (trio) thread
            loop.call_soon_threadsafe(self._inbox.put_nowait, (peer, frame))

        self.p2p.set_on_frame(on_frame)
        await asyncio.to_thread(self.p2p.start)
        log.info("p2p listening", extra={"peer_id": str(self.p2p.peer_id), "port": self.config.p2p_port})

    async def stop(self) -> None:
        await asyncio.to_thread(self.p2p.stop)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            wait = next_tick - loop.time()
            if wait > 0:
                try:
                    item = await asyncio.wait_for(self._inbox.get(), wait)
                    self._on_frame(*item)
                except TimeoutError:
                    pass
            for _ in range(min(self._inbox.qsize(), 256)):
                self._on_frame(*self._inbox.get_nowait())
            if loop.time() >= next_tick:
                next_tick = max(next_tick + self.tick_s, loop.time() - self.tick_s)
                self._on_tick()
            self._maybe_propose()

    # ---- inputs -------------------------------------------------------------------------
    def _on_tick(self) -> None:
        core = self.core
        self._flush_forward()
        self._resend_stale()
        if not self.replica.is_primary and core.mempool.ready():
            self._perform(self.replica.expect_progress())
        self._perform(self.replica.tick())
        self._ticks += 1
        if self._ticks % STATUS_EVERY_TICKS == 0:
            self._update_status()

    def _on_frame(self, peer: str, frame: bytes) -> None:
        try:
            # frames are neither hashed nor signed, so a plain (bounded) decode will do;
            # what they carry — messages, transactions, blocks — is decoded strictly
            try:
                doc = msgpack.unpackb(frame, raw=False, max_ext_len=0)
            except Exception as exc:  # msgpack raises many unrelated types for bad input
                raise GodownError(Code.MALFORMED, f"frame is not msgpack ({exc.__class__.__name__})") from None
            kind = doc["t"] if isinstance(doc, dict) else None
            if kind == "c":
                for raw in doc["m"]:
                    self._on_message(peer, raw)
            elif kind == "x":
                self._on_forwarded(doc["txs"])
            elif kind == "f":
                self._serve_fetch(peer, int(doc["from"]), int(doc["to"]))
            elif kind == "b":
                for raw_block, raw_commit in doc["blocks"]:
                    self._perform(self.replica.on_fetched(raw_block, Commit.decode(raw_commit)))
            else:
                raise GodownError(Code.MALFORMED, f"unknown frame kind {kind!r}")
        except (GodownError, KeyError, TypeError, ValueError) as exc:
            log.warning("bad frame from peer", extra={"peer": peer, "error": str(exc)[:200]})

    def _on_message(self, peer: str, raw: bytes) -> None:
        msg = decode_message(raw)  # signed by its sender (the replica checks): peers may relay others' votes
        if isinstance(msg, PrePrepare) and not self._admit_proposal(peer, msg):
            if msg.height > self.core.ledger.height + 1:  # held until its parent executes: start meanwhile
                self._check_signatures_ahead(msg)
            return
        self._perform(self.replica.step(msg))
        if isinstance(msg, PrePrepare):
            self._check_signatures_ahead(msg)  # after our PREPARE went out: that is the critical path

    def _admit_proposal(self, peer: str, pp: PrePrepare) -> bool:
        """Check a proposal against our executed head; hold it if we are not there yet."""
        ledger = self.core.ledger
        if pp.height > ledger.height + 1:
            self._held[pp.height] = (peer, pp)
            return False
        if pp.height <= ledger.height:
            return True  # the replica refuses it as already committed
        try:
            block = self._decode(pp.payload)
            ledger.check_proposal(block, now_ms(), self.max_drift_ms)
        except GodownError as exc:
            log.warning(
                "proposal refused",
                extra={"peer": peer, "height": pp.height, "code": exc.code.value, "reason": exc.message},
            )
            return False
        return True

    def _check_signatures_ahead(self, pp: PrePrepare) -> None:
        """Start checking a proposal's signatures on worker threads as soon as it arrives
        (it may wait for our previous block to execute); execution waits for them."""
        if pp.payload in self._sig_checks or pp.height <= self.core.ledger.height:
            return
        try:
            block = self._decode(pp.payload)
        except GodownError:
            return  # refused as malformed when admitted
        self._sig_checks[pp.payload] = self.core.check_signatures(block.txs)

    def _decode(self, payload: bytes) -> Block:
        """Decode a proposal once, whether we first meet it to vote or to execute."""
        block = self._decoded.get(payload)
        if block is None:
            block = Block.decode(payload)
            self._decoded[payload] = block
        return block

    def _on_forwarded(self, raws: Iterable[bytes]) -> None:
        """Transactions another node admitted from its clients: ours to propose if we
        are the primary; on to the primary if the sender's view of it was stale. Their
        signatures are checked on worker threads first, while consensus goes on."""
        txs: list[SignedTx] = []
        for raw in raws:
            try:
                txs.append(SignedTx.decode(raw))
            except GodownError:
                pass
        self._tasks.add(task := asyncio.get_running_loop().create_task(self._admit_forwarded(txs)))
        task.add_done_callback(self._tasks.discard)

    async def _admit_forwarded(self, txs: list[SignedTx]) -> None:
        await self.core.check_signatures_now(txs)
        for stx in txs:
            try:
                self.core.submit(stx)
            except GodownError:
                pass  # duplicates and stale nonces are expected here

    # ---- forwarding client transactions to the primary ------------------------------------
    def _forward_tx(self, stx: SignedTx) -> None:
        """Queue an admitted transaction for the primary, unless we are it. Everything
        admitted in one turn of the event loop (e.g. one RPC batch) leaves as one frame
        right after it: py-libp2p's cost is per frame, the latency budget per round trip.
        The transaction stays in our mempool until it commits, so it can be forwarded
        again if a view change replaces the primary or the frame is lost."""
        r = self.replica
        if r.primary_id == self.core.node_id:
            return
        self._forwarded_at[stx.tx_id] = time.monotonic()
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush_forward)
        self._outbox.append(stx.encode())
        if len(self._outbox) >= FORWARD_MAX_TXS:
            self._flush_forward()

    def _flush_forward(self) -> None:
        if not self._outbox:
            return
        primary = self.replica.primary_id
        if primary != self.core.node_id:
            self._send_frame(primary, {"t": "x", "txs": self._outbox})
        self._outbox = []

    def _reforward(self, txs: Iterable[SignedTx]) -> None:
        for stx in txs:
            self._forward_tx(stx)
        self._flush_forward()

    def _resend_stale(self) -> None:
        """Forwarded transactions that still wait. If the primary looks gone — our stream
        to it is down, or we are in a view change — send them to every validator, as a
        PBFT client retransmits to all replicas: the other backups then hold them too,
        time the primary and join the view change, and the next primary has them. Else
        send the ones waiting `RESEND_AFTER_S` to the primary again (a frame lost on the
        way, or a primary that restarted with an empty mempool)."""
        since, mempool, r = self._forwarded_at, self.core.mempool, self.replica
        if not since:
            return
        now = time.monotonic()
        suspect = (r.in_view_change and self._alerted_view != r.view) or (
            now - self._alerted_at >= self.stall_s and r.primary_id not in self.p2p.connected_peers()
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
            frame = {"t": "x", "txs": [t.encode() for t in stale[i : i + FORWARD_MAX_TXS]]}
            self._send_frame(None if suspect else r.primary_id, frame)
        for stx in stale:
            since[stx.tx_id] = now

    # ---- proposing ----------------------------------------------------------------------
    def _maybe_propose(self) -> None:
        """Cut a block at `max_block_txs`, or once the oldest ready transaction has
        waited `batch_timeout_ms` (counted while the previous block was still in
        flight, too), and only on top of our executed head."""
        r, core = self.replica, self.core
        if not core.mempool.ready():
            self._ready_since = None
            return
        now = time.monotonic()
        if self._ready_since is None:
            self._ready_since = now
        if not r.can_propose or core.ledger.height != r.last_committed or r.in_flight_payloads():
            return
        if len(core.mempool) < self.max_txs and now - self._ready_since < self.batch_timeout_s:
            return
        txs = core.mempool.take(self.max_txs)
        if not txs:
            return
        block = core.ledger.build_block(txs, now_ms(), view=r.view, proposer=core.node_id)
        payload = block.encode()
        self._decoded[payload] = block
        self._proposed[block.height] = txs
        self._proposed_at[block.height] = time.monotonic()
        self._ready_since = None
        self._perform(r.propose(payload))

    # ---- outputs ------------------------------------------------------------------------
    def _perform(self, ready: Ready) -> None:
        """Persist → send → execute → fetch, in the replica's order."""
        records: list[bytes] = []
        broadcast: list[bytes] = []
        direct: dict[str, list[bytes]] = {}
        executes: list[Execute] = []
        fetches: list[FetchBlocks] = []
        stable = False
        for action in ready.actions:
            if isinstance(action, Persist):
                records.append(action.record)
                stable = stable or isinstance(decode_record(action.record), StableRecord)
            elif isinstance(action, Broadcast):
                broadcast.append(encode_message(action.message))
            elif isinstance(action, Send):
                direct.setdefault(action.to, []).append(encode_message(action.message))
            elif isinstance(action, Execute):
                executes.append(action)
            elif isinstance(action, FetchBlocks):
                fetches.append(action)
        if records or (self._wal_unsynced and (broadcast or direct)):
            self._persist(records, sync=bool(broadcast or direct))
        if broadcast:
            self._send_frame(None, {"t": "c", "m": broadcast})
        for peer, msgs in direct.items():
            self._send_frame(peer, {"t": "c", "m": msgs})
        if stable:
            self._stable_seen += 1
            if self._stable_seen % WAL_COMPACT_EVERY == 0:
                self._compact_wal()
        follow = [self._execute(action) for action in executes]
        for action in fetches:
            self._request_fetch(action)
        for more in follow:
            self._perform(more)
        if self.replica.view != self._view:
            self._on_view_changed()

    def _persist(self, records: list[bytes], sync: bool) -> None:
        """Write-ahead records are durable before anything that depends on them is sent:
        synced at once if this step sends, else left for the next synced write (the
        next send's, or the block commit that usually follows), saving an fsync per
        round. Nothing unsent is lost by a crash that forgets them."""
        self.core.ledger.store.wal_append_many(records, sync=sync)
        self._wal_unsynced = not sync

    def _execute(self, action: Execute) -> Ready:
        ledger = self.core.ledger
        if action.height <= ledger.height:
            return self.replica.on_executed(action.height, ledger.store.state_root_at(action.height) or b"")
        block = self._decode(action.payload)
        self._decoded.pop(action.payload, None)
        checks = self._sig_checks.pop(action.payload, None)
        if len(self._decoded) > 64:  # proposals that never committed
            self._decoded.clear()
            self._sig_checks.clear()
        if checks:
            futures.wait(checks)  # the rest of this block's signatures, on the workers' cores
        self.core.apply(block, action.certificate)
        self._wal_unsynced = False  # the block's commit was one synced write to the same store
        self._proposed.pop(action.height, None)
        started = self._proposed_at.pop(action.height, None)
        if started is not None:
            self.core.metrics.round_seconds.observe(time.monotonic() - started)
        ready = self.replica.on_executed(action.height, ledger.store.state_root)
        held = self._held.pop(ledger.height + 1, None)
        for h in [h for h in self._held if h <= ledger.height]:
            del self._held[h]
        if held is not None:
            peer, pp = held
            if self._admit_proposal(peer, pp):
                self._perform(ready)
                return self.replica.step(pp)
        return ready

    def _on_view_changed(self) -> None:
        self._view = self.replica.view
        self.core.metrics.view_changes.inc()
        self.core.metrics.view.set(self._view)
        log.info("view changed", extra={"view": self._view, "primary": self.replica.primary_id})
        self._update_status()
        for height in sorted(self._proposed):
            self.core.mempool.release(self._proposed[height])
        self._proposed.clear()
        self._proposed_at.clear()
        self._held.clear()
        self._forwarded_at.clear()
        self._reforward(self.core.mempool.pending())  # what is not committed, to the new primary

    def _send_frame(self, peer: str | None, doc: dict[str, Any]) -> None:
        frame = msgpack.packb(doc, use_bin_type=True)  # frames are not hashed: no canonical form needed
        try:
            if peer is None:
                self.p2p.broadcast(frame)
            else:
                self.p2p.send(peer, frame)
        except GodownError as exc:
            log.warning("frame not sent", extra={"peer": peer, "code": exc.code.value})

    # ---- catch-up -----------------------------------------------------------------------
    def _request_fetch(self, action: FetchBlocks) -> None:
        if not action.peers:
            return
        peer = action.peers[self._fetch_turn % len(action.peers)]
        self._fetch_turn += 1
        to = min(action.to_height, action.from_height + MAX_FETCH_BLOCKS - 1)
        self._send_frame(peer, {"t": "f", "from": action.from_height, "to": to})
        self._fetching_until = time.monotonic() + 1.0

    def _serve_fetch(self, peer: str, start: int, end: int) -> None:
        store = self.core.ledger.store
        blocks: list[list[bytes]] = []
        size = 0
        for h in range(max(1, start), min(end, store.head_height, start + MAX_FETCH_BLOCKS - 1) + 1):
            raw, commit = store.get_block_bytes(h), store.get_commit(h)
            if raw is None or commit is None:
                break
            size += len(raw)
            blocks.append([raw, commit.encode()])
            if size > MAX_FETCH_BYTES:
                break
        if blocks:
            self._send_frame(peer, {"t": "b", "blocks": blocks})

    # ---- write-ahead log ----------------------------------------------------------------
    def _compact_wal(self) -> None:
        """Rewrite the write-ahead log with what a restart still needs (appended and
        synced first, the old records dropped after)."""
        store = self.core.ledger.store
        entries = store.wal_entries()
        if not entries:
            return
        kept = compact([raw for _, raw in entries])
        store.wal_append_many(kept)
        store.wal_truncate_below(entries[-1][0] + 1)

    def _update_status(self) -> None:
        r = self.replica
        peers = self.p2p.connected_peers()
        self.core.metrics.peers.set(len(peers))
        self.core.engine_status = {
            "view": r.view,
            "primary": r.primary_id,
            "in_view_change": r.in_view_change,
            "stable_checkpoint": r.stable_checkpoint,
            "peers": peers,
            "sync": "catching up" if time.monotonic() < self._fetching_until else "synced",
        }
