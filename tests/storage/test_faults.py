"""Storage faults on real LevelDB files: a torn last write, damaged log and table files,
a write-ahead log with a hole or an unreadable record, and a filesystem that fills up
(a real tmpfs). See docs/storage-faults.md."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import plyvel
import pytest

from consensus.records import VoteRecord, encode_record
from node.server.ledger import EXIT_DISK_FULL, check_wal_records
from primitives.errors import Code, GodownError
from primitives.hashing import sha256
from storage.chain import ChainStore
from storage.kv import LevelKV
from storage.leveldb_log import BLOCK, find_torn_tail, newest_log
from storage.space import MIB, RESERVE_MAX, RESERVE_MIN, SpaceWatch, reserve_for
from tests.storage.chainkit import certify, grow, next_block, signed_tx
from tests.storage.tmpfs import fill, remount, tmpfs

GENESIS = sha256(b"genesis of the fault tests")
GENESIS_STATE = {b"member/alice": b"bank", b"policy": b"{}"}


def new_store(path: Path) -> ChainStore:
    s = ChainStore.open_path(path)
    s.init_genesis(GENESIS, GENESIS_STATE)
    return s


def log_size(path: Path) -> int:
    log = newest_log(path)
    assert log is not None
    return log.stat().st_size


def refused(path: Path, code: Code = Code.STORE_DAMAGED) -> str:
    with pytest.raises(GodownError) as err:
        ChainStore.open_path(path, deep_blocks=None).close()
    assert err.value.code == code, err.value
    return err.value.message


def vote(height: int) -> bytes:
    return encode_record(VoteRecord("prepare", 0, height, sha256(b"%d" % height)))


# ---- a torn last write ----------------------------------------------------------------------


def test_torn_last_block_commit_is_dropped_and_reported(tmp_path: Path) -> None:
    """A block commit cut short in the log (a crash mid-write): LevelDB drops it, the store
    reopens at the block before, passes its integrity check, says what it dropped, and
    takes the same block again."""
    pristine = tmp_path / "pristine"
    s = new_store(pristine)
    grow(s, 4)
    before = log_size(pristine)
    head4 = (s.head_height, s.head_hash, s.state_root)
    grow(s, 1, txs_per_block=40, start_nonce=100)
    after = log_size(pristine)
    s.close()
    for cut in (before + 3, (before + after) // 2, after - 1):
        db = tmp_path / f"cut{cut}"
        shutil.copytree(pristine, db)
        log = newest_log(db)
        assert log is not None
        log.write_bytes(log.read_bytes()[:cut])
        s = ChainStore.open_path(db, deep_blocks=None)
        try:
            kv = s._kv
            assert isinstance(kv, LevelKV) and kv.torn_tail is not None, cut
            assert kv.torn_tail.offset == before and kv.torn_tail.present == cut - before
            assert (s.head_height, s.head_hash, s.state_root) == head4
            assert s.get_block(5) is None
            grow(s, 1, txs_per_block=40, start_nonce=100)
            assert s.head_height == 5
        finally:
            s.close()
        s = ChainStore.open_path(db, deep_blocks=None)  # a clean log now: nothing to report
        assert isinstance(s._kv, LevelKV) and s._kv.torn_tail is None and s.head_height == 5
        s.close()
    s = ChainStore.open_path(pristine)  # a log that ends on a record boundary is no tear
    assert isinstance(s._kv, LevelKV) and s._kv.torn_tail is None and s.head_height == 5
    s.close()


def test_torn_tail_of_a_record_spanning_blocks(tmp_path: Path) -> None:
    """A write larger than LevelDB's 32 KiB log block is several fragments: a cut anywhere
    inside it is found, at the record's start; a cut at its end is no tear."""
    db = tmp_path / "chain"
    kv = LevelKV(db)
    kv.put(b"small", b"x" * 100)
    start = log_size(db)
    kv.put(b"big", os.urandom(3 * BLOCK + 1234))
    end = log_size(db)
    kv.close()
    log = newest_log(db)
    assert log is not None
    data = log.read_bytes()
    assert find_torn_tail(data, log) is None
    for cut in range(start + 1, end, (end - start) // 37):
        torn = find_torn_tail(data[:cut], log)
        assert torn is not None and torn.offset == start and torn.present == cut - start, cut
    assert find_torn_tail(data[:start], log) is None
    log.write_bytes(data[: end - 10])
    kv = LevelKV(db)
    try:
        assert kv.torn_tail is not None and kv.get(b"big") is None and kv.get(b"small") == b"x" * 100
    finally:
        kv.close()


def test_torn_wal_append_loses_only_that_append(tmp_path: Path) -> None:
    """A write-ahead append cut short: the records synced before it are all there, in order;
    the cut one (never acknowledged, so nothing was sent on it) is gone."""
    db = tmp_path / "chain"
    s = new_store(db)
    grow(s, 2)
    s.wal_append_many([vote(1), vote(2)])
    before = log_size(db)
    s.wal_append_many([vote(3)])
    s.close()
    log = newest_log(db)
    assert log is not None
    log.write_bytes(log.read_bytes()[: before + 9])
    s = ChainStore.open_path(db)
    try:
        assert s.wal_records() == [vote(1), vote(2)]
        check_wal_records(s)
        assert s.wal_append_many([vote(3)]) == [2]  # numbering goes on from what is on disk
    finally:
        s.close()


# ---- damaged files: refused, never skipped ----------------------------------------------------


def test_damaged_log_record_refuses_the_store(tmp_path: Path) -> None:
    """Bytes garbled in an earlier log record. LevelDB without paranoid checks skips the
    damaged part and replays the rest (synced blocks vanish in the middle); the store
    opens with them and refuses with `store_damaged` instead."""
    db = tmp_path / "chain"
    s = new_store(db)
    grow(s, 30, txs_per_block=5)
    s.close()
    log = newest_log(db)
    assert log is not None
    data = bytearray(log.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 16] = b"\xff" * 16
    log.write_bytes(bytes(data))
    message = refused(db)
    assert "damaged" in message and str(db) in message
    lax = plyvel.DB(str(db), paranoid_checks=False)  # what the default would have done
    try:
        heads = sum(1 for _ in lax.iterator(prefix=b"H:"))
    finally:
        lax.close()
    assert heads < 30


def _make_tables(db: Path) -> Path:
    s = new_store(db)
    s._kv.put(b"S:bulk", b"v" * 10)
    grow(s, 40, txs_per_block=10)
    s.close()
    LevelKV(db).close()  # reopening turns the log into a table file
    tables = sorted(db.glob("*.ldb"), key=lambda f: f.stat().st_size)
    assert tables
    return tables[-1]


def test_truncated_table_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "chain"
    table = _make_tables(db)
    data = table.read_bytes()
    table.write_bytes(data[: len(data) // 2])
    assert "damaged" in refused(db)


def test_table_file_cut_to_nothing_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "chain"
    table = _make_tables(db)
    table.write_bytes(b"")
    refused(db)


# ---- the consensus write-ahead log --------------------------------------------------------------


def test_wal_with_a_hole_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "chain"
    s = new_store(db)
    s.wal_append_many([vote(h) for h in range(1, 6)])
    s._kv.delete(b"W:" + struct.pack(">Q", 2))  # a lost record, behind the store's back
    s.close()
    assert "write-ahead log record 2 is missing" in refused(db)


def test_wal_compaction_leaves_no_hole(tmp_path: Path) -> None:
    db = tmp_path / "chain"
    s = new_store(db)
    s.wal_append_many([vote(h) for h in range(1, 6)])
    s.wal_truncate_below(3)
    s.wal_append_many([vote(9)])
    s.close()
    s = ChainStore.open_path(db)
    assert s.wal_records() == [vote(4), vote(5), vote(9)]  # numbers 3 and 4, then 5
    s.close()


def test_unreadable_wal_record_is_named(tmp_path: Path) -> None:
    db = tmp_path / "chain"
    s = new_store(db)
    try:
        s.wal_append_many([vote(1), vote(2)[:-7], vote(3)])  # the middle record cut short
        with pytest.raises(GodownError) as err:
            check_wal_records(s)
        assert err.value.code == Code.STORE_DAMAGED and "record 1 is unreadable" in err.value.message
    finally:
        s.close()


# ---- a full disk --------------------------------------------------------------------------------


def test_reserve_scales_within_bounds() -> None:
    assert reserve_for(8 * MIB) == RESERVE_MIN
    assert reserve_for(100 * MIB) == 10 * MIB
    assert reserve_for(10**12) == RESERVE_MAX


def test_full_disk_write_fails_cleanly_and_the_store_recovers(tmp_path: Path) -> None:
    """On a real tmpfs: commits until the disk is full. The failing commit is `disk_full`
    and changes nothing; the handle then refuses every write, even after space returns
    (LevelDB could lose a later write); opening without space is `disk_full` too; with
    space back the reopened store holds every block acknowledged, passes its integrity
    check, and takes the refused block."""
    mount = tmp_path / "fs"
    with tmpfs(mount, "2m"):
        db = mount / "chain"
        s = new_store(db)
        nonce, last = 0, None
        try:
            with pytest.raises(GodownError) as err:
                while True:
                    txs = [signed_tx(nonce + i, "p" * 200) for i in range(20)]
                    last = (next_block(s, txs), {b"note/%d" % (nonce + i): os.urandom(64) for i in range(20)})
                    head = (s.head_height, s.head_hash, s.state_root)
                    s.commit_block(last[0], certify(last[0]), last[1])
                    nonce += 20
            assert err.value.code == Code.DISK_FULL
            assert (s.head_height, s.head_hash, s.state_root) == head
            remount(mount, "8m")
            with pytest.raises(GodownError) as again:
                s.wal_append(vote(1))
            assert again.value.code == Code.DISK_FULL and "reopened" in again.value.message
        finally:
            s.close()
        remount(mount, "2m")  # shrink back: the store alone fills it
        fill(mount, 0)
        with pytest.raises(GodownError) as at_open:
            ChainStore.open_path(db)
        assert at_open.value.code == Code.DISK_FULL
        (mount / "filler").unlink()
        remount(mount, "8m")
        s = ChainStore.open_path(db, deep_blocks=None)
        try:
            assert (s.head_height, s.head_hash, s.state_root) == head
            assert last is not None
            s.commit_block(last[0], certify(last[0]), last[1])
            assert s.head_height == head[0] + 1
        finally:
            s.close()
        ChainStore.open_path(db, deep_blocks=None).close()


def test_space_watch_refuses_below_the_reserve(tmp_path: Path) -> None:
    mount = tmp_path / "fs"
    with tmpfs(mount, "8m"):
        watch = SpaceWatch(mount)
        watch.require_room("test")
        fill(mount, RESERVE_MIN // 2)
        with pytest.raises(GodownError) as err:
            watch.require_room("test")
        assert err.value.code == Code.DISK_FULL and "reserve" in err.value.message
        remount(mount, "16m")
        watch.require_room("test")
        assert not watch.sample().low


WAL_WRITER = """
import sys
from node.server.logs import setup_logging
from node.server.pbft.wal import WriteAheadLog
from storage.chain import ChainStore

setup_logging("info")
wal = WriteAheadLog(ChainStore.open_path(sys.argv[1]))
record = bytes.fromhex(sys.argv[2])
done = 0
while True:
    wal.persist([record] * 50, sync=True)
    done += 1
    print(done, flush=True)
"""


def test_wal_write_on_a_full_disk_ends_the_process(tmp_path: Path) -> None:
    """A real process appending write-ahead records until its tmpfs is full: it stops with
    exit 75 and one clear line, no traceback; every append it acknowledged is on disk."""
    mount = tmp_path / "fs"
    with tmpfs(mount, "1m"):
        db = mount / "chain"
        proc = subprocess.run(
            [sys.executable, "-c", WAL_WRITER, str(db), vote(7).hex()],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert proc.returncode == EXIT_DISK_FULL, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        assert '"msg":"storage fault: node stopping"' in proc.stderr
        assert '"doing":"writing consensus write-ahead records"' in proc.stderr
        assert "error [disk_full]: writing consensus write-ahead records failed" in proc.stderr
        acknowledged = int(proc.stdout.split()[-1])
        remount(mount, "8m")
        s = ChainStore.open_path(db)
        try:
            assert len(s.wal_records()) == 50 * acknowledged
        finally:
            s.close()
