"""The node's libp2p transport, run on its own thread behind a narrow seam.

py-libp2p runs on trio; the node runs on asyncio. `P2PService` owns one
dedicated thread running `trio.run` with a libp2p host (Noise only, yamux only,
identity = the node's Ed25519 signing key). The node talks to it through three
thread-safe calls and a callback, and never sees a libp2p type:

- `send(member_id, frame)` / `broadcast(frame)` enqueue and return at once;
- `on_frame(member_id, frame)` is called on the trio thread for every frame
  received (hop it onto asyncio with `loop.call_soon_threadsafe`), or, with no
  callback, frames wait in `inbox` (a `queue.SimpleQueue`);
- `connected_peers()` lists the members we currently have a stream to.

Wire shape, chosen from measurements (see /work/shared/DEPENDENCIES.md): one
long-lived connection per pair of members (the member whose peer id sorts
lower dials, the other waits for it), and on it one long-lived outbound stream
per direction. Each stream carries length-prefixed frames (`framing`);
whatever is queued for a peer goes out in one write of up to `batch_bytes`,
because py-libp2p's cost is per write, not per byte. A stream that fails or
is reset (yamux resets one after 5 s without send window) is reopened with
exponential back-off capped at `MAX_BACKOFF`; every dial and stream opening
has a timeout, since a misbehaving peer can make `connect()` hang.

Each peer's outbound queue is bounded (frames and bytes); when full the
oldest frames are dropped and counted (`stats()`), because consensus
retransmits on its own timers and a stale frame is worth less than a fresh
one. Frames queued while a peer is away are sent when it returns; a batch
whose write fails is dropped, not replayed, so no frame is ever delivered
twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import trio
from libp2p import new_host
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.network.exceptions import SwarmException
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr

from p2p.allowlist import AllowlistNoise
from p2p.framing import MAX_FRAME_DEFAULT, FrameDecoder, encode_frames
from p2p.identity import libp2p_key_pair, peer_id, tcp_multiaddr, transport_part
from primitives.errors import Code, GodownError, NodeFault

log = logging.getLogger("godown.p2p")

FrameHandler = Callable[[str, bytes], None]

READ_SIZE = 256 * 1024
"""Bytes asked for per stream read: large reads cut yamux window updates and trio wake-ups."""
DIAL_TIMEOUT = 5.0
STREAM_TIMEOUT = 5.0
WRITE_TIMEOUT = 10.0
MIN_BACKOFF = 0.05
MAX_BACKOFF = 2.0
KEEPALIVE_S = 1.0
"""An idle writer sends an empty frame this often, so that its peer hears from it."""
SILENT_AFTER_S = 10.0
"""A peer we have a stream to but have not heard from for this long sits behind a dead
connection (a cut link sends no RST; TCP keeps it for many minutes): it is closed and dialed
afresh, so a healed link carries traffic again within seconds (CometBFT pings for the same)."""
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class PeerStats:
    """Counters for one peer since start (for the status endpoint and metrics)."""

    member_id: str
    peer_id: str
    connected: bool
    queued_frames: int
    sent_frames: int
    sent_bytes: int
    received_frames: int
    received_bytes: int
    dropped_frames: int
    reconnects: int


class _Outbox:
    """One peer's bounded outbound queue, shared by caller threads and the trio thread."""

    def __init__(self, member_id: str, pid: ID, addr: Multiaddr) -> None:
        self.member_id = member_id
        self.pid = pid
        self.addr = addr
        self.lock = threading.Lock()
        self.frames: deque[bytes] = deque()
        self.queued_bytes = 0
        self.signaled = False
        self.wake_event: trio.Event | None = None
        self.connect_event: trio.Event | None = None
        self.scope: trio.CancelScope | None = None
        self.connected = False
        self.sent_frames = 0
        self.sent_bytes = 0
        self.received_frames = 0
        self.received_bytes = 0
        self.dropped_frames = 0
        self.reconnects = 0
        self.heard_at = 0.0  # trio clock: when anything last arrived from this peer

    def wake(self) -> None:
        """Runs on the trio thread: let the writer look at the queue again."""
        if self.wake_event is not None:
            self.wake_event.set()

    def take(self, batch_bytes: int) -> list[bytes]:
        """Pop queued frames up to about `batch_bytes` (at least one); clear `signaled` if empty."""
        with self.lock:
            if not self.frames:
                self.signaled = False
                return []
            batch = [self.frames.popleft()]
            size = len(batch[0])
            while self.frames and size + len(self.frames[0]) <= batch_bytes:
                frame = self.frames.popleft()
                batch.append(frame)
                size += len(frame)
            self.queued_bytes -= size
            return batch


class _QuietDialFailures(logging.Filter):
    """Drop libp2p's ERROR line for each failed TCP dial.

    While a peer is down we dial it every back-off step (up to every 2 s); the
    failure is expected and we log it ourselves at DEBUG with the member id.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to open TCP stream")


_DIAL_NOISE_FILTER = _QuietDialFailures()


class _StreamEnd:
    """Set by a stream's watcher when the remote closed or reset it; read by its writer."""

    __slots__ = ("flag",)

    def __init__(self) -> None:
        self.flag = False


class _ConnectionWatch(INotifee):
    """Wakes the writer of a peer that does not dial when that peer connects to us."""

    def __init__(self, lookup: Callable[[ID], _Outbox | None]) -> None:
        self._lookup = lookup

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        box = self._lookup(conn.muxed_conn.peer_id)
        if box is not None and box.connect_event is not None:
            box.connect_event.set()

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        return None

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None


class P2PService:
    """A libp2p host on its own trio thread; see the module docstring for the seam."""

    def __init__(
        self,
        seed: bytes,
        listen_port: int,
        peers: Mapping[str, tuple[bytes, str]],
        protocol: str = "/godown/1.0.0",
        max_frame: int = MAX_FRAME_DEFAULT,
        *,
        on_frame: FrameHandler | None = None,
        listen_host: str = "127.0.0.1",
        max_queue_frames: int = 10_000,
        max_queue_bytes: int = 64 * 1024 * 1024,
        batch_bytes: int = 1024 * 1024,
    ) -> None:
        """`peers` maps member id -> (Ed25519 sign_pub, multiaddr "/ip4/…/tcp/…[/p2p/…]").

        Only these peers may connect; everyone else is refused after the Noise
        handshake and logged.
        """
        self._key_pair = libp2p_key_pair(seed)
        self.peer_id = ID.from_pubkey(self._key_pair.public_key)
        self._listen = Multiaddr(tcp_multiaddr(listen_port, listen_host))
        self._protocol = TProtocol(protocol)
        self.max_frame = max_frame
        self._max_queue_frames = max_queue_frames
        self._max_queue_bytes = max_queue_bytes
        self._batch_bytes = batch_bytes
        self._on_frame = on_frame
        self.inbox: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        # Copy-on-write: `set_peers` swaps in new dicts, callers on other threads
        # read whichever one is current, never one being changed.
        self._outboxes: dict[str, _Outbox] = {}
        self._by_pid: dict[ID, _Outbox] = {}
        self._peers_lock = threading.Lock()
        self._outboxes, self._by_pid = self._build_peers(peers, {})
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop_event: trio.Event | None = None
        self._host: IHost | None = None
        self._nursery: trio.Nursery | None = None

    def _build_peers(
        self, peers: Mapping[str, tuple[bytes, str]], current: Mapping[str, _Outbox]
    ) -> tuple[dict[str, _Outbox], dict[ID, _Outbox]]:
        """Outboxes for `peers`, reusing the current one of any peer whose key and address are unchanged."""
        outboxes: dict[str, _Outbox] = {}
        by_pid: dict[ID, _Outbox] = {}
        for member_id, (sign_pub, addr) in peers.items():
            pid = peer_id(sign_pub)
            if pid == self.peer_id:
                continue  # our own entry in a shared peer list
            maddr = transport_part(addr, sign_pub)
            old = current.get(member_id)
            box = old if old is not None and old.pid == pid and old.addr == maddr else _Outbox(member_id, pid, maddr)
            if pid in by_pid:
                raise GodownError(Code.BAD_CONFIG, f"members {by_pid[pid].member_id} and {member_id} share a key")
            outboxes[member_id] = box
            by_pid[pid] = box
        return outboxes, by_pid

    # ---- the seam: called from any thread -------------------------------------------------

    def set_on_frame(self, on_frame: FrameHandler | None) -> None:
        """Register the receive callback (called on the trio thread); None sends frames to `inbox`."""
        self._on_frame = on_frame

    def set_peers(self, peers: Mapping[str, tuple[bytes, str]]) -> None:
        """Replace the allowlist (e.g. after a membership change), from any thread.

        Peers no longer listed are disconnected and refused from now on; new ones
        are dialed; unchanged ones keep their connection and queue.
        """
        with self._peers_lock:
            old = self._outboxes
            self._outboxes, self._by_pid = self._build_peers(peers, old)
            added = [b for m, b in self._outboxes.items() if old.get(m) is not b]
            removed = [b for m, b in old.items() if self._outboxes.get(m) is not b]
        log.info("p2p peers updated: added=%s removed=%s", [b.member_id for b in added], [b.member_id for b in removed])
        if self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._apply_peer_change, added, removed)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the trio thread and return once the host listens; `unavailable` if it cannot."""
        if self._thread is not None:
            raise NodeFault(Code.INTERNAL, "p2p service already started")
        # py-yamux sends a WINDOW_UPDATE after every read unless this is off; with our
        # large reads, off doubled PBFT-shaped throughput (bench/p2p_bench.py). It is
        # read at call time, process-wide; an operator's explicit setting wins.
        os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")
        self._check_port_free()
        logging.getLogger("libp2p.transport.tcp.tcp").addFilter(_DIAL_NOISE_FILTER)  # idempotent
        self._thread = threading.Thread(target=self._thread_main, name=f"p2p-{self.peer_id}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise NodeFault(Code.UNAVAILABLE, f"p2p host did not start listening within {timeout} s")
        if self._failure is not None:
            self._thread.join(STOP_TIMEOUT)
            raise NodeFault(Code.UNAVAILABLE, f"p2p host failed to start: {self._failure!r}") from self._failure

    def _check_port_free(self) -> None:
        """Refuse a listen port another process holds.

        py-libp2p binds with SO_REUSEPORT (for hole punching), so a second node
        on the same port would start fine and the kernel would split inbound
        connections between the two. A plain bind (no SO_REUSEPORT) fails if
        anyone listens there.
        """
        host = self._listen.value_for_protocol("ip4")
        port = int(self._listen.value_for_protocol("tcp"))
        if port == 0:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise NodeFault(Code.UNAVAILABLE, f"cannot listen on {self._listen}: {exc.strerror}") from None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Close every stream and connection and join the thread (at most about `timeout` s)."""
        thread = self._thread
        if thread is None:
            return
        if thread is threading.current_thread():
            raise NodeFault(Code.INTERNAL, "P2PService.stop() called from its own thread (e.g. inside on_frame)")
        token, stop_event = self._token, self._stop_event
        if token is not None and stop_event is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(stop_event.set)
        thread.join(timeout)
        if thread.is_alive():
            log.error("p2p thread did not stop within %.1f s", timeout)

    def send(self, member_id: str, frame: bytes) -> bool:
        """Queue `frame` for one peer; False if the queue was full and older frames were dropped.

        Raises `unknown_member` for a peer not configured and `oversize` for a
        frame above `max_frame`. Never blocks on the network.
        """
        box = self._outboxes.get(member_id)
        if box is None:
            raise GodownError(Code.UNKNOWN_MEMBER, f"no p2p peer {member_id!r}")
        if len(frame) > self.max_frame:
            raise GodownError(Code.OVERSIZE, f"frame of {len(frame)} bytes exceeds limit {self.max_frame}")
        return self._enqueue(box, frame)

    def broadcast(self, frame: bytes) -> bool:
        """Queue `frame` for every peer; False if any queue dropped frames."""
        if len(frame) > self.max_frame:
            raise GodownError(Code.OVERSIZE, f"frame of {len(frame)} bytes exceeds limit {self.max_frame}")
        ok = True
        for box in self._outboxes.values():
            ok = self._enqueue(box, frame) and ok
        return ok

    def connected_peers(self) -> list[str]:
        """Member ids we currently hold an open outbound stream to, sorted."""
        return sorted(m for m, box in self._outboxes.items() if box.connected)

    def stats(self) -> list[PeerStats]:
        """A snapshot of per-peer counters, sorted by member id."""
        out = []
        for member_id in sorted(self._outboxes):
            box = self._outboxes[member_id]
            with box.lock:
                queued = len(box.frames)
            out.append(
                PeerStats(
                    member_id=member_id,
                    peer_id=box.pid.to_base58(),
                    connected=box.connected,
                    queued_frames=queued,
                    sent_frames=box.sent_frames,
                    sent_bytes=box.sent_bytes,
                    received_frames=box.received_frames,
                    received_bytes=box.received_bytes,
                    dropped_frames=box.dropped_frames,
                    reconnects=box.reconnects,
                )
            )
        return out

    def _enqueue(self, box: _Outbox, frame: bytes) -> bool:
        dropped = 0
        with box.lock:
            box.frames.append(frame)
            box.queued_bytes += len(frame)
            while len(box.frames) > 1 and (
                len(box.frames) > self._max_queue_frames or box.queued_bytes > self._max_queue_bytes
            ):
                box.queued_bytes -= len(box.frames.popleft())
                dropped += 1
            box.dropped_frames += dropped
            must_wake = not box.signaled
            box.signaled = True
        if must_wake and self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(box.wake)
        if dropped:
            log.warning("p2p queue full, dropped oldest frames: member=%s dropped=%d", box.member_id, dropped)
        return dropped == 0

    # ---- the trio side ---------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # noqa: BLE001 - reported to start() or logged, thread must end
            if not self._ready.is_set():
                self._failure = exc
            else:
                log.exception("p2p thread ended with an error")
        finally:
            self._ready.set()
            for box in self._outboxes.values():
                box.connected = False

    def _allowed(self, pid: ID) -> bool:
        return pid in self._by_pid

    def _make_host(self) -> IHost:
        n = len(self._outboxes)
        config = ConnectionConfig(
            # py-libp2p's auto-connector aims at the low watermark (or the mid-point
            # when high > low) and dials whatever the peerstore holds, duplicating our
            # own dials; with both at 0 it never dials. The pruner then only looks at
            # connections without streams, and every allowed peer is protected.
            min_connections=0,
            low_watermark=0,
            high_watermark=0,
            max_connections=2 * n + 16,  # room for peers added later by set_peers
            max_connections_per_peer=2,
            dial_timeout=DIAL_TIMEOUT,
            inbound_upgrade_timeout=DIAL_TIMEOUT,
            outbound_upgrade_timeout=DIAL_TIMEOUT,
            outbound_stream_protocol_negotiation_timeout=STREAM_TIMEOUT,
            inbound_stream_protocol_negotiation_timeout=STREAM_TIMEOUT,
        )
        return new_host(
            key_pair=self._key_pair,
            sec_opt={NOISE_PROTOCOL_ID: AllowlistNoise(self._key_pair, self._allowed)},
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
            listen_addrs=[self._listen],
            connection_config=config,
        )

    async def _main(self) -> None:
        host = self._make_host()
        self._host = host
        self._stop_event = trio.Event()
        host.get_network().register_notifee(_ConnectionWatch(lambda pid: self._by_pid.get(pid)))  # current dict
        async with host.run(listen_addrs=[self._listen]):
            if not host.get_transport_addrs():  # py-libp2p logs a failed bind and carries on
                raise NodeFault(Code.UNAVAILABLE, f"cannot listen on {self._listen}")
            host.set_stream_handler(self._protocol, self._on_stream)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                with self._peers_lock:
                    for box in self._outboxes.values():
                        self._attach(box)
                    self._token = trio.lowlevel.current_trio_token()
                log.info("p2p listening: peer_id=%s addr=%s peers=%d", self.peer_id, self._listen, len(self._outboxes))
                self._ready.set()
                await self._stop_event.wait()
                nursery.cancel_scope.cancel()
            with trio.move_on_after(STOP_TIMEOUT / 2):
                for box in self._outboxes.values():
                    with contextlib.suppress(Exception):
                        await host.get_network().close_peer(box.pid)

    def _attach(self, box: _Outbox) -> None:
        """Trio thread: start keeping a stream to `box`'s peer."""
        assert self._host is not None and self._nursery is not None
        box.wake_event = trio.Event()
        box.connect_event = trio.Event()
        box.scope = trio.CancelScope()
        network = self._host.get_network()
        network.protect(box.pid, "godown-peer")
        if self._dials(box):
            self._host.get_peerstore().add_addrs(box.pid, [box.addr], 0)
        self._nursery.start_soon(self._peer_loop, self._host, box)

    def _apply_peer_change(self, added: list[_Outbox], removed: list[_Outbox]) -> None:
        """Trio thread: stop serving removed peers (and hang up on them), serve added ones."""
        if self._nursery is None or self._host is None:
            return
        for box in removed:
            if box.scope is not None:
                box.scope.cancel()
            box.connected = False
            if box.pid not in self._by_pid:
                self._host.get_network().unprotect(box.pid, "godown-peer")
                self._nursery.start_soon(self._hang_up, box)
        for box in added:
            self._attach(box)

    async def _hang_up(self, box: _Outbox) -> None:
        log.info("p2p disconnecting removed peer: member=%s peer_id=%s", box.member_id, box.pid)
        assert self._host is not None
        with trio.move_on_after(STOP_TIMEOUT / 2), contextlib.suppress(Exception):
            await self._host.get_network().close_peer(box.pid)

    def _dials(self, box: _Outbox) -> bool:
        """The member whose peer id sorts lower dials; the other waits to be dialed."""
        return self.peer_id.to_bytes() < box.pid.to_bytes()

    async def _peer_loop(self, host: IHost, box: _Outbox) -> None:
        """Keep one outbound stream to `box`'s peer open and feed it from the queue until cancelled."""
        assert box.scope is not None
        with box.scope:
            await self._serve_peer(host, box)

    async def _serve_peer(self, host: IHost, box: _Outbox) -> None:
        backoff = MIN_BACKOFF
        first = True
        while True:
            stream = await self._open_stream(host, box)
            if stream is None:
                await trio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = MIN_BACKOFF
            if not first:
                box.reconnects += 1
            first = False
            box.connected = True
            log.info("p2p stream open: member=%s peer_id=%s", box.member_id, box.pid)
            ended = _StreamEnd()
            box.heard_at = max(box.heard_at, trio.current_time())
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._watch_stream, stream, box, ended)
                    nursery.start_soon(self._watch_silence, host, box)
                    await self._pump(host, box, stream, ended)
                    nursery.cancel_scope.cancel()  # the watcher waits in a read: safe to cancel
            finally:
                box.connected = False
                with trio.move_on_after(1.0) as scope:
                    scope.shield = True
                    with contextlib.suppress(Exception):
                        await stream.reset()
            log.info("p2p stream closed: member=%s peer_id=%s", box.member_id, box.pid)
            await trio.sleep(backoff)

    async def _open_stream(self, host: IHost, box: _Outbox) -> INetStream | None:
        """Dial if it is our turn (or wait to be dialed), then open our stream; None on failure."""
        network = host.get_network()
        try:
            if not network.get_connections(box.pid):
                if self._dials(box):
                    # The swarm blocks a peer for 60 s after failed dials; we run our own
                    # capped back-off, so a restarted peer must be dialable at once.
                    unblock = getattr(network, "unblock_peer", None)
                    if unblock is not None:
                        unblock(box.pid)
                    with trio.fail_after(DIAL_TIMEOUT):
                        await host.connect(PeerInfo(box.pid, [box.addr]))
                else:
                    assert box.connect_event is not None
                    with trio.move_on_after(MAX_BACKOFF):
                        await box.connect_event.wait()
                    box.connect_event = trio.Event()
                    if not network.get_connections(box.pid):
                        return None
        except trio.Cancelled:
            raise
        except Exception as exc:  # libp2p raises many unrelated types on dial and negotiation
            log.debug("p2p dial failed: member=%s peer_id=%s error=%r", box.member_id, box.pid, exc)
            return None
        try:
            with trio.fail_after(STREAM_TIMEOUT):
                return await host.new_stream(box.pid, [self._protocol])
        except trio.Cancelled:
            raise
        except (trio.TooSlowError, SwarmException) as exc:
            # A connection on which no stream opens in time is dead (a cut link sends no RST:
            # TCP would keep it for many minutes), and one the swarm calls invalid is stale:
            # drop it, so that the next attempt dials afresh and a healed link carries traffic
            # again within a back-off step. (A protocol refusal, e.g. a peer still starting, is
            # an answer: that connection is alive and stays.)
            log.info("p2p stream did not open, dropping the connection: member=%s error=%r", box.member_id, exc)
            with trio.move_on_after(1.0) as scope:
                scope.shield = True
                with contextlib.suppress(Exception):
                    await network.close_peer(box.pid)
            return None
        except Exception as exc:  # libp2p raises many unrelated types on negotiation
            log.debug("p2p stream open failed: member=%s peer_id=%s error=%r", box.member_id, box.pid, exc)
            return None

    async def _pump(self, host: IHost, box: _Outbox, stream: INetStream, ended: _StreamEnd) -> None:
        """Write queued frames in batches until the stream ends or a write fails.

        A write is never cancelled: cancelling trio mid-send leaves half a yamux
        frame on the connection and breaks every stream on it. A reset stream
        makes yamux's write raise by itself; a write stuck longer than
        WRITE_TIMEOUT (peer not reading at all) is ended by closing the
        connection under it.
        """
        while not ended.flag:
            batch = box.take(self._batch_bytes)
            if not batch:
                assert box.wake_event is not None
                with trio.move_on_after(KEEPALIVE_S) as idle:
                    await box.wake_event.wait()
                if not idle.cancelled_caught:
                    box.wake_event = trio.Event()
                    continue
                batch = [b""]  # keepalive: an empty frame, never delivered
            data = encode_frames(batch)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_watchdog, host, box)
                    try:
                        await stream.write(data)
                    finally:
                        nursery.cancel_scope.cancel()
            except trio.Cancelled:
                raise
            except Exception as exc:
                with box.lock:
                    box.dropped_frames += len(batch)
                log.info(
                    "p2p write failed, dropped batch: member=%s frames=%d error=%r", box.member_id, len(batch), exc
                )
                return
            box.sent_frames += len(batch)
            box.sent_bytes += len(data)

    async def _write_watchdog(self, host: IHost, box: _Outbox) -> None:
        await trio.sleep(WRITE_TIMEOUT)
        log.warning(
            "p2p write stuck for %.0f s, closing connection: member=%s peer_id=%s",
            WRITE_TIMEOUT,
            box.member_id,
            box.pid,
        )
        with contextlib.suppress(Exception):
            await host.get_network().close_peer(box.pid)

    async def _watch_silence(self, host: IHost, box: _Outbox) -> None:
        """Close the connection to a peer that has gone silent (see `SILENT_AFTER_S`)."""
        while True:
            await trio.sleep(KEEPALIVE_S)
            if trio.current_time() - box.heard_at > SILENT_AFTER_S:
                log.info("p2p peer silent for %.0f s, closing connection: member=%s", SILENT_AFTER_S, box.member_id)
                box.heard_at = trio.current_time()
                with trio.move_on_after(1.0) as scope:
                    scope.shield = True
                    with contextlib.suppress(Exception):
                        await host.get_network().close_peer(box.pid)
                return

    async def _watch_stream(self, stream: INetStream, box: _Outbox, ended: _StreamEnd) -> None:
        """The remote never writes on our stream: any read result means it closed or reset."""
        with contextlib.suppress(Exception):
            while await stream.read(READ_SIZE):
                pass
        ended.flag = True
        box.wake()

    async def _on_stream(self, stream: INetStream) -> None:
        """Inbound stream: cut frames out of large reads and deliver them in order."""
        pid = stream.muxed_conn.peer_id
        box = self._by_pid.get(pid)
        if box is None:  # the handshake check makes this unreachable; keep the door shut anyway
            log.warning("p2p refused stream from peer not in allowlist: peer_id=%s", pid)
            with contextlib.suppress(Exception):
                await stream.reset()
            return
        decoder = FrameDecoder(self.max_frame)
        try:
            while True:
                data = await stream.read(READ_SIZE)
                if not data:
                    break
                box.heard_at = trio.current_time()
                try:
                    frames = decoder.feed(data)
                except GodownError as exc:
                    log.warning(
                        "p2p stream reset: member=%s peer_id=%s code=%s %s",
                        box.member_id,
                        pid,
                        exc.code.value,
                        exc.message,
                        extra={"peer": box.member_id, "peer_id": str(pid), "code": exc.code.value},
                    )
                    with contextlib.suppress(Exception):
                        await stream.reset()
                    return
                if self._by_pid.get(pid) is not box:  # removed by set_peers meanwhile
                    log.warning("p2p dropping stream of removed peer: member=%s peer_id=%s", box.member_id, pid)
                    with contextlib.suppress(Exception):
                        await stream.reset()
                    return
                for frame in frames:
                    if not frame:
                        continue  # a keepalive
                    box.received_frames += 1
                    box.received_bytes += len(frame)
                    self._deliver(box.member_id, frame)
        except trio.Cancelled:
            raise
        except Exception as exc:  # EOF and reset arrive as exceptions
            log.debug("p2p inbound stream ended: member=%s error=%r", box.member_id, exc)

    def _deliver(self, member_id: str, frame: bytes) -> None:
        handler = self._on_frame
        if handler is None:
            self.inbox.put((member_id, frame))
            return
        try:
            handler(member_id, frame)
        except Exception:
            log.exception("p2p on_frame handler failed: member=%s", member_id)
