"""The node-local transaction index (X: entries written in each block's batch): what a
transaction is found by, newest-first walks with exact `before` bounds (hypothesis), that
it survives a restart of a real node, and that a node restored from a snapshot, or one
that pruned its history, answers `/v1/txs` and `/v1/blocks` for exactly the heights it
holds."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

import contracts
from node.client.rpc import RpcClient
from node.server.core import NodeCore
from node.server.ledger import Ledger
from node.server.rpc import make_app
from node.server.txindex import id_term, index_terms, type_term
from node.tools.demo import run_step
from node.tools.demo_steps import demo_steps
from node.tools.participants import Participants, participants_of
from primitives.block import Block, Commit
from storage.chain import ChainStore
from storage.kv import MemoryKV
from storage.snapshot import Installer, take_snapshot
from tests.node.conftest import NodeThread, free_port, http, make_testnet, node_config
from tests.storage.chainkit import certify, next_block, signed_tx
from tests.storage.test_snapshot import CHAIN_ID, build_chain

pytestmark = pytest.mark.timeout(300)


def test_a_transaction_is_found_by_its_sender_ids_and_type(tmp_path: Path) -> None:
    p = participants_of(make_testnet(tmp_path / "net"))
    step = next(s for s in demo_steps(p, "c", 1) if any(t.tx.type == "case.apply" for t in s.txs))
    apply = next(t for t in step.txs if t.tx.type == "case.apply")
    b = apply.tx.body
    want = [id_term(x) for x in (p.borrower.id, b["case"], b["lot"], b["bank"], b["insurer"], b["guarantor"])]
    assert index_terms(apply) == [*want, type_term("case.apply")]
    report = next(t for s in demo_steps(p, "c", 1) for t in s.txs if t.tx.type == "device.report" and t.tx.body["lot"])
    assert index_terms(report) == [
        id_term(report.tx.sender),
        id_term(report.tx.body["lot"]),
        type_term("device.report"),
    ]
    heartbeat = next(t for s in demo_steps(p, "c", 1) for t in s.txs if t.tx.type == "device.report")
    assert id_term("") not in index_terms(heartbeat)  # an empty lot names nothing


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 4), min_size=1, max_size=12),
    picks=st.data(),
)
def test_term_walks_are_newest_first_and_bounds_are_exact(sizes: list[int], picks: st.DataObject) -> None:
    """Blocks of `sizes` transactions, each naming term A or B at random: a walk of A
    yields exactly A's positions, newest first, and `before` cuts strictly below."""
    store = ChainStore.open(MemoryKV())
    store.init_genesis(bytes(32), {})
    positions: dict[bytes, list[tuple[int, int]]] = {b"iA": [], b"iB": []}
    nonce = 0
    for h, n in enumerate(sizes, start=1):
        block = next_block(store, [signed_tx(nonce + k) for k in range(n)])
        nonce += n
        terms = [[picks.draw(st.sampled_from([b"iA", b"iB"]))] for _ in range(n)]
        store.commit_block(block, certify(block), {}, None, terms)
        for i, (t,) in enumerate(terms):
            positions[t].append((h, i))
    for term, where in positions.items():
        newest_first = list(reversed(where))
        assert list(store.term_entries(term)) == newest_first
        for cut in newest_first + [(len(sizes) + 1, 0), (1, 0)]:
            assert list(store.term_entries(term, cut)) == [x for x in newest_first if x < cut]
    assert list(store.term_entries(b"iC")) == []


def test_the_index_survives_a_restart(tmp_path: Path) -> None:
    net = make_testnet(tmp_path / "net")
    p = participants_of(net)
    node = NodeThread(node_config(net))
    try:
        node.start()
        client = RpcClient(node.url)
        for step in demo_steps(p, net.chain_id, int(time.time() * 1000))[:6]:
            run_step(client, step)
        before = [http(node.url, "GET", q).doc for q in _QUERIES(p.bank.id)]
    finally:
        node.stop()
    again = NodeThread(node_config(net))
    try:
        again.start()
        after = [http(again.url, "GET", q).doc for q in _QUERIES(p.bank.id)]
    finally:
        again.stop()
    assert after == before and all(d["txs"] for d in before[:2])


def _QUERIES(bank: str) -> list[str]:  # noqa: N802
    return [f"/v1/txs?party={bank}&limit=500", "/v1/txs?type=device.accept&limit=500", "/v1/txs?lot=L1&limit=500"]


class LoopThread:
    """An asyncio loop in a thread, serving one app (a node core without its engine)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def serve(self, app: web.Application, port: int) -> web.AppRunner:
        async def start() -> web.AppRunner:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            return runner

        return asyncio.run_coroutine_threadsafe(start(), self.loop).result(30)

    def stop(self, runner: web.AppRunner) -> None:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def _restored(tmp_path: Path) -> tuple[Ledger, int, list[tuple[Block, Commit]]]:
    """The financing workload's chain; a store restored from a snapshot at its middle
    height, which then commits the rest: (its ledger, the base height, the chain)."""
    (tmp_path / "built").mkdir()
    built = build_chain(tmp_path / "built", cases=3)
    base = len(built.chain) // 2
    full = Ledger(ChainStore.open(MemoryKV()), built.genesis)
    full.store.init_genesis(built.genesis.hash(), dict(contracts.genesis_state(built.genesis)))
    for block, commit in built.chain[:base]:
        full.commit(block, commit, full.execute(block))
    snap = take_snapshot(full.store, CHAIN_ID)
    full.close()
    store = ChainStore.open_path(tmp_path / "restored")
    installer = Installer(store, snap.manifest, snap.manifest.state_root)
    for i in range(snap.manifest.chunks):
        assert installer.add(i, snap.chunks[i])
    installer.finish()
    ledger = Ledger(store, built.genesis)
    for block, commit in built.chain[base:]:
        ledger.commit(Block(block.header, block.txs), commit, ledger.execute(Block(block.header, block.txs)))
    assert store.base_height == base and store.head_height == len(built.chain)
    return ledger, base, built.chain


def _pruned(tmp_path: Path) -> tuple[Ledger, int, list[tuple[Block, Commit]]]:
    """The same chain committed whole, then pruned to keep the heights after the middle."""
    (tmp_path / "built").mkdir()
    built = build_chain(tmp_path / "built", cases=3)
    base = len(built.chain) // 2
    ledger = Ledger.open(built.data_dir, built.genesis, keep_blocks=len(built.chain) - base)
    while ledger.prune_history():
        pass
    assert ledger.store.base_height == base and ledger.store.head_height == len(built.chain)
    return ledger, base, built.chain


@pytest.mark.parametrize("start", [_restored, _pruned], ids=["restored", "pruned"])
def test_a_node_restored_from_a_snapshot_or_pruned_answers_for_the_heights_it_holds(
    tmp_path: Path, start: Callable[[Path], tuple[Ledger, int, list[tuple[Block, Commit]]]]
) -> None:
    ledger, base, chain = start(tmp_path)
    head = len(chain)
    seeded = Participants.generate(seed=b"snapshot-test")  # build_chain's participants
    core = NodeCore("restored", seeded.node_key(seeded.warehouse), ledger.genesis, ledger)
    loop, port = LoopThread(), free_port()
    runner = loop.serve(make_app(core), port)
    url = f"http://127.0.0.1:{port}"
    try:
        txs = http(url, "GET", f"/v1/txs?limit=500&before={head + 1}").doc
        assert {t["height"] for t in txs["txs"]} == set(range(base + 1, head + 1)) and txs["next"] is None
        assert len(txs["txs"]) == sum(len(b.txs) for b, _ in chain[base:])
        sender = chain[-1][0].txs[0].tx.sender
        want = [
            (b.height, i)
            for b, _ in reversed(chain)
            for i in range(len(b.txs) - 1, -1, -1)
            if b.height > base and id_term(sender) in index_terms(b.txs[i])
        ]
        by_sender = http(url, "GET", f"/v1/txs?party={sender}&limit=500").doc["txs"]
        assert [(t["height"], t["index"]) for t in by_sender] == want and want
        early = [b.txs[0].tx_id_hex for b, _ in chain[:base]]
        assert all(http(url, "GET", f"/v1/txs/{x}").code == "not_found" for x in early[:3])
        blocks = http(url, "GET", "/v1/blocks?limit=500").doc
        assert [b["height"] for b in blocks["blocks"]] == list(range(head, base, -1)) and blocks["next"] is None
        assert http(url, "GET", f"/v1/blocks?before={base + 1}").doc == {"blocks": [], "next": None}
        for h in (1, base):
            gone = http(url, "GET", f"/v1/blocks/{h}")
            assert (gone.status, gone.code) == (410, "history_unavailable")
        assert http(url, "GET", f"/v1/blocks/{base + 1}").doc["height"] == base + 1
        audit = http(url, "POST", "/v1/audit", b"")
        assert (audit.status, audit.code) == (422, "bad_config")  # no blocks below the base to replay
    finally:
        loop.stop(runner)
        ledger.close()


def test_blocks_stored_before_the_index_existed_are_indexed_at_open(tmp_path: Path) -> None:
    (tmp_path / "built").mkdir()
    built = build_chain(tmp_path / "built", cases=2)
    indexed = ChainStore.open_path(built.data_dir / "chain")  # committed by a Ledger: indexed as it went
    try:
        terms = sorted({t for b, _ in built.chain for x in b.txs for t in index_terms(x)})
        want = {t: list(indexed.term_entries(t)) for t in terms}
    finally:
        indexed.close()
    (tmp_path / "old").mkdir()
    old = ChainStore.open_path(tmp_path / "old" / "chain")
    try:  # an older node's store: the same blocks, no entity index
        old.init_genesis(built.genesis.hash(), dict(contracts.genesis_state(built.genesis)))
        replay = Ledger(old, built.genesis)
        for block, commit in built.chain:
            outcome = replay.execute(Block(block.header, block.txs))
            old.commit_block(block, commit, outcome.changes)
        assert all(list(old.term_entries(t)) == [] for t in terms)
    finally:
        old.close()
    ledger = Ledger.open(tmp_path / "old", built.genesis)
    try:
        for block, _ in built.chain:  # the cheap read of stored transactions agrees with the full decode
            parts = ledger.store.block_parts(block.height)
            assert parts is not None and parts.time_ms == block.header.time_ms
            assert [parts.tx(i) for i in range(len(parts.txs))] == list(block.txs)
            assert tuple(parts.results) == block.results
        assert ledger.store.block_parts(len(built.chain) + 1) is None
        assert ledger.store.terms_complete
        assert {t: list(ledger.store.term_entries(t)) for t in terms} == want
        assert all(want[t] for t in terms)
    finally:
        ledger.close()
    again = Ledger.open(tmp_path / "old", built.genesis)  # once: the marker is kept
    try:
        assert again.store.terms_complete and {t: list(again.store.term_entries(t)) for t in terms} == want
    finally:
        again.close()


def test_a_lot_history_without_its_receipt_is_computed_back_from_the_current_quantity(tmp_path: Path) -> None:
    """A node restored after a lot's receipt holds only its later changes: the points are
    then anchored on the lot's current quantity, and agree with the full history."""
    from node.server.rpc_history import Change, _points

    p = participants_of(make_testnet(tmp_path / "net"))
    txs = [t for s in demo_steps(p, "c", 1) for t in s.txs if t.tx.body.get("lot") == "L1"]
    moves = [t for t in txs if t.tx.type == "lot.receive" or t.tx.body.get("kind") == "outbound"]
    changes = [Change(t, h, 1000 + h, int(t.tx.body.get("quantity", 0))) for h, t in enumerate(moves, start=1)]
    full = _points(changes, 0)
    assert [x["quantity"] for x in full] == [1000, 990, 590, 0]
    assert _points(changes[1:], 0) == full[1:]
    assert _points(changes[2:], 0) == full[2:] and _points([], 7) == []
