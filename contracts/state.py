"""The contracts' view of state: a reader protocol, the key layout, and a write overlay.

The node hands the committed state in through `StateReader`; the contracts never
write to it. `Overlay` buffers a block's writes over the reader as decoded
values (so a device record read by a hundred reports in one block is decoded
once and encoded once), and keeps a journal so that one rejected transaction
can be undone without touching the rest of the block. Values are canonical
msgpack (`primitives.codec`) when they leave the overlay.

Values handed out by `Overlay.get` are shared with the cache: handlers treat them
as immutable and `put` a new dict instead of editing one in place.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import msgpack

# key layout: one short prefix per kind of record
P_MEMBER = b"m/"
P_DEVICE = b"d/"
P_DEVICE_LIVE = b"e/"
P_NONCE = b"n/"
P_RATING = b"r/"
P_LOT = b"l/"
P_INBOUND = b"i/"
P_CASE = b"c/"
P_ALARM = b"a/"
P_ZONE = b"z/"
P_HEARTBEAT_DUE = b"h/"
P_MATURITY_DUE = b"t/"
P_PROPOSAL = b"p/"
P_PROPOSAL_DUE = b"q/"
P_SIGN_KEY = b"k/"
"""+ raw 32-byte signing key -> the member or device that registered it (never deleted)."""
K_CHAIN = b"g/chain"
K_POLICY = b"g/policy"
K_CONSENSUS = b"g/consensus"
K_VALIDATORS = b"g/validators"
K_VALIDATORS_NEXT = b"g/next-validators"
K_VALIDATOR_HISTORY = b"g/validator-history"
"""A scheduled validator set: {validators, effective_height, approved_height}."""

_KINDS = {
    "member": P_MEMBER,
    "device": P_DEVICE,
    "nonce": P_NONCE,
    "rating": P_RATING,
    "lot": P_LOT,
    "inbound": P_INBOUND,
    "case": P_CASE,
    "supervision": P_CASE,
    "alarm": P_ALARM,
    "proposal": P_PROPOSAL,
}


class StateReader(Protocol):
    """Read access to committed state: what the node passes to the contracts."""

    def get(self, key: bytes) -> bytes | None:
        """The value stored under `key`, or None."""
        ...

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) whose key starts with `prefix`, in key order."""
        ...


def state_key_for(kind: str, ident: str) -> bytes:
    """The state key of a record: kind is member, device, nonce, rating, lot, inbound,
    case, supervision, alarm or proposal. Raises KeyError for any other kind."""
    return _KINDS[kind] + ident.encode()


def zone_key(warehouse: str, zone: str) -> bytes:
    """Key of a warehouse zone (site): its devices and the lot it holds."""
    return P_ZONE + warehouse.encode() + b"/" + zone.encode()


def due_key(prefix: bytes, due_ms: int, ident: str) -> bytes:
    """Key in a due-time index: big-endian time first, so a prefix scan is in time order."""
    return prefix + due_ms.to_bytes(8, "big") + ident.encode()


def due_of(prefix: bytes, key: bytes) -> tuple[int, str]:
    """Inverse of `due_key`."""
    n = len(prefix)
    return int.from_bytes(key[n : n + 8], "big"), key[n + 8 :].decode()


def _sorted(value: Any) -> Any:
    if type(value) is dict:
        return {k: _sorted(value[k]) if type(value[k]) in (dict, list) else value[k] for k in sorted(value)}
    if type(value) is list:
        return [_sorted(v) for v in value]
    return value


def encode_value(value: Any) -> bytes:
    """Canonical bytes of a state value, equal to `codec.encode(value)` for the values
    the contracts build (str-keyed dicts, lists, str, bytes, ints, None) but without
    its type walk: bodies were checked on the way in, so the walk would find nothing.
    Tests hold the two equal over whole workloads."""
    return msgpack.packb(_sorted(value), use_bin_type=True)  # type: ignore[no-any-return]


_DECODED: dict[bytes, Any] = {}
_DECODED_MAX = 20_000
"""Bound on memoised values (a few tens of MB at most); the hot set is lots, cases, zones, members."""


def decode_value(raw: bytes) -> Any:
    """Decode a stored value. State is written only by the contracts in canonical
    form, so this trusts it and skips the re-encode check of `codec.decode`.

    Decoded values are memoised by their bytes (a lot or case read by every report
    of every block is decoded once): a pure function of the bytes, so it cannot make
    two nodes differ — provided nobody mutates a value it was handed, which is the
    contracts' rule anyway and which `decoded_values_intact` lets tests verify."""
    if len(raw) < 32:  # small entries (nonces, a device's last report) change every block
        return msgpack.unpackb(raw, raw=False)
    value = _DECODED.get(raw)
    if value is None:
        value = msgpack.unpackb(raw, raw=False)
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[raw] = value
    return value


def clear_decode_cache() -> None:
    """Forget memoised values (benchmarks start cold with it)."""
    _DECODED.clear()


def decoded_values_intact() -> bool:
    """True if every memoised value still encodes to the bytes it was decoded from."""
    return all(encode_value(v) == raw for raw, v in _DECODED.items())


class DictState:
    """An in-memory StateReader with sorted prefix scans: for tests and benchmarks,
    and the reference the LevelDB-backed state must agree with."""

    def __init__(self, data: Mapping[bytes, bytes] | None = None) -> None:
        self._data: dict[bytes, bytes] = dict(data or {})
        self._keys: list[bytes] = sorted(self._data)

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        keys = self._keys
        i = bisect.bisect_left(keys, prefix)
        while i < len(keys) and keys[i].startswith(prefix):
            k = keys[i]
            yield k, self._data[k]
            i += 1

    def apply(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Apply a block's changes (None deletes)."""
        for k, v in changes.items():
            if v is None:
                if self._data.pop(k, None) is not None:
                    del self._keys[bisect.bisect_left(self._keys, k)]
            else:
                if k not in self._data:
                    bisect.insort(self._keys, k)
                self._data[k] = v

    def items(self) -> dict[bytes, bytes]:
        """A copy of every entry."""
        return dict(self._data)


_ABSENT: Any = object()


class Overlay:
    """Decoded writes buffered over a StateReader, with a per-transaction journal."""

    __slots__ = ("_base", "_cache", "_dirty", "_journal")

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._cache: dict[bytes, Any] = {}
        self._dirty: set[bytes] = set()
        self._journal: list[tuple[bytes, Any, bool]] = []

    def get(self, key: bytes) -> Any:
        """The decoded value under `key` (None when absent). Do not mutate it."""
        value = self._cache.get(key, _ABSENT)
        if value is _ABSENT:
            raw = self._base.get(key)
            value = None if raw is None else decode_value(raw)
            self._cache[key] = value
        return value

    def put(self, key: bytes, value: Any) -> None:
        """Store a value (a fresh object: never one obtained from `get` and edited)."""
        self._journal.append((key, self._cache.get(key, _ABSENT), key in self._dirty))
        self._cache[key] = value
        self._dirty.add(key)

    def delete(self, key: bytes) -> None:
        self.put(key, None)

    def base_scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Scan the committed state underneath (ignores this block's writes)."""
        return self._base.scan(prefix)

    def scan(self, prefix: bytes) -> list[tuple[bytes, Any]]:
        """Every (key, decoded value) under `prefix` including this block's writes so far,
        in key order. Reads the whole prefix: for small sets (members), not for devices."""
        keys = {k for k, _ in self._base.scan(prefix)}
        keys.update(k for k in self._dirty if k.startswith(prefix))
        found = [(k, self.get(k)) for k in sorted(keys)]
        return [(k, v) for k, v in found if v is not None]

    def mark(self) -> int:
        """A point to roll back to (the start of a transaction's effects)."""
        return len(self._journal)

    def rollback(self, mark: int) -> None:
        """Undo every write made since `mark`."""
        journal = self._journal
        while len(journal) > mark:
            key, prev, was_dirty = journal.pop()
            if prev is _ABSENT:
                self._cache.pop(key, None)
            else:
                self._cache[key] = prev
            if not was_dirty:
                self._dirty.discard(key)

    def forget_journal(self) -> None:
        """Drop the journal once a transaction's effects are final."""
        self._journal.clear()

    def changes(self) -> dict[bytes, bytes | None]:
        """Every written key with its canonical bytes (None = delete), in key order."""
        out: dict[bytes, bytes | None] = {}
        for key in sorted(self._dirty):
            value = self._cache[key]
            out[key] = None if value is None else encode_value(value)
        return out
