"""The PBFT engine of a consortium node: drives the pure `consensus.Replica`
with the wall clock, the write-ahead log, the libp2p transport and the ledger.

Order per replica output (see `consensus.actions`): persist every record
(synced) → send → execute → fetch. What travels between nodes is in `frames`.

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
from collections.abc import Iterable
from concurrent import futures
from typing import Any

from consensus.actions import Broadcast, Execute, FetchBlocks, Persist, Ready, Send
from consensus.config import ReplicaConfig
from consensus.messages import PrePrepare, decode_message, encode_message
from consensus.replica import Replica
from consensus.signing import Ed25519Signer, Ed25519Verifier
from node.server.config import NodeConfig
from node.server.core import NodeCore, now_ms
from node.server.health import EngineHealth
from node.server.pbft.catchup import BlockFetcher
from node.server.pbft.deadlines import RequestDeadlines
from node.server.pbft.forwarding import Forwarder
from node.server.pbft.frames import BLOCKS, CONSENSUS, FETCH, FORWARDED_TXS, MAX_FRAME, decode_frame, encode_frame
from node.server.pbft.membership import MembershipFollower, allowlist, initial_changes
from node.server.pbft.misbehaviour import Misbehaviour, Outgoing, Saboteur
from node.server.pbft.proposals import Proposals, digest_of, parent_of
from node.server.pbft.statesync import CHUNK, CHUNKED, OFFER, OFFERED, SnapshotServer
from node.server.pbft.wal import WriteAheadLog
from p2p.service import P2PService
from primitives.block import Commit
from primitives.errors import Code, GodownError, NodeFault
from primitives.tx import SignedTx

log = logging.getLogger("godown.pbft")

MAX_INBOX_FRAMES = 4096
MAX_INBOX_BYTES = 256 * 1024 * 1024
REQUEST_TIMEOUT_FACTOR = 2
"""A client request's deadline at a backup, in view-change timeouts (see `deadlines`)."""
STATUS_EVERY_TICKS = 10  # refresh what /v1/status shows of consensus (it lists peers: not free)


def _replica_config(core: NodeCore, validators: tuple[str, ...]) -> ReplicaConfig:
    """The replica's parameters from genesis; timeouts become tick counts. The set may
    change by governance (`reconfigurable`), and this node may not be in it yet."""
    genesis = core.genesis
    params = genesis.consensus
    ticks = max(1, params.view_change_timeout_ms // params.tick_ms)
    return ReplicaConfig(
        chain_id=genesis.chain_id,
        validators=validators,
        reconfigurable=True,
        node_id=core.node_id,
        window=params.window,
        checkpoint_interval=params.checkpoint_interval,
        request_timeout=ticks,
        view_change_timeout=ticks,
        resend_interval=max(1, 500 // params.tick_ms),
        fetch_after=max(1, 300 // params.tick_ms),
    )


class ReplicaDriver:
    def __init__(self, core: NodeCore, config: NodeConfig, misbehaviour: Misbehaviour | None = None) -> None:
        self.core = core
        self.config = config
        self.saboteur: Saboteur | None = None
        params = core.genesis.consensus
        self.tick_s = params.tick_ms / 1000
        ids, keys, changes = initial_changes(core)
        store = core.ledger.store
        self.replica = Replica(
            _replica_config(core, ids),
            Ed25519Signer(core.key),
            Ed25519Verifier(keys),
            digest_of,
            random.Random(core.node_id),
            records=store.wal_records(),
            last_executed=core.ledger.height,
            parent_of=parent_of,
            changes=changes,
        )
        peers = allowlist(core)
        self.p2p = P2PService(
            core.key.sign_seed, config.p2p_port, peers, listen_host=config.p2p_host, max_frame=MAX_FRAME
        )
        self.max_txs = params.max_block_txs
        self.batch_timeout_s = params.batch_timeout_ms / 1000
        self.max_drift_ms = params.max_clock_drift_ms
        self.proposals = Proposals(core, max_held=2 * params.window)
        self.forwarder = Forwarder(
            core, self.replica, self._send_frame, self.p2p.connected_peers, params.view_change_timeout_ms / 2000
        )
        self.fetcher = BlockFetcher(store, self._send_frame)
        self.wal = WriteAheadLog(store)
        self.membership = MembershipFollower(core, self.replica, self.p2p)
        self.snapshots = SnapshotServer(store, core.genesis.chain_id, config.snapshot_every, self._send_frame)
        self._inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()  # bounded in `_enqueue`
        self._inbox_bytes = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._proposed: dict[int, list[SignedTx]] = {}
        self._proposed_at: dict[int, float] = {}  # our proposals: when, for the round-time metric
        self._ready_since: float | None = None
        self._ticks = 0
        self._view = self.replica.view
        core.on_admitted.append(self.forwarder.forward)
        self.deadlines = RequestDeadlines(
            REQUEST_TIMEOUT_FACTOR * params.view_change_timeout_ms / 1000, max_tracked=config.mempool_max_txs
        )
        self._forwarded_tail: asyncio.Task[None] | None = None  # the last forwarded frame's admission
        self._relaying = False  # admitting transactions another node forwarded (not our clients')
        core.on_admitted.append(lambda stx: self.deadlines.arrived(stx.tx_id, time.monotonic(), not self._relaying))
        if misbehaviour is not None:  # fault tests only
            self.p2p.max_frame = 2 * MAX_FRAME  # so that `garbage` can send frames above the limit
            self.saboteur = Saboteur(
                misbehaviour, core, self.p2p.connected_peers, lambda: self.replica.view, self._send_raw
            )
        self._update_status()

    # ---- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def on_frame(peer: str, frame: bytes) -> None:  # called on the p2p (trio) thread
            loop.call_soon_threadsafe(self._enqueue, peer, frame)

        self.p2p.set_on_frame(on_frame)
        await asyncio.to_thread(self.p2p.start)
        log.info("p2p listening", extra={"peer_id": str(self.p2p.peer_id), "port": self.config.p2p_port})

    async def stop(self) -> None:
        await asyncio.to_thread(self.p2p.stop)
        self.snapshots.close()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            wait = next_tick - loop.time()
            if wait > 0:
                try:
                    item = await asyncio.wait_for(self._inbox.get(), wait)
                    self._take(*item)
                except TimeoutError:
                    pass
            for _ in range(min(self._inbox.qsize(), 256)):
                self._take(*self._inbox.get_nowait())
            if loop.time() >= next_tick:
                next_tick = max(next_tick + self.tick_s, loop.time() - self.tick_s)
                self._on_tick()
            self._maybe_propose()

    # ---- inputs -------------------------------------------------------------------------
    def _enqueue(self, peer: str, frame: bytes) -> None:
        """Frames from the p2p thread, bounded by count and bytes: past the bound a frame is
        dropped (consensus re-sends what matters) and counted."""
        if self._inbox.qsize() >= MAX_INBOX_FRAMES or self._inbox_bytes + len(frame) > MAX_INBOX_BYTES:
            self.core.metrics.frames_dropped.inc()
            return
        self._inbox_bytes += len(frame)
        self._inbox.put_nowait((peer, frame))

    def _take(self, peer: str, frame: bytes) -> None:
        self._inbox_bytes -= len(frame)
        self._on_frame(peer, frame)

    def _on_tick(self) -> None:
        core = self.core
        self.forwarder.flush()
        self.forwarder.resend_stale()
        if not self.replica.is_primary and core.mempool.ready():
            self._perform(self.replica.expect_progress())
        self._check_deadlines()
        self._perform(self.replica.tick())
        if self.saboteur is not None:
            self._send_all(self.saboteur.tick())
        self._ticks += 1
        if self._ticks % STATUS_EVERY_TICKS == 0:
            self._update_status()

    def _check_deadlines(self) -> None:
        """A backup's per-request deadlines (see `deadlines`): relay, then change the view."""
        r = self.replica
        if r.is_primary or not r.is_validator or r.in_view_change:
            return
        verdict = self.deadlines.check(self.core.mempool, time.monotonic())
        if verdict.relay:
            self.forwarder.relay_to_all(verdict.relay)
        if verdict.overdue:
            log.warning("a client request is past its deadline: asking for a view change", extra={"view": r.view})
            self.core.metrics.requests_overdue.inc()
            self._perform(r.request_overdue())
        elif verdict.suspect:
            self._perform(r.request_suspect())

    def _on_frame(self, peer: str, frame: bytes) -> None:
        try:
            kind, doc = decode_frame(frame)
            if kind == CONSENSUS:
                for raw in doc["m"]:
                    self._on_message(peer, raw)
            elif kind == FORWARDED_TXS:
                self._on_forwarded(doc["txs"])
            elif kind == FETCH:
                self.fetcher.serve(peer, int(doc["from"]), int(doc["to"]))
            elif kind == BLOCKS:
                for raw_block, raw_commit in doc["blocks"]:
                    self._perform(self.replica.on_fetched(raw_block, Commit.decode(raw_commit)))
            elif kind == OFFER:
                self.snapshots.on_offer_request(peer, int(doc["height"]))
            elif kind == CHUNK:
                self.snapshots.on_chunk_request(peer, int(doc["height"]), int(doc["index"]))
            elif kind in (OFFERED, CHUNKED):
                pass  # late answers to our state sync, which is over
            else:
                raise GodownError(Code.MALFORMED, f"unknown frame kind {kind!r}")
        except NodeFault:
            raise  # this node's own fault (its disk, say), not the peer's: the engine stops
        except (GodownError, KeyError, TypeError, ValueError) as exc:
            log.warning("bad frame from peer", extra={"peer": peer, "error": str(exc)[:200]})

    def _on_message(self, peer: str, raw: bytes) -> None:
        msg = decode_message(raw)  # signed by its sender (the replica checks): peers may relay others' votes
        if isinstance(msg, PrePrepare):
            if not self.replica.authentic_proposal(msg):
                self._perform(self.replica.step(msg))  # refused there with its code (or a stale duplicate)
                return
            if msg.height > self.core.ledger.height + 1:  # held until its parent executes: start meanwhile
                if self.proposals.hold(peer, msg):
                    self.proposals.check_signatures_ahead(msg)
                return
            if not self._admit_proposal(peer, msg):
                return
        self._perform(self.replica.step(msg))
        if isinstance(msg, PrePrepare):
            self.proposals.check_signatures_ahead(msg)  # after our PREPARE went out: that is the critical path

    def _admit_proposal(self, peer: str, pp: PrePrepare) -> bool:
        """Check an authentic proposal for the height after our executed head against it."""
        ledger = self.core.ledger
        if pp.height <= ledger.height:
            return True  # the replica refuses it as already committed
        try:
            block = self.proposals.decode(pp.payload)
            ledger.check_proposal(block, now_ms(), self.max_drift_ms)
        except GodownError as exc:
            log.warning(
                "proposal refused",
                extra={"peer": peer, "height": pp.height, "code": exc.code.value, "reason": exc.message},
            )
            return False
        return True

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
        previous = self._forwarded_tail
        self._tasks.add(task := asyncio.get_running_loop().create_task(self._admit_forwarded(txs, previous)))
        task.add_done_callback(self._tasks.discard)
        self._forwarded_tail = task

    async def _admit_forwarded(self, txs: list[SignedTx], previous: asyncio.Task[None] | None) -> None:
        """Signatures are checked concurrently with earlier frames', but the frames are
        admitted in the order they came: a small frame checked before a large earlier
        one would otherwise overtake it, and its sender's request deadlines would see
        their own older transactions passed over by a correct primary (a false view change)."""
        await self.core.check_signatures_now(txs)
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        self._relaying = True
        try:
            for stx in txs:
                try:
                    self.core.submit(stx)
                except GodownError:
                    pass  # duplicates and stale nonces are expected here
        finally:
            self._relaying = False

    # ---- proposing ----------------------------------------------------------------------
    def _maybe_propose(self) -> None:
        """Cut a block at `max_block_txs`, or once the oldest ready transaction has
        waited `batch_timeout_ms` (counted while the previous block was still in
        flight, too), and only on top of our executed head; with nothing to propose, the
        one empty block that certifies an unsettled head once the chain is quiet."""
        core = self.core
        if not core.mempool.ready():
            self._ready_since = None
            if self._may_propose() and core.ledger.wants_empty_block(now_ms()):
                self._propose([])
            return
        now = time.monotonic()
        if self._ready_since is None:
            self._ready_since = now
        if not self._may_propose():
            return
        if len(core.mempool) < self.max_txs and now - self._ready_since < self.batch_timeout_s:
            return
        txs = core.mempool.take(self.max_txs)
        if self.saboteur is not None:
            txs, back = self.saboteur.choose(txs)
            core.mempool.release(back)
        if txs:
            self._propose(txs)

    def _may_propose(self) -> bool:
        """Primary of the view, on top of our executed head, with nothing of ours in flight."""
        r = self.replica
        return r.can_propose and self.core.ledger.height == r.last_committed and not r.in_flight_payloads()

    def _propose(self, txs: list[SignedTx]) -> None:
        r, core = self.replica, self.core
        block = core.ledger.build_block(txs, now_ms(), view=r.view, proposer=core.node_id)
        payload = block.encode()
        self.proposals.remember(payload, block)
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
                stable = stable or action.stable
            elif isinstance(action, Broadcast):
                broadcast.append(encode_message(action.message))
            elif isinstance(action, Send):
                direct.setdefault(action.to, []).append(encode_message(action.message))
            elif isinstance(action, Execute):
                executes.append(action)
            elif isinstance(action, FetchBlocks):
                fetches.append(action)
        if records or (self.wal.unsynced and (broadcast or direct)):
            self.wal.persist(records, sync=bool(broadcast or direct))
        if broadcast:
            self._send_frame(None, {"t": CONSENSUS, "m": broadcast})
        for peer, msgs in direct.items():
            self._send_frame(peer, {"t": CONSENSUS, "m": msgs})
        if stable:
            self.wal.on_stable_checkpoint()
        follow = [self._execute(action) for action in executes]
        for action in fetches:
            self.fetcher.request(action)
        for more in follow:
            self._perform(more)
        if self.replica.view != self._view:
            self._on_view_changed()

    def _execute(self, action: Execute) -> Ready:
        ledger = self.core.ledger
        if action.height <= ledger.height:
            return self.replica.on_executed(action.height, ledger.store.state_root_at(action.height) or b"")
        block, checks = self.proposals.take_for_execution(action.payload)
        if checks:
            futures.wait(checks)  # the rest of this block's signatures, on the workers' cores
        self.core.apply(block, action.certificate)
        self.deadlines.committed(block.txs, self.core.mempool, time.monotonic())
        self.wal.synced_by_commit()
        self.snapshots.on_commit(action.height)
        scheduled = self.membership.after_execute(action.height)
        if scheduled is not None:
            self._perform(scheduled)
        self._proposed.pop(action.height, None)
        started = self._proposed_at.pop(action.height, None)
        if started is not None:
            self.core.metrics.round_seconds.observe(time.monotonic() - started)
        ready = self.replica.on_executed(action.height, ledger.store.state_root)
        held = self.proposals.take_held(ledger.height + 1)
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
        self.proposals.drop_held()
        self.deadlines.new_view(time.monotonic())
        # In a view change the forwarder sends everything pending to every validator (as a PBFT
        # client retransmits to all replicas), so the other backups hold client work and time the
        # old primary too, even when we are the next primary, to whom nothing would be forwarded.
        pending = self.core.mempool.pending()
        self.forwarder.on_view_changed(pending)

    def _send_frame(self, peer: str | None, doc: dict[str, Any]) -> None:
        if self.saboteur is not None:
            self._send_all(self.saboteur.outgoing(peer, doc))
        else:
            self._send_doc(peer, doc)

    def _send_all(self, frames: Outgoing) -> None:
        for peer, doc in frames:
            self._send_doc(peer, doc)

    def _send_raw(self, peer: str, frame: bytes) -> None:
        try:
            self.p2p.send(peer, frame)
        except GodownError:
            pass

    def _send_doc(self, peer: str | None, doc: dict[str, Any]) -> None:
        frame = encode_frame(doc)
        try:
            if peer is None:
                self.p2p.broadcast(frame)
            else:
                self.p2p.send(peer, frame)
        except GodownError as exc:
            log.warning("frame not sent", extra={"peer": peer, "code": exc.code.value})

    def _update_status(self) -> None:
        """Refresh what /v1/status and /v1/ready show of consensus, and its gauges."""
        r, core = self.replica, self.core
        peers = self.p2p.connected_peers()
        health = EngineHealth(
            core.node_id, r.validators, frozenset(peers), self.fetcher.behind(core.ledger.height), r.in_view_change
        )
        core.metrics.show_consensus(health)
        core.engine_status = {
            "view": r.view,
            "primary": r.primary_id,
            "in_view_change": r.in_view_change,
            "stable_checkpoint": r.stable_checkpoint,
            "peers": peers,
            "sync": "catching up" if self.fetcher.catching_up else "synced",
            "snapshot": self.snapshots.offer(),
            **health.status_fields(),
        }
