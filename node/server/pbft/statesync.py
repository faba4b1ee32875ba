"""State sync over p2p: a new node joins without replaying history (DESIGN §4).

Serving side (`SnapshotServer`, run by every validator's PBFT engine): at every
`snapshot_every`-th height the engine freezes a consistent view of the state
(a LevelDB snapshot, O(1)); at most `KEEP` views are held. A snapshot is built from
a view on a worker thread the first time a peer asks for it, and cached (at most
`KEEP`). It is offered together with block h+1, whose header certifies the state
root after h (DESIGN §3).

Syncing side (`sync_state`): the operator gives a trust anchor — the height and hash
of a block h+1 it got from a member it trusts (`godown status` of that member's
node shows `snapshot.trust_height` and `trust_hash`), as CometBFT's state sync takes
`trust_height`/`trust_hash`. The offered block must have exactly that hash, so its
header — and through it the state root — is trusted without knowing the validator
set of that height. Every chunk is verified alone against that root
(`storage.snapshot.verify_chunk`); a damaged or forged chunk is refused and fetched
from another peer. The node then continues by blocks from h+1, each checked against
its commit certificate as in any catch-up.

Frames (see `pbft.frames`):
    {"t": "sm?", "height": h}                              offer the snapshot of height h
    {"t": "sm", "height": h, "manifest": b, "block": b}    the offer (block = block h+1)
    {"t": "sc?", "height": h, "index": i}                  send chunk i
    {"t": "sc", "height": h, "index": i, "chunk": b}
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from node.server.config import SNAPSHOTS_KEPT
from node.server.pbft.frames import MAX_FRAME, decode_frame, encode_frame
from p2p.service import P2PService
from primitives.block import Block
from primitives.errors import Code, GodownError
from primitives.genesis import Genesis
from primitives.keys import KeyPair
from storage.chain import ChainStore, FrozenState
from storage.snapshot import Installer, Manifest, Snapshot, SnapshotError, Trusted, build_snapshot, verify_manifest

log = logging.getLogger("godown.statesync")

KEEP = SNAPSHOTS_KEPT
"""Frozen views and built snapshots a node holds at once (each pins old LevelDB versions)."""
OFFER, OFFERED, CHUNK, CHUNKED = "sm?", "sm", "sc?", "sc"
ASK_EVERY_S = 2.0
CHUNK_TIMEOUT_S = 10.0
IN_FLIGHT = 4
SYNC_TIMEOUT_S = 600.0

SendFrame = Callable[[str | None, dict[str, Any]], None]


@dataclass(frozen=True)
class TrustAnchor:
    """Block `height` has hash `block_hash`: what the operator trusts out of band."""

    height: int
    block_hash: bytes

    @staticmethod
    def parse(text: str) -> TrustAnchor:
        """`HEIGHT:HASH` (hash in hex)."""
        height, sep, digest = text.partition(":")
        try:
            anchor = TrustAnchor(int(height), bytes.fromhex(digest))
        except ValueError:
            anchor = TrustAnchor(0, b"")
        if not sep or anchor.height < 2 or len(anchor.block_hash) != 32:
            raise GodownError(Code.BAD_CONFIG, f"state-sync trust {text!r} is not HEIGHT:BLOCK_HASH (height >= 2)")
        return anchor


@dataclass
class SnapshotServer:
    """Frozen views at snapshot heights, snapshots built from them on demand."""

    store: ChainStore
    chain_id: str
    every: int
    send: SendFrame
    frozen: OrderedDict[int, FrozenState] = field(default_factory=OrderedDict)
    built: OrderedDict[int, Snapshot] = field(default_factory=OrderedDict)
    building: set[int] = field(default_factory=set)
    waiting: dict[int, set[str]] = field(default_factory=dict)

    def on_commit(self, height: int) -> None:
        """Freeze the state right after block `height` committed, at snapshot heights."""
        if self.every <= 0 or height % self.every:
            return
        self.frozen[height] = self.store.freeze_state()
        while len(self.frozen) > KEEP:
            old, view = self.frozen.popitem(last=False)
            if old not in self.building:
                view.close()
            self.built.pop(old, None)

    def offer(self) -> dict[str, Any] | None:
        """The newest snapshot height whose next block is committed, as a trust anchor."""
        for h in reversed(self.frozen):
            raw = self.store.get_block_bytes(h + 1)
            if raw is not None:
                return {"height": h, "trust_height": h + 1, "trust_hash": Block.hash_of(raw).hex()}
        return None

    def on_offer_request(self, peer: str, height: int) -> None:
        snap = self.built.get(height)
        if snap is not None:
            self._send_offer(peer, height, snap)
        elif height in self.frozen and self.store.get_block_bytes(height + 1) is not None:
            self.waiting.setdefault(height, set()).add(peer)
            if height not in self.building:
                self.building.add(height)
                asyncio.get_running_loop().create_task(self._build(height))

    async def _build(self, height: int) -> None:
        view = self.frozen[height]
        try:
            snap = await asyncio.to_thread(build_snapshot, view, self.chain_id)
        except GodownError as exc:
            log.warning("snapshot not built", extra={"height": height, "code": exc.code.value})
            return
        finally:
            self.building.discard(height)
            if height not in self.frozen:
                view.close()
        self.built[height] = snap
        while len(self.built) > KEEP:
            self.built.popitem(last=False)
        for peer in self.waiting.pop(height, set()):
            self._send_offer(peer, height, snap)

    def _send_offer(self, peer: str, height: int, snap: Snapshot) -> None:
        raw = self.store.get_block_bytes(height + 1)
        if raw is not None:
            self.send(peer, {"t": OFFERED, "height": height, "manifest": snap.manifest_bytes, "block": raw})

    def on_chunk_request(self, peer: str, height: int, index: int) -> None:
        snap = self.built.get(height)
        chunk = snap.chunk(index) if snap is not None and type(index) is int else None
        if chunk is not None:
            self.send(peer, {"t": CHUNKED, "height": height, "index": index, "chunk": chunk})

    def close(self) -> None:
        for view in self.frozen.values():
            view.close()
        self.frozen.clear()
        self.built.clear()


def _trusted_offer(doc: Any, anchor: TrustAnchor, genesis: Genesis) -> tuple[Manifest, Trusted]:
    """Check an offer against the trust anchor; GodownError if it does not hold."""
    block = Block.decode(doc["block"])
    if block.header.height != anchor.height or block.hash() != anchor.block_hash:
        raise GodownError(Code.TAMPERED, f"offered block {block.header.height} is not the trusted one")
    trusted = Trusted.from_next_header(block.header)
    return verify_manifest(doc["manifest"], genesis.chain_id, genesis.hash(), trusted), trusted


@dataclass
class _Fetch:
    """Chunk requests in flight: which peer, since when; peers that failed a chunk."""

    asked: dict[int, tuple[str, float]] = field(default_factory=dict)
    failed: dict[int, set[str]] = field(default_factory=dict)
    turn: int = 0

    def next_peer(self, index: int, peers: list[str]) -> str | None:
        good = [p for p in peers if p not in self.failed.get(index, set())] or peers
        if not good:
            return None
        self.turn += 1
        return good[self.turn % len(good)]


async def sync_state(
    store: ChainStore,
    genesis: Genesis,
    node_key: KeyPair,
    peers: dict[str, tuple[bytes, str]],
    listen: tuple[str, int],
    anchor: TrustAnchor,
) -> int:
    """Install the state at `anchor.height - 1` from peers into the blank `store`;
    returns that height. Raises `unavailable` if no peer serves it in time."""
    inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=1024)
    loop = asyncio.get_running_loop()
    p2p = P2PService(node_key.sign_seed, listen[1], peers, listen_host=listen[0], max_frame=MAX_FRAME)

    def on_frame(peer: str, frame: bytes) -> None:  # on the p2p (trio) thread
        loop.call_soon_threadsafe(_offer_to, inbox, peer, frame)

    p2p.set_on_frame(on_frame)
    await asyncio.to_thread(p2p.start)
    try:
        return await asyncio.wait_for(_sync(store, genesis, p2p, inbox, anchor), SYNC_TIMEOUT_S)
    except TimeoutError:
        raise GodownError(Code.UNAVAILABLE, f"no peer served the snapshot of height {anchor.height - 1}") from None
    finally:
        await asyncio.to_thread(p2p.stop)


def _offer_to(inbox: asyncio.Queue[tuple[str, bytes]], peer: str, frame: bytes) -> None:
    if not inbox.full():  # bounded: a flooding peer loses its frames, not our memory
        inbox.put_nowait((peer, frame))


def _send(p2p: P2PService, peer: str | None, doc: dict[str, Any]) -> None:
    frame = encode_frame(doc)
    try:
        p2p.broadcast(frame) if peer is None else p2p.send(peer, frame)
    except GodownError as exc:
        log.warning("frame not sent", extra={"peer": peer, "code": exc.code.value})


async def _next(inbox: asyncio.Queue[tuple[str, bytes]], wait: float) -> tuple[str, str | None, Any] | None:
    try:
        peer, frame = await asyncio.wait_for(inbox.get(), wait)
        kind, doc = decode_frame(frame)
        return peer, kind, doc
    except TimeoutError:
        return None
    except (GodownError, msgpack.ExtraData) as exc:
        log.warning("bad frame during state sync", extra={"error": str(exc)[:200]})
        return None


async def _sync(
    store: ChainStore, genesis: Genesis, p2p: P2PService, inbox: asyncio.Queue[tuple[str, bytes]], anchor: TrustAnchor
) -> int:
    height = anchor.height - 1
    started = time.monotonic()
    manifest: Manifest | None = None
    trusted: Trusted | None = None
    servers: list[str] = []
    asked_at = 0.0
    while manifest is None:
        if time.monotonic() - asked_at > ASK_EVERY_S:
            _send(p2p, None, {"t": OFFER, "height": height})
            asked_at = time.monotonic()
        got = await _next(inbox, 0.5)
        if got is None or got[1] != OFFERED:
            continue
        peer, _, doc = got
        try:
            manifest, trusted = _trusted_offer(doc, anchor, genesis)
            servers.append(peer)
        except (GodownError, KeyError, TypeError, ValueError) as exc:
            log.warning("snapshot offer refused", extra={"peer": peer, "error": str(exc)[:200]})
    assert trusted is not None
    log.info("snapshot offered", extra={"height": height, "chunks": manifest.chunks, "peer": servers[0]})
    installer = Installer(store, manifest, trusted.state_root)
    await _fetch_chunks(installer, p2p, inbox, height, servers, manifest)
    installer.finish()
    log.info("state installed", extra={"height": height, "entries": installer.entries,
                                       "seconds": round(time.monotonic() - started, 2)})  # fmt: skip
    return height


async def _fetch_chunks(
    installer: Installer,
    p2p: P2PService,
    inbox: asyncio.Queue[tuple[str, bytes]],
    height: int,
    servers: list[str],
    manifest: Manifest,
) -> None:
    fetch = _Fetch()
    while not installer.complete:
        now = time.monotonic()
        for index in installer.missing:
            at = fetch.asked.get(index)
            if at is not None and now - at[1] < CHUNK_TIMEOUT_S:
                continue
            if len([i for i, (_, t) in fetch.asked.items() if now - t < CHUNK_TIMEOUT_S]) >= IN_FLIGHT:
                break
            peer = fetch.next_peer(index, servers)
            if peer is not None:
                fetch.asked[index] = (peer, now)
                _send(p2p, peer, {"t": CHUNK, "height": height, "index": index})
        got = await _next(inbox, 0.5)
        if got is None:
            continue
        peer, kind, doc = got
        if kind == OFFERED and peer not in servers:
            try:
                if Manifest.decode(doc["manifest"]).digest() == manifest.digest():
                    servers.append(peer)  # another peer with the same snapshot: spread the load
            except (GodownError, KeyError, TypeError):
                pass
            continue
        if kind != CHUNKED or doc.get("height") != height:
            continue
        index = doc.get("index")
        try:
            installer.add(index, doc["chunk"])
        except (SnapshotError, KeyError, TypeError) as exc:
            log.warning("chunk refused", extra={"peer": peer, "index": index, "error": str(exc)[:200]})
            if type(index) is int:
                fetch.failed.setdefault(index, set()).add(peer)
        if type(index) is int:
            fetch.asked.pop(index, None)
