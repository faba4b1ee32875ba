"""The auditor's replay (node/tools/audit.py) on a small real chain: it passes on the chain a
`Ledger` wrote, and names the first tampered height for each kind of tampering, both
from a LevelDB data directory and from blocks handed over in memory."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import plyvel  # type: ignore[import-untyped]
import pytest

from node.client.rpc import RpcClient
from node.load.workload import financing_workload
from node.server.ledger import Ledger
from node.tools.audit import AuditReport, print_report, replay, replay_from_data_dir, replay_from_rpc
from node.tools.demo import run_step
from node.tools.demo_steps import demo_steps
from node.tools.participants import Participants, participants_of
from primitives.block import Block, Commit, commit_vote_bytes, txs_root
from primitives.genesis import Genesis
from primitives.keys import KeyPair
from primitives.tx import SignedTx
from storage.chain import ChainStore
from tests.node.conftest import NodeThread, make_testnet, node_config

CHAIN_ID = "audit-test"
BLOCK_TXS = 10
BAD_HEIGHT = 4

Chain = list[tuple[Block, Commit]]


@dataclasses.dataclass(frozen=True)
class Built:
    root: Path  # holds genesis.json and data/
    genesis: Genesis
    validator: KeyPair
    chain: Chain  # as stored: blocks with their recorded results, and certificates
    state_root: str


def _certify(validator: KeyPair, block: Block) -> Commit:
    h = block.height
    sig = validator.sign(commit_vote_bytes(CHAIN_ID, h, 0, block.hash()))
    return Commit(CHAIN_ID, h, 0, block.hash(), ((validator.id, sig),))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("audit-chain")
    p = Participants.generate(seed=b"audit-test")
    validator = p.node_key(p.warehouse)
    genesis = p.genesis(CHAIN_ID, 1_000_000, validating=1)
    genesis.save(root / "genesis.json")
    ledger = Ledger.open(root / "data", genesis)
    height = 0
    for phase in financing_workload(p, CHAIN_ID, cases=3, reports_per_case=6):
        for i in range(0, len(phase), BLOCK_TXS):
            height += 1
            block = ledger.build_block(phase[i : i + BLOCK_TXS], 1_000_000 + height * 100, 0, validator.id)
            outcome = ledger.execute(block)
            ledger.commit(block, _certify(validator, block), outcome)
    state_root = ledger.store.state_root.hex()
    ledger.close()
    store = ChainStore.open_path(root / "data" / "chain")
    try:
        chain = []
        for h in range(1, store.head_height + 1):
            block, commit = store.get_block(h), store.get_commit(h)
            assert block is not None and commit is not None
            chain.append((block, commit))
    finally:
        store.close()
    assert len(chain) > BAD_HEIGHT + 2
    return Built(root, genesis, validator, chain, state_root)


# ---- tampering: each returns the chain with block BAD_HEIGHT changed ------------------------


def _swap(chain: Chain, height: int, block: Block, commit: Commit) -> Chain:
    out = list(chain)
    out[height - 1] = (block, commit)
    return out


def tamper_result(b: Built) -> Chain:
    block, commit = b.chain[BAD_HEIGHT - 1]
    results = list(block.results)
    results[0] = "bad_nonce" if results[0] == "ok" else "ok"
    return _swap(b.chain, BAD_HEIGHT, block.with_results(results), commit)


def tamper_tx(b: Built) -> Chain:
    block, commit = b.chain[BAD_HEIGHT - 1]
    other = b.chain[BAD_HEIGHT][0].txs[0]  # a genuine transaction, from the next block
    txs = (other,) + block.txs[1:]
    return _swap(b.chain, BAD_HEIGHT, Block(block.header, txs, block.results), commit)


def tamper_header_root(b: Built) -> Chain:
    block, commit = b.chain[BAD_HEIGHT - 1]
    header = dataclasses.replace(block.header, state_root=bytes(32))
    return _swap(b.chain, BAD_HEIGHT, Block(header, block.txs, block.results), commit)


def tamper_certificate(b: Built) -> Chain:
    block, commit = b.chain[BAD_HEIGHT - 1]
    ((vid, sig),) = commit.votes
    forged = dataclasses.replace(commit, votes=((vid, sig[:-1] + bytes([sig[-1] ^ 1])),))
    return _swap(b.chain, BAD_HEIGHT, block, forged)


TAMPERINGS: dict[str, tuple[Callable[[Built], Chain], str]] = {
    "result code": (tamper_result, "different results"),
    "transaction": (tamper_tx, "txs_root"),
    "header state root": (tamper_header_root, "state_root"),
    "certificate signature": (tamper_certificate, "bad_certificate"),
}


def _assert_bad(report: AuditReport, height: int, needle: str) -> None:
    assert report.ok is False
    assert report.first_bad_height == height, report
    assert report.problem is not None and needle in report.problem, report.problem
    assert report.blocks == height - 1


# ---- in memory --------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_replay_in_memory_passes_on_the_real_chain(built: Built, workers: int) -> None:
    report = replay(built.genesis, iter(built.chain), "memory", workers=workers)
    assert report.ok, report.problem
    assert report.blocks == len(built.chain)
    assert report.txs == sum(len(b.txs) for b, _ in built.chain)
    assert report.signatures_checked == report.txs and report.certificates_checked == report.blocks
    assert report.state_root == built.state_root
    assert sum(report.results.values()) == report.txs and report.results.get("ok") == report.txs
    assert report.first_bad_height is None and report.problem is None


@pytest.mark.parametrize("kind", sorted(TAMPERINGS))
def test_replay_in_memory_names_the_tampered_height(built: Built, kind: str) -> None:
    tamper, needle = TAMPERINGS[kind]
    _assert_bad(replay(built.genesis, iter(tamper(built)), "memory", workers=2), BAD_HEIGHT, needle)


def test_a_forged_signature_in_a_recertified_block_is_found(built: Built) -> None:
    """A block whose txs_root and certificate are redone around a transaction with a
    forged signature: only checking the signature (in a worker) can tell."""
    block, _ = built.chain[BAD_HEIGHT - 1]
    stx = block.txs[-1]
    stranger = KeyPair.generate("stranger", "bank")
    forged = SignedTx(stx.tx, stx.tx_bytes, stranger.sign(stx.tx_bytes))  # right bytes, wrong signer
    assert forged.sig != stx.sig
    txs = block.txs[:-1] + (forged,)
    header = dataclasses.replace(block.header, txs_root=txs_root(txs))
    reblock = Block(header, txs, block.results)
    chain = _swap(built.chain, BAD_HEIGHT, reblock, _certify(built.validator, reblock))
    for workers in (1, 2):
        report = replay(built.genesis, iter(chain), "memory", workers=workers)
        _assert_bad(report, BAD_HEIGHT, "different results (first at tx %d)" % (len(txs) - 1))


def test_a_block_out_of_order_is_refused(built: Built) -> None:
    chain = list(built.chain)
    chain[1], chain[2] = chain[2], chain[1]
    report = replay(built.genesis, iter(chain), "memory", workers=2)
    assert report.ok is False and report.first_bad_height == 3 and "expected height 2" in (report.problem or "")


def test_another_genesis_fails_at_block_one(built: Built) -> None:
    other = dataclasses.replace(built.genesis, genesis_time_ms=built.genesis.genesis_time_ms + 1)
    report = replay(other, iter(built.chain), "memory", workers=1)
    assert report.ok is False and report.first_bad_height == 1 and "prev_hash" in (report.problem or "")


# ---- from a LevelDB data directory -----------------------------------------------------------


def _copy_with(built: Built, dest: Path, chain: Chain) -> Path:
    """A copy of the data dir whose stored block and certificate at BAD_HEIGHT are the
    tampered ones (the separate header record is left alone, so the store opens)."""
    shutil.copytree(built.root / "data", dest / "data")
    shutil.copy(built.root / "genesis.json", dest / "genesis.json")
    block, commit = chain[BAD_HEIGHT - 1]
    db = plyvel.DB(str(dest / "data" / "chain"))
    try:
        hb = BAD_HEIGHT.to_bytes(8, "big")
        db.put(b"B:" + hb, block.encode())
        db.put(b"C:" + hb, commit.encode())
    finally:
        db.close()
    return dest / "data"


def test_replay_from_data_dir_passes_and_prints(built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    report = replay_from_data_dir(built.root / "data", workers=2)  # genesis.json found beside data/
    assert report.ok, report.problem
    assert report.blocks == len(built.chain) and report.state_root == built.state_root
    print_report(report, as_json=True)
    assert '"ok": true' in capsys.readouterr().out
    print_report(report, as_json=False)
    assert "everything verifies" in capsys.readouterr().out


@pytest.mark.parametrize("kind", sorted(TAMPERINGS))
def test_replay_from_data_dir_names_the_tampered_height(built: Built, tmp_path: Path, kind: str) -> None:
    tamper, needle = TAMPERINGS[kind]
    data = _copy_with(built, tmp_path, tamper(built))
    _assert_bad(replay_from_data_dir(data, workers=2), BAD_HEIGHT, needle)


def test_unreadable_block_in_the_store_is_named(built: Built, tmp_path: Path) -> None:
    data = _copy_with(built, tmp_path, built.chain)
    db = plyvel.DB(str(data / "chain"))
    try:
        db.put(b"B:" + BAD_HEIGHT.to_bytes(8, "big"), b"\xc1not msgpack")
    finally:
        db.close()
    report = replay_from_data_dir(data, workers=2)
    assert report.ok is False and report.first_bad_height == BAD_HEIGHT and report.blocks == BAD_HEIGHT - 1


# ---- over the RPC of a running node ----------------------------------------------------------


def test_replay_from_rpc_of_a_running_node(tmp_path: Path) -> None:
    net = make_testnet(tmp_path / "net")
    node = NodeThread(node_config(net))
    try:
        node.start()
        client = RpcClient(node.url)
        p = participants_of(net)
        for step in demo_steps(p, net.chain_id, time.time_ns() // 1_000_000)[:3]:
            assert run_step(client, step)[0] == step.expected
        head = int(client.status()["height"])
        report = replay_from_rpc(node.url, genesis_path=str(net.dir / "genesis.json"), workers=2)
    finally:
        node.stop()
    assert report.ok, report.problem
    assert report.blocks >= head >= 1 and report.txs >= 3 and report.first_bad_height is None
