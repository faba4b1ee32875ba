"""The chain store over both KV backends: commit, read back, refuse, restart, detect damage, WAL."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from primitives import codec
from primitives.block import Block, Commit, Header, txs_root
from primitives.errors import Code, GodownError
from primitives.hashing import EMPTY_ROOT, sha256
from primitives.state_proof import verify_proof
from storage.chain import ChainStore
from storage.kv import KV, Batch, LevelKV, MemoryKV
from storage.state_tree import StateTree
from tests.storage.chainkit import CHAIN, certify, grow, next_block, signed_tx

GENESIS = sha256(b"genesis document")
GENESIS_STATE = {b"member/alice": b"bank", b"member/bob": b"warehouse", b"policy": b"{}"}


class Backend:
    """One store location that can be closed and reopened (LevelDB) or kept (memory)."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind, self.path = kind, path
        self.kv: KV = MemoryKV() if kind == "memory" else LevelKV(path)

    def reopen(self) -> KV:
        if self.kind == "leveldb":
            self.kv.close()
            self.kv = LevelKV(self.path)
        return self.kv

    def raw(self, mutate: Callable[[KV], None]) -> None:
        """Damage the store behind the chain store's back."""
        mutate(self.kv)


@pytest.fixture(params=["memory", "leveldb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path / "chain")
    yield b
    b.kv.close()


@pytest.fixture
def store(backend: Backend) -> ChainStore:
    s = ChainStore.open(backend.kv)
    s.init_genesis(GENESIS, GENESIS_STATE)
    return s


def be(n: int) -> bytes:
    return struct.pack(">Q", n)


def test_fresh_store_is_uninitialized(backend: Backend) -> None:
    s = ChainStore.open(backend.kv)
    assert not s.is_initialized and s.head_height == -1 and s.genesis_hash is None
    header = Header(CHAIN, 1, GENESIS, 0, 0, "v", txs_root([]), EMPTY_ROOT, EMPTY_ROOT)
    block = Block(header, (), ())
    with pytest.raises(GodownError) as err:
        s.commit_block(block, certify(block), {})
    assert err.value.code == Code.BAD_BLOCK
    assert s.head_height == -1


def test_genesis(store: ChainStore) -> None:
    expected = StateTree(MemoryKV())
    b = Batch()
    expected.apply(GENESIS_STATE, b)
    assert store.head_height == 0 and store.head_hash == GENESIS == store.genesis_hash
    assert store.state_root == expected.root == store.state_root_at(0)
    assert store.results_root_at(0) == EMPTY_ROOT
    assert store.state.get(b"member/bob") == b"warehouse"
    assert [k for k, _ in store.state.scan(b"member/")] == [b"member/alice", b"member/bob"]
    with pytest.raises(GodownError) as err:
        store.init_genesis(GENESIS, {})
    assert err.value.code == Code.BAD_CONFIG


def test_commit_and_read_back(store: ChainStore) -> None:
    txs = [signed_tx(0, "a"), signed_tx(1, "b")]
    block = next_block(store, txs, ["ok", "unknown_case"])
    commit = certify(block)
    root = store.commit_block(block, commit, {b"note/0": b"a", b"member/bob": None})
    assert store.head_height == 1 and store.head_hash == block.hash()
    assert root == store.state_root == store.state_root_at(1)
    assert store.state_root_at(0) != root
    assert store.get_block(1) == block and store.get_block(1).results == ("ok", "unknown_case")  # type: ignore[union-attr]
    assert store.get_block_by_hash(block.hash()) == block
    assert store.get_commit(1) == commit
    assert store.get_block(2) is None and store.get_commit(2) is None and store.get_block(0) is None
    loc = store.get_tx(txs[1].tx_id)
    assert loc is not None and (loc.height, loc.index, loc.result) == (1, 1, "unknown_case")
    found = store.get_signed_tx(txs[0].tx_id)
    assert found is not None and found[0] == txs[0]
    assert store.get_tx(sha256(b"never")) is None
    assert store.state.get(b"member/bob") is None and store.state.get(b"note/0") == b"a"
    # the next header must carry the roots after height 1
    nxt = next_block(store, [signed_tx(2)])
    assert nxt.header.state_root == root
    from primitives.block import results_root

    assert nxt.header.results_root == results_root(["ok", "unknown_case"]) == store.results_root_at(1)
    store.commit_block(nxt, certify(nxt), {})
    assert store.state_root_at(2) == root  # no state change, same root


def test_events_are_kept_with_their_block(backend: Backend, store: ChainStore) -> None:
    """A block's events go in its batch and survive a reopen; a block committed without
    them (or a height not committed) has none kept, which is not the same as none emitted."""
    grow(store, 1)
    block = next_block(store, [signed_tx(3)])
    store.commit_block(block, certify(block), {}, codec.encode([{"kind": "alarm_raised", "height": 2}]))
    empty = next_block(store, [])
    store.commit_block(empty, certify(empty), {}, codec.encode([]))
    reopened = ChainStore.open(backend.reopen())
    assert codec.decode(reopened.get_events(2) or b"") == [{"kind": "alarm_raised", "height": 2}]
    assert reopened.get_events(3) == codec.encode([])
    assert reopened.get_events(1) is None and reopened.get_events(4) is None


def test_void_results_leave_the_id_free(store: ChainStore) -> None:
    """A forged or out-of-turn copy (a void result) stays in its block but is not the
    transaction's commit: the index skips it, and the real one indexes where it commits."""
    from primitives.errors import VOID_RESULTS
    from primitives.tx import SignedTx

    real = signed_tx(0, "real")
    forged = SignedTx(real.tx, real.tx_bytes, bytes(64))
    assert forged.tx_id == real.tx_id and "bad_signature" in VOID_RESULTS
    first = next_block(store, [forged], ["bad_signature"])
    store.commit_block(first, certify(first), {})
    assert store.get_tx(real.tx_id) is None
    assert store.get_block(1).results == ("bad_signature",)  # type: ignore[union-attr]
    second = next_block(store, [real], ["ok"])
    store.commit_block(second, certify(second), {})
    loc = store.get_tx(real.tx_id)
    assert loc is not None and (loc.height, loc.index, loc.result) == (2, 0, "ok")


def test_proofs_from_the_store(store: ChainStore) -> None:
    grow(store, 4)
    for key in (b"note/3", b"member/alice", b"absent"):
        entry = store.prove(key)
        assert entry.root == store.state_root and entry.height == 4
        assert entry.value == store.state.get(key)
        assert verify_proof(entry.root, key, entry.value, entry.proof)
        assert entry.to_json()["state_root"] == store.state_root.hex()


def test_refusals_leave_the_store_unchanged(store: ChainStore) -> None:
    grow(store, 2)
    head, root = (store.head_height, store.head_hash), store.state_root
    good = next_block(store, [signed_tx(100)])
    h = good.header

    def refused(block: Block, commit: Commit | None = None, code: Code = Code.BAD_BLOCK) -> None:
        with pytest.raises(GodownError) as err:
            store.commit_block(block, commit or certify(block), {b"x": b"y"})
        assert err.value.code == code
        assert (store.head_height, store.head_hash) == head and store.state_root == root
        assert store.state.get(b"x") is None

    refused(Block(dataclasses.replace(h, height=4), good.txs, good.results))
    refused(Block(dataclasses.replace(h, height=2), good.txs, good.results))
    refused(Block(dataclasses.replace(h, prev_hash=sha256(b"other")), good.txs, good.results))
    refused(Block(dataclasses.replace(h, state_root=sha256(b"other")), good.txs, good.results))
    refused(Block(dataclasses.replace(h, results_root=sha256(b"other")), good.txs, good.results))
    refused(Block(h, good.txs, ()))
    refused(Block(h, (signed_tx(101),), good.results))  # txs_root mismatch
    wrong_cert = dataclasses.replace(certify(good), block_hash=sha256(b"other"))
    refused(good, wrong_cert, Code.BAD_CERTIFICATE)
    store.commit_block(good, certify(good), {b"x": b"y"})
    assert store.head_height == 3 and store.state.get(b"x") == b"y"


def test_tx_index_first_occurrence_wins(store: ChainStore) -> None:
    tx = signed_tx(0)
    b1 = next_block(store, [tx, tx], ["ok", "duplicate"])
    store.commit_block(b1, certify(b1), {})
    b2 = next_block(store, [tx], ["bad_nonce"])
    store.commit_block(b2, certify(b2), {})
    loc = store.get_tx(tx.tx_id)
    assert loc is not None and (loc.height, loc.index, loc.result) == (1, 0, "ok")


def test_restart_keeps_head_root_and_wal(backend: Backend, store: ChainStore) -> None:
    grow(store, 5)
    store.wal_append(b"prepare 6")
    head, hh, root = store.head_height, store.head_hash, store.state_root
    again = ChainStore.open(backend.reopen())
    assert (again.head_height, again.head_hash, again.state_root) == (head, hh, root)
    assert again.genesis_hash == GENESIS
    assert again.wal_records() == [b"prepare 6"]
    grow(again, 1, start_nonce=1000)
    assert again.head_height == 6


def test_wal(backend: Backend, store: ChainStore) -> None:
    seqs = [store.wal_append(b"rec%d" % i) for i in range(5)]
    assert seqs == [0, 1, 2, 3, 4]
    assert store.wal_records() == [b"rec%d" % i for i in range(5)]
    store.wal_truncate_below(3)
    assert store.wal_entries() == [(3, b"rec3"), (4, b"rec4")]
    store.wal_reset()
    assert store.wal_records() == []
    again = ChainStore.open(backend.reopen())
    assert again.wal_append(b"after") == 5  # numbers never repeat, even across a restart
    assert again.wal_records() == [b"after"]


def test_wal_unsynced_appends_keep_order_and_survive_a_reopen(backend: Backend, store: ChainStore) -> None:
    # unsynced records are left for the next synced write; a process that exits (or is
    # killed) without one still leaves them to the operating system, so a reopen sees them
    assert store.wal_append_many([b"a", b"b"], sync=False) == [0, 1]
    store.wal_sync()  # a sync adds no record and uses no sequence number
    assert store.wal_append_many([b"c"], sync=True) == [2]
    assert store.wal_append_many([], sync=False) == []
    assert store.wal_records() == [b"a", b"b", b"c"]
    again = ChainStore.open(backend.reopen())
    assert again.wal_entries() == [(0, b"a"), (1, b"b"), (2, b"c")]


# ---- damage ------------------------------------------------------------------------------------


def flip(kv: KV, key: bytes, at: int = -5) -> None:
    v = kv.get(key)
    assert v is not None
    i = at % len(v)
    kv.put(key, v[:i] + bytes([v[i] ^ 1]) + v[i + 1 :])


def damaged(backend: Backend, height: int | None, **kw: object) -> str:
    with pytest.raises(GodownError) as err:
        ChainStore.open(backend.reopen(), **kw)  # type: ignore[arg-type]
    assert err.value.code == Code.STORE_DAMAGED
    if height is not None:
        assert f"height {height}" in err.value.message
    return err.value.message


@pytest.mark.parametrize(
    "damage,height",
    [
        (lambda kv: flip(kv, b"B:" + be(3)), 3),
        (lambda kv: kv.delete(b"B:" + be(4)), 4),
        (lambda kv: flip(kv, b"H:" + be(2), 10), 2),
        (lambda kv: kv.delete(b"C:" + be(5)), 5),
        (lambda kv: kv.delete(b"R:" + be(2)), 2),
        (lambda kv: flip(kv, b"R:" + be(6), -3), 6),
        (lambda kv: kv.put(b"S:note/4", b"tampered"), 6),
        (lambda kv: kv.delete(b"S:note/4"), 6),
        (lambda kv: kv.put(b"S:extra", b"injected"), 6),
    ],
)
def test_damage_is_refused_naming_the_height(
    backend: Backend, store: ChainStore, damage: Callable[[KV], None], height: int
) -> None:
    grow(store, 6)
    backend.raw(damage)
    damaged(backend, height)


def test_swapped_blocks_are_refused(backend: Backend, store: ChainStore) -> None:
    grow(store, 4)
    kv = backend.kv
    b2, b3 = kv.get(b"B:" + be(2)), kv.get(b"B:" + be(3))
    assert b2 is not None and b3 is not None
    kv.put(b"B:" + be(2), b3)
    kv.put(b"B:" + be(3), b2)
    damaged(backend, 2)


def test_missing_head_record_is_refused(backend: Backend, store: ChainStore) -> None:
    grow(store, 2)
    backend.kv.delete(b"m:head")
    msg = damaged(backend, None)
    assert "head" in msg


def test_shallow_check_skips_old_bodies_full_check_finds_them(backend: Backend, store: ChainStore) -> None:
    grow(store, 8)
    flip(backend.kv, b"B:" + be(2))
    ChainStore.open(backend.reopen(), deep_blocks=3)  # old bodies are not read
    damaged(backend, 2, deep_blocks=None)
    # header links are checked at every height whatever the depth
    flip(backend.kv, b"H:" + be(1), 10)
    damaged(backend, 1, deep_blocks=0)


def test_open_path_closes_a_refused_store(tmp_path: Path) -> None:
    s = ChainStore.open_path(tmp_path / "db")
    s.init_genesis(GENESIS, GENESIS_STATE)
    grow(s, 2)
    s._kv.put(b"S:policy", b"changed")  # damage behind the store's back
    s.close()
    with pytest.raises(GodownError) as err:
        ChainStore.open_path(tmp_path / "db")
    assert err.value.code == Code.STORE_DAMAGED
    kv = LevelKV(tmp_path / "db")  # not left locked
    kv.close()


def test_store_in_use_is_a_clear_error(tmp_path: Path) -> None:
    s = ChainStore.open_path(tmp_path / "db")
    try:
        with pytest.raises(GodownError) as err:
            ChainStore.open_path(tmp_path / "db")
        assert err.value.code == Code.BAD_CONFIG
    finally:
        s.close()


def test_records_are_canonical(store: ChainStore, backend: Backend) -> None:
    grow(store, 1)
    head = codec.decode(backend.kv.get(b"m:head"))  # type: ignore[arg-type]
    assert head == {"height": 1, "hash": store.head_hash}
    assert CHAIN == store.get_block(1).header.chain_id  # type: ignore[union-attr]


def test_relinked_header_is_refused(backend: Backend, store: ChainStore) -> None:
    """A well-formed header whose prev_hash no longer links is found by the chain walk."""
    grow(store, 5)
    doc = codec.decode(backend.kv.get(b"H:" + be(3)))  # type: ignore[arg-type]
    doc["prev_hash"] = sha256(b"elsewhere")
    backend.kv.put(b"H:" + be(3), codec.encode(doc))
    msg = damaged(backend, 3, deep_blocks=0)
    assert "prev_hash" in msg


def test_stored_block_bytes_are_the_canonical_encoding(store: ChainStore) -> None:
    grow(store, 2, txs_per_block=4)
    block = store.get_block(2)
    assert block is not None
    assert store.get_block_bytes(2) == block.encode()


def test_wal_append_many(backend: Backend, store: ChainStore) -> None:
    assert store.wal_append(b"a") == 0
    assert store.wal_append_many([b"b", b"c"]) == [1, 2]
    assert store.wal_append_many([]) == []
    assert ChainStore.open(backend.reopen()).wal_records() == [b"a", b"b", b"c"]


def test_corrupt_table_file_is_a_clear_refusal(tmp_path: Path) -> None:
    """Bytes flipped inside LevelDB's own table files: refused with a GodownError, never
    a raw plyvel exception, whichever record the damage hits."""
    s = ChainStore.open_path(tmp_path / "db")
    s.init_genesis(GENESIS, {b"k%d" % i: b"v" * 50 for i in range(2000)})
    grow(s, 20, txs_per_block=5)
    s.close()
    ChainStore.open_path(tmp_path / "db").close()  # the log is turned into table files
    tables = sorted((tmp_path / "db").glob("*.ldb"), key=lambda f: f.stat().st_size)
    assert tables
    data = bytearray(tables[-1].read_bytes())
    for pos in range(100, len(data) - 100, max(1, len(data) // 50)):
        data[pos] ^= 0xFF
    tables[-1].write_bytes(bytes(data))
    with pytest.raises(GodownError) as err:
        ChainStore.open_path(tmp_path / "db")
    assert err.value.code == Code.STORE_DAMAGED


class RecordingKV(MemoryKV):
    """A MemoryKV that records every write, and can be told to fail the next one."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[int, bool]] = []
        self.fail_next = False

    def write(self, batch: Batch, sync: bool = True) -> None:
        if self.fail_next:
            self.fail_next = False
            raise GodownError(Code.INTERNAL, "disk full (test)")
        self.writes.append((len(batch), sync))
        super().write(batch, sync)


def test_one_synced_batch_per_block() -> None:
    kv = RecordingKV()
    s = ChainStore.open(kv)
    s.init_genesis(GENESIS, GENESIS_STATE)
    kv.writes.clear()
    grow(s, 3, txs_per_block=4)
    assert len(kv.writes) == 3 and all(sync for _, sync in kv.writes)
    # header, block, commit, roots, hash index, head, 4 tx entries, 4 state entries
    assert all(n == 6 + 4 + 4 for n, _ in kv.writes)


def test_failed_write_changes_nothing() -> None:
    kv = RecordingKV()
    s = ChainStore.open(kv)
    s.init_genesis(GENESIS, GENESIS_STATE)
    grow(s, 2)
    before = (s.head_height, s.head_hash, s.state_root)
    block = next_block(s, [signed_tx(500)])
    kv.fail_next = True
    with pytest.raises(GodownError):
        s.commit_block(block, certify(block), {b"note/500": b"x"})
    assert (s.head_height, s.head_hash, s.state_root) == before
    assert s.state.get(b"note/500") is None and s.get_block(3) is None
    s.commit_block(block, certify(block), {b"note/500": b"x"})  # and the same block goes in afterwards
    assert s.head_height == 3
    ChainStore.open(kv)  # still passes the integrity check


def test_a_kept_proof_outlives_its_height_and_a_restart(backend: Backend) -> None:
    s = ChainStore.open(backend.kv)
    s.init_genesis(GENESIS, GENESIS_STATE)
    first = s.keep_proof(b"member/alice")
    block = next_block(s, [])
    s.commit_block(block, certify(block), {b"member/alice": b"insurer"})
    second = s.keep_proof(b"member/alice")
    s.keep_proof(b"member/bob")
    s = ChainStore.open(backend.reopen())
    kept = s.kept_proofs(b"member/alice")
    assert kept == [first, second] and [k.height for k in kept] == [0, 1]
    assert verify_proof(s.state_root_at(0) or b"", b"member/alice", b"bank", kept[0].proof)
    assert verify_proof(s.state_root_at(1) or b"", b"member/alice", b"insurer", kept[1].proof)
    assert not verify_proof(s.state_root_at(1) or b"", b"member/alice", b"bank", kept[1].proof)
    assert [k.value for k in s.kept_proofs(b"member/bob")] == [b"warehouse"]
    assert s.kept_proofs(b"member/") == []  # a key's prefix holds none of them
