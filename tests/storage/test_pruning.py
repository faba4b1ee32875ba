"""Pruning history (`ChainStore.prune_through`, `Ledger.prune_history`): in whatever steps
it is done, a pruned store holds exactly what a store restored from a snapshot at the
same height holds — key for key — except the blocks that certify a kept proof; it passes
the full integrity check on reopening, keeps answering state and the kept history, and
refuses to replay from genesis."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import contracts
from node.server.config import NodeConfig
from node.server.ledger import Ledger
from node.server.txindex import index_terms
from primitives import codec
from primitives.block import Block, Commit
from primitives.errors import Code, GodownError
from storage.chain import ChainStore
from storage.kv import KV, MemoryKV
from storage.snapshot import Installer, take_snapshot
from tests.storage.test_snapshot import CHAIN_ID, Built, build_chain

UNLIKE_A_RESTORED_STORE = (b"P:", b"W:", b"m:wal_floor")
"""Kept proofs and the write-ahead log: a pruned store keeps its own, a restored one
starts without."""


@dataclasses.dataclass(frozen=True)
class Executed:
    built: Built
    steps: list[tuple[Block, Commit, contracts.BlockOutcome]]  # bare blocks, as a node commits them

    def __repr__(self) -> str:  # hypothesis prints the fixture with a failing example
        return f"Executed({len(self.steps)} blocks)"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Executed:
    built = build_chain(tmp_path_factory.mktemp("pruning-chain"), cases=3)
    ledger = _fresh(built)
    steps = []
    for block, commit in built.chain:
        bare = Block(block.header, block.txs)
        outcome = ledger.execute(bare)
        ledger.commit(bare, commit, outcome)
        steps.append((bare, commit, outcome))
    return Executed(built, steps)


def _fresh(built: Built, kv: KV | None = None, keep_blocks: int = 0) -> Ledger:
    store = ChainStore.open(kv or MemoryKV())
    store.init_genesis(built.genesis.hash(), dict(contracts.genesis_state(built.genesis)))
    return Ledger(store, built.genesis, keep_blocks)


def _items(kv: KV) -> dict[bytes, bytes]:
    return {k: v for k, v in kv.iterate(b"") if not k.startswith(UNLIKE_A_RESTORED_STORE)}


def _restored_at(ex: Executed, base: int) -> MemoryKV:
    full = _fresh(ex.built)
    for block, commit, outcome in ex.steps[:base]:
        full.commit(block, commit, outcome)
    snap = take_snapshot(full.store, CHAIN_ID)
    kv = MemoryKV()
    store = ChainStore(kv)
    installer = Installer(store, snap.manifest, snap.manifest.state_root)
    for i in range(snap.manifest.chunks):
        assert installer.add(i, snap.chunks[i])
    installer.finish()
    restored = Ledger(store, ex.built.genesis)
    for block, commit, outcome in ex.steps[base:]:
        restored.commit(block, commit, outcome)
    return kv


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_pruned_in_any_steps_is_the_store_a_snapshot_restores(executed: Executed, data: st.DataObject) -> None:
    head = len(executed.steps)
    base = data.draw(st.integers(1, head - 1), label="base")
    kv = MemoryKV()
    ledger = _fresh(executed.built, kv)
    for block, commit, outcome in executed.steps:
        ledger.commit(block, commit, outcome)
    while ledger.store.base_height < base:  # in steps of any size, as a node (2 a commit) or a tool would
        step = data.draw(st.integers(1, base - ledger.store.base_height), label="step")
        ledger.keep_blocks = head - base
        assert ledger.prune_history(most=step) == step
    assert ledger.prune_history() == 0  # nothing beyond the window is left
    assert _items(kv) == _items(_restored_at(executed, base))
    assert ledger.store.state_root == executed.built.roots[head]


def test_a_node_prunes_as_it_commits_and_reopens_checked(executed: Executed, tmp_path: Path) -> None:
    head, keep = len(executed.steps), 5
    ledger = Ledger.open(tmp_path, executed.built.genesis, keep_blocks=keep)
    kept_at = 3  # a proof kept at height 3 (as a validator-set change is): block 4 certifies it
    try:
        for block, commit, outcome in executed.steps:
            ledger.commit(block, commit, outcome)
            if block.height == kept_at:
                ledger.store.keep_proof(contracts.SCHEDULED_SET_KEY)
            assert ledger.store.base_height == max(0, block.height - keep)  # one height a commit keeps up
    finally:
        ledger.close()
    store = ChainStore.open_path(tmp_path / "chain", deep_blocks=None)  # every height decoded and checked
    try:
        base = head - keep
        assert store.base_height == base and store.state_root == executed.built.roots[head]
        gone = [h for h in range(1, base + 1) if store.get_block(h) is not None]
        assert gone == [kept_at + 1]  # the block certifying the kept proof stays, whole
        assert store.get_commit(kept_at + 1) is not None and store.get_header(kept_at + 1) is not None
        assert [p.height for p in store.kept_proofs(contracts.SCHEDULED_SET_KEY)] == [kept_at]
        first, last = executed.steps[0][0], executed.steps[-1][0]
        assert store.get_tx(first.txs[0].tx_id) is None and store.get_events(first.height) is None
        found = store.get_signed_tx(last.txs[0].tx_id)
        assert found is not None and found[1].height == last.height
        for term in index_terms(first.txs[0]):
            assert all(h > base or h == kept_at + 1 for h, _ in store.term_entries(term))
        with pytest.raises(GodownError) as exc:
            store.require_history_from_genesis()
        assert exc.value.code is Code.BAD_CONFIG and f"starts at height {base}" in exc.value.message
    finally:
        store.close()


def test_prune_through_refuses_heights_outside_the_history(executed: Executed) -> None:
    ledger = _fresh(executed.built)
    for block, commit, outcome in executed.steps[:6]:
        ledger.commit(block, commit, outcome)
    store = ledger.store
    assert store.prune_through(2, index_terms) == 2
    for height in (0, 2, 6, 7):  # at or below the base, the head itself, beyond it
        with pytest.raises(GodownError) as exc:
            store.prune_through(height, index_terms)
        assert exc.value.code is Code.BAD_CONFIG
    assert store.base_height == 2 and store.head_height == 6


@pytest.mark.parametrize(
    ("history", "snapshots", "ok"),
    [({}, {}, True), ({"keep_blocks": 0}, {}, True), ({"keep_blocks": 3000}, {}, True),
     ({"keep_blocks": 2999}, {}, False), ({"keep_blocks": 100}, {"every": 0}, True),
     ({"keep_blocks": 99}, {"every": 0}, False), ({"keep_blocks": 300}, {"every": 100}, True)],
)  # fmt: skip
def test_the_pruning_window_must_cover_the_snapshots_peers_sync_from(
    tmp_path: Path, history: dict[str, int], snapshots: dict[str, int], ok: bool
) -> None:
    doc = {"name": "n", "key_file": "k", "genesis": "g", "data_dir": "d", "history": history, "snapshots": snapshots}
    if ok:
        assert NodeConfig.from_json(doc, tmp_path / "node.json").keep_blocks == history.get("keep_blocks", 0)
    else:
        with pytest.raises(GodownError) as exc:
            NodeConfig.from_json(doc, tmp_path / "node.json")
        assert exc.value.code is Code.BAD_CONFIG and "keep_blocks" in exc.value.message


def test_an_old_block_that_no_longer_reads_stops_pruning_not_the_node(
    executed: Executed, caplog: pytest.LogCaptureFixture
) -> None:
    kv = MemoryKV()
    ledger = _fresh(executed.built, kv, keep_blocks=3)
    first, *_ = executed.steps
    ledger.commit(*first)
    key = b"B:" + (1).to_bytes(8, "big")
    doc = codec.decode(kv.get(key) or b"")
    doc["txs"] = [b"\xc1"] * len(doc["txs"])  # the block still parses, its transactions do not
    kv.put(key, codec.encode(doc))
    with caplog.at_level("ERROR", logger="godown.ledger"):
        for block, commit, outcome in executed.steps[1:6]:
            ledger.commit(block, commit, outcome)  # commits go on
    assert ledger.store.head_height == 6 and ledger.store.base_height == 0 and ledger.keep_blocks == 0
    assert any(r.message == "pruning stopped" for r in caplog.records)
