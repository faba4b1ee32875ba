"""Finding a torn last write in a LevelDB log file before LevelDB opens it.

Why: LevelDB's recovery treats a record cut short at the end of its newest log file
as "the writer died in the middle of writing" and drops it without a word, even with
`paranoid_checks` (leveldb/db/log_reader.cc). That is the right recovery — the cut
write never returned, so it was never synced or acknowledged — but an operator should
hear that it happened. This module walks the log's framing (32 KiB blocks of records
with a 7-byte header: masked CRC32C, little-endian length, type) and reports an
incomplete last record. It does not check CRCs: a record whose bytes are damaged is
refused by LevelDB itself when opened with `paranoid_checks` (see `storage.kv`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_LOG_NAME = re.compile(r"^(\d+)\.log$")


@dataclass(frozen=True)
class TornTail:
    """An incomplete last record: where it starts, the bytes present, and (for a
    record in one fragment) how many it should have."""

    file: Path
    offset: int
    present: int
    expected: int | None

    def describe(self) -> str:
        """One sentence for the log."""
        of = "" if self.expected is None else f" of {self.expected}"
        return f"{self.file.name} ends in an incomplete record at offset {self.offset} ({self.present}{of} bytes)"


def newest_log(db_dir: Path) -> Path | None:
    """The LevelDB log file with the highest number in `db_dir` (the one being written), or None."""
    best: tuple[int, Path] | None = None
    try:
        names = [p for p in db_dir.iterdir() if _LOG_NAME.match(p.name)]
    except OSError:
        return None
    for p in names:
        n = int(_LOG_NAME.match(p.name).group(1))  # type: ignore[union-attr]
        if best is None or n > best[0]:
            best = (n, p)
    return None if best is None else best[1]


def find_torn_tail(data: bytes, file: Path) -> TornTail | None:
    """The incomplete last record of log contents `data`, or None if the framing ends
    cleanly (or is damaged in a way only LevelDB's checksums can judge)."""
    pos, end = 0, len(data)
    start: int | None = None  # where the logical record under way began (a FIRST fragment)
    while pos < end:
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the writer pads the block's tail with zeros
            pos += left
            continue
        if pos + HEADER > end:
            return TornTail(file, pos if start is None else start, end - (pos if start is None else start), None)
        length = data[pos + 4] | data[pos + 5] << 8
        kind = data[pos + 6]
        if kind == 0 and length == 0:  # preallocated zeros: LevelDB skips the rest of the block
            pos += left
            continue
        stop = pos + HEADER + length
        if stop > end:
            first = pos if start is None else start
            expected = HEADER + length if start is None else None
            return TornTail(file, first, end - first, expected)
        if stop > pos + left or kind not in (_FULL, _FIRST, _MIDDLE, _LAST):
            return None  # damaged framing, not a cut: LevelDB's paranoid checks refuse it
        if kind == _FIRST:
            start = pos
        elif kind in (_FULL, _LAST):
            start = None
        pos = stop
    if start is not None:
        return TornTail(file, start, end - start, None)
    return None


def torn_tail(db_dir: str | Path) -> TornTail | None:
    """The incomplete last record of the newest log file in LevelDB directory `db_dir`, or None."""
    log = newest_log(Path(db_dir))
    if log is None:
        return None
    try:
        data = log.read_bytes()
    except OSError:
        return None
    return find_torn_tail(data, log)
