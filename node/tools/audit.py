"""`godown audit replay`: rebuild the chain from genesis and check everything.

For every height: the block links to its parent, its txs_root matches, its
commit certificate carries a quorum of the signatures of the validators governing its height, every
transaction signature verifies, re-executing it gives the recorded result codes,
and the next header's state_root and results_root are the ones replay computed.

Why it is shaped this way: execution is sequential by nature, so the main process
only decodes, checks headers and certificates, executes and updates a lean state
(the authenticated state tree over memory: no block bodies, certificates or tx
index, which a replay never reads back). Signatures, the other half of the cost,
are queued to worker processes several blocks ahead of execution, so both cores
work at once; a signature task no worker has started when its block comes up is
taken back and checked by the main process instead of waited for.
"""

from __future__ import annotations

import gc
import json
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import contracts
from node.client.rpc import RpcClient
from primitives.block import Block, Commit, Head, check_successor, head_settled, results_root
from primitives.errors import Code, GodownError
from primitives.genesis import Genesis
from primitives.hashing import EMPTY_ROOT
from primitives.keys import verify_signature
from primitives.tx import SignedTx
from storage.chain import ChainStore
from storage.kv import Batch, MemoryKV
from storage.state_tree import StateTree

LOOKAHEAD_TXS = 3_000
"""Signatures queued to the workers ahead of the block executing (whole blocks, at
least one and at most LOOKAHEAD_BLOCKS of them): enough that the workers never idle."""
LOOKAHEAD_BLOCKS = 64
TASKS_PER_BLOCK = 4
"""Signature tasks per block: small enough that the main process can take back the
ones no worker has started when it would otherwise wait."""

GC_EVERY_TXS = 500_000
"""The cyclic collector is paused during a replay (it would walk the whole state tree
every few thousand allocations, ~10% of the main process) and run once per this many
transactions instead, so memory stays bounded should anything make cycles. Each run
walks every live object — the state tree, and the 50,000 transactions of the decode
cache (primitives/tx.py), ~400k objects, ~0.24 s — and on the financing workload
frees nothing (measured), so it runs rarely: ~0.5 µs per transaction instead of ~5."""

SigItem = tuple[bytes, bytes, bytes]  # (tx bytes, signature, sender's signing key)


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


def _verify_items(items: list[SigItem]) -> list[bool]:
    return [verify_signature(pub, msg, sig) for msg, sig, pub in items]


class _ReplayState:
    """Only what a replay needs: the authenticated state tree (over memory), the head's
    hash, time and results root. No block bodies, certificates or tx index are kept."""

    def __init__(self, genesis: Genesis) -> None:
        self.kv = MemoryKV()
        self.tree = StateTree(self.kv, b"S:")
        self._apply(contracts.genesis_state(genesis))
        self.height = 0
        self.head_hash = genesis.hash()
        self.head_time_ms = genesis.genesis_time_ms
        self.results_root = EMPTY_ROOT
        self.settled = True
        self.empty_block_after_ms = genesis.consensus.empty_block_after_ms
        self._keys: dict[str, bytes | None] = {}

    def _apply(self, changes: Mapping[bytes, bytes | None]) -> None:
        batch = Batch()
        self.tree.apply(changes, batch)
        self.kv.write(batch, sync=False)

    @property
    def state_root(self) -> bytes:
        return self.tree.root

    def sender_key(self, sender: str) -> bytes | None:
        """`contracts.sender_key`, memoized until a block changes any state: a replay asks
        for the same few senders thousands of times per block."""
        try:
            return self._keys[sender]
        except KeyError:
            pub = self._keys[sender] = contracts.sender_key(self.tree, sender)
            return pub

    def advance(self, block: Block, outcome: contracts.BlockOutcome) -> None:
        changes = outcome.changes
        self._apply(changes)
        if any(
            contracts.state_key_for("member", s) in changes or contracts.state_key_for("device", s) in changes
            for s in self._keys
        ):
            self._keys.clear()
        self.height = block.height
        self.head_hash = block.hash()
        self.head_time_ms = block.header.time_ms
        self.results_root = results_root(outcome.results)
        self.settled = head_settled(block.header, self.state_root)


class _Pending:
    """One block on its way: its signature tasks and which transactions they cover."""

    def __init__(
        self,
        block: Block,
        commit: Commit,
        refs: list[int],
        parts: list[tuple[list[SigItem], Future[list[bool]] | None]],
    ) -> None:
        self.block = block
        self.commit = commit
        self.refs = refs
        self.parts = parts

    def verified(self) -> dict[tuple[bytes, bytes], bytes]:
        """(tx id, signature) → the key it verified with; parts no worker has started
        yet are verified here rather than waited for."""
        txs = self.block.txs
        refs = iter(self.refs)
        out: dict[tuple[bytes, bytes], bytes] = {}
        for items, fut in self.parts:
            flags = _verify_items(items) if fut is None or fut.cancel() else fut.result()
            for (_, sig, pub), ok, ti in zip(items, flags, refs):
                if ok:
                    out[(txs[ti].tx_id, sig)] = pub
        return out


class _Verifier:
    """Checks signatures in worker processes, several blocks ahead of execution."""

    def __init__(self, workers: int) -> None:
        self.pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None

    def submit(self, state: _ReplayState, block: Block, commit: Commit) -> _Pending:
        refs: list[int] = []
        items: list[SigItem] = []
        key = state.sender_key
        for ti, stx in enumerate(block.txs):
            pub = key(stx.tx.sender)
            if pub is not None:  # senders registered in blocks still ahead are checked during execution
                refs.append(ti)
                items.append((stx.tx_bytes, stx.sig, pub))
        parts: list[tuple[list[SigItem], Future[list[bool]] | None]] = []
        if items:
            step = max(64, -(-len(items) // TASKS_PER_BLOCK))
            for i in range(0, len(items), step):
                chunk = items[i : i + step]
                parts.append((chunk, None if self.pool is None else self.pool.submit(_verify_items, chunk)))
        return _Pending(block, commit, refs, parts)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def replay(genesis: Genesis, blocks: Iterator[tuple[Block, Commit]], source: str, workers: int = 2) -> AuditReport:
    """Replay `blocks` (in height order from 1) on a fresh in-memory state and check
    everything `Ledger.check_proposal`, `Ledger.check_commit` and `ChainStore.commit_block`
    check, plus every signature and recorded result code."""
    report = AuditReport(source, genesis.chain_id, genesis.hash().hex())
    state = _ReplayState(genesis)
    verifier = _Verifier(workers)
    started = time.perf_counter()
    height = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()
    since_gc = 0
    try:
        it = iter(blocks)
        queue: deque[_Pending] = deque()
        queued_txs = 0
        exhausted = False
        unreadable: GodownError | None = None  # raised once the blocks before it are replayed
        while True:
            while not exhausted and len(queue) <= LOOKAHEAD_BLOCKS and (queued_txs < LOOKAHEAD_TXS or len(queue) < 2):
                try:
                    nxt = next(it, None)
                except GodownError as exc:
                    nxt, unreadable = None, exc
                if nxt is None:
                    exhausted = True
                else:
                    queue.append(verifier.submit(state, *nxt))
                    queued_txs += len(nxt[0].txs)
            if not queue:
                if unreadable is not None:
                    height = state.height + 1
                    raise unreadable
                break
            pending = queue.popleft()
            queued_txs -= len(pending.block.txs)
            height = pending.block.height
            _replay_one(state, pending, report)
            since_gc += len(pending.block.txs)
            if since_gc >= GC_EVERY_TXS:
                gc.collect()
                since_gc = 0
    except GodownError as exc:
        report.ok = False
        report.first_bad_height = height
        report.problem = f"{exc.code.value}: {exc.message}"
    finally:
        verifier.close()
        if gc_was_enabled:
            gc.enable()
    report.seconds = round(time.perf_counter() - started, 3)
    report.tx_per_s = round(report.txs / report.seconds, 1) if report.seconds else 0.0
    report.state_root = state.state_root.hex()
    return report


def _replay_one(state: _ReplayState, pending: _Pending, report: AuditReport) -> None:
    block, commit = pending.block, pending.commit
    # what a validator checked before voting (no clock: this is history)
    check_successor(
        block,
        Head(
            report.chain_id,
            state.height,
            state.head_hash,
            state.head_time_ms,
            state.state_root,
            state.results_root,
            state.settled,
        ),
        state.empty_block_after_ms,
    )
    commit.verify(contracts.governing_validators(state.tree, block.height), block.header)  # the set of that height
    report.certificates_checked += 1
    if len(block.results) != len(block.txs):
        raise GodownError(
            Code.BAD_BLOCK, f"block {block.height} has {len(block.txs)} transactions but {len(block.results)} results"
        )
    txs = block.txs
    verify = _verify_fn(pending.verified())
    ctx = contracts.BlockContext(report.chain_id, block.height, block.header.time_ms, block.header.proposer)
    outcome = contracts.execute_block(state.tree, ctx, txs, verify)
    if outcome.results != tuple(block.results):
        index = next(i for i, (a, b) in enumerate(zip(outcome.results, block.results)) if a != b)
        raise GodownError(Code.BAD_BLOCK, f"re-execution gives different results (first at tx {index})")
    results = report.results
    for code in outcome.results:
        results[code] = results.get(code, 0) + 1
    state.advance(block, outcome)
    report.blocks += 1
    report.txs += len(txs)
    report.signatures_checked += len(txs)
    report.rejected_txs += sum(1 for c in outcome.results if c != "ok")


def _verify_fn(checked: dict[tuple[bytes, bytes], bytes]) -> Callable[[SignedTx, bytes], bool]:
    """The executor's signature check: a worker's verdict when it used the same key,
    otherwise (sender registered or re-keyed in the meantime) checked here."""

    def verify(stx: SignedTx, sign_pub: bytes) -> bool:
        if checked.get((stx.tx_id, stx.sig)) == sign_pub:
            return True
        return stx.verify(sign_pub)

    return verify


def _find_genesis(data_dir: Path, genesis_path: str | None) -> Genesis:
    if genesis_path:
        return Genesis.load(genesis_path)
    for candidate in (
        data_dir / "genesis.json",
        data_dir.parent / "genesis.json",
        data_dir.parent.parent / "genesis.json",
    ):
        if candidate.exists():
            return Genesis.load(candidate)
    raise GodownError(Code.BAD_CONFIG, f"no genesis.json near {data_dir}; pass --genesis")


def replay_from_data_dir(data_dir: str | Path, genesis_path: str | None = None, workers: int = 2) -> AuditReport:
    """Audit a stopped node's data directory (the node must not be running: LevelDB is locked)."""
    d = Path(data_dir).resolve()
    genesis = _find_genesis(d, genesis_path)
    # deep_blocks=0: the open still walks every header's hash links, roots records and
    # certificate match and recomputes the head state root; the bodies are checked below.
    store = ChainStore.open_path(d / "chain", deep_blocks=0)
    try:
        return replay_from_store(store, genesis, str(d), workers)
    finally:
        store.close()


def replay_from_store(store: ChainStore, genesis: Genesis, source: str, workers: int = 2) -> AuditReport:
    """Audit the blocks 1..head of an open store (the head when called: a running node's
    store may go on committing, and its later blocks are not part of this replay)."""
    store.require_history_from_genesis()  # a store restored from a snapshot has no blocks below it
    head = store.head_height

    def blocks() -> Iterator[tuple[Block, Commit]]:
        for h in range(1, head + 1):
            block, commit = store.get_block(h), store.get_commit(h)
            if block is None or commit is None:
                raise GodownError(Code.STORE_DAMAGED, f"height {h} is missing from the store")
            yield block, commit

    report = replay(genesis, blocks(), source, workers)
    recorded = store.state_root_at(head)
    if report.ok and (recorded is None or report.state_root != recorded.hex()):
        report.ok = False
        report.first_bad_height = head
        report.problem = "the store's head state root differs from the replayed one"
    return report


def replay_from_rpc(
    url: str, token: str | None = None, genesis_path: str | None = None, workers: int = 2
) -> AuditReport:
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
        (
            "verdict",
            "[green]everything verifies[/]"
            if report.ok
            else f"[red]MISMATCH at height {report.first_bad_height}: {report.problem}[/]",
        ),
    ]
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)
