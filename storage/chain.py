"""The chain store: blocks, commit certificates, the transaction index, the authenticated
state and the consensus write-ahead log, all in one KV.

Why one place: a committed block must be durable together with everything it implies
(its certificate, its transactions' index entries, the state it produced, the new head),
or a crash could leave a node that believes in a state no block explains. So
`commit_block` puts all of it in ONE synced WriteBatch. At start-up `ChainStore.open`
checks the hash chain and recomputes the head state root, and refuses a damaged store
with `store_damaged` naming the first bad height.

Key layout (big-endian 8-byte heights, so key order is height order):
    m:genesis            genesis hash
    m:head               {"height", "hash"} of the last committed block (genesis: 0)
    H:<h>                header of block h (canonical bytes), for cheap chain walks
    B:<h>                block h with its result codes (canonical bytes)
    C:<h>                commit certificate of block h
    R:<h>                {"state_root", "results_root", "block_digest"} after executing h
    E:<h>                the events the contracts emitted executing h (opaque bytes from the
                         node, which writes one for every block: an absent record means "not kept")
    N:<block hash>       h
    T:<tx id>            be8(h) be4(index) result-utf8 (first occurrence wins; void results,
                         `primitives.errors.VOID_RESULTS`, are not indexed)
    S:<state key>        state value (the StateTree's index)
    X:<tag><u8 len><term><h><be4 index>
                         empty: the node-local entity index of `commit_block`'s `terms` (tag
                         i: an id the transaction names, t: its type), newest first by
                         reverse iteration; like T:, void results are not indexed and
                         heights at or below a snapshot's base have no entries
    W:<seq>              consensus write-ahead log record
    m:wal_floor          next sequence number after a truncation (numbers never repeat)
    m:base               {"height", "hash"}: a store restored from a snapshot at that height
                         (absent: the store holds every block from genesis)
    m:restore            sha256 of the manifest of a snapshot install under way (see below)
    m:terms              present once every stored block has its X: entries (`index_terms_of`);
                         absent in a store written before the entity index existed

A store restored from a snapshot (storage/snapshot.py; state sync) starts at a base
height b > 0 instead of genesis: it holds the state after b, the header of b (H:<b>)
and the roots after b (R:<b>, block digest zero), and blocks b+1.. as they commit.
Blocks, certificates and the tx index at or below b are absent (`get_block` answers
None), so such a store cannot be replayed from genesis (`require_history_from_genesis`).
While an install is under way the state index fills chunk by chunk under `m:restore`
with no head record; `verify_integrity` refuses such a half-installed store.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from primitives import codec
from primitives.block import MAX_BLOCK_BYTES, ZERO_HASH, Block, Commit, Header, results_root
from primitives.errors import VOID_RESULTS, Code, GodownError, NodeFault
from primitives.hashing import EMPTY_ROOT, merkle_root, sha256
from primitives.state_proof import StateProof
from primitives.tx import SignedTx
from storage.kv import KV, Batch, LevelKV
from storage.state_tree import StateTree

_HEAD = b"m:head"
_GENESIS = b"m:genesis"
_HEADER = b"H:"
_BLOCK = b"B:"
_COMMIT = b"C:"
_ROOTS = b"R:"
_EVENTS = b"E:"
_BY_HASH = b"N:"
_TX = b"T:"
_STATE = b"S:"
_WAL = b"W:"
_WAL_FLOOR = b"m:wal_floor"
_BASE = b"m:base"
_RESTORE = b"m:restore"
_TERMS = b"X:"
_TERMS_DONE = b"m:terms"
_KEPT = b"P:"
"""Proofs kept past their height (`keep_proof`): P: ‖ u16 key length ‖ key ‖ u64 height."""

_TX_LOC = struct.Struct(">QI")  # height, index; the result code's utf-8 follows

MAX_TERM_BYTES = 255
"""The longest index term (tag included): its length is one byte of the key."""


def term_prefix(term: bytes) -> bytes:
    """The key prefix of every index entry of `term` (see the key layout)."""
    assert 0 < len(term) <= MAX_TERM_BYTES, term
    return _TERMS + bytes([len(term)]) + term


DEFAULT_DEEP_BLOCKS = 256
"""How many of the newest blocks `verify_integrity` decodes in full by default."""


def _be(n: int) -> bytes:
    return struct.pack(">Q", n)


def _damaged(height: int | None, message: str) -> NodeFault:
    where = "" if height is None else f" at height {height}"
    return NodeFault(Code.STORE_DAMAGED, f"store damaged{where}: {message}")


def _bad_block(message: str) -> GodownError:
    return GodownError(Code.BAD_BLOCK, message)


@dataclass(frozen=True)
class TxLocation:
    """Where a committed transaction is: block height, index in the block, result code."""

    height: int
    index: int
    result: str


@dataclass(frozen=True)
class StoredTxs:
    """A stored block's time and its transactions still encoded, with their result codes."""

    time_ms: int
    txs: list[bytes]
    results: list[str]

    def tx(self, index: int) -> SignedTx:
        return SignedTx.decode(self.txs[index])


@dataclass(frozen=True)
class Roots:
    """What executing a height produced: the state and results roots (these go into the
    next header) and the digest of the stored block bytes."""

    state_root: bytes
    results_root: bytes
    block_digest: bytes

    def encode(self) -> bytes:
        return codec.encode(
            {"state_root": self.state_root, "results_root": self.results_root, "block_digest": self.block_digest}
        )

    @staticmethod
    def decode(data: bytes) -> Roots:
        doc = codec.decode(data)
        if not isinstance(doc, dict) or set(doc) != {"state_root", "results_root", "block_digest"}:
            raise ValueError("roots record has missing or unknown fields")
        if not all(isinstance(v, bytes) and len(v) == 32 for v in doc.values()):
            raise ValueError("roots must be 32 bytes")
        return Roots(doc["state_root"], doc["results_root"], doc["block_digest"])


@dataclass(frozen=True)
class ProvenEntry:
    """A state entry and its proof against the state root after `height`."""

    key: bytes
    value: bytes | None
    height: int
    root: bytes
    proof: StateProof

    def to_json(self) -> dict[str, Any]:
        """JSON form for the RPC: byte strings as lowercase hex."""
        return {
            "key": self.key.hex(),
            "value": None if self.value is None else self.value.hex(),
            "height": self.height,
            "state_root": self.root.hex(),
            "proof": self.proof.to_json(),
        }

    def encode(self) -> bytes:
        return codec.encode(
            {
                "key": self.key,
                "value": self.value,
                "height": self.height,
                "root": self.root,
                "proof": self.proof.to_dict(),
            }
        )

    @staticmethod
    def decode(data: bytes) -> ProvenEntry:
        doc = codec.decode(data)
        if not isinstance(doc, dict) or set(doc) != {"key", "value", "height", "root", "proof"}:
            raise ValueError("kept proof record has missing or unknown fields")
        return ProvenEntry(doc["key"], doc["value"], doc["height"], doc["root"], StateProof.from_dict(doc["proof"]))


@dataclass(frozen=True)
class CommittedHeight:
    """What a node must know of a committed height to continue by blocks after it: the
    chain's genesis hash, the height, its block hash (the genesis hash at height 0) and
    header (None at height 0), and the state and results roots after executing it —
    exactly what the next header carries as `prev_hash`, `state_root`, `results_root`."""

    genesis_hash: bytes
    height: int
    block_hash: bytes
    header: Header | None
    state_root: bytes
    results_root: bytes

    def __post_init__(self) -> None:
        assert self.height >= 0 and all(
            len(b) == 32 for b in (self.genesis_hash, self.block_hash, self.state_root, self.results_root)
        )
        assert (self.header is None) == (self.height == 0)
        assert self.header is None or (self.header.height == self.height and self.header.hash() == self.block_hash)


class FrozenState:
    """The committed state at one height through a consistent read view: commits made
    after `ChainStore.freeze_state` do not show through it. Over LevelDB it is a
    LevelDB snapshot (taking it costs O(1); holding it keeps old versions from being
    compacted away, so `close` it when done); over any other KV it is a copy of the state
    index made under the store's lock. Use from one thread at a time."""

    def __init__(
        self,
        point: CommittedHeight,
        items: Callable[[], Iterator[tuple[bytes, bytes]]],
        get: Callable[[bytes], bytes | None],
        release: Callable[[], None],
    ) -> None:
        self.point = point
        self._items, self._get, self._release = items, get, release
        self._open = True

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (state key, value) at `point.height`, in key order."""
        assert self._open, "frozen state is closed"
        return self._items()

    def get(self, key: bytes) -> bytes | None:
        """The value of state `key` at `point.height`, or None."""
        assert self._open, "frozen state is closed"
        return self._get(key)

    def close(self) -> None:
        """Release the view. Closing twice is allowed."""
        if self._open:
            self._open = False
            self._release()

    def __enter__(self) -> FrozenState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _frozen_reader(
    kv: KV,
) -> tuple[Callable[[], Iterator[tuple[bytes, bytes]]], Callable[[bytes], bytes | None], Callable[[], None]]:
    """(items, get, release) over a consistent view of the state index of `kv`."""
    cut = len(_STATE)
    if isinstance(kv, LevelKV):
        # LevelKV has no snapshot operation of its own yet; plyvel's is what we need.
        snap = kv._db_or_fail().snapshot()
        errors = kv._plyvel.Error

        def items() -> Iterator[tuple[bytes, bytes]]:
            try:
                with snap.iterator(prefix=_STATE) as it:
                    for k, v in it:
                        yield k[cut:], v
            except errors as exc:
                raise _damaged(None, f"state cannot be read: {exc}") from None

        def get(key: bytes) -> bytes | None:
            try:
                return snap.get(_STATE + key)  # type: ignore[no-any-return]
            except errors as exc:
                raise _damaged(None, f"state cannot be read: {exc}") from None

        return items, get, snap.close

    copy = {k[cut:]: v for k, v in kv.iterate(_STATE)}  # in key order: dicts keep insertion order

    def copy_items() -> Iterator[tuple[bytes, bytes]]:
        return iter(copy.items())

    return copy_items, copy.get, copy.clear


class StateView:
    """Read-only view of the committed state, which the executor reads through."""

    def __init__(self, tree: StateTree) -> None:
        self._tree = tree

    def get(self, key: bytes) -> bytes | None:
        """The committed value of `key`, or None."""
        return self._tree.get(key)

    def scan(self, prefix: bytes = b"", start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Committed (key, value) pairs whose key starts with `prefix`, in key order; from
        key `start` on (inclusive) if given, so a list can be paged without a rescan."""
        return self._tree.scan(prefix, start)


class ChainStore:
    """Blocks, certificates, indexes, state and the consensus WAL over one KV.

    Heights: 0 is genesis (no block; its state is `init_genesis`'s writes), blocks
    start at 1. `head_height` is -1 until `init_genesis`.
    """

    def __init__(self, kv: KV) -> None:
        """Load the head and rebuild the state tree from the index; no integrity check
        (use `ChainStore.open` for that)."""
        self._kv = kv
        self._lock = threading.RLock()
        self._tree = StateTree(kv, _STATE)
        self._view = StateView(self._tree)
        self._genesis: bytes | None = kv.get(_GENESIS)
        self._height = -1
        self._hash = ZERO_HASH
        raw = kv.get(_HEAD)
        if raw is not None:
            try:
                head = codec.decode(raw)
                self._height, self._hash = int(head["height"]), bytes(head["hash"])
            except (GodownError, KeyError, TypeError, ValueError):
                raise _damaged(None, "head record is unreadable") from None
        self._base_height, self._base_hash = 0, self._genesis
        raw = kv.get(_BASE)
        if raw is not None:
            try:
                base = codec.decode(raw)
                self._base_height, self._base_hash = int(base["height"]), bytes(base["hash"])
            except (GodownError, KeyError, TypeError, ValueError):
                raise _damaged(None, "base record is unreadable") from None
        last = next(kv.iterate(_WAL, reverse=True), None)
        floor = kv.get(_WAL_FLOOR)
        self._wal_next = max(
            0 if last is None else struct.unpack(">Q", last[0][len(_WAL) :])[0] + 1,
            0 if floor is None else struct.unpack(">Q", floor)[0],
        )

    # ---- opening --------------------------------------------------------------------------

    @classmethod
    def open(cls, kv: KV, *, deep_blocks: int | None = DEFAULT_DEEP_BLOCKS) -> ChainStore:
        """Open over `kv` and run `verify_integrity`; a damaged store raises NodeFault
        `store_damaged` (and the KV is left open for the caller to close)."""
        store = cls(kv)
        store.verify_integrity(deep_blocks=deep_blocks)
        return store

    @classmethod
    def open_path(cls, path: str | Path, *, deep_blocks: int | None = DEFAULT_DEEP_BLOCKS) -> ChainStore:
        """Open (creating if missing) a LevelDB store at `path` and check it; on any
        refusal the database is closed again before the error propagates."""
        kv = LevelKV(path)
        try:
            return cls.open(kv, deep_blocks=deep_blocks)
        except BaseException:
            kv.close()
            raise

    def close(self) -> None:
        """Close the underlying KV."""
        self._kv.close()

    # ---- reading --------------------------------------------------------------------------

    @property
    def is_initialized(self) -> bool:
        """Whether `init_genesis` has run."""
        return self._height >= 0

    @property
    def genesis_hash(self) -> bytes | None:
        """The genesis hash given to `init_genesis`, or None."""
        return self._genesis

    @property
    def head_height(self) -> int:
        """Height of the last committed block (0: only genesis; -1: not initialized)."""
        return self._height

    @property
    def head_hash(self) -> bytes:
        """Hash of the last committed block (the genesis hash at height 0)."""
        return self._hash

    @property
    def base_height(self) -> int:
        """The first height whose state this store holds: 0 (genesis) for a store that
        holds every block, b for one restored from a snapshot at b or pruned through b
        (`prune_through`; blocks <= b absent)."""
        return self._base_height

    def require_history_from_genesis(self) -> None:
        """Raise `bad_config` if blocks from genesis are not all here (a store restored
        from a snapshot, or pruned): a replay from genesis is not possible on this store."""
        if self._base_height > 0:
            raise GodownError(
                Code.BAD_CONFIG,
                f"this store starts at height {self._base_height} (restored from a snapshot or pruned): blocks"
                f" 1..{self._base_height}"
                " are not in it, so it cannot be replayed from genesis; audit a node that keeps every block",
            )

    @property
    def is_blank(self) -> bool:
        """Whether the store holds nothing at all of a chain: no head, no state, no
        half-finished snapshot install (what a snapshot install needs to start)."""
        if self.is_initialized or self._kv.get(_RESTORE) is not None:
            return False
        return all(next(self._kv.iterate(p), None) is None for p in (_STATE, _GENESIS, _ROOTS, _HEADER, _BLOCK))

    @property
    def state_root(self) -> bytes:
        """The state root after executing the head."""
        return self._tree.root

    @property
    def state(self) -> StateView:
        """The committed state, read-only."""
        return self._view

    def roots_at(self, height: int) -> Roots | None:
        """The roots after executing `height` (0: genesis), or None."""
        raw = self._kv.get(_ROOTS + _be(height)) if height >= 0 else None
        return None if raw is None else Roots.decode(raw)

    def state_root_at(self, height: int) -> bytes | None:
        """The state root after executing `height` — what header `height+1` carries."""
        r = self.roots_at(height)
        return None if r is None else r.state_root

    def results_root_at(self, height: int) -> bytes | None:
        """The Merkle root of block `height`'s result codes (EMPTY_ROOT for genesis)."""
        r = self.roots_at(height)
        return None if r is None else r.results_root

    def get_header(self, height: int) -> Header | None:
        """Header of block `height`, or None."""
        raw = self._kv.get(_HEADER + _be(height)) if height >= 1 else None
        return None if raw is None else Header.from_dict(codec.decode(raw))

    def get_block(self, height: int) -> Block | None:
        """Block `height` with its result codes, or None."""
        raw = self._kv.get(_BLOCK + _be(height)) if height >= 1 else None
        return None if raw is None else Block.decode(raw)

    def block_parts(self, height: int) -> StoredTxs | None:
        """Block `height`'s time, encoded transactions and result codes, without decoding
        the transactions: what reading a few transactions of many blocks needs (a full
        `get_block` of a large block costs ~5x more). The bytes are this store's own,
        checked when committed."""
        raw = self.get_block_bytes(height)
        if raw is None:
            return None
        try:
            doc = msgpack.unpackb(raw, raw=False, strict_map_key=True)
            header = doc["header"]
            parts = StoredTxs(int(header["time_ms"]), list(doc["txs"]), list(doc["results"]))
        except (ValueError, TypeError, KeyError, msgpack.UnpackException) as exc:
            raise _damaged(height, f"block unreadable ({exc.__class__.__name__})") from None
        if len(parts.txs) != len(parts.results) or header.get("height") != height:
            raise _damaged(height, "block does not match its height or result count")
        return parts

    def get_block_bytes(self, height: int) -> bytes | None:
        """The stored canonical bytes of block `height` (for serving peers without re-encoding)."""
        return self._kv.get(_BLOCK + _be(height)) if height >= 1 else None

    def height_of(self, block_hash: bytes) -> int | None:
        """Height of the block with `block_hash`, or None."""
        raw = self._kv.get(_BY_HASH + block_hash)
        return None if raw is None else int(struct.unpack(">Q", raw)[0])

    def get_block_by_hash(self, block_hash: bytes) -> Block | None:
        """The block with `block_hash`, or None."""
        h = self.height_of(block_hash)
        return None if h is None else self.get_block(h)

    def get_events(self, height: int) -> bytes | None:
        """The events recorded with block `height`; None where none were kept (below a
        snapshot's base, or blocks stored before events were recorded)."""
        return self._kv.get(_EVENTS + _be(height))

    def term_entries(self, term: bytes, before: tuple[int, int] | None = None) -> Iterator[tuple[int, int]]:
        """(height, index) of every indexed transaction naming `term`, newest first,
        strictly before position `before` if given."""
        prefix = term_prefix(term)
        start = None if before is None else prefix + _TX_LOC.pack(*before)
        cut = len(prefix)
        for key, _ in self._kv.iterate(prefix, start=start, reverse=True):
            if len(key) != cut + _TX_LOC.size:
                raise _damaged(None, f"index entry {key.hex()} is malformed")
            pos = _TX_LOC.unpack_from(key, cut)
            if pos != before:
                yield pos

    @property
    def terms_complete(self) -> bool:
        """Whether every stored block has its entity index entries (see `index_terms_of`)."""
        return self._kv.get(_TERMS_DONE) is not None

    def index_terms_of(self, blocks: Sequence[tuple[int, Sequence[Sequence[bytes]]]], done: bool = False) -> None:
        """Write the entity index entries of stored blocks ((height, terms per transaction)),
        e.g. for blocks committed before the index existed; with `done`, also record that
        every stored block now has them (synced). Writing an entry twice is harmless."""
        with self._lock:
            batch = Batch()
            for h, terms in blocks:
                block = self.get_block(h)
                assert block is not None and len(terms) == len(block.txs), h
                for i, (per_tx, result) in enumerate(zip(terms, block.results)):
                    if result not in VOID_RESULTS:
                        for term in per_tx:
                            batch.put(term_prefix(term) + _TX_LOC.pack(h, i), b"")
            if done:
                batch.put(_TERMS_DONE, b"")
            self._kv.write(batch, sync=done)

    def get_commit(self, height: int) -> Commit | None:
        """The commit certificate of block `height`, or None."""
        raw = self._kv.get(_COMMIT + _be(height)) if height >= 1 else None
        return None if raw is None else Commit.decode(raw)

    def get_tx(self, tx_id: bytes) -> TxLocation | None:
        """Where the transaction `tx_id` was committed, or None."""
        raw = self._kv.get(_TX + tx_id)
        if raw is None:
            return None
        if len(raw) < _TX_LOC.size:
            raise _damaged(None, f"tx index entry of {tx_id.hex()} is unreadable")
        h, i = _TX_LOC.unpack_from(raw)
        return TxLocation(h, i, raw[_TX_LOC.size :].decode("utf-8", "replace"))

    def get_signed_tx(self, tx_id: bytes) -> tuple[SignedTx, TxLocation] | None:
        """The committed transaction `tx_id` with its location, or None."""
        loc = self.get_tx(tx_id)
        if loc is None:
            return None
        block = self.get_block(loc.height)
        if block is None or loc.index >= len(block.txs):
            raise _damaged(loc.height, f"tx index points at a missing transaction {tx_id.hex()}")
        return block.txs[loc.index], loc

    def prove(self, key: bytes) -> ProvenEntry:
        """The committed value of `key` (or its absence) with a proof against `state_root`."""
        with self._lock:
            return ProvenEntry(key, self._tree.get(key), self._height, self._tree.root, self._tree.prove(key))

    def keep_proof(self, key: bytes) -> ProvenEntry:
        """Keep the proof of `key` at the head for later (synced). The tree holds only the
        latest state, but some proofs are wanted long after: a light client learns each
        scheduled validator set from its proof against the root certified at that height."""
        with self._lock:
            entry = self.prove(key)
            self._kv.put(_KEPT + len(key).to_bytes(2, "big") + key + _be(entry.height), entry.encode(), sync=True)
            return entry

    def kept_proofs(self, key: bytes) -> list[ProvenEntry]:
        """Every kept proof of `key`, by height."""
        prefix = _KEPT + len(key).to_bytes(2, "big") + key
        try:
            return [ProvenEntry.decode(v) for _, v in self._kv.iterate(prefix)]
        except (GodownError, ValueError) as exc:
            raise _damaged(None, f"a kept proof does not decode ({exc})") from None

    def committed_head(self) -> CommittedHeight:
        """The head as a `CommittedHeight` (what a snapshot of the head names)."""
        with self._lock:
            if not self.is_initialized or self._genesis is None:
                raise GodownError(Code.BAD_CONFIG, "store holds no chain yet")
            roots = self._roots_or_damaged(self._height)
            header = self.get_header(self._height) if self._height >= 1 else None
            if self._height >= 1 and header is None:
                raise _damaged(self._height, "header missing")
            if roots.state_root != self._tree.root:
                raise _damaged(self._height, "state tree differs from the recorded state root")
            return CommittedHeight(
                self._genesis, self._height, self._hash, header, roots.state_root, roots.results_root
            )

    def freeze_state(self) -> FrozenState:
        """A consistent read view of the state at the head, for exporting a snapshot while
        blocks keep committing (see `FrozenState`). Close it when done."""
        with self._lock:  # no commit between reading the head and taking the view
            point = self.committed_head()
            items, get, release = _frozen_reader(self._kv)
            return FrozenState(point, items, get, release)

    # ---- snapshot install (storage/snapshot.py's Installer drives these) -----------------

    def stage_state(self, marker: bytes, entries: Sequence[tuple[bytes, bytes]]) -> None:
        """Write verified snapshot entries into the state index of a store without a chain,
        under the install marker `marker` (32 bytes: the manifest's digest). Not synced:
        `install_state` syncs everything at the end."""
        assert isinstance(marker, bytes) and len(marker) == 32
        with self._lock:
            if self.is_initialized:
                raise GodownError(Code.BAD_CONFIG, "store already holds a chain; refusing to install a snapshot")
            current = self._kv.get(_RESTORE)
            if current is not None and current != marker:
                raise GodownError(Code.BAD_CONFIG, "store holds part of another snapshot install")
            batch = Batch()
            batch.put(_RESTORE, marker)
            ops = batch.ops
            for key, value in entries:
                assert type(key) is bytes and type(value) is bytes
                ops[_STATE + key] = value
            self._kv.write(batch, sync=False)

    def discard_staged(self) -> None:
        """Remove a snapshot install under way (its state entries and marker), synced."""
        with self._lock:
            if self.is_initialized:
                raise GodownError(Code.BAD_CONFIG, "store holds a chain; refusing to discard its state")
            batch = Batch()
            for k, _ in self._kv.iterate(_STATE):
                batch.delete(k)
                if len(batch) >= 10_000:
                    self._kv.write(batch, sync=False)
                    batch = Batch()
            batch.delete(_RESTORE)
            self._kv.write(batch, sync=True)
            self._tree.reload()

    def install_state(self, point: CommittedHeight) -> bytes:
        """Finish a snapshot install: rebuild the state tree from the staged entries; if its
        root is `point.state_root`, record `point` as this store's base and head in one
        synced batch (the store then continues with block `point.height + 1`), else raise
        `tampered` and leave the store without a chain. Returns the state root."""
        with self._lock:
            if self.is_initialized:
                raise GodownError(Code.BAD_CONFIG, "store already holds a chain; refusing to install a snapshot")
            if self._kv.get(_RESTORE) is None:
                raise GodownError(Code.BAD_CONFIG, "no snapshot install is under way in this store")
            root = self._tree.reload()
            if root != point.state_root:
                raise GodownError(
                    Code.TAMPERED, f"installed state has root {root.hex()}, the snapshot names {point.state_root.hex()}"
                )
            h, hb = point.height, _be(point.height)
            head = codec.encode({"height": h, "hash": point.block_hash})
            batch = Batch()
            batch.put(_GENESIS, point.genesis_hash)
            batch.put(_ROOTS + hb, Roots(point.state_root, point.results_root, ZERO_HASH).encode())
            if point.header is not None:
                batch.put(_HEADER + hb, codec.encode(point.header.to_dict()))
                batch.put(_BASE, head)
            batch.put(_HEAD, head)
            batch.delete(_RESTORE)
            self._kv.write(batch, sync=True)
            self._genesis, self._height, self._hash = point.genesis_hash, h, point.block_hash
            self._base_height, self._base_hash = h, point.block_hash
            assert self.state_root == point.state_root and self.head_height == h
            return root

    # ---- writing --------------------------------------------------------------------------

    def init_genesis(self, genesis_hash: bytes, writes: Mapping[bytes, bytes]) -> bytes:
        """Record genesis: its hash (block 1's prev_hash) and the state at height 0.
        Returns the genesis state root. Refused (`bad_config`) if already initialized."""
        if not isinstance(genesis_hash, bytes) or len(genesis_hash) != 32:
            raise GodownError(Code.BAD_CONFIG, "genesis hash must be 32 bytes")
        with self._lock:
            if self.is_initialized:
                raise GodownError(Code.BAD_CONFIG, "store already holds a chain; refusing to write genesis again")
            batch = Batch()
            prepared = self._tree.prepare(dict(writes), batch)
            batch.put(_GENESIS, genesis_hash)
            batch.put(_ROOTS + _be(0), Roots(prepared.root, EMPTY_ROOT, ZERO_HASH).encode())
            batch.put(_HEAD, codec.encode({"height": 0, "hash": genesis_hash}))
            self._kv.write(batch, sync=True)
            self._tree.adopt(prepared)
            self._genesis, self._height, self._hash = genesis_hash, 0, genesis_hash
            return prepared.root

    def commit_block(
        self,
        block: Block,
        commit: Commit,
        state_changes: Mapping[bytes, bytes | None],
        events: bytes | None = None,
        terms: Sequence[Sequence[bytes]] | None = None,
    ) -> bytes:
        """Store executed `block` (with results), its certificate, its tx index entries,
        `state_changes` (None deletes), its `events` (what executing it emitted, which the
        stored block alone cannot rebuild), the entity index entries of `terms` (per
        transaction, the terms it is found by: opaque bytes from the node) and the new head
        in ONE synced batch; returns the
        new state root. Refuses (`bad_block` / `bad_certificate`) a block that does not
        extend the head: wrong height, prev_hash, state/results roots, txs_root, or a
        result count that differs from the transaction count. Signatures on `commit`
        are the caller's to check (it knows the validator set)."""
        with self._lock:
            if not self.is_initialized:
                raise _bad_block("store has no genesis yet")
            header = block.header
            h = header.height
            if h != self._height + 1:
                raise _bad_block(f"block height {h} does not follow head {self._height}")
            if header.prev_hash != self._hash:
                raise _bad_block(f"block {h} prev_hash does not link to the head")
            prev = self.roots_at(self._height)
            if prev is None:
                raise _damaged(self._height, "roots record missing")
            if header.state_root != prev.state_root:
                raise _bad_block(f"block {h} state_root differs from the state after height {self._height}")
            if header.results_root != prev.results_root:
                raise _bad_block(f"block {h} results_root differs from the results of height {self._height}")
            if len(block.results) != len(block.txs):
                raise _bad_block(f"block {h} has {len(block.txs)} transactions but {len(block.results)} results")
            assert terms is None or len(terms) == len(block.txs), "one list of index terms per transaction"
            encoded = [tx.encode() for tx in block.txs]  # once, for both the root and the body
            if merkle_root(encoded) != header.txs_root:
                raise _bad_block(f"txs_root does not match the transactions of height {h}")
            block_hash = block.hash()
            if commit.height != h or commit.block_hash != block_hash or commit.chain_id != header.chain_id:
                raise GodownError(Code.BAD_CERTIFICATE, f"certificate does not match block {h}")

            batch = Batch()
            prepared = self._tree.prepare(state_changes, batch)
            # the same document as Block.to_dict(), reusing the transaction encodings
            body = codec.encode({"header": header.to_dict(), "txs": encoded, "results": list(block.results)})
            hb = _be(h)
            batch.put(_HEADER + hb, codec.encode(header.to_dict()))
            batch.put(_BLOCK + hb, body)
            batch.put(_COMMIT + hb, commit.encode())
            roots = Roots(prepared.root, results_root(block.results), sha256(body))
            batch.put(_ROOTS + hb, roots.encode())
            batch.put(_BY_HASH + block_hash, hb)
            if events is not None:
                batch.put(_EVENTS + hb, events)
            get = self._kv.get
            ops = batch.ops
            for i, (tx, result) in enumerate(zip(block.txs, block.results)):
                key = _TX + tx.tx_id
                if result in VOID_RESULTS:
                    continue  # not the sender's act (see VOID_RESULTS): the id stays free
                if key not in ops and get(key) is None:  # first occurrence wins
                    ops[key] = _TX_LOC.pack(h, i) + result.encode()
                for term in terms[i] if terms is not None else ():
                    ops[term_prefix(term) + _TX_LOC.pack(h, i)] = b""
            batch.put(_HEAD, codec.encode({"height": h, "hash": block_hash}))
            self._kv.write(batch, sync=True)
            self._tree.adopt(prepared)
            self._height, self._hash = h, block_hash
            return prepared.root

    # ---- pruning --------------------------------------------------------------------------

    def prune_through(self, height: int, terms_of: Callable[[SignedTx], Sequence[bytes]]) -> int:
        """Drop the history of every height from the base up to `height` and make `height`
        the base, in ONE synced batch; returns how many heights went.

        Afterwards the store is what a snapshot restored at `height` gives (the key layout
        above): blocks, certificates, events, the tx index and the entity index entries
        (`terms_of(tx)`: the terms the node indexed a transaction by) at or below it are
        gone; the header and roots of `height` stay as the base. Except: a height that
        certifies a kept proof (`keep_proof`; the block after the proof's height) is kept
        whole, since a light client follows validator-set changes by it. The state, the
        kept proofs and the write-ahead log are untouched. Callers prune in steps: each
        step's deletes are one batch."""
        with self._lock:
            base = self._base_height
            if not base < height < self._height:
                raise GodownError(Code.BAD_CONFIG, f"cannot prune through {height}: base {base}, head {self._height}")
            certifying = {ProvenEntry.decode(v).height + 1 for _, v in self._kv.iterate(_KEPT)}
            batch = Batch()
            for h in range(base + 1, height + 1):
                if h in certifying:
                    continue
                hb = _be(h)
                parts, header = self.block_parts(h), self.get_header(h)
                if parts is None or header is None:
                    raise _damaged(h, "block missing above the base")
                for i, (raw, result) in enumerate(zip(parts.txs, parts.results)):
                    if result in VOID_RESULTS:
                        continue  # never indexed (commit_block), and its id may be indexed later
                    stx = SignedTx.decode_stored(raw)  # checked when it was committed
                    # no read first: an indexed id points here or at an earlier height,
                    # whose entry went when that height was pruned (heights go in order)
                    batch.delete(_TX + stx.tx_id)
                    for term in terms_of(stx):
                        batch.delete(term_prefix(term) + _TX_LOC.pack(h, i))
                batch.delete(_BY_HASH + header.hash())
                for prefix in (_BLOCK, _COMMIT, _EVENTS):
                    batch.delete(prefix + hb)
            for h in range(base, height):  # headers and roots below the new base (the old base's too)
                if h not in certifying:
                    batch.delete(_HEADER + _be(h))
                    batch.delete(_ROOTS + _be(h))
            header = self.get_header(height)
            if header is None:
                raise _damaged(height, "header missing above the base")
            new_hash = header.hash()
            roots = self._roots_or_damaged(height)  # as a restored base has them: no block digest
            batch.put(_ROOTS + _be(height), Roots(roots.state_root, roots.results_root, ZERO_HASH).encode())
            batch.put(_BASE, codec.encode({"height": height, "hash": new_hash}))
            self._kv.write(batch, sync=True)
            self._base_height, self._base_hash = height, new_hash
            return height - base

    # ---- integrity ------------------------------------------------------------------------

    def verify_integrity(self, *, deep_blocks: int | None = DEFAULT_DEEP_BLOCKS) -> None:
        """Check the store; raise NodeFault `store_damaged` naming the first bad height.

        Every height: header decodes, has its height, links to its predecessor's hash,
        carries the state and results roots recorded after the predecessor; the
        certificate matches the header's hash; the hash index points back. The newest
        `deep_blocks` heights (all if None) are also decoded in full: stored bytes match
        their recorded digest, header equals the stored header, txs_root and
        results_root recompute. Finally the state tree rebuilt from the state index must
        have the root recorded after the head, and the write-ahead log's sequence numbers
        must run without a gap.
        """
        self._check_wal()
        kv = self._kv
        if not self.is_initialized:
            if kv.get(_RESTORE) is not None:
                raise _damaged(None, "a snapshot install was not finished; remove the store and restore again")
            for prefix in (_GENESIS, _ROOTS, _HEADER, _BLOCK, _COMMIT, _STATE, _BASE):
                if next(kv.iterate(prefix), None) is not None:
                    raise _damaged(None, "chain records present but the head record is missing")
            return
        if self._genesis is None:
            raise _damaged(0, "genesis hash missing")
        base = self._base_height
        prev_roots = self._roots_or_damaged(base)
        prev_hash = self._genesis if base == 0 else self._base_hash
        if base > 0:
            self._check_base(base)
        first_deep = base + 1 if deep_blocks is None else max(base + 1, self._height - deep_blocks + 1)
        for h in range(base + 1, self._height + 1):
            hb = _be(h)
            raw = kv.get(_HEADER + hb)
            if raw is None:
                raise _damaged(h, "header missing")
            try:
                header = Header.from_dict(codec.decode(raw))
            except GodownError as exc:
                raise _damaged(h, f"header unreadable ({exc.message})") from None
            if header.height != h:
                raise _damaged(h, f"header says height {header.height}")
            if header.prev_hash != prev_hash:
                raise _damaged(h, "prev_hash does not link to the block before")
            if header.state_root != prev_roots.state_root:
                raise _damaged(h, f"header state_root differs from the state root recorded after {h - 1}")
            if header.results_root != prev_roots.results_root:
                raise _damaged(h, f"header results_root differs from the results root recorded after {h - 1}")
            block_hash = header.hash()
            raw_commit = kv.get(_COMMIT + hb)
            try:
                commit = Commit.decode(raw_commit) if raw_commit is not None else None
            except GodownError:
                commit = None
            if commit is None or commit.block_hash != block_hash or commit.height != h:
                raise _damaged(h, "commit certificate missing or not for this block")
            if kv.get(_BY_HASH + block_hash) != hb:
                raise _damaged(h, "block hash index does not point at this height")
            roots = self._roots_or_damaged(h)
            if h >= first_deep:
                self._check_body(h, header, roots)
            prev_hash, prev_roots = block_hash, roots
        if prev_hash != self._hash:
            raise _damaged(self._height, "head record does not name the last block")
        if self._tree.root != prev_roots.state_root:
            raise _damaged(self._height, "state recomputed from the state index does not match the recorded state root")

    def _check_wal(self) -> None:
        """Write-ahead log records are appended with consecutive numbers and only ever
        dropped from the front, so a gap means records were lost (a consensus vote this
        node made could be forgotten): refuse."""
        cut = len(_WAL)
        expected: int | None = None
        for key, _ in self._kv.iterate(_WAL):
            if len(key) != cut + 8:
                raise _damaged(None, f"write-ahead log key {key.hex()} is malformed")
            seq = struct.unpack(">Q", key[cut:])[0]
            if expected is not None and seq != expected:
                raise _damaged(None, f"write-ahead log record {expected} is missing (the next one is {seq})")
            expected = seq + 1

    def _check_base(self, base: int) -> None:
        """The base of a restored store: below the head, its header stored and hashing to it."""
        if base > self._height:
            raise _damaged(base, f"base height is above the head {self._height}")
        raw = self._kv.get(_HEADER + _be(base))
        try:
            header = Header.from_dict(codec.decode(raw)) if raw is not None else None
        except GodownError:
            header = None
        if header is None or header.height != base or header.hash() != self._base_hash:
            raise _damaged(base, "the header of the snapshot base is missing or does not match it")

    def _roots_or_damaged(self, h: int) -> Roots:
        raw = self._kv.get(_ROOTS + _be(h))
        if raw is None:
            raise _damaged(h, "roots record missing")
        try:
            return Roots.decode(raw)
        except (GodownError, ValueError) as exc:
            raise _damaged(h, f"roots record unreadable ({exc})") from None

    def _check_body(self, h: int, header: Header, roots: Roots) -> None:
        body = self._kv.get(_BLOCK + _be(h))
        if body is None:
            raise _damaged(h, "block missing")
        if sha256(body) != roots.block_digest:
            raise _damaged(h, "block bytes differ from their recorded digest")
        try:  # the transactions are not decoded one by one: their bytes matched the digest
            block_header, encoded, results = Block.parts_of(codec.decode(body, max_bytes=MAX_BLOCK_BYTES))
        except GodownError as exc:
            raise _damaged(h, f"block unreadable ({exc.message})") from None
        if merkle_root(encoded) != block_header.txs_root:
            raise _damaged(h, f"block unreadable (txs_root does not match the transactions of height {h})")
        if block_header != header:
            raise _damaged(h, "block header differs from the stored header")
        if len(results) != len(encoded) or results_root(results) != roots.results_root:
            raise _damaged(h, "result codes do not match the recorded results root")

    # ---- consensus write-ahead log --------------------------------------------------------

    def wal_append(self, record: bytes) -> int:
        """Append `record` durably (synced before return); returns its sequence number."""
        with self._lock:
            seq = self._wal_next
            self._kv.put(_WAL + _be(seq), record, sync=True)
            self._wal_next = seq + 1
            return seq

    def wal_append_many(self, records: list[bytes], sync: bool = True) -> list[int]:
        """Append several records in one batch, synced unless `sync=False` (then they are
        durable once a later synced write — `wal_sync`, another append, a committed
        block — returns); returns their sequence numbers."""
        with self._lock:
            batch = Batch()
            seqs = list(range(self._wal_next, self._wal_next + len(records)))
            for seq, record in zip(seqs, records):
                batch.put(_WAL + _be(seq), record)
            if seqs or sync:
                self._kv.write(batch, sync=sync)  # an empty synced batch syncs what came before
            if seqs:
                self._wal_next = seqs[-1] + 1
            return seqs

    def wal_sync(self) -> None:
        """Make every record appended so far durable."""
        self.wal_append_many([], sync=True)

    def wal_entries(self) -> list[tuple[int, bytes]]:
        """Every (sequence number, record) in append order."""
        cut = len(_WAL)
        return [(struct.unpack(">Q", k[cut:])[0], v) for k, v in self._kv.iterate(_WAL)]

    def wal_records(self) -> list[bytes]:
        """Every record in append order."""
        return [v for _, v in self._kv.iterate(_WAL)]

    def wal_truncate_below(self, seq: int) -> None:
        """Drop records with sequence number < `seq` (synced)."""
        with self._lock:
            batch = Batch()
            for k, _ in self._kv.iterate(_WAL):
                if struct.unpack(">Q", k[len(_WAL) :])[0] >= seq:
                    break
                batch.delete(k)
            batch.put(_WAL_FLOOR, _be(max(0, min(seq, self._wal_next))))
            self._kv.write(batch, sync=True)

    def wal_reset(self) -> None:
        """Drop every record (synced). Sequence numbers keep increasing."""
        self.wal_truncate_below(self._wal_next)
