"""State snapshots (storage/snapshot.py): manifest + chunks, each chunk verified on its own
against a trusted state root, installed into a fresh chain store that then continues by
blocks. On a real LevelDB chain of the financing workload, on random states (hypothesis),
and against the vector in docs/snapshot.md."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from node.load.workload import financing_workload
from node.server.ledger import Ledger
from node.tools.participants import Participants
from primitives import codec
from primitives.block import Block, Commit, commit_vote_bytes
from primitives.errors import Code, GodownError
from primitives.genesis import Genesis
from primitives.hashing import sha256
from primitives.keys import KeyPair
from primitives.state_proof import EMPTY
from storage.chain import ChainStore
from storage.kv import LevelKV, MemoryKV
from storage.snapshot import (
    MAX_CHUNK_BYTES,
    MAX_CHUNK_ENTRIES,
    MAX_CHUNKS,
    Installer,
    Manifest,
    Snapshot,
    SnapshotError,
    SnapshotFile,
    Trusted,
    build_snapshot,
    take_snapshot,
    verify_chunk,
    verify_manifest,
    write_snapshot_file,
)
from tests.storage.chainkit import certify, next_block

CHAIN_ID = "snapshot-test"
BLOCK_TXS = 8
SMALL_CHUNKS = 1024  # a chunk target that cuts the workload's state into many chunks
REFUSED = {Code.MALFORMED, Code.OVERSIZE, Code.TAMPERED}

Chain = list[tuple[Block, Commit]]


# ---- a real chain: the financing workload on LevelDB ----------------------------------------


@dataclasses.dataclass(frozen=True)
class Built:
    genesis: Genesis
    chain: Chain  # as stored: blocks with their results, and certificates
    roots: dict[int, bytes]  # state root after each height
    data_dir: Path  # a stopped node's data dir at the head (data_dir / "chain")


def certify_with(validator: KeyPair, chain_id: str, block: Block) -> Commit:
    sig = validator.sign(commit_vote_bytes(chain_id, block.height, 0, block.hash()))
    return Commit(chain_id, block.height, 0, block.hash(), ((validator.id, sig),))


def build_chain(root: Path, chain_id: str = CHAIN_ID, cases: int = 6, stop_at: int | None = None) -> Built:
    """The financing workload, `BLOCK_TXS` per block, committed by a `Ledger` into
    `root/data` (up to `stop_at` if given; the later blocks are still returned, for a
    restored store to continue with); `root/genesis.json` beside it."""
    p = Participants.generate(seed=b"snapshot-test")
    validator = p.node_key(p.warehouse)
    genesis = p.genesis(chain_id, 1_000_000, validating=1)
    genesis.save(root / "genesis.json")
    whole = Ledger.open(None, genesis)  # the whole chain, in memory
    disk = Ledger.open(root / "data", genesis)
    chain: Chain = []
    roots = {0: whole.store.state_root}
    try:
        for phase in financing_workload(p, chain_id, cases=cases, reports_per_case=4):
            for i in range(0, len(phase), BLOCK_TXS):
                h = len(chain) + 1
                block = whole.build_block(phase[i : i + BLOCK_TXS], 1_000_000 + h * 100, 0, validator.id)
                outcome = whole.execute(block)
                assert set(outcome.results) == {"ok"}
                commit = certify_with(validator, chain_id, block)
                roots[h] = whole.commit(block, commit, outcome)
                if stop_at is None or h <= stop_at:
                    assert disk.commit(block, commit, disk.execute(block)) == roots[h]
                chain.append((block.with_results(outcome.results), commit))
    finally:
        whole.close()
        disk.close()
    return Built(genesis, chain, roots, root / "data")


@dataclasses.dataclass(frozen=True)
class Fixture:
    built: Built
    height: int  # the snapshot height, mid-chain
    state: dict[bytes, bytes]  # the state at `height`
    snap: Snapshot  # default chunking
    small: Snapshot  # SMALL_CHUNKS chunking
    later: Snapshot  # the same state, exported from a view frozen at `height` after more blocks committed
    head: Snapshot  # the state at the head, SMALL_CHUNKS


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    built = build_chain(tmp_path_factory.mktemp("snapshot-chain"))
    height = len(built.chain) // 2
    store = ChainStore.open(MemoryKV())
    store.init_genesis(built.genesis.hash(), _genesis_state(built))
    ledger = Ledger(store, built.genesis)
    for block, commit in built.chain[:height]:
        ledger.commit(block, commit, ledger.execute(block))
    state = dict(store.state.scan())
    snap = take_snapshot(store, CHAIN_ID)
    small = take_snapshot(store, CHAIN_ID, target_bytes=SMALL_CHUNKS)
    # LevelDB: freeze at `height`, commit the rest, export from the frozen view afterwards
    level = ChainStore.open_path(built.data_dir.parent / "replay")
    try:
        level.init_genesis(built.genesis.hash(), _genesis_state(built))
        lledger = Ledger(level, built.genesis)
        for block, commit in built.chain[:height]:
            lledger.commit(block, commit, lledger.execute(block))
        frozen = level.freeze_state()
        for block, commit in built.chain[height:]:
            lledger.commit(block, commit, lledger.execute(block))
        assert level.state_root == built.roots[len(built.chain)]
        with frozen:
            later = build_snapshot(frozen, CHAIN_ID, target_bytes=SMALL_CHUNKS)
        head = take_snapshot(level, CHAIN_ID, target_bytes=SMALL_CHUNKS)
    finally:
        level.close()
    assert small.manifest.chunks > 8 and snap.manifest.chunks == 1
    return Fixture(built, height, state, snap, small, later, head)


def _genesis_state(built: Built) -> dict[bytes, bytes]:
    import contracts

    return dict(contracts.genesis_state(built.genesis))


def _forged(manifest: Manifest, index: int, chunk: bytes) -> Manifest:
    """The manifest a liar would send along with `chunk`: it lists that chunk's hash, so
    only the proof against the trusted root can refuse it."""
    hashes = list(manifest.chunk_hashes)
    hashes[index] = sha256(chunk)
    return dataclasses.replace(manifest, chunk_hashes=tuple(hashes))


def _code(exc: pytest.ExceptionInfo[GodownError]) -> Code:
    assert isinstance(exc.value, SnapshotError), exc.value
    return exc.value.code


def _install(snap: Snapshot, store: ChainStore, order: list[int] | None = None) -> bytes:
    installer = Installer(store, snap.manifest, snap.manifest.state_root)
    for i in order if order is not None else range(snap.manifest.chunks):
        assert installer.add(i, snap.chunks[i])
    return installer.finish()


# ---- the real chain ---------------------------------------------------------------------------


def test_manifest_names_the_height(fx: Fixture) -> None:
    m = fx.small.manifest
    block = fx.built.chain[fx.height - 1][0]
    assert (m.chain_id, m.height, m.genesis_hash) == (CHAIN_ID, fx.height, fx.built.genesis.hash())
    assert m.block_hash == block.hash() and m.header == block.header
    assert m.state_root == fx.built.roots[fx.height]
    nxt = fx.built.chain[fx.height][0].header  # what the certified header h+1 says about h
    assert (m.state_root, m.results_root, m.block_hash) == (nxt.state_root, nxt.results_root, nxt.prev_hash)
    assert Manifest.decode(m.encode()) == m
    assert m.chunk_hashes == tuple(sha256(c) for c in fx.small.chunks)


def test_every_chunk_verifies_alone_and_they_partition_the_state(fx: Fixture) -> None:
    m, root = fx.small.manifest, fx.small.manifest.state_root
    seen: dict[bytes, bytes] = {}
    positions = []
    for i, chunk in enumerate(fx.small.chunks):
        assert len(chunk) <= max(SMALL_CHUNKS, 8 * 1024)
        verified = verify_chunk(m, i, chunk, root)
        assert verified.index == i and verified.entries
        positions.append(verified.position)
        for k, v in verified.entries:
            assert k not in seen
            seen[k] = v
    assert seen == fx.state
    assert any(len(p) >= 1 for p in positions)
    for a in positions:  # disjoint subtrees: no position is a prefix of another
        assert sum(1 for b in positions if b[: len(a)] == a) == 1


def test_round_trip_into_a_fresh_leveldb_store(fx: Fixture, tmp_path: Path) -> None:
    for snap in (fx.snap, fx.small):
        store = ChainStore.open_path(tmp_path / f"restored-{snap.manifest.chunks}")
        try:
            order = list(range(snap.manifest.chunks))
            random.Random(7).shuffle(order)  # chunks arrive in any order
            assert _install(snap, store, order) == fx.built.roots[fx.height]
            assert dict(store.state.scan()) == fx.state
            assert (store.head_height, store.base_height) == (fx.height, fx.height)
            assert store.head_hash == snap.manifest.block_hash
        finally:
            store.close()
        reopened = ChainStore.open_path(tmp_path / f"restored-{snap.manifest.chunks}", deep_blocks=None)
        try:
            assert reopened.state_root == fx.built.roots[fx.height]
        finally:
            reopened.close()


def test_export_from_a_frozen_view_ignores_later_commits(fx: Fixture) -> None:
    assert fx.later.manifest.encode() == fx.small.manifest.encode()  # LevelDB view == memory copy, byte for byte
    assert fx.later.chunks == fx.small.chunks
    assert fx.head.manifest.height == len(fx.built.chain)
    assert fx.head.manifest.state_root == fx.built.roots[len(fx.built.chain)]


def test_restored_store_executes_the_next_blocks_of_the_chain(fx: Fixture, tmp_path: Path) -> None:
    store = ChainStore.open_path(tmp_path / "synced")
    try:
        _install(fx.small, store)
        ledger = Ledger(store, fx.built.genesis)
        for block, commit in fx.built.chain[fx.height :]:
            bare = Block(block.header, block.txs)
            ledger.check_proposal(bare)
            ledger.check_commit(bare, commit)
            outcome = ledger.execute(bare)
            assert outcome.results == block.results
            assert ledger.commit(bare, commit, outcome) == fx.built.roots[block.height]
        assert store.head_height == len(fx.built.chain)
    finally:
        store.close()
    store = ChainStore.open_path(tmp_path / "synced", deep_blocks=None)
    try:
        h = fx.height
        assert store.base_height == h and store.state_root == fx.built.roots[len(fx.built.chain)]
        assert all(store.get_block(x) is None and store.get_commit(x) is None for x in range(0, h + 1))
        assert store.get_header(h) == fx.built.chain[h - 1][0].header  # the base's header, for block h+1's checks
        assert store.get_block(h + 1) == fx.built.chain[h][0]
        tx = fx.built.chain[0][0].txs[0]
        assert store.get_tx(tx.tx_id) is None  # the tx index starts after the base
        with pytest.raises(GodownError) as exc:
            store.require_history_from_genesis()
        assert exc.value.code is Code.BAD_CONFIG and f"starts at height {h}" in exc.value.message
    finally:
        store.close()


def test_a_full_store_keeps_its_history(fx: Fixture) -> None:
    store = ChainStore.open_path(fx.built.data_dir / "chain")
    try:
        assert store.base_height == 0
        store.require_history_from_genesis()
    finally:
        store.close()


# ---- refusals -----------------------------------------------------------------------------------


def test_a_flipped_byte_anywhere_in_any_chunk_is_refused(fx: Fixture) -> None:
    m, root = fx.small.manifest, fx.small.manifest.state_root
    for i, chunk in enumerate(fx.small.chunks):
        for pos in range(len(chunk)):
            bad = chunk[:pos] + bytes([chunk[pos] ^ 0x01]) + chunk[pos + 1 :]
            with pytest.raises(SnapshotError) as exc:
                verify_chunk(m, i, bad, root)
            assert exc.value.code is Code.TAMPERED
            with pytest.raises(SnapshotError) as exc:  # even with a manifest that lists it
                verify_chunk(_forged(m, i, bad), i, bad, root)
            assert exc.value.code in REFUSED, exc.value


def test_a_chunk_of_another_snapshot_is_refused(fx: Fixture) -> None:
    m, root = fx.small.manifest, fx.small.manifest.state_root
    foreign = [c for c in fx.head.chunks if c not in fx.small.chunks]
    assert foreign
    for other in foreign:
        for i in range(m.chunks):
            with pytest.raises(SnapshotError) as exc:
                verify_chunk(m, i, other, root)
            assert exc.value.code is Code.TAMPERED
        with pytest.raises(SnapshotError) as exc:
            verify_chunk(_forged(m, 0, other), 0, other, root)
        assert exc.value.code is Code.TAMPERED and "trusted state root" in exc.value.message


def test_a_chunk_under_a_wrong_index_is_refused(fx: Fixture) -> None:
    m, root, chunks = fx.small.manifest, fx.small.manifest.state_root, fx.small.chunks
    for i in range(m.chunks):
        j = (i + 1) % m.chunks
        with pytest.raises(SnapshotError) as exc:
            verify_chunk(m, i, chunks[j], root)
        assert exc.value.code is Code.TAMPERED
    for index in (-1, m.chunks, 2**70, "0"):
        with pytest.raises(SnapshotError) as exc:
            verify_chunk(m, index, chunks[0], root)  # type: ignore[arg-type]
        assert exc.value.code is Code.MALFORMED


def test_a_manifest_that_repeats_or_leaves_out_a_chunk_cannot_install(fx: Fixture) -> None:
    m, root, chunks = fx.small.manifest, fx.small.manifest.state_root, fx.small.chunks
    # chunk 1 listed twice: both verify (they are true), the second overlaps
    twice = _forged(m, 0, chunks[1])
    store = ChainStore.open(MemoryKV())
    installer = Installer(store, twice, root)
    assert installer.add(1, chunks[1]) and not installer.add(1, chunks[1])
    with pytest.raises(SnapshotError) as exc:
        installer.add(0, chunks[1])
    assert exc.value.code is Code.TAMPERED and "overlaps" in exc.value.message
    assert installer.missing == [0] + list(range(2, m.chunks))
    # one chunk left out: every chunk verifies, the whole does not rebuild the root
    short = dataclasses.replace(m, chunk_hashes=m.chunk_hashes[1:])
    store = ChainStore.open(MemoryKV())
    installer = Installer(store, short, root)
    for i, chunk in enumerate(chunks[1:]):
        installer.add(i, chunk)
    with pytest.raises(SnapshotError) as exc:
        installer.finish()
    assert exc.value.code is Code.TAMPERED
    assert store.is_blank and not store.is_initialized  # the entries were removed again


def test_truncated_and_oversize_chunks_are_refused(fx: Fixture) -> None:
    m, root, chunk = fx.small.manifest, fx.small.manifest.state_root, fx.small.chunks[0]
    for cut in (0, 1, len(chunk) // 2, len(chunk) - 1):
        bad = chunk[:cut]
        with pytest.raises(SnapshotError) as exc:
            verify_chunk(m, 0, bad, root)
        assert exc.value.code is Code.TAMPERED
        with pytest.raises(SnapshotError) as exc:
            verify_chunk(_forged(m, 0, bad), 0, bad, root)
        assert exc.value.code is Code.MALFORMED
    big = bytes(MAX_CHUNK_BYTES + 1)
    with pytest.raises(SnapshotError) as exc:
        verify_chunk(_forged(m, 0, big), 0, big, root)
    assert exc.value.code is Code.OVERSIZE
    many = codec.encode({"entries": [[b"k", b""]] * (MAX_CHUNK_ENTRIES + 1), "path": b"", "proof": []})
    assert len(many) < MAX_CHUNK_BYTES
    with pytest.raises(SnapshotError) as exc:
        verify_chunk(_forged(m, 0, many), 0, many, root)
    assert exc.value.code is Code.OVERSIZE


FORGERIES: dict[str, object] = {
    "not a map": [1, 2, 3],
    "unknown field": {"entries": [], "path": b"", "proof": [], "x": 1},
    "nibble out of range": {"entries": [], "path": b"\x10", "proof": [bytes(480)]},
    "proof row count": {"entries": [], "path": b"\x01", "proof": []},
    "short proof row": {"entries": [], "path": b"\x01", "proof": [bytes(479)]},
    "entry shape": {"entries": [[b"k"]], "path": b"", "proof": []},
    "entry type": {"entries": [["k", b"v"]], "path": b"", "proof": []},
    "repeated key": {"entries": [[b"k", b"v"], [b"k", b"v"]], "path": b"", "proof": []},
    "too deep": {"entries": [], "path": bytes(65), "proof": [bytes(480)] * 65},
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_chunk_shapes_are_refused_with_a_code(fx: Fixture, name: str) -> None:
    m, root = fx.small.manifest, fx.small.manifest.state_root
    bad = codec.encode(FORGERIES[name])
    with pytest.raises(SnapshotError) as exc:
        verify_chunk(_forged(m, 0, bad), 0, bad, root)
    assert exc.value.code in {Code.MALFORMED, Code.OVERSIZE}, exc.value


def test_non_canonical_chunk_bytes_are_refused(fx: Fixture) -> None:
    m, root = fx.small.manifest, fx.small.manifest.state_root
    doc = codec.decode(fx.small.chunks[0])
    reordered = msgpack.packb(
        {"proof": doc["proof"], "path": doc["path"], "entries": doc["entries"]}, use_bin_type=True
    )
    as_str = msgpack.packb(
        {"entries": [[k, v] for k, v in doc["entries"]], "path": doc["path"], "proof": doc["proof"]},
        use_bin_type=False,  # bytes as str: not canonical
    )
    for bad in (reordered, as_str, fx.small.chunks[0] + b"\x00", b"\xc1", b""):
        with pytest.raises(SnapshotError) as exc:
            verify_chunk(_forged(m, 0, bad), 0, bad, root)
        assert exc.value.code is Code.MALFORMED, exc.value


def test_an_entry_outside_its_subtree_is_refused(fx: Fixture) -> None:
    m, root = fx.small.manifest, fx.small.manifest.state_root
    for i, chunk in enumerate(fx.small.chunks):
        doc = codec.decode(chunk)
        if doc["path"]:
            doc["path"] = bytes([(doc["path"][0] + 1) % 16]) + doc["path"][1:]
            bad = codec.encode(doc)
            with pytest.raises(SnapshotError) as exc:
                verify_chunk(_forged(m, i, bad), i, bad, root)
            assert exc.value.code is Code.MALFORMED and "outside" in exc.value.message
            return
    raise AssertionError("no chunk below the root")


def test_manifest_checks(fx: Fixture) -> None:
    m = fx.small.manifest
    raw = m.encode()
    g = fx.built.genesis
    nxt = fx.built.chain[fx.height][0].header
    assert verify_manifest(raw, CHAIN_ID, g.hash(), Trusted.from_next_header(nxt)) == m
    assert verify_manifest(raw, CHAIN_ID, g.hash(), Trusted(m.height, m.state_root)) == m
    cases: list[tuple[bytes, str, bytes, Trusted | None, Code]] = [
        (raw, "other-chain", g.hash(), None, Code.WRONG_CHAIN),
        (raw, CHAIN_ID, sha256(b"other genesis"), None, Code.WRONG_CHAIN),
        (raw, CHAIN_ID, g.hash(), Trusted(m.height, EMPTY), Code.TAMPERED),
        (raw, CHAIN_ID, g.hash(), Trusted(m.height + 1, m.state_root), Code.TAMPERED),
        (raw, CHAIN_ID, g.hash(), dataclasses.replace(Trusted.from_next_header(nxt), block_hash=EMPTY), Code.TAMPERED),
        (
            raw,
            CHAIN_ID,
            g.hash(),
            dataclasses.replace(Trusted.from_next_header(nxt), results_root=EMPTY),
            Code.TAMPERED,
        ),
        (raw[:-1], CHAIN_ID, g.hash(), None, Code.MALFORMED),
        (raw + b"\x00", CHAIN_ID, g.hash(), None, Code.MALFORMED),
        (codec.encode({**m.to_dict(), "format": 2}), CHAIN_ID, g.hash(), None, Code.MALFORMED),
        (codec.encode({**m.to_dict(), "format": True}), CHAIN_ID, g.hash(), None, Code.MALFORMED),
        (codec.encode({**m.to_dict(), "extra": 1}), CHAIN_ID, g.hash(), None, Code.MALFORMED),
        (codec.encode({**m.to_dict(), "chunk_hashes": []}), CHAIN_ID, g.hash(), None, Code.MALFORMED),
        (codec.encode({**m.to_dict(), "height": m.height + 1}), CHAIN_ID, g.hash(), None, Code.MALFORMED),
        (codec.encode({**m.to_dict(), "block_hash": EMPTY}), CHAIN_ID, g.hash(), None, Code.TAMPERED),
        (codec.encode({**m.to_dict(), "header": None}), CHAIN_ID, g.hash(), None, Code.MALFORMED),
        (
            codec.encode({**m.to_dict(), "chunk_hashes": [EMPTY] * (MAX_CHUNKS + 1)}),
            CHAIN_ID,
            g.hash(),
            None,
            Code.OVERSIZE,
        ),
    ]
    for data, chain_id, genesis_hash, trusted, code in cases:
        with pytest.raises(SnapshotError) as exc:
            verify_manifest(data, chain_id, genesis_hash, trusted)
        assert exc.value.code is code, (exc.value, code)
    with pytest.raises(SnapshotError) as exc:
        verify_chunk(m, 0, fx.small.chunks[0], EMPTY)
    assert exc.value.code is Code.TAMPERED


def test_installer_needs_a_blank_store_and_every_chunk(fx: Fixture) -> None:
    full = ChainStore.open(MemoryKV())
    full.init_genesis(fx.built.genesis.hash(), {})
    with pytest.raises(GodownError) as exc:
        Installer(full, fx.small.manifest, fx.small.manifest.state_root)
    assert exc.value.code is Code.BAD_CONFIG
    with pytest.raises(SnapshotError) as exc2:
        Installer(ChainStore.open(MemoryKV()), fx.small.manifest, EMPTY)
    assert exc2.value.code is Code.TAMPERED
    installer = Installer(ChainStore.open(MemoryKV()), fx.small.manifest, fx.small.manifest.state_root)
    installer.add(0, fx.small.chunks[0])
    with pytest.raises(GodownError) as exc:
        installer.finish()
    assert exc.value.code is Code.BAD_CONFIG and "missing chunks" in exc.value.message
    installer.abort()
    assert installer.store.is_blank


def test_a_half_finished_install_is_refused_at_open(fx: Fixture, tmp_path: Path) -> None:
    store = ChainStore.open_path(tmp_path / "half")
    installer = Installer(store, fx.small.manifest, fx.small.manifest.state_root)
    installer.add(0, fx.small.chunks[0])
    store.close()
    with pytest.raises(GodownError) as exc:
        ChainStore.open_path(tmp_path / "half")
    assert exc.value.code is Code.STORE_DAMAGED and "snapshot install was not finished" in exc.value.message


def test_damage_to_a_restored_store_is_detected(fx: Fixture, tmp_path: Path) -> None:
    store = ChainStore.open_path(tmp_path / "r")
    _install(fx.small, store)
    store.close()
    kv = LevelKV(tmp_path / "r")
    kv.delete(b"H:" + fx.height.to_bytes(8, "big"))
    kv.close()
    with pytest.raises(GodownError) as exc:
        ChainStore.open_path(tmp_path / "r")
    assert exc.value.code is Code.STORE_DAMAGED and f"height {fx.height}" in exc.value.message


# ---- the file container -------------------------------------------------------------------------


def test_snapshot_file_round_trip_and_damage(fx: Fixture, tmp_path: Path) -> None:
    store = ChainStore.open(MemoryKV())
    _install(fx.small, store)
    path = tmp_path / "s.snap"
    with store.freeze_state() as frozen:
        manifest = write_snapshot_file(path, frozen, CHAIN_ID, target_bytes=SMALL_CHUNKS)
    assert manifest == fx.small.manifest and not (tmp_path / "s.snap.part").exists()
    with SnapshotFile(path) as f:
        assert f.manifest == manifest and [c for _, c in f.chunks()] == list(fx.small.chunks)
    data = path.read_bytes()
    rng = random.Random(3)
    positions = list(range(0, 20)) + list(range(len(data) - 60, len(data))) + rng.sample(range(len(data)), 200)
    for pos in positions:
        bad = tmp_path / "bad.snap"
        bad.write_bytes(data[:pos] + bytes([data[pos] ^ 0x80]) + data[pos + 1 :])
        with pytest.raises(GodownError) as exc:
            with SnapshotFile(bad) as f:
                installer = Installer(ChainStore.open(MemoryKV()), f.manifest, manifest.state_root)
                for i, chunk in f.chunks():
                    installer.add(i, chunk)
                installer.finish()
        assert exc.value.code in REFUSED | {Code.WRONG_CHAIN}, (pos, exc.value)
    for cut in (0, 10, 16, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.snap").write_bytes(data[:cut])
        with pytest.raises(SnapshotError) as sexc:
            SnapshotFile(tmp_path / "cut.snap")
        assert sexc.value.code in REFUSED


# ---- random states (hypothesis) -----------------------------------------------------------------

states = st.dictionaries(st.binary(min_size=0, max_size=24), st.binary(min_size=0, max_size=300), max_size=200)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    state=states,
    target=st.integers(min_value=64, max_value=16_384),
    changes=st.one_of(st.none(), st.dictionaries(st.binary(max_size=24), st.none() | st.binary(max_size=64))),
)
@example(state={}, target=64, changes=None)
@example(state={b"": b""}, target=64, changes=None)
@example(state={b"only": b"one"}, target=1 << 20, changes=None)
@example(state={b"k": b"v"}, target=64, changes={b"k": None})
def test_export_verify_install_gives_the_same_state(
    state: dict[bytes, bytes], target: int, changes: dict[bytes, bytes | None] | None
) -> None:
    genesis = sha256(b"random genesis")
    src = ChainStore.open(MemoryKV())
    src.init_genesis(genesis, state)
    if changes is not None:  # a state at height 1, with a header
        block = next_block(src, [])
        src.commit_block(block, certify(block), changes)
    snap = take_snapshot(src, "test-chain", target_bytes=target)
    m = Manifest.decode(snap.manifest_bytes)
    assert m == snap.manifest and m.height == src.head_height and m.state_root == src.state_root
    entries: dict[bytes, bytes] = {}
    for i, chunk in enumerate(snap.chunks):
        for k, v in verify_chunk(m, i, chunk, src.state_root).entries:
            entries[k] = v
    assert entries == dict(src.state.scan())
    dst = ChainStore.open(MemoryKV())
    assert _install(snap, dst, list(reversed(range(m.chunks)))) == src.state_root
    assert dict(dst.state.scan()) == entries and dst.head_hash == src.head_hash
    assert dst.state_root_at(dst.head_height) == src.state_root
    assert dst.results_root_at(dst.head_height) == src.results_root_at(src.head_height)
    assert take_snapshot(dst, "test-chain", target_bytes=target) == snap  # deterministic
    if not entries:
        assert src.state_root == EMPTY and m.chunks == 1


def test_a_restored_genesis_state_is_a_plain_genesis_store() -> None:
    src = ChainStore.open(MemoryKV())
    src.init_genesis(sha256(b"g"), {b"a": b"1"})
    dst = ChainStore.open(MemoryKV())
    _install(take_snapshot(src, "c"), dst)
    assert (dst.head_height, dst.base_height, dst.genesis_hash, dst.state_root) == (0, 0, sha256(b"g"), src.state_root)
    dst.require_history_from_genesis()
    block = next_block(dst, [])
    dst.commit_block(block, certify(block), {b"b": b"2"})
    ChainStore.open(dst._kv, deep_blocks=None)


def test_a_bucket_too_large_for_a_chunk_is_refused_at_export() -> None:
    src = ChainStore.open(MemoryKV())
    src.init_genesis(sha256(b"g"), {b"big": bytes(MAX_CHUNK_BYTES)})
    with pytest.raises(SnapshotError) as exc:
        take_snapshot(src, "c")
    assert exc.value.code is Code.OVERSIZE


# ---- the vector in docs/snapshot.md -------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "snapshot.md"


def _vector() -> dict[str, object]:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- vector -->\s*```json\n(.*?)```", text, re.S)
    assert found, "docs/snapshot.md has no vector block"
    doc: dict[str, object] = json.loads(found.group(1))
    return doc


def vector_store(vector: dict[str, object]) -> ChainStore:
    state = {bytes.fromhex(k): bytes.fromhex(v) for k, v in vector["state"].items()}  # type: ignore[attr-defined]
    store = ChainStore.open(MemoryKV())
    store.init_genesis(bytes.fromhex(str(vector["genesis_hash"])), state)
    return store


def test_the_documented_vector(tmp_path: Path) -> None:
    v = _vector()
    store = vector_store(v)
    snap = take_snapshot(store, str(v["chain_id"]), target_bytes=int(str(v["target_bytes"])))
    assert snap.manifest.state_root.hex() == v["state_root"]
    assert snap.manifest_bytes.hex() == v["manifest"]
    assert snap.manifest.digest().hex() == v["snapshot_id"]
    assert [c.hex() for c in snap.chunks] == v["chunks"]
    m = snap.manifest
    assert [verify_chunk(m, i, c, m.state_root).position.hex() for i, c in enumerate(snap.chunks)] == v["positions"]
    with store.freeze_state() as frozen:
        write_snapshot_file(tmp_path / "v.snap", frozen, str(v["chain_id"]), target_bytes=int(str(v["target_bytes"])))
    assert sha256((tmp_path / "v.snap").read_bytes()).hex() == v["file_sha256"]
