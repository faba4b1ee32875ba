"""State proofs: the proof format of the 16-way state tree and its pure check.

Here, not in `storage/`, because a client verifies proofs without a store: the light
client (node/client) and any auditor import this alone. The tree that builds the proofs
is `storage/state_tree.py`; its docstring and docs/snapshot.md give the layout:
path = sha256(key) read as 64 nibbles; an empty subtree hashes to 32 zero bytes; a
bucket of 1..8 keys to sha256(0x00 || entries), each entry path || sha256(value),
sorted by path; a branch to sha256(0x01 || its 16 child hashes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from primitives.errors import Code, GodownError

EMPTY = bytes(32)
"""Hash of an empty subtree, and the root of an empty state."""

BUCKET = 8
"""Most keys a subtree holds as one bucket; a subtree with more is a branch."""

_LEAF = b"\x00"
_BRANCH = b"\x01"
_ROW = 15 * 32
_E = 64  # bytes per bucket entry: path || value_hash
_sha = hashlib.sha256


def _nibble(path: bytes, depth: int) -> int:
    b = path[depth >> 1]
    return b & 15 if depth & 1 else b >> 4


def _hex_or_none(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


@dataclass(frozen=True)
class StateProof:
    """Where the walk from the root along sha256(key) ends.

    `siblings[d]` holds the 15 sibling hashes (480 bytes, in nibble order, skipping the
    walked child) of the branch at depth d. The walk ends at an empty slot (`bucket`
    None: the key is absent) or at a bucket: its entries (count × (path || sha256(value)),
    sorted by path) hold every key of that subtree, so the key is either among them
    (inclusion) or absent (exclusion).
    """

    siblings: tuple[bytes, ...]
    bucket: bytes | None

    def to_dict(self) -> dict[str, Any]:
        """Canonical-codec form (bytes fields)."""
        return {"siblings": list(self.siblings), "bucket": self.bucket}

    def to_json(self) -> dict[str, Any]:
        """JSON form: every byte string as lowercase hex."""
        return {"siblings": [s.hex() for s in self.siblings], "bucket": _hex_or_none(self.bucket)}

    @staticmethod
    def from_dict(doc: Any) -> StateProof:
        """Strict inverse of `to_dict`; raises `malformed` on anything else."""
        if not isinstance(doc, dict) or set(doc) != {"siblings", "bucket"}:
            raise GodownError(Code.MALFORMED, "state proof must have exactly siblings and bucket")
        sib = doc["siblings"]
        if not isinstance(sib, (list, tuple)) or len(sib) > 64:
            raise GodownError(Code.MALFORMED, "state proof siblings must be a list of at most 64 rows")
        if not all(isinstance(s, bytes) and len(s) == _ROW for s in sib):
            raise GodownError(Code.MALFORMED, "each state proof row must be 480 bytes")
        bucket = doc["bucket"]
        if bucket is not None and not (
            isinstance(bucket, bytes) and bucket and len(bucket) % _E == 0 and len(bucket) <= BUCKET * _E
        ):
            raise GodownError(Code.MALFORMED, f"state proof bucket must be 1..{BUCKET} entries of 64 bytes")
        return StateProof(tuple(sib), bucket)

    @staticmethod
    def from_json(doc: Any) -> StateProof:
        """Inverse of `to_json`."""
        try:
            return StateProof.from_dict(
                {
                    "siblings": [bytes.fromhex(s) for s in doc["siblings"]],
                    "bucket": None if doc["bucket"] is None else bytes.fromhex(doc["bucket"]),
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
    blob = proof.bucket
    if blob is None:
        if value is not None:
            return False
        h = EMPTY
    else:
        if not blob or len(blob) % _E or len(blob) > BUCKET * _E:
            return False
        found: bytes | None = None
        for o in range(0, len(blob), _E):
            q = blob[o : o + 32]
            if any(_nibble(q, d) != _nibble(path, d) for d in range(depth)):
                return False  # an entry that does not belong where the walk ended
            if q == path:
                found = blob[o + 32 : o + _E]
        if found is None:
            if value is not None:
                return False
        elif value is None or _sha(value).digest() != found:
            return False
        h = _sha(_LEAF + blob).digest()
    for d in range(depth - 1, -1, -1):
        row = proof.siblings[d]
        cut = _nibble(path, d) * 32
        h = _sha(_BRANCH + row[:cut] + h + row[cut:]).digest()
    return h == root
