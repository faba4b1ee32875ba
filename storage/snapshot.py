"""State snapshots: a manifest and chunks, each chunk verifiable on its own against a
trusted state root. Operators' backups (`godown snapshot export|restore`) and state sync
(DESIGN §4) use the same format; docs/snapshot.md is the specification with a vector.

Why subtrees: the state tree (storage/state_tree.py) is a 16-way Merkle tree over
sha256(key). A chunk is ONE node of that tree — every entry whose path starts with the
node's position — plus the sibling hashes of the branches above it. Rebuilding the node
from the entries and hashing up through the siblings must give the trusted root, so a
syncing node checks each chunk the moment it arrives, from any peer, in any order
(CometBFT's state sync checks chunks only through the app; here the format does it).

Bytes (canonical msgpack, DESIGN §2: sorted str keys, bin for bytes, ints only):

    Chunk    = {"entries": [[key, value], ...],   # sorted by sha256(key), strictly
                "path":    bin,                   # the node's position: one byte (0..15)
                                                  #   per nibble of sha256(key), root first
                "proof":   [bin480, ...]}         # one row per byte of path, root first:
                                                  #   the 15 sibling hashes of that branch,
                                                  #   in nibble order, the walked one left out
    Manifest = {"block_hash":   bin32,  # hash of the header at height (genesis hash at 0)
                "chain_id":     str,
                "chunk_hashes": [bin32, ...],     # sha256 of each chunk's bytes, in order;
                                                  #   the chunk count is this list's length
                "format":       1,
                "genesis_hash": bin32,
                "header":       Header map | nil, # the header at height (nil at height 0)
                "height":       int,              # the committed height h of the state
                "results_root": bin32,            # results root of block h (what header
                "state_root":   bin32}            #   h+1 carries), state root after h

Every entry of a chunk lies under `path`; the chunks of one snapshot hold disjoint
subtrees that together hold every entry (empty subtrees have no chunk; an empty state is
one chunk with path b"" and no entries). The exporter descends from the root and makes a
node one chunk as soon as it fits `CHUNK_TARGET_BYTES` / `CHUNK_TARGET_ENTRIES` (a
bucket of at most 8 entries always is one), so the chunking is a function of the state
alone: every honest node makes the same manifest for the same height, and a syncing node
can fetch chunks of it from several peers. The snapshot's id is sha256(manifest bytes).

Limits every decode enforces before trusting anything: chunk ≤ `MAX_CHUNK_BYTES` and
≤ `MAX_CHUNK_ENTRIES` entries, manifest ≤ `MAX_MANIFEST_BYTES` and ≤ `MAX_CHUNKS`
chunks; anything else is refused with a `SnapshotError` (codes `oversize`,
`malformed`, `tampered`, `wrong_chain`), never an exception of another kind.

The file container (one file: `godown snapshot export --out FILE`):

    file  = MAGIC (16 bytes "godown-snapshot\\n") || frame(chunk_0) || ... ||
            frame(chunk_n-1) || frame(manifest) || sha256(manifest) (32) || be32(len(manifest))
    frame = be32(len(x)) || x

so chunks stream out before the manifest that lists their hashes, and a reader finds the
manifest from the end. Every byte is checked: the magic, the manifest by its digest,
each chunk by the manifest's hash and the state root.

Consistency while exporting: `ChainStore.freeze_state` takes the head and a read view of
the state under the store's lock (a LevelDB snapshot, or a copy over another KV), so a
running node exports the state at a height while later blocks commit.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from primitives import codec
from primitives.block import Header
from primitives.codec import EncodingError
from primitives.errors import Code, GodownError
from primitives.hashing import EMPTY_ROOT
from storage.chain import ChainStore, CommittedHeight, FrozenState
from storage.state_tree import key_path, partition, position_of, subtree_root

FORMAT = 1
"""The snapshot format this module writes and reads."""

MAX_CHUNK_BYTES = 4 * 1024 * 1024
"""Largest chunk any decoder accepts."""
MAX_CHUNK_ENTRIES = 65_536
"""Most entries a chunk may carry (bounds the memory one decode can take)."""
MAX_CHUNKS = 65_536
"""Most chunks a manifest may list."""
MAX_MANIFEST_BYTES = 3 * 1024 * 1024
"""Largest manifest any decoder accepts (MAX_CHUNKS hashes fit with room to spare)."""

CHUNK_TARGET_BYTES = 1024 * 1024
"""A subtree becomes one chunk once its chunk is at most this large. Part of the format:
nodes serving state sync keep the default, so their manifests agree."""
CHUNK_TARGET_ENTRIES = 16_384
"""... and holds at most this many entries."""

MAGIC = b"godown-snapshot\n"
"""First 16 bytes of a snapshot file."""

_ROW = 480
_MANIFEST_FIELDS = frozenset(
    {
        "block_hash",
        "chain_id",
        "chunk_hashes",
        "format",
        "genesis_hash",
        "header",
        "height",
        "results_root",
        "state_root",
    }
)
_CHUNK_FIELDS = frozenset({"entries", "path", "proof"})
_BE32 = struct.Struct(">I")
_TRAILER = 32 + 4
_sha = hashlib.sha256


class SnapshotError(GodownError):
    """A snapshot file, manifest or chunk refused: `oversize` (over a limit), `malformed`
    (not the format), `tampered` (does not hash to what it must), `wrong_chain`."""


def _refuse(code: Code, message: str) -> SnapshotError:
    return SnapshotError(code, message)


def _strict_decode(data: bytes, what: str, max_bytes: int, max_items: int) -> Any:
    """Canonical msgpack (`codec.decode`) with every container bounded by `max_items`
    before anything is built; refusals become snapshot errors with the same code."""
    if not isinstance(data, bytes):
        raise _refuse(Code.MALFORMED, f"{what} must be bytes")
    if len(data) > max_bytes:
        raise _refuse(Code.OVERSIZE, f"{what} of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        return codec.decode(data, max_bytes=max_bytes, max_items=max_items)
    except EncodingError as exc:
        raise _refuse(exc.code, f"{what}: {exc.message}") from None


def _is_hash(v: Any) -> bool:
    return type(v) is bytes and len(v) == 32


# ---- the manifest ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """What a snapshot is of (module docstring: `Manifest`)."""

    chain_id: str
    genesis_hash: bytes
    height: int
    block_hash: bytes
    header: Header | None
    state_root: bytes
    results_root: bytes
    chunk_hashes: tuple[bytes, ...]

    @staticmethod
    def of(chain_id: str, point: CommittedHeight, chunk_hashes: tuple[bytes, ...]) -> Manifest:
        """The manifest of the state at `point` cut into chunks with `chunk_hashes`."""
        return Manifest(
            chain_id,
            point.genesis_hash,
            point.height,
            point.block_hash,
            point.header,
            point.state_root,
            point.results_root,
            chunk_hashes,
        )

    @property
    def chunks(self) -> int:
        """How many chunks the snapshot has."""
        return len(self.chunk_hashes)

    def point(self) -> CommittedHeight:
        """The committed height the snapshot names, as the chain store records it."""
        return CommittedHeight(
            self.genesis_hash, self.height, self.block_hash, self.header, self.state_root, self.results_root
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "block_hash": self.block_hash,
            "chain_id": self.chain_id,
            "chunk_hashes": list(self.chunk_hashes),
            "format": FORMAT,
            "genesis_hash": self.genesis_hash,
            "header": None if self.header is None else self.header.to_dict(),
            "height": self.height,
            "results_root": self.results_root,
            "state_root": self.state_root,
        }

    def encode(self) -> bytes:
        """Canonical bytes."""
        return codec.encode(self.to_dict())

    def digest(self) -> bytes:
        """The snapshot's id: sha256 of the manifest bytes."""
        return _sha(self.encode()).digest()

    def to_json(self) -> dict[str, Any]:
        """A summary for people and RPC: hashes as lowercase hex, no chunk list."""
        return {
            "snapshot": self.digest().hex(),
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash.hex(),
            "height": self.height,
            "block_hash": self.block_hash.hex(),
            "state_root": self.state_root.hex(),
            "results_root": self.results_root.hex(),
            "chunks": self.chunks,
        }

    @staticmethod
    def decode(data: bytes) -> Manifest:
        """Strict inverse of `encode`, with the manifest's own consistency checked: the
        header names the height, the chain and the block hash (at height 0: no header,
        the genesis hash, the empty results root)."""
        doc = _strict_decode(data, "snapshot manifest", MAX_MANIFEST_BYTES, MAX_CHUNKS)
        if not isinstance(doc, dict) or set(doc) != _MANIFEST_FIELDS:
            raise _refuse(Code.MALFORMED, "snapshot manifest has missing or unknown fields")
        if doc["format"] != FORMAT or type(doc["format"]) is not int:
            raise _refuse(Code.MALFORMED, f"snapshot format {doc['format']!r} is not supported (only {FORMAT})")
        height, chain_id, hashes = doc["height"], doc["chain_id"], doc["chunk_hashes"]
        if type(height) is not int or height < 0:
            raise _refuse(Code.MALFORMED, "snapshot height must be a non-negative integer")
        if type(chain_id) is not str or not chain_id:
            raise _refuse(Code.MALFORMED, "snapshot chain_id must be a non-empty string")
        if not all(_is_hash(doc[f]) for f in ("block_hash", "genesis_hash", "results_root", "state_root")):
            raise _refuse(Code.MALFORMED, "snapshot hashes and roots must be 32 bytes")
        if not isinstance(hashes, list) or not 1 <= len(hashes) <= MAX_CHUNKS or not all(map(_is_hash, hashes)):
            raise _refuse(Code.MALFORMED, f"snapshot must list 1..{MAX_CHUNKS} chunk hashes of 32 bytes")
        header = None
        if doc["header"] is not None:
            try:
                header = Header.from_dict(doc["header"])
            except GodownError as exc:
                raise _refuse(Code.MALFORMED, f"snapshot header: {exc.message}") from None
        m = Manifest(
            chain_id,
            doc["genesis_hash"],
            height,
            doc["block_hash"],
            header,
            doc["state_root"],
            doc["results_root"],
            tuple(hashes),
        )
        m._check_consistent()
        return m

    def _check_consistent(self) -> None:
        if self.height == 0:
            if self.header is not None or self.block_hash != self.genesis_hash or self.results_root != EMPTY_ROOT:
                raise _refuse(Code.MALFORMED, "a snapshot at height 0 has no header and names genesis")
            return
        h = self.header
        if h is None or h.height != self.height or h.chain_id != self.chain_id:
            raise _refuse(Code.MALFORMED, f"snapshot header is not the header of {self.chain_id} at {self.height}")
        if h.hash() != self.block_hash:
            raise _refuse(Code.TAMPERED, "snapshot header does not hash to its block hash")


@dataclass(frozen=True)
class Trusted:
    """What a syncing node knows of height h from a certified source. From the header of
    h+1 once its commit certificate verified (`from_next_header`): all of it. From a
    stable checkpoint: the state root only (the rest is then checked when block h+1 and
    its certificate arrive, as `ChainStore.commit_block` checks every block's link)."""

    height: int
    state_root: bytes
    block_hash: bytes | None = None
    results_root: bytes | None = None

    @staticmethod
    def from_next_header(header: Header) -> Trusted:
        """Height h from the (certified) header of h+1: its prev_hash, state_root and
        results_root are those of h."""
        return Trusted(header.height - 1, header.state_root, header.prev_hash, header.results_root)


def check_manifest(manifest: Manifest, chain_id: str, genesis_hash: bytes, trusted: Trusted | None) -> None:
    """Refuse a manifest of another chain (`wrong_chain`) or, if `trusted` is given, one
    whose height, state root or (when known) block hash and results root differ from
    the trusted ones (`tampered`)."""
    m = manifest
    if m.chain_id != chain_id or m.genesis_hash != genesis_hash:
        raise _refuse(Code.WRONG_CHAIN, f"snapshot is of chain {m.chain_id!r}, not of this chain's genesis")
    if trusted is None:
        return
    if m.height != trusted.height:
        raise _refuse(Code.TAMPERED, f"snapshot is at height {m.height}, the trusted state at {trusted.height}")
    for name, want, have in (
        ("state root", trusted.state_root, m.state_root),
        ("block hash", trusted.block_hash, m.block_hash),
        ("results root", trusted.results_root, m.results_root),
    ):
        if want is not None and want != have:
            raise _refuse(Code.TAMPERED, f"snapshot {name} differs from the trusted one at height {m.height}")


def verify_manifest(data: bytes, chain_id: str, genesis_hash: bytes, trusted: Trusted | None) -> Manifest:
    """Decode a manifest a peer (or a file) offers and `check_manifest` it. Raises
    `SnapshotError` (`wrong_chain`, `tampered`, `malformed`, `oversize`)."""
    manifest = Manifest.decode(data)
    check_manifest(manifest, chain_id, genesis_hash, trusted)
    return manifest


# ---- chunks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedChunk:
    """A chunk shown to belong to the trusted state: its index in the manifest, its
    subtree's position and its (key, value) entries, in path order."""

    index: int
    position: bytes
    entries: tuple[tuple[bytes, bytes], ...]


def verify_chunk(manifest: Manifest, index: int, chunk_bytes: bytes, trusted_state_root: bytes) -> VerifiedChunk:
    """Check chunk `index` of `manifest` on its own against `trusted_state_root`: within
    the limits, the hash the manifest lists, canonical, and — what makes it safe even
    from a manifest a liar wrote — its entries rebuild the subtree at its position,
    which the proof's sibling hashes carry up to the trusted root. Raises `SnapshotError`
    (`oversize`, `malformed` or `tampered`)."""
    if type(index) is not int or not 0 <= index < manifest.chunks:
        raise _refuse(Code.MALFORMED, f"chunk index {index!r} is not in 0..{manifest.chunks - 1}")
    if manifest.state_root != trusted_state_root:
        raise _refuse(Code.TAMPERED, "snapshot state root differs from the trusted state root")
    if not isinstance(chunk_bytes, bytes):
        raise _refuse(Code.MALFORMED, "a chunk must be bytes")
    if len(chunk_bytes) > MAX_CHUNK_BYTES:
        raise _refuse(Code.OVERSIZE, f"chunk {index} of {len(chunk_bytes)} bytes exceeds {MAX_CHUNK_BYTES}")
    if _sha(chunk_bytes).digest() != manifest.chunk_hashes[index]:
        raise _refuse(Code.TAMPERED, f"chunk {index} does not match the hash the manifest lists for it")
    doc = _strict_decode(chunk_bytes, f"chunk {index}", MAX_CHUNK_BYTES, MAX_CHUNK_ENTRIES)
    position, entries, hashed = _chunk_fields(doc, index)
    if subtree_root(position, doc["proof"], hashed) != trusted_state_root:
        raise _refuse(Code.TAMPERED, f"chunk {index} does not prove its entries against the trusted state root")
    return VerifiedChunk(index, position, entries)


def _chunk_fields(doc: Any, index: int) -> tuple[bytes, tuple[tuple[bytes, bytes], ...], list[tuple[bytes, bytes]]]:
    """(position, entries, (path, value_hash) per entry) of a decoded chunk, with every
    precondition of `subtree_root` checked."""
    what = f"chunk {index}"
    if not isinstance(doc, dict) or set(doc) != _CHUNK_FIELDS:
        raise _refuse(Code.MALFORMED, f"{what} must have exactly entries, path and proof")
    position, proof, raw = doc["path"], doc["proof"], doc["entries"]
    if type(position) is not bytes or len(position) > 64 or any(n > 15 for n in position):
        raise _refuse(Code.MALFORMED, f"{what}: path must be at most 64 nibbles, one byte 0..15 each")
    if not isinstance(proof, list) or len(proof) != len(position):
        raise _refuse(Code.MALFORMED, f"{what}: proof must have one row per nibble of the path")
    if not all(type(row) is bytes and len(row) == _ROW for row in proof):
        raise _refuse(Code.MALFORMED, f"{what}: each proof row must be {_ROW} bytes")
    if not isinstance(raw, list):
        raise _refuse(Code.MALFORMED, f"{what}: entries must be a list")
    depth = len(position)
    entries: list[tuple[bytes, bytes]] = []
    hashed: list[tuple[bytes, bytes]] = []
    prev = b""
    for e in raw:
        if not isinstance(e, list) or len(e) != 2 or type(e[0]) is not bytes or type(e[1]) is not bytes:
            raise _refuse(Code.MALFORMED, f"{what}: each entry must be [key, value], both bytes")
        path = key_path(e[0])
        if path <= prev:
            raise _refuse(Code.MALFORMED, f"{what}: entries are not sorted by sha256(key) without repeats")
        if position_of(path, depth) != position:
            raise _refuse(Code.MALFORMED, f"{what}: an entry lies outside the chunk's subtree")
        prev = path
        entries.append((e[0], e[1]))
        hashed.append((path, _sha(e[1]).digest()))
    return position, tuple(entries), hashed


# ---- export ----------------------------------------------------------------------------------


def _bin_size(n: int) -> int:
    return n + (2 if n < 0x100 else 3 if n < 0x10000 else 5)


def _array_size(n: int) -> int:
    return 1 if n < 16 else 3 if n < 0x10000 else 5


def _chunk_size(depth: int, count: int, entry_bytes: int) -> int:
    """Exact length of a chunk's canonical bytes: fixmap, "entries" + list, "path" +
    bin, "proof" + list of bin16 rows."""
    return 1 + 8 + _array_size(count) + entry_bytes + 5 + _bin_size(depth) + 6 + _array_size(depth) + depth * 483


def export_chunks(
    frozen: FrozenState, *, target_bytes: int = CHUNK_TARGET_BYTES, target_entries: int = CHUNK_TARGET_ENTRIES
) -> Iterator[bytes]:
    """The chunks of the frozen state, in path order (see the module docstring). Keeps
    one small row per entry in memory (path, value hash, key, size) and reads values
    back from the view one chunk at a time. Raises `oversize` if a bucket's chunk is over
    `MAX_CHUNK_BYTES` or the chunks are more than `MAX_CHUNKS`, and `store_damaged` if
    the view does not hash to the recorded state root."""
    assert 0 < target_bytes <= MAX_CHUNK_BYTES and 0 < target_entries <= MAX_CHUNK_ENTRIES
    rows = sorted(
        (key_path(k), _sha(v).digest(), k, 1 + _bin_size(len(k)) + _bin_size(len(v))) for k, v in frozen.items()
    )
    cum = [0]
    for row in rows:
        cum.append(cum[-1] + row[3])

    def fits(depth: int, start: int, end: int) -> bool:
        return end - start <= target_entries and _chunk_size(depth, end - start, cum[end] - cum[start]) <= target_bytes

    root, subtrees = partition([(r[0], r[1]) for r in rows], fits)
    if root != frozen.point.state_root:
        raise GodownError(Code.STORE_DAMAGED, "the state read for the snapshot does not hash to the recorded root")
    if len(subtrees) > MAX_CHUNKS:
        raise _refuse(Code.OVERSIZE, f"the state needs {len(subtrees)} chunks, more than {MAX_CHUNKS}")
    for sub in subtrees:
        entries = []
        for path, vhash, key, _ in rows[sub.start : sub.end]:
            value = frozen.get(key)
            if value is None or _sha(value).digest() != vhash:
                raise GodownError(Code.STORE_DAMAGED, "the state changed under the snapshot's read view")
            entries.append([key, value])
        size = _chunk_size(len(sub.position), len(entries), cum[sub.end] - cum[sub.start])
        if size > MAX_CHUNK_BYTES or len(entries) > MAX_CHUNK_ENTRIES:
            raise _refuse(Code.OVERSIZE, f"state entries under one bucket take {size} bytes, over {MAX_CHUNK_BYTES}")
        data = codec.encode({"entries": entries, "path": sub.position, "proof": list(sub.rows)})
        assert len(data) == size, (len(data), size)
        yield data


@dataclass(frozen=True)
class Snapshot:
    """A snapshot held in memory: the manifest and every chunk (what a serving node
    answers state-sync requests from)."""

    manifest: Manifest
    chunks: tuple[bytes, ...]

    @property
    def manifest_bytes(self) -> bytes:
        return self.manifest.encode()

    def chunk(self, index: int) -> bytes | None:
        """Chunk `index`, or None if there is no such chunk."""
        return self.chunks[index] if 0 <= index < len(self.chunks) else None


def _chain_id_for(frozen: FrozenState, chain_id: str) -> str:
    header = frozen.point.header
    if header is not None and header.chain_id != chain_id:
        raise GodownError(Code.BAD_CONFIG, f"store holds chain {header.chain_id!r}, not {chain_id!r}")
    return chain_id


def build_snapshot(frozen: FrozenState, chain_id: str, *, target_bytes: int = CHUNK_TARGET_BYTES) -> Snapshot:
    """The whole snapshot of a frozen state, in memory."""
    chain_id = _chain_id_for(frozen, chain_id)
    chunks = tuple(export_chunks(frozen, target_bytes=target_bytes))
    manifest = Manifest.of(chain_id, frozen.point, tuple(_sha(c).digest() for c in chunks))
    assert manifest.chunks == len(chunks) >= 1
    return Snapshot(manifest, chunks)


def take_snapshot(store: ChainStore, chain_id: str, *, target_bytes: int = CHUNK_TARGET_BYTES) -> Snapshot:
    """Freeze the head of `store`, cut it into a snapshot, release the view."""
    with store.freeze_state() as frozen:
        return build_snapshot(frozen, chain_id, target_bytes=target_bytes)


# ---- the file container ------------------------------------------------------------------------


def write_snapshot_file(
    path: str | Path, frozen: FrozenState, chain_id: str, *, target_bytes: int = CHUNK_TARGET_BYTES
) -> Manifest:
    """Write the snapshot of `frozen` to `path` (module docstring: the container),
    streaming chunk by chunk; the file appears complete (written to a side file, synced,
    renamed) or not at all. Returns the manifest."""
    chain_id = _chain_id_for(frozen, chain_id)
    target = Path(path)
    part = target.with_name(target.name + ".part")
    hashes: list[bytes] = []
    try:
        with open(part, "wb") as f:
            f.write(MAGIC)
            for chunk in export_chunks(frozen, target_bytes=target_bytes):
                f.write(_BE32.pack(len(chunk)) + chunk)
                hashes.append(_sha(chunk).digest())
            manifest = Manifest.of(chain_id, frozen.point, tuple(hashes))
            raw = manifest.encode()
            f.write(_BE32.pack(len(raw)) + raw + _sha(raw).digest() + _BE32.pack(len(raw)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return manifest


class SnapshotFile:
    """A snapshot file opened for reading: the manifest (checked against its digest) and
    random access to the chunks (checked by the caller: `verify_chunk` / `Installer`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._f: BinaryIO = open(path, "rb")
        except OSError as exc:
            raise GodownError(Code.BAD_CONFIG, f"cannot read snapshot file {self.path}: {exc.strerror}") from None
        try:
            self.manifest, self._offsets = self._read_index()
        except BaseException:
            self._f.close()
            raise

    def _read_exact(self, offset: int, n: int) -> bytes:
        self._f.seek(offset)
        data = self._f.read(n)
        if len(data) != n:
            raise _refuse(Code.MALFORMED, f"snapshot file {self.path} is truncated")
        return data

    def _read_index(self) -> tuple[Manifest, list[tuple[int, int]]]:
        size = os.fstat(self._f.fileno()).st_size
        if size < len(MAGIC) + 4 + _TRAILER or self._read_exact(0, len(MAGIC)) != MAGIC:
            raise _refuse(Code.MALFORMED, f"{self.path} is not a godown snapshot file")
        trailer = self._read_exact(size - _TRAILER, _TRAILER)
        digest, (length,) = trailer[:32], _BE32.unpack(trailer[32:])
        at = size - _TRAILER - length - 4
        if length > MAX_MANIFEST_BYTES or at < len(MAGIC):
            raise _refuse(Code.MALFORMED, f"snapshot file {self.path} is truncated or damaged (manifest length)")
        framed = self._read_exact(at, 4 + length)
        if _BE32.unpack(framed[:4])[0] != length or _sha(framed[4:]).digest() != digest:
            raise _refuse(Code.TAMPERED, f"the manifest of snapshot file {self.path} is damaged")
        manifest = Manifest.decode(framed[4:])
        offsets: list[tuple[int, int]] = []
        pos = len(MAGIC)
        for i in range(manifest.chunks):
            if pos + 4 > at:
                raise _refuse(Code.MALFORMED, f"snapshot file {self.path} holds fewer chunks than its manifest lists")
            (n,) = _BE32.unpack(self._read_exact(pos, 4))
            if n > MAX_CHUNK_BYTES:
                raise _refuse(Code.OVERSIZE, f"chunk {i} of snapshot file {self.path} is over {MAX_CHUNK_BYTES} bytes")
            offsets.append((pos + 4, n))
            pos += 4 + n
        if pos != at:
            raise _refuse(Code.MALFORMED, f"the chunks of snapshot file {self.path} do not match its manifest")
        return manifest, offsets

    def chunk(self, index: int) -> bytes:
        """The bytes of chunk `index` as stored (not yet verified)."""
        offset, n = self._offsets[index]
        return self._read_exact(offset, n)

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        """(index, bytes) of every chunk, in order."""
        for i in range(len(self._offsets)):
            yield i, self.chunk(i)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> SnapshotFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- install ---------------------------------------------------------------------------------


class Installer:
    """Accumulate verified chunks into a blank chain store, then make it a store at the
    snapshot's height (`ChainStore.install_state`): state, state tree, head, the header
    and roots of that height; the node continues by fetching block h+1 with its
    certificate. Entries go to disk as each chunk verifies (memory stays bounded); if
    the install is abandoned, `abort` removes them."""

    def __init__(self, store: ChainStore, manifest: Manifest, trusted_state_root: bytes) -> None:
        if manifest.state_root != trusted_state_root:
            raise _refuse(Code.TAMPERED, "snapshot state root differs from the trusted state root")
        if not store.is_blank:
            raise GodownError(Code.BAD_CONFIG, "a snapshot installs only into an empty store")
        self.store = store
        self.manifest = manifest
        self._root = trusted_state_root
        self._marker = manifest.digest()
        self._done: set[int] = set()
        self._positions: set[bytes] = set()
        self._covered: set[bytes] = set()  # every prefix of an accepted position
        self.entries = 0

    @property
    def missing(self) -> list[int]:
        """Indexes of the chunks not yet accepted, in order."""
        return [i for i in range(self.manifest.chunks) if i not in self._done]

    @property
    def complete(self) -> bool:
        return len(self._done) == self.manifest.chunks

    def add(self, index: int, chunk_bytes: bytes) -> bool:
        """Verify chunk `index` and write its entries; False if it was accepted already.
        Raises `SnapshotError` for a bad chunk (the store is left as it was)."""
        if type(index) is int and index in self._done:
            return False
        chunk = verify_chunk(self.manifest, index, chunk_bytes, self._root)
        pos = chunk.position
        if pos in self._covered or any(pos[:d] in self._positions for d in range(len(pos) + 1)):
            raise _refuse(Code.TAMPERED, f"chunk {index} overlaps a chunk already installed")
        self.store.stage_state(self._marker, chunk.entries)
        self._done.add(index)
        self._positions.add(pos)
        self._covered.update(pos[:d] for d in range(len(pos) + 1))
        self.entries += len(chunk.entries)
        return True

    def finish(self) -> bytes:
        """Once every chunk is in: record the snapshot's height in the store (one synced
        batch) and return the state root. If the entries do not rebuild the state root
        (a manifest that leaves chunks out), they are removed and `tampered` raised."""
        if not self.complete:
            raise GodownError(Code.BAD_CONFIG, f"snapshot install is missing chunks {self.missing[:8]}")
        try:
            root = self.store.install_state(self.manifest.point())
        except GodownError as exc:
            if exc.code is Code.TAMPERED:
                self.store.discard_staged()
                raise _refuse(Code.TAMPERED, exc.message) from None
            raise
        assert root == self._root == self.store.state_root
        return root

    def abort(self) -> None:
        """Remove whatever this install wrote (the store is blank again)."""
        self.store.discard_staged()
        self._done.clear()
        self._positions.clear()
        self._covered.clear()
        self.entries = 0
