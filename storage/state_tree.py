"""Authenticated state: an ordered bytes → bytes map with a 32-byte SHA-256 root and
inclusion/exclusion proofs.

Why not the `trie` package: it manages ~4,000 inserts/s here (DEPENDENCIES.md), and a
node must update ~3 keys per transaction at 20,000+ tx/s. This is a purpose-built
structure that does as few Python-level hash calls as possible.

Structure — a compressed hexary sparse Merkle tree keyed by `path = sha256(key)`:
- A key's position is the nibble sequence of its path (64 nibbles, high nibble first).
- A subtree holding no key is EMPTY (32 zero bytes). A subtree holding exactly one key is
  that key's leaf, placed as high as it can go; a subtree holding two or more keys is a
  branch of 16 children. This form depends only on the set of keys, so the root does
  not depend on insertion order or on how changes were batched.
- leaf hash   = sha256(0x00 || path || sha256(value))            (65-byte preimage)
- branch hash = sha256(0x01 || child_0 || ... || child_15)        (513-byte preimage)
  Tags and preimage lengths keep leaves and branches apart.

Cost: with n keys a leaf sits at depth ≈ log16(n) + 1 (≈ 5–6 for 200k keys). One update
hashes one leaf and the ≈ log16(n) branches above it, O(log n); a block's changes are
applied together, so branches shared by several changed keys are hashed once (3,000
changes on 200k keys rebuild ≈ 5,800 branches and 3,000 leaves). Measured with
bench/state_bench.py on the shared 2-core box: ≈ 40 ms for those 3,000 changes when
the box is quiet, 50–65 ms under the other engineers' load. A proof is one 480-byte row
of the 15 sibling hashes per branch on the way down plus the leaf found at the end:
≈ 2.5 KB for 200k keys, checked with ≈ log16(n) + 2 hashes.

Persistence: the tree's inner nodes live in memory only (≈ 600 bytes per key,
measured with tracemalloc: ≈ 120 MB for 200k keys). What is written — inside the
caller's Batch, so in the block's one WriteBatch — is the plain key → value index under
`index_prefix`, which also serves ordered prefix scans for the contracts. At open the
tree is rebuilt from that index (O(n): ≈ 3 s per 200k keys here), and the rebuilt root is
what the chain store compares with the stored head state root: the integrity check at
start-up is a full recompute, so persisted inner nodes would add write volume (≈ 3 MB
per 1,000-tx block) without adding assurance. Proofs are served against the current
root (what the RPC needs); past roots are kept by the chain store per height for
checking headers, not for proving.

Nodes are immutable once built (an update path-copies), so `prepare` can compute the
next root without disturbing readers, and `adopt` switches over once the batch is on
disk. Python's cyclic GC is paused during an update: walking ~10^5 live nodes in the
middle of one costs several times the update itself.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from primitives.errors import Code, GodownError
from storage.kv import KV, Batch

EMPTY = bytes(32)
"""Hash of an empty subtree, and the root of an empty state."""

_LEAF = b"\x00"
_BRANCH = b"\x01"
_ROW = 15 * 32
_sha = hashlib.sha256

Leaf = tuple[bytes, bytes, bytes]
"""(path, value_hash, leaf_hash)."""

Branch = list  # type: ignore[type-arg]
"""[children (list of 16 nodes), preimage (bytearray: 0x01 || 16 child hashes), hash].
A plain list, not a class: building ~6,000 of them per block is the hot path, and a
list literal costs a fraction of a Python-level __init__. Never mutated once built."""

Node = Any
"""None (empty), a Leaf tuple, or a Branch list; the node's hash is node[2] for both."""


def _nibble(path: bytes, depth: int) -> int:
    b = path[depth >> 1]
    return b & 15 if depth & 1 else b >> 4


def _build(depth: int, entries: list[tuple[bytes, bytes]]) -> Node:
    """Canonical subtree over (path, value_hash) entries sorted by path, all of which
    share their first `depth` nibbles."""
    if not entries:
        return None
    if len(entries) == 1:
        p, v = entries[0]
        return (p, v, _sha(_LEAF + p + v).digest())
    children: list[Node] = [None] * 16
    hashes = [EMPTY] * 16
    shift = 0 if depth & 1 else 4
    byte = depth >> 1
    i, n = 0, len(entries)
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
    return [children, buf, _sha(buf).digest()]


def _close(children: list[Node], buf: bytearray) -> Node:
    """The node for a branch whose children changed: collapses to nothing or to a lone
    leaf, else a new branch."""
    empties = children.count(None)
    if empties == 16:
        return None
    if empties == 15:
        only = next(c for c in children if c is not None)
        if type(only) is tuple:
            return only  # a lone leaf moves up to where its subtree begins
    return [children, buf, _sha(buf).digest()]


def _update(node: Node, depth: int, items: list[tuple[bytes, bytes | None]]) -> Node:
    """The subtree `node` (at `depth`) after the changes `items` — (path, value_hash or
    None to delete), sorted by path, distinct — all of which fall inside it."""
    if node is None:
        return _build(depth, [(p, v) for p, v in items if v is not None])
    if type(node) is tuple:
        lpath = node[0]
        entries: list[tuple[bytes, bytes]] = []
        seen = False
        for p, v in items:
            if p == lpath:
                seen = True
                if v == node[1]:
                    if len(items) == 1:
                        return node
                    entries.append((p, v))
                elif v is not None:
                    entries.append((p, v))
            elif v is not None:
                entries.append((p, v))
        if not seen:
            if not entries:
                return node
            entries.append((lpath, node[1]))
            entries.sort()
        return _build(depth, entries)
    children = node[0][:]
    buf = bytearray(node[1])
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
        children[nib] = child
        o = 1 + 32 * nib
        buf[o : o + 32] = EMPTY if child is None else child[2]
        i = j
    return _close(children, buf)


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
        new = (p, v, _sha(_LEAF + p + v).digest())
    elif node[0] == p:
        if v == node[1]:
            return top
        new = None if v is None else (p, v, _sha(_LEAF + p + v).digest())
    else:
        if v is None:
            return top
        pair = [(p, v), (node[0], node[1])]
        pair.sort()
        new = _build(depth, pair)
    for branch, nib in reversed(stack):
        children = branch[0][:]
        old = children[nib]
        children[nib] = new
        buf = bytearray(branch[1])
        o = 1 + 32 * nib
        if new is None:
            buf[o : o + 32] = EMPTY
            new = _close(children, buf)
        else:
            buf[o : o + 32] = new[2]
            if type(new) is tuple and type(old) is list:  # a branch below shrank to one leaf
                new = _close(children, buf)
            else:  # as many keys below as before, or more: still a branch
                new = [children, buf, _sha(buf).digest()]
    return new


def _hash_of(node: Node) -> bytes:
    return EMPTY if node is None else node[2]  # type: ignore[no-any-return]


def _hex_or_none(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


@dataclass(frozen=True)
class StateProof:
    """Where the walk from the root along sha256(key) ends.

    `siblings[d]` holds the 15 sibling hashes (480 bytes, in nibble order, skipping the
    walked child) of the branch at depth d. The walk ends either at an empty slot
    (`leaf_path` None: the key is absent) or at a leaf: the key's own (inclusion) or
    another key's whose path shares the walked nibbles (exclusion).
    """

    siblings: tuple[bytes, ...]
    leaf_path: bytes | None
    leaf_value_hash: bytes | None

    def to_dict(self) -> dict[str, Any]:
        """Canonical-codec form (bytes fields)."""
        return {
            "siblings": list(self.siblings),
            "leaf_path": self.leaf_path,
            "leaf_value_hash": self.leaf_value_hash,
        }

    def to_json(self) -> dict[str, Any]:
        """JSON form: every byte string as lowercase hex."""
        return {
            "siblings": [s.hex() for s in self.siblings],
            "leaf_path": _hex_or_none(self.leaf_path),
            "leaf_value_hash": _hex_or_none(self.leaf_value_hash),
        }

    @staticmethod
    def from_dict(doc: Any) -> StateProof:
        """Strict inverse of `to_dict`; raises `malformed` on anything else."""
        if not isinstance(doc, dict) or set(doc) != {"siblings", "leaf_path", "leaf_value_hash"}:
            raise GodownError(Code.MALFORMED, "state proof must have siblings, leaf_path, leaf_value_hash")
        sib = doc["siblings"]
        if not isinstance(sib, (list, tuple)) or len(sib) > 64:
            raise GodownError(Code.MALFORMED, "state proof siblings must be a list of at most 64 rows")
        if not all(isinstance(s, bytes) and len(s) == _ROW for s in sib):
            raise GodownError(Code.MALFORMED, "each state proof row must be 480 bytes")
        lp, lv = doc["leaf_path"], doc["leaf_value_hash"]
        if (lp is None) != (lv is None):
            raise GodownError(Code.MALFORMED, "leaf_path and leaf_value_hash come together")
        if lp is not None and not (isinstance(lp, bytes) and len(lp) == 32 and isinstance(lv, bytes) and len(lv) == 32):
            raise GodownError(Code.MALFORMED, "leaf_path and leaf_value_hash must be 32 bytes")
        return StateProof(tuple(sib), lp, lv)

    @staticmethod
    def from_json(doc: Any) -> StateProof:
        """Inverse of `to_json`."""
        try:
            return StateProof.from_dict(
                {
                    "siblings": [bytes.fromhex(s) for s in doc["siblings"]],
                    "leaf_path": None if doc["leaf_path"] is None else bytes.fromhex(doc["leaf_path"]),
                    "leaf_value_hash": None
                    if doc["leaf_value_hash"] is None
                    else bytes.fromhex(doc["leaf_value_hash"]),
                }
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise GodownError(Code.MALFORMED, "state proof JSON is not well formed") from None


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> bool:
    """True iff `proof` shows that, in the state with `root`, `key` maps to `value`
    (or, with `value` None, that `key` is absent). Pure; needs nothing but the inputs."""
    path = _sha(key).digest()
    depth = len(proof.siblings)
    if depth > 64 or any(len(s) != _ROW for s in proof.siblings):
        return False
    if proof.leaf_path is None:
        if value is not None or proof.leaf_value_hash is not None:
            return False
        h = EMPTY
    else:
        lp, vh = proof.leaf_path, proof.leaf_value_hash
        if vh is None or len(lp) != 32 or len(vh) != 32:
            return False
        if any(_nibble(lp, d) != _nibble(path, d) for d in range(depth)):
            return False
        if lp == path:
            if value is None or _sha(value).digest() != vh:
                return False
        elif value is not None:
            return False
        h = _sha(_LEAF + lp + vh).digest()
    for d in range(depth - 1, -1, -1):
        row = proof.siblings[d]
        cut = _nibble(path, d) * 32
        h = _sha(_BRANCH + row[:cut] + h + row[cut:]).digest()
    return h == root


@dataclass(frozen=True)
class Prepared:
    """A tree computed by `StateTree.prepare`, adopted by `StateTree.adopt` once the
    batch carrying its index writes is on disk."""

    root: bytes
    node: Any


class StateTree:
    """The state: the Merkle tree in memory plus the key → value index in a KV."""

    def __init__(self, kv: KV, index_prefix: bytes = b"s/") -> None:
        """Open over `kv`, rebuilding the tree from the index (O(n))."""
        self._kv = kv
        self._prefix = index_prefix
        self._cut = len(index_prefix)
        entries = [
            (_sha(k[self._cut :]).digest(), _sha(v).digest()) for k, v in kv.iterate(index_prefix)
        ]
        entries.sort()
        self._node: Node = _build(0, entries)

    @property
    def root(self) -> bytes:
        """The 32-byte root of the current state (EMPTY when the state is empty)."""
        return _hash_of(self._node)

    def get(self, key: bytes) -> bytes | None:
        """The value of `key`, or None."""
        return self._kv.get(self._prefix + key)

    def scan(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """(key, value) for every key starting with `prefix`, in key order."""
        cut = self._cut
        for k, v in self._kv.iterate(self._prefix + prefix):
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
        return Prepared(_hash_of(node), node)

    def adopt(self, prepared: Prepared) -> None:
        """Make a prepared tree current (after its batch was written)."""
        self._node = prepared.node

    def apply(self, changes: Mapping[bytes, bytes | None], batch: Batch) -> bytes:
        """`prepare` then `adopt` at once; returns the new root. The caller must write
        `batch` next; the tree already answers with the new root."""
        prepared = self.prepare(changes, batch)
        self.adopt(prepared)
        return prepared.root

    def compute_root(self, changes: Mapping[bytes, bytes | None]) -> bytes:
        """The root the state would have after `changes`, changing nothing."""
        return self.prepare(changes, Batch()).root

    def prove(self, key: bytes) -> StateProof:
        """An inclusion proof if `key` is present, else an exclusion proof, against `root`."""
        path = _sha(key).digest()
        node = self._node
        siblings: list[bytes] = []
        depth = 0
        while type(node) is list:
            nib = _nibble(path, depth)
            pre = node[1]
            o = 1 + 32 * nib
            siblings.append(bytes(pre[1:o] + pre[o + 32 :]))
            node = node[0][nib]
            depth += 1
        if node is None:
            return StateProof(tuple(siblings), None, None)
        return StateProof(tuple(siblings), node[0], node[1])


def _first(item: tuple[bytes, bytes | None]) -> bytes:
    return item[0]
