"""The key-value interface every godown store sits on, with a LevelDB and an in-memory twin.

Why: consensus, contracts and the chain store must not know about plyvel. Keeping the
database behind five operations (get, ordered prefix iteration, an atomic batch of puts
and deletes, close) lets one conformance suite (tests/storage/test_kv.py) hold both
implementations to the same behaviour, as py-evm does for its database backends.

Writes happen only through `Batch` + `KV.write`, so every change a block makes lands
atomically in one (synced) LevelDB WriteBatch.

Storage faults (docs/storage-faults.md): LevelDB opens with `paranoid_checks`, so a
damaged record in a log or table file refuses the store (`store_damaged`) instead of
being skipped silently — without it LevelDB drops the damaged part of a log, synced
records included, and replays the rest. A torn last write (a record cut short at the
end of the newest log) is still dropped by LevelDB's recovery, as it should be: it was
never acknowledged; `LevelKV` logs it. A failed write (`WriteFailed`, `disk_full` on
ENOSPC) leaves the handle refusing every later write until the store is reopened:
after a failed append LevelDB may report a later synced write as done and still lose
it at the next open (measured with plyvel 1.5.1 / LevelDB 1.22 on a full tmpfs).
"""

from __future__ import annotations

import bisect
import errno
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from primitives.errors import Code, NodeFault
from storage.leveldb_log import TornTail, torn_tail

log = logging.getLogger("godown.storage")

_NO_SPACE = tuple(os.strerror(e) for e in (errno.ENOSPC, errno.EDQUOT))


class WriteFailed(NodeFault):
    """A write did not reach the store (`disk_full` when the filesystem is out of space,
    `internal` for any other I/O error). Nothing of the batch is visible to readers."""


def _no_space(message: str) -> bool:
    return any(s in message for s in _NO_SPACE)


class Batch:
    """Puts and deletes collected in order; the last operation on a key wins.

    Nothing is visible to readers until `KV.write(batch)`.
    """

    __slots__ = ("ops",)

    def __init__(self) -> None:
        self.ops: dict[bytes, bytes | None] = {}

    def put(self, key: bytes, value: bytes) -> None:
        """Set `key` to `value` when the batch is written."""
        if not isinstance(key, bytes) or not isinstance(value, bytes):
            raise TypeError("keys and values are bytes")
        self.ops[key] = value

    def delete(self, key: bytes) -> None:
        """Remove `key` (if present) when the batch is written."""
        if not isinstance(key, bytes):
            raise TypeError("keys are bytes")
        self.ops[key] = None

    def __len__(self) -> int:
        return len(self.ops)


def prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with `prefix` (None: no bound)."""
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return None
    p[-1] += 1
    return bytes(p)


class KV(ABC):
    """An ordered byte-string map with atomic batched writes."""

    @abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """The value stored under `key`, or None."""

    @abstractmethod
    def iterate(
        self, prefix: bytes = b"", start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs whose key starts with `prefix`, in key order (descending if
        `reverse`). `start`, if given, is the first key to consider in the direction of
        travel, inclusive: forward yields keys >= start, reverse yields keys <= start.
        Writes made while an iterator is open may or may not be seen by it."""

    @abstractmethod
    def write(self, batch: Batch, sync: bool = True) -> None:
        """Apply every operation of `batch` atomically; with `sync`, durable on return."""

    @abstractmethod
    def close(self) -> None:
        """Release the store; later calls are errors. Closing twice is allowed."""

    def put(self, key: bytes, value: bytes, sync: bool = True) -> None:
        """Convenience: a one-operation batch."""
        b = Batch()
        b.put(key, value)
        self.write(b, sync)

    def delete(self, key: bytes, sync: bool = True) -> None:
        """Convenience: a one-operation batch."""
        b = Batch()
        b.delete(key)
        self.write(b, sync)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryKV(KV):
    """The in-memory twin: a dict plus a sorted key list that is merged lazily.

    Keys added since the last merge wait in a small sorted side list, and removed keys
    stay in the main list (skipped, as `_data` no longer holds them) until enough have
    accumulated: a scan then costs O(log n + what it yields + the side list), not the
    O(n) re-sort of every key it would cost after each write (an audit replay scans the
    due-time indexes in every block, over a state of 10^5+ keys). The merge is O(n) and
    runs once per `MERGE_EVERY`-plus-n/64 changes, so O(1) amortized per write."""

    MERGE_EVERY = 1024

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []
        self._added: list[bytes] = []
        self._added_sorted = True
        self._removed: set[bytes] = set()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise NodeFault(Code.INTERNAL, "store is closed")

    def _merge(self) -> None:
        if self._removed:
            removed = self._removed
            self._keys = [k for k in self._keys if k not in removed]
            self._added = [k for k in self._added if k not in removed]
            self._removed = set()
        if self._added:
            self._keys.extend(self._added)
            self._keys.sort()  # runs of sorted keys: timsort merges them in linear time
            self._added = []
        self._added_sorted = True

    def _windows(self, prefix: bytes, start: bytes | None, reverse: bool) -> list[bytes]:
        """The candidate keys for an iteration, ascending (some may have been removed)."""
        if len(self._added) + len(self._removed) > self.MERGE_EVERY + (len(self._keys) >> 6):
            self._merge()
        elif not self._added_sorted:
            self._added.sort()
            self._added_sorted = True
        upper = prefix_upper_bound(prefix)
        parts = []
        for keys in (self._keys, self._added):
            lo = bisect.bisect_left(keys, prefix)
            hi = len(keys) if upper is None else bisect.bisect_left(keys, upper, lo)
            if start is not None:
                if reverse:
                    hi = min(hi, bisect.bisect_right(keys, start, lo))
                else:
                    lo = max(lo, bisect.bisect_left(keys, start, lo))
            parts.append(keys[lo:hi])
        main, side = parts
        if side:
            main.extend(side)
            main.sort()
        return main

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        return self._data.get(key)

    def iterate(
        self, prefix: bytes = b"", start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        window = self._windows(prefix, start, reverse)
        if reverse:
            window.reverse()
        data = self._data
        for k in window:
            v = data.get(k)
            if v is not None:
                yield k, v

    def write(self, batch: Batch, sync: bool = True) -> None:
        self._check_open()
        data = self._data
        for key, value in batch.ops.items():
            if value is None:
                if data.pop(key, None) is not None:
                    self._removed.add(key)
            else:
                if key not in data:
                    if key in self._removed:
                        self._removed.discard(key)  # still in the sorted list
                    else:
                        self._added.append(key)
                        self._added_sorted = False
                data[key] = value

    def close(self) -> None:
        self._closed = True


class LevelKV(KV):
    """LevelDB through plyvel. Opening a locked, damaged or full store raises a NodeFault
    with a message naming the directory, never a raw plyvel traceback."""

    def __init__(self, path: str | Path, *, create_if_missing: bool = True) -> None:
        import plyvel  # local: only this class needs the C extension

        self.path = str(path)
        self._plyvel = plyvel
        self._failed: WriteFailed | None = None
        self.torn_tail: TornTail | None = torn_tail(self.path)
        """The incomplete last write LevelDB's recovery dropped at this open, if any."""
        try:
            self._db: Any = plyvel.DB(
                self.path,
                create_if_missing=create_if_missing,
                paranoid_checks=True,  # a damaged record refuses the store instead of being skipped
                bloom_filter_bits=10,  # misses (new tx ids, absent state keys) skip disk reads
                # A node writes blocks of ~1 KB per tx plus small index records: a larger
                # memtable and table block cut LevelDB's compaction CPU (bench/ledger_bench.py,
                # A/B: 22.5 -> 4.9 µs/tx at 100k txs, 31.2 -> 18.1 at 200k, main thread no
                # slower) for up to 64 MB more of log to replay at open (restart no slower).
                write_buffer_size=64 * 1024 * 1024,
                block_size=16 * 1024,
                lru_cache_size=16 * 1024 * 1024,
            )
        except plyvel.IOError as exc:
            raise self._open_failed(str(exc)) from None
        except plyvel.CorruptionError as exc:
            raise NodeFault(
                Code.STORE_DAMAGED,
                f"store {self.path} is damaged: {_text(exc)} (a log or table file holds bytes LevelDB cannot"
                " trust; refusing to open it rather than lose committed records)",
            ) from None
        except plyvel.Error as exc:
            raise NodeFault(Code.STORE_DAMAGED, f"cannot open store {self.path}: {_text(exc)}") from None
        if self.torn_tail is not None:
            log.warning(
                "store recovered from a torn last write",
                extra={
                    "store": self.path,
                    "detail": self.torn_tail.describe(),
                    "meaning": "a write cut short by a crash never completed, so it was never acknowledged;"
                    " LevelDB dropped it and the store reopens at the last complete write (peers supply the rest)",
                },
            )

    def _open_failed(self, message: str) -> NodeFault:
        if "lock" in message.lower():
            return NodeFault(Code.BAD_CONFIG, f"store {self.path} is in use by another process (LevelDB lock held)")
        if _no_space(message):
            return NodeFault(
                Code.DISK_FULL,
                f"cannot open store {self.path}: no space left on its filesystem (opening writes the recovered"
                " log into a table); free space, then start again — nothing committed is lost",
            )
        return NodeFault(Code.BAD_CONFIG, f"cannot open store {self.path}: {message}")

    def _db_or_fail(self) -> Any:
        if self._db is None:
            raise NodeFault(Code.INTERNAL, f"store {self.path} is closed")
        return self._db

    def _read_failed(self, exc: Exception) -> NodeFault:
        return NodeFault(
            Code.STORE_DAMAGED,
            f"store {self.path} is damaged: reading it failed ({_text(exc)}): a table file is missing, cut short"
            " or garbled",
        )

    def get(self, key: bytes) -> bytes | None:
        db = self._db_or_fail()
        try:
            return db.get(key)  # type: ignore[no-any-return]
        except self._plyvel.Error as exc:  # checksum or I/O failure in a table file
            raise self._read_failed(exc) from None

    def iterate(
        self, prefix: bytes = b"", start: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        db = self._db_or_fail()
        upper = prefix_upper_bound(prefix)
        if reverse:
            try:
                yield from self._iterate_reverse(db, prefix, upper, start)
            except self._plyvel.Error as exc:
                raise self._read_failed(exc) from None
            return
        if start is not None and upper is not None and start >= upper:
            return
        lower = prefix if start is None else max(start, prefix)
        try:
            with db.iterator(start=lower or None, stop=upper) as it:
                yield from it
        except self._plyvel.Error as exc:
            raise self._read_failed(exc) from None

    @staticmethod
    def _iterate_reverse(
        db: Any, prefix: bytes, upper: bytes | None, start: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]:
        # plyvel 1.5.1's reverse iterator with both start and stop set skips keys it
        # should yield, so walk a raw iterator backwards from the upper bound instead.
        if start is not None and start < prefix:
            return
        raw = db.raw_iterator()
        try:
            if start is not None and (upper is None or start < upper):
                raw.seek(start)
                if not raw.valid():
                    raw.seek_to_last()
                elif raw.key() != start:
                    raw.prev()
            elif upper is None:
                raw.seek_to_last()
            else:
                raw.seek(upper)
                if raw.valid():
                    raw.prev()
                else:
                    raw.seek_to_last()
            while raw.valid():
                key = raw.key()
                if key < prefix:
                    break
                yield key, raw.value()
                raw.prev()
        finally:
            raw.close()

    def write(self, batch: Batch, sync: bool = True) -> None:
        db = self._db_or_fail()
        if self._failed is not None:
            raise self._failed
        try:
            with db.write_batch(sync=sync) as wb:
                for key, value in batch.ops.items():
                    if value is None:
                        wb.delete(key)
                    else:
                        wb.put(key, value)
        except self._plyvel.Error as exc:  # plyvel's IOError family on disk trouble
            self._failed = self._write_failed(_text(exc))
            raise self._failed from None

    def _write_failed(self, message: str) -> WriteFailed:
        later = "; this store refuses further writes until it is reopened"
        if _no_space(message):
            return WriteFailed(Code.DISK_FULL, f"no space left on the filesystem of store {self.path}{later}")
        return WriteFailed(Code.INTERNAL, f"write to store {self.path} failed: {message}{later}")

    def compact(self) -> None:
        """Compact the whole store now, as LevelDB would in time: what deletes (pruning)
        freed then shows on disk. Slow on a large store; for tools and benchmarks."""
        # with explicit bounds: unbounded, it left the deleted records on disk (measured)
        self._db_or_fail().compact_range(start=b"", stop=b"\xff" * 16)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _text(exc: Exception) -> str:
    """plyvel's error text (it carries LevelDB's status as bytes)."""
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
