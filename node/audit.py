"""`godown audit replay`: rebuild the chain from genesis and check everything.

For every height: the block links to its parent, its txs_root matches, its
commit certificate carries a quorum of genesis validators' signatures, every
transaction signature verifies, re-executing it gives the recorded result codes,
and the next header's state_root and results_root are the ones replay computed.
Signatures are checked by a pool of worker processes, a chunk ahead of
execution, so both cores work; execution itself is sequential by nature.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import contracts
from contracts.members import sender_identity
from contracts.state import Overlay
from primitives.block import Block, Commit
from primitives.errors import Code, GodownError
from primitives.genesis import Genesis
from primitives.keys import verify_signature
from storage.chain import ChainStore

from node.client import RpcClient
from node.ledger import Ledger

CHUNK_BLOCKS = 8


@dataclass
class AuditReport:
    source: str
    chain_id: str
    genesis_hash: str
    ok: bool = True
    blocks: int = 0
    txs: int = 0
    signatures_checked: int = 0
    certificates_checked: int = 0
    rejected_txs: int = 0
    first_bad_height: int | None = None
    problem: str | None = None
    state_root: str = ""
    seconds: float = 0.0
    tx_per_s: float = 0.0
    results: dict[str, int] = field(default_factory=dict)


def _verify_chunk(items: list[tuple[bytes, bytes, bytes]]) -> list[bool]:
    return [verify_signature(pub, msg, sig) for msg, sig, pub in items]


def sender_key(state: contracts.StateReader, sender: str) -> bytes | None:
    """The signing key a sender is registered with at this point of the chain."""
    found = sender_identity(Overlay(state), sender)
    return None if found is None else found[1]


class _Verifier:
    """Checks signatures in worker processes, one chunk of blocks ahead."""

    def __init__(self, workers: int) -> None:
        self.pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None

    def submit(self, ledger: Ledger, blocks: list[tuple[Block, Commit]]) -> tuple[list[tuple[int, int]], list[Future[list[bool]]]]:
        refs: list[tuple[int, int]] = []
        items: list[tuple[bytes, bytes, bytes]] = []
        for bi, (block, _) in enumerate(blocks):
            for ti, stx in enumerate(block.txs):
                pub = sender_key(ledger.state, stx.tx.sender)
                if pub is not None:  # senders registered inside this chunk are checked during execution
                    refs.append((bi, ti))
                    items.append((stx.tx_bytes, stx.sig, pub))
        if self.pool is None or not items:
            return refs, []
        step = max(1, len(items) // 8 + 1)
        futs = [self.pool.submit(_verify_chunk, items[i : i + step]) for i in range(0, len(items), step)]
        return refs, futs

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def replay(genesis: Genesis, blocks: Iterator[tuple[Block, Commit]], source: str, workers: int = 2) -> AuditReport:
    """Replay `blocks` (in height order from 1) on a fresh in-memory ledger."""
    report = AuditReport(source, genesis.chain_id, genesis.hash().hex())
    ledger = Ledger.open(None, genesis)
    verifier = _Verifier(workers)
    started = time.perf_counter()
    height = 0
    try:
        pending: list[tuple[Block, Commit]] = []
        exhausted = False
        it = iter(blocks)
        while not exhausted:
            pending = []
            for _ in range(CHUNK_BLOCKS):
                nxt = next(it, None)
                if nxt is None:
                    exhausted = True
                    break
                pending.append(nxt)
            refs, futs = verifier.submit(ledger, pending)
            if futs:
                flags = [ok for fut in futs for ok in fut.result()]
                for (bi, ti), ok in zip(refs, flags):
                    if ok:
                        stx = pending[bi][0].txs[ti]
                        pub = sender_key(ledger.state, stx.tx.sender)
                        if pub is not None:
                            ledger.signatures.mark(stx, pub)
            for block, commit in pending:
                height = block.height
                _replay_one(ledger, block, commit, report)
    except GodownError as exc:
        report.ok = False
        report.first_bad_height = height
        report.problem = f"{exc.code.value}: {exc.message}"
    finally:
        verifier.close()
    report.seconds = round(time.perf_counter() - started, 3)
    report.tx_per_s = round(report.txs / report.seconds, 1) if report.seconds else 0.0
    report.state_root = ledger.store.state_root.hex()
    ledger.close()
    return report


def _replay_one(ledger: Ledger, block: Block, commit: Commit, report: AuditReport) -> None:
    if block.height != ledger.height + 1:
        raise GodownError(Code.BAD_BLOCK, f"expected height {ledger.height + 1}, found {block.height}")
    ledger.check_proposal(block)
    ledger.check_commit(block, commit)
    report.certificates_checked += 1
    outcome = ledger.execute(block)
    if tuple(outcome.results) != tuple(block.results):
        index = next(i for i, (a, b) in enumerate(zip(outcome.results, block.results)) if a != b) if len(
            outcome.results) == len(block.results) else -1
        raise GodownError(Code.BAD_BLOCK, f"re-execution gives different results (first at tx {index})")
    for code in outcome.results:
        report.results[code] = report.results.get(code, 0) + 1
    ledger.commit(block, commit, outcome)
    report.blocks += 1
    report.txs += len(block.txs)
    report.signatures_checked += len(block.txs)
    report.rejected_txs += sum(1 for c in outcome.results if c != "ok")


def _find_genesis(data_dir: Path, genesis_path: str | None) -> Genesis:
    if genesis_path:
        return Genesis.load(genesis_path)
    for candidate in (data_dir / "genesis.json", data_dir.parent / "genesis.json", data_dir.parent.parent / "genesis.json"):
        if candidate.exists():
            return Genesis.load(candidate)
    raise GodownError(Code.BAD_CONFIG, f"no genesis.json near {data_dir}; pass --genesis")


def replay_from_data_dir(data_dir: str | Path, genesis_path: str | None = None, workers: int = 2) -> AuditReport:
    """Audit a stopped node's data directory (the node must not be running: LevelDB is locked)."""
    d = Path(data_dir).resolve()
    genesis = _find_genesis(d, genesis_path)
    store = ChainStore.open_path(d / "chain")
    try:
        head = store.head_height

        def blocks() -> Iterator[tuple[Block, Commit]]:
            for h in range(1, head + 1):
                block, commit = store.get_block(h), store.get_commit(h)
                if block is None or commit is None:
                    raise GodownError(Code.STORE_DAMAGED, f"height {h} is missing from the store")
                yield block, commit

        report = replay(genesis, blocks(), str(d), workers)
        if report.ok and report.state_root != store.state_root.hex():
            report.ok = False
            report.first_bad_height = head
            report.problem = "the store's head state root differs from the replayed one"
        return report
    finally:
        store.close()


def replay_from_rpc(url: str, token: str | None = None, genesis_path: str | None = None, workers: int = 2) -> AuditReport:
    """Audit a running node over its RPC, pinned to a genesis file if one is given."""
    client = RpcClient(url, token)
    genesis = Genesis.load(genesis_path) if genesis_path else Genesis.from_json(client.get("/v1/genesis"))
    head = int(client.status()["height"])

    def blocks() -> Iterator[tuple[Block, Commit]]:
        for h in range(1, head + 1):
            doc = client.block(h)
            yield Block.decode(bytes.fromhex(doc["raw"])), Commit.decode(bytes.fromhex(doc["commit_raw"]))

    report = replay(genesis, blocks(), url, workers)
    if report.ok and head >= 1:
        nxt = client.block(head + 1) if int(client.status()["height"]) > head else None
        if nxt is not None and nxt["header"]["state_root"] != report.state_root:
            report.ok = False
            report.first_bad_height = head + 1
            report.problem = "the node's next header certifies a different state root"
    return report


def print_report(report: AuditReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(report), sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"godown audit replay — {report.source}")
    table.add_column("check")
    table.add_column("result", justify="right")
    rows = [
        ("chain id", report.chain_id),
        ("genesis hash", report.genesis_hash[:16] + "…"),
        ("blocks replayed", str(report.blocks)),
        ("transactions re-executed", str(report.txs)),
        ("signatures verified", str(report.signatures_checked)),
        ("commit certificates verified", str(report.certificates_checked)),
        ("rejected transactions (recorded)", str(report.rejected_txs)),
        ("final state root", report.state_root[:16] + "…"),
        ("replay speed", f"{report.tx_per_s:,.0f} tx/s in {report.seconds:.2f} s"),
        ("verdict", "[green]everything verifies[/]" if report.ok
         else f"[red]MISMATCH at height {report.first_bad_height}: {report.problem}[/]"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)
