"""Authenticated state: an ordered bytes → bytes map with a 32-byte SHA-256 root and
inclusion/exclusion proofs.

Why not the `trie` package: it manages ~4,000 inserts/s here (DEPENDENCIES.md), and a
node must update ~3 keys per transaction at 20,000+ tx/s. This is a purpose-built
structure that does as few Python-level hash calls as possible.

Structure — a compressed hexary sparse Merkle tree keyed by `path = sha256(key)`, with
small buckets at the bottom:
- A key's position is the nibble sequence of its path (64 nibbles, high nibble first).
- A subtree holding no key is EMPTY (32 zero bytes). A subtree holding 1..BUCKET (8)
  keys is one bucket: its entries (path || sha256(value)), sorted by path. A subtree
  holding more keys is a branch of 16 children. This form depends only on the set of
  keys, so the root does not depend on insertion order or on how changes were batched.
- bucket hash = sha256(0x00 || entry_1 || ... || entry_n)          (1 + 64n bytes)
- branch hash = sha256(0x01 || child_0 || ... || child_15)          (513 bytes)
  Tags keep buckets and branches apart.
- Buckets rather than single leaves remove the sparsest branch level (a branch over two
  or three keys): ≈ 25% less time per update and ≈ 4x less memory than one leaf per key.

Cost: with n keys a bucket sits at depth ≈ log16(n / 3); one update hashes one bucket
(≤ 513 bytes) and the branches above it, O(log n). A block's changes are applied
together, so a branch shared by several changed keys is hashed once. Measured with
bench/state_bench.py on the shared 2-core box (other engineers' jobs running):
3,000 changes on 200k keys in ≈ 37–48 ms. A proof is one 480-byte row of the 15 sibling
hashes per branch on the way down plus the bucket at the end (≈ 2.2 KB for 200k keys),
checked with one hash per row plus one.

Persistence: the tree's inner nodes live in memory only (≈ 140 bytes per key,
measured with tracemalloc: ≈ 28 MB for 200k keys). What is written — inside the
caller's Batch, so in the block's one WriteBatch — is the plain key → value index under
`index_prefix`, which also serves ordered prefix scans for the contracts. At open the
tree is rebuilt from that index (O(n): ≈ 2–3 s per 200k keys here), and the rebuilt root
is what the chain store compares with the stored head state root: the integrity check at
start-up is a full recompute, so persisted inner nodes would add write volume without
adding assurance. Proofs are served against the current root (what the RPC needs);
past roots are kept by the chain store per height for checking headers, not for proving.

Nodes are immutable once built (an update path-copies), so `prepare` computes the next
root without disturbing readers, and `adopt` switches over once the batch is on disk.
Python's cyclic GC is paused during an update: walking ~10^5 live nodes in the middle
of one costs several times the update itself.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from primitives.state_proof import _BRANCH, _E, _LEAF, BUCKET, EMPTY, StateProof, _nibble
from storage.kv import KV, Batch

_sha = hashlib.sha256

Bucket = tuple[bytes, int, bytes]
"""(entries, count, hash): `entries` is count × (path || value_hash), sorted by path,
1 <= count <= BUCKET; hash = sha256(0x00 || entries)."""

Branch = list[Any]
"""[children (list of 16 nodes), count of keys below (> BUCKET), hash, preimage
(bytearray: 0x01 || 16 child hashes)]. A plain list, not a class: building thousands
per block is the hot path, and a list literal costs a fraction of a Python __init__."""

Node = Any
"""None (empty), a Bucket tuple or a Branch list; for either, node[1] is the count of
keys and node[2] the hash. Nodes are never mutated once built."""


def _bucket(entries: bytes) -> Bucket:
    return (entries, len(entries) >> 6, _sha(_LEAF + entries).digest())


def _build(depth: int, entries: list[tuple[bytes, bytes]]) -> Node:
    """Canonical subtree over (path, value_hash) entries sorted by path, all of which
    share their first `depth` nibbles."""
    n = len(entries)
    if n == 0:
        return None
    if n <= BUCKET:
        return _bucket(b"".join([p + v for p, v in entries]))
    children: list[Node] = [None] * 16
    hashes = [EMPTY] * 16
    shift = 0 if depth & 1 else 4
    byte = depth >> 1
    i = 0
    while i < n:
        nib = (entries[i][0][byte] >> shift) & 15
        j = i + 1
        while j < n and (entries[j][0][byte] >> shift) & 15 == nib:
            j += 1
        child = _build(depth + 1, entries[i:j])
        children[nib] = child
        hashes[nib] = child[2]
        i = j
    buf = bytearray(_BRANCH + b"".join(hashes))
    return [children, n, _sha(buf).digest(), buf]


def _entries(blob: bytes) -> list[tuple[bytes, bytes]]:
    return [(blob[o : o + 32], blob[o + 32 : o + _E]) for o in range(0, len(blob), _E)]


def _find(blob: bytes, path: bytes) -> int:
    """Offset of `path`'s entry in a bucket's entries, or -1."""
    i = blob.find(path)
    while i >= 0 and i % _E:
        i = blob.find(path, i + 1)
    return i


def _close(children: list[Node], buf: bytearray, count: int) -> Node:
    """The node for a branch position whose children changed and now hold `count` keys."""
    if count == 0:
        return None
    if count <= BUCKET:  # every child is a bucket or empty: merge them, in path order
        return _bucket(b"".join([c[0] for c in children if c is not None]))
    return [children, count, _sha(buf).digest(), buf]


def _update(node: Node, depth: int, items: list[tuple[bytes, bytes | None]]) -> Node:
    """The subtree `node` (at `depth`) after the changes `items` — (path, value_hash or
    None to delete), sorted by path, distinct — all of which fall inside it."""
    if node is None:
        return _build(depth, [(p, v) for p, v in items if v is not None])
    if type(node) is tuple:
        merged = dict(_entries(node[0]))
        for p, v in items:
            if v is None:
                merged.pop(p, None)
            else:
                merged[p] = v
        return _build(depth, sorted(merged.items()))
    children = node[0][:]
    buf = bytearray(node[3])
    count = node[1]
    shift = 0 if depth & 1 else 4
    byte = depth >> 1
    n = len(items)
    nibs = [(it[0][byte] >> shift) & 15 for it in items]
    nibs.append(16)  # sentinel
    i = 0
    while i < n:
        nib = nibs[i]
        j = i + 1
        while nibs[j] == nib:
            j += 1
        c = children[nib]
        if j - i == 1:
            p, v = items[i]
            child = _update_one(c, depth + 1, p, v)
        else:
            child = _update(c, depth + 1, items[i:j])
        count += (0 if child is None else child[1]) - (0 if c is None else c[1])
        children[nib] = child
        o = 1 + 32 * nib
        buf[o : o + 32] = EMPTY if child is None else child[2]
        i = j
    return _close(children, buf, count)


def _update_one(top: Node, depth: int, p: bytes, v: bytes | None) -> Node:
    """`_update` for a single change, without recursion: walk down, then path-copy up."""
    node = top
    stack: list[tuple[Branch, int]] = []
    while type(node) is list:
        b = p[depth >> 1]
        nib = b & 15 if depth & 1 else b >> 4
        stack.append((node, nib))
        node = node[0][nib]
        depth += 1
    new: Node
    if node is None:
        if v is None:
            return top
        e = p + v
        new = (e, 1, _sha(_LEAF + e).digest())
        delta = 1
    else:
        blob = node[0]
        i = _find(blob, p)
        if i >= 0:
            if v is None:
                rest = blob[:i] + blob[i + _E :]
                new = _bucket(rest) if rest else None
                delta = -1
            elif blob[i + 32 : i + _E] == v:
                return top
            else:
                e = blob[: i + 32] + v + blob[i + _E :]
                new = (e, node[1], _sha(_LEAF + e).digest())
                delta = 0
        else:
            if v is None:
                return top
            if node[1] < BUCKET:
                o = 0
                while o < len(blob) and blob[o : o + 32] < p:
                    o += _E
                e = blob[:o] + p + v + blob[o:]
                new = (e, node[1] + 1, _sha(_LEAF + e).digest())
            else:
                entries = _entries(blob)
                entries.append((p, v))
                entries.sort()
                new = _build(depth, entries)
            delta = 1
    for branch, nib in reversed(stack):
        children = branch[0][:]
        children[nib] = new
        buf = bytearray(branch[3])
        o = 1 + 32 * nib
        buf[o : o + 32] = EMPTY if new is None else new[2]
        count = branch[1] + delta
        if count <= BUCKET:
            new = _close(children, buf, count)
        else:
            new = [children, count, _sha(buf).digest(), buf]
    return new


def _hash_of(node: Node) -> bytes:
    return EMPTY if node is None else node[2]


@dataclass(frozen=True)
class Prepared:
    """A tree computed by `StateTree.prepare`, adopted by `StateTree.adopt` once the
    batch carrying its index writes is on disk."""

    root: bytes
    node: Any
    changes: Mapping[bytes, bytes | None] | None = None


READ_CACHE_ENTRIES = 262_144
"""Committed values remembered in memory: execution and admission read the same few
keys (senders, nonces, devices, lots) over and over, and a LevelDB read costs ~5 µs."""


class StateTree:
    """The state: the Merkle tree in memory plus the key → value index in a KV."""

    def __init__(self, kv: KV, index_prefix: bytes = b"s/") -> None:
        """Open over `kv`, rebuilding the tree from the index (O(n))."""
        self._kv = kv
        self._prefix = index_prefix
        self._cut = len(index_prefix)
        self._read_cache: dict[bytes, bytes | None] = {}
        self._node: Node = None
        self._speculated: tuple[Node, Prepared] | None = None
        self.reload()

    @property
    def root(self) -> bytes:
        """The 32-byte root of the current state (EMPTY when the state is empty)."""
        return _hash_of(self._node)

    def reload(self) -> bytes:
        """Rebuild the tree from the index (after the index was written outside `prepare`,
        as a snapshot install does); returns the new root."""
        entries = [(_sha(k[self._cut :]).digest(), _sha(v).digest()) for k, v in self._kv.iterate(self._prefix)]
        entries.sort()
        self._read_cache.clear()
        self._speculated = None
        self._node = _build(0, entries)
        return self.root

    def get(self, key: bytes) -> bytes | None:
        """The value of `key`, or None (from the read cache when it holds the key)."""
        cache = self._read_cache
        if key in cache:
            return cache[key]
        value = self._kv.get(self._prefix + key)
        if len(cache) >= READ_CACHE_ENTRIES:
            cache.clear()
        cache[key] = value
        return value

    def scan(self, prefix: bytes = b"", start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) for every key starting with `prefix`, in key order (from `start`
        on, inclusive, if given)."""
        cut = self._cut
        first = None if start is None else self._prefix + start
        for k, v in self._kv.iterate(self._prefix + prefix, start=first):
            yield k[cut:], v

    def prepare(self, changes: Mapping[bytes, bytes | None], batch: Batch) -> Prepared:
        """Compute the tree after `changes` (None deletes) and add the index writes to
        `batch`, leaving this tree unchanged until `adopt`."""
        # The update allocates thousands of acyclic nodes; letting the cyclic collector
        # walk a heap of ~10^5 live nodes in the middle of it costs up to 5x the update
        # itself, so it is paused here (and restored as it was).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            items: list[tuple[bytes, bytes | None]] = []
            prefix = self._prefix
            ops = batch.ops  # written directly: Batch.put's type checks cost 10% here
            spec = self._speculated
            if spec is not None and spec[0] is self._node and spec[1].changes == changes:
                for key, value in changes.items():  # the tree is computed; only the index writes are due
                    ops[prefix + key] = value
                return spec[1]
            for key, value in changes.items():
                if type(key) is not bytes or (value is not None and type(value) is not bytes):
                    raise TypeError("state keys and values are bytes")
                ops[prefix + key] = value
                items.append((_sha(key).digest(), None if value is None else _sha(value).digest()))
            if not items:
                return Prepared(self.root, self._node)
            items.sort(key=_first)
            node = _update(self._node, 0, items)
        finally:
            if was_enabled:
                gc.enable()
        return Prepared(_hash_of(node), node, changes)

    def adopt(self, prepared: Prepared) -> None:
        """Make a prepared tree current (after its batch was written)."""
        self._node = prepared.node
        self._speculated = None
        if prepared.changes:
            cache = self._read_cache
            for key, value in prepared.changes.items():
                if key in cache:
                    cache[key] = value

    def apply(self, changes: Mapping[bytes, bytes | None], batch: Batch) -> bytes:
        """`prepare` then `adopt` at once; returns the new root. The caller must write
        `batch` next; the tree already answers with the new root."""
        prepared = self.prepare(changes, batch)
        self.adopt(prepared)
        return prepared.root

    def compute_root(self, changes: Mapping[bytes, bytes | None]) -> bytes:
        """The root the state would have after `changes`, changing nothing. The tree it
        computed is remembered, so a `prepare` of equal changes on the same tree (the
        commit of what was just executed and rooted) reuses it instead of hashing again."""
        prepared = self.prepare(changes, Batch())
        if prepared.changes is not None:
            self._speculated = (self._node, Prepared(prepared.root, prepared.node, dict(changes)))
        return prepared.root

    def prove(self, key: bytes) -> StateProof:
        """An inclusion proof if `key` is present, else an exclusion proof, against `root`."""
        path = _sha(key).digest()
        node = self._node
        siblings: list[bytes] = []
        depth = 0
        while type(node) is list:
            nib = _nibble(path, depth)
            pre = node[3]
            o = 1 + 32 * nib
            siblings.append(bytes(pre[1:o] + pre[o + 32 :]))
            node = node[0][nib]
            depth += 1
        return StateProof(tuple(siblings), None if node is None else node[0])


def _first(item: tuple[bytes, bytes | None]) -> bytes:
    return item[0]


# ---- subtrees, for snapshots (storage/snapshot.py) ----------------------------------------


def key_path(key: bytes) -> bytes:
    """A key's position in the tree: sha256(key), read as 64 nibbles, high nibble first."""
    return _sha(key).digest()


def position_of(path: bytes, depth: int) -> bytes:
    """The first `depth` nibbles of `path`, one byte (0..15) per nibble."""
    assert 0 <= depth <= 64 and len(path) == 32
    return bytes(_nibble(path, d) for d in range(depth))


@dataclass(frozen=True)
class Subtree:
    """One node of the tree as a snapshot chunk sees it: its `position` (one byte per
    nibble from the root), the 15 sibling hashes (480 bytes) of every branch above it,
    root first, and the slice [start, end) of the path-sorted entries it holds."""

    position: bytes
    rows: tuple[bytes, ...]
    start: int
    end: int


def partition(entries: list[tuple[bytes, bytes]], fits: Callable[[int, int, int], bool]) -> tuple[bytes, list[Subtree]]:
    """Cut the tree over `entries` — (path, value_hash) sorted by path, distinct — into
    subtrees, in path order: a node at depth d becomes one subtree when `fits(d, start,
    end)` says its slice of `entries` fits, or when it is a bucket (which cannot be cut further);
    otherwise each non-empty child is cut in turn. Returns the root and the subtrees;
    an empty tree is one empty subtree at the root."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        top = _build(0, entries)
    finally:
        if was_enabled:
            gc.enable()
    out: list[Subtree] = []
    if top is None:
        out.append(Subtree(b"", (), 0, 0))
    else:
        _cut(top, b"", (), 0, fits, out)
    assert sum(s.end - s.start for s in out) == len(entries)
    return _hash_of(top), out


def _cut(
    node: Node,
    position: bytes,
    rows: tuple[bytes, ...],
    start: int,
    fits: Callable[[int, int, int], bool],
    out: list[Subtree],
) -> None:
    end = start + node[1]
    if type(node) is tuple or fits(len(position), start, end):
        out.append(Subtree(position, rows, start, end))
        return
    assert len(position) < 64
    pre = node[3]
    for nib, child in enumerate(node[0]):
        if child is None:
            continue
        o = 1 + 32 * nib
        _cut(child, position + bytes([nib]), rows + (bytes(pre[1:o] + pre[o + 32 :]),), start, fits, out)
        start += child[1]
    assert start == end


def subtree_root(position: bytes, rows: Sequence[bytes], entries: list[tuple[bytes, bytes]]) -> bytes:
    """The root of a tree in which the subtree at `position` holds exactly `entries`
    ((path, value_hash), sorted by path, distinct, each path starting with `position`)
    and the branches above it have the sibling hashes `rows` (one 480-byte row per
    nibble of `position`). The caller checks those preconditions (snapshot decoding
    does); this only hashes."""
    depth = len(position)
    assert len(rows) == depth <= 64
    h = _hash_of(_build(depth, entries))
    for d in range(depth - 1, -1, -1):
        row = rows[d]
        cut = position[d] * 32
        h = _sha(_BRANCH + row[:cut] + h + row[cut:]).digest()
    return h
