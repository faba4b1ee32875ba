"""The single-node ledger, measured without the network: the financing workload
(DESIGN §10, ~80% device reports with 256-byte sealed payloads) in blocks of
`--block` transactions through the node's own `Ledger` on a real LevelDB store.

Prints JSON lines:
- "execution": execute + state root (`Ledger.execute` + the state-tree update,
  signatures already verified, as a node that admitted them has them cached),
  on one core — the "execution-only" figure;
- "commit": the same plus the synced LevelDB write of every block;
- "audit_replay": `godown audit replay --data-dir` on the resulting store
  (every signature, certificate, root and result re-checked; workers for
  signatures), i.e. what an auditor gets;
- "disk": bytes on disk per committed transaction, against the signed transaction's
  own bytes, and per day at 100 tx/s;
- "written": what the commits wrote per transaction, by key prefix (logical bytes,
  key + value, of the records present after the run), so what lands beyond the
  blocks themselves shows;
- "restart": reopening the store (`ChainStore.open_path`: the integrity walk plus
  the state tree rebuilt from the index) and the tree's memory per state key
  (tracemalloc over a second rebuild);
- "pruned": with `--prune-keep N` (default 100 blocks), the store compacted, then
  pruned to its newest N blocks (`Ledger.prune_history`, what `history.keep_blocks`
  does on a node) and compacted again: bytes per transaction with and without pruning,
  and the CPU pruning costs per pruned transaction.

Wall time is noisy on a shared machine, so every timed figure also gives the CPU
time of the main thread (`cpu_us_per_tx`, `time.thread_time`), which excludes LevelDB's
background compaction thread (reported apart, `leveldb_background_cpu_us_per_tx`) and
other processes; `gc_cpu_us_per_tx` is the cyclic collector's share of the main thread.

    python bench/ledger_bench.py [--cases 200] [--reports 38] [--block 1000] [--profile N]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.client.txs import NonceBook  # noqa: E402
from node.load.workload import financing_workload, workload_device  # noqa: E402
from node.server.ledger import Ledger  # noqa: E402
from node.tools.audit import replay_from_data_dir  # noqa: E402
from node.tools.participants import Participants  # noqa: E402
from primitives.block import Commit, commit_vote_bytes  # noqa: E402
from primitives.genesis import Genesis  # noqa: E402
from primitives.tx import SignedTx  # noqa: E402
from storage.chain import ChainStore  # noqa: E402
from storage.kv import LevelKV  # noqa: E402
from storage.state_tree import StateTree  # noqa: E402

DAY_AT_100_TX_S = 100 * 86_400


def _blocks(phases: list[list[SignedTx]], size: int) -> list[list[SignedTx]]:
    out = []
    for phase in phases:  # a block never spans two phases, so it depends only on earlier blocks
        for i in range(0, len(phase), size):
            out.append(phase[i : i + size])
    return out


def _workload(
    p: Participants, chain_id: str, cases: int, reports: int, chunk_cases: int
) -> Iterator[tuple[str, int, list[list[SignedTx]]]]:
    """The financing workload `chunk_cases` rounds at a time — (tag, cases, phases) — each
    chunk with its own lots, cases and devices (`tag`) and the members' nonces carried on,
    so a 5M-transaction chain is never held whole (≈ 3.5 GB per million transactions)."""
    book = NonceBook()
    chunks = range(0, cases, max(1, chunk_cases))
    for c, start in enumerate(chunks):
        n = min(chunk_cases, cases - start)
        tag = "" if len(chunks) == 1 else f"-c{c}"
        yield tag, n, financing_workload(p, chain_id, n, reports, tag=tag, nonces=book)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _prefix(key: bytes) -> str:
    """The record kind of a chain-store key: the text up to and including its first ':'
    ('m:head' style metadata keys are named in full)."""
    cut = key.find(b":")
    name = key[: cut + 1] if cut >= 0 else key[:1]
    return key.decode("ascii", "replace") if name == b"m:" else name.decode("ascii", "replace")


def _written(kv: LevelKV) -> tuple[Counter[str], Counter[str]]:
    """(bytes, records) per key prefix over the whole store: key + value lengths."""
    size: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for k, v in kv.iterate():
        p = _prefix(k)
        size[p] += len(k) + len(v)
        count[p] += 1
    return size, count


class _GcClock:
    """CPU time spent in the cyclic collector, per generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self._t = 0.0
        self.active = False

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if not self.active:
            return
        if phase == "start":
            self._t = time.thread_time()
        else:
            g = info["generation"]
            self.seconds[g] += time.thread_time() - self._t
            self.runs[g] += 1


def _restart(path: Path) -> dict[str, float]:
    """Reopen the store as a node does at start; then the tree's memory per key."""
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    kv = LevelKV(path)  # what ChainStore.open_path does, in its two parts
    store = ChainStore(kv)  # head records and the state tree rebuilt from the index
    wt, ct = time.perf_counter(), time.process_time()
    store.verify_integrity()  # the hash-chain walk and the newest blocks in full
    w1, c1 = time.perf_counter(), time.process_time()
    n_keys = sum(1 for _ in kv.iterate(b"S:"))
    store.close()
    del store
    gc.collect()
    kv = LevelKV(path)
    try:
        tracemalloc.start()
        tree = StateTree(kv, b"S:")
        size, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del tree
    finally:
        kv.close()
    return {
        "seconds": round(w1 - w0, 3),
        "cpu_seconds": round(c1 - c0, 3),
        "tree_rebuild_cpu_seconds": round(ct - c0, 3),
        "integrity_check_cpu_seconds": round(c1 - ct, 3),
        "tree_rebuild_seconds": round(wt - w0, 3),
        "state_keys": n_keys,
        "tree_bytes": size,
        "tree_bytes_per_key": round(size / max(1, n_keys), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="single-node ledger benchmark")
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument(
        "--chunk-cases", type=int, default=20_000, help="build the workload this many cases at a time (memory)"
    )
    ap.add_argument("--reports", type=int, default=38)
    ap.add_argument("--block", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2, help="signature-check processes for the replay")
    ap.add_argument("--profile", type=int, default=0, help="print the top N cProfile lines of execute+commit")
    ap.add_argument("--no-replay", action="store_true", help="skip the audit replay")
    ap.add_argument("--keep", type=Path, help="build the store in this new directory and keep it")
    ap.add_argument(
        "--prune-keep", type=int, default=100, help="then prune to the newest N blocks (history.keep_blocks; 0: no)"
    )
    args = ap.parse_args()

    chain_id = "bench-ledger"
    p = Participants.generate(seed=b"ledger-bench")
    validator = p.node_key(p.warehouse)  # a single validator: one signature certifies a block
    genesis = p.genesis(chain_id, 1_000_000, validating=1)
    block_txs: list[int] = []  # transactions per height
    signed_bytes = 0

    work = Path(tempfile.mkdtemp(prefix="godown-ledger-bench-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=args.keep is None)
    try:
        genesis.save(work / "genesis.json")
        ledger = Ledger.open(work / "data", genesis)
        keys = {m.id: m.sign_pub for m in genesis.members}
        exec_s = commit_s = exec_cpu = commit_cpu = 0.0
        ok = 0
        clock, cpu = time.perf_counter, time.thread_time
        prof = cProfile.Profile() if args.profile else None
        gc_clock = _GcClock()
        gc.callbacks.append(gc_clock)
        p0, m0 = time.process_time(), cpu()  # all threads, and this one: LevelDB's own threads are the rest
        for tag, cases, phases in _workload(p, chain_id, args.cases, args.reports, args.chunk_cases):
            keys.update((d.id, d.sign_pub) for d in (workload_device(chain_id, i, tag) for i in range(cases)))
            blocks = _blocks(phases, args.block)
            del phases
            # The workload is held in memory (10^7 objects at 1M txs), which no node does:
            # left to the collector, every full collection walks it (3.5 s each at 1M txs: 10
            # of the 28 µs per tx the collector took there). Frozen, it sees what a node would.
            gc.collect()
            gc.freeze()
            for txs in blocks:
                h = len(block_txs) + 1
                block_txs.append(len(txs))
                signed_bytes += sum(len(stx.encode()) for stx in txs)
                # as admission did on a node, shortly before: every signature checked once, untimed
                # (all of them up front would overflow the node's 500k-entry signature cache at 1M)
                for stx in txs:
                    assert stx.verify(keys[stx.tx.sender])
                    ledger.signatures.mark(stx, keys[stx.tx.sender])
                block = ledger.build_block(txs, 1_000_000 + h * 100, view=0, proposer=validator.id)
                if prof:
                    prof.enable()
                gc_clock.active = True
                t0, c0 = clock(), cpu()
                outcome = ledger.execute(block)
                root = ledger.store._tree.compute_root(outcome.changes)  # the state-root part of execution
                t1, c1 = clock(), cpu()
                gc_clock.active = False
                if prof:
                    prof.disable()
                sig = validator.sign(commit_vote_bytes(chain_id, h, 0, block.hash()))
                commit = Commit(chain_id, h, 0, block.hash(), ((validator.id, sig),))
                if prof:
                    prof.enable()
                gc_clock.active = True
                t2, c2 = clock(), cpu()
                new_root = ledger.commit(block, commit, outcome)
                t3, c3 = clock(), cpu()
                gc_clock.active = False
                if prof:
                    prof.disable()
                assert new_root == root
                exec_s += t1 - t0
                commit_s += (t1 - t0) + (t3 - t2)
                exec_cpu += c1 - c0
                commit_cpu += (c1 - c0) + (c3 - c2)
                ok += sum(1 for r in outcome.results if r == "ok")
            del blocks
        ledger.close()
        n_txs = sum(block_txs)
        background_cpu = (time.process_time() - p0) - (cpu() - m0)
        if prof:
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(args.profile)
        print(
            json.dumps(
                {
                    "bench": "execution",
                    "txs": n_txs,
                    "ok": ok,
                    "blocks": len(block_txs),
                    "block_txs": args.block,
                    "tx_s": round(n_txs / exec_s),
                    "us_per_tx": round(exec_s / n_txs * 1e6, 1),
                    "cpu_us_per_tx": round(exec_cpu / n_txs * 1e6, 1),
                }
            )
        )
        print(
            json.dumps(
                {
                    "bench": "commit",
                    "txs": n_txs,
                    "tx_s": round(n_txs / commit_s),
                    "us_per_tx": round(commit_s / n_txs * 1e6, 1),
                    "cpu_us_per_tx": round(commit_cpu / n_txs * 1e6, 1),
                    "synced_writes": len(block_txs),
                    "gc_cpu_us_per_tx": round(sum(gc_clock.seconds) / n_txs * 1e6, 1),
                    "leveldb_background_cpu_us_per_tx": round(background_cpu / n_txs * 1e6, 1),
                    "gc_runs_by_generation": gc_clock.runs,
                    "gc_cpu_s_by_generation": [round(x, 3) for x in gc_clock.seconds],
                }
            )
        )
        disk = _du(work / "data")
        per_tx = disk / n_txs
        raw = signed_bytes / n_txs  # the signed transactions themselves
        print(
            json.dumps(
                {
                    "bench": "disk",
                    "bytes": disk,
                    "bytes_per_tx": round(per_tx, 1),
                    "signed_tx_bytes_per_tx": round(raw, 1),
                    "disk_over_signed_tx": round(per_tx / raw, 2),
                    "gb_per_day_at_100_tx_s": round(per_tx * DAY_AT_100_TX_S / 1e9, 2),
                }
            )
        )
        kv = LevelKV(work / "data" / "chain")
        try:
            size, count = _written(kv)
        finally:
            kv.close()
        logical = sum(size.values())
        print(
            json.dumps(
                {
                    "bench": "written",
                    "bytes_per_tx": round(logical / n_txs, 1),
                    "by_prefix_bytes_per_tx": {p: round(b / n_txs, 1) for p, b in size.most_common()},
                    "records": dict(count.most_common()),
                }
            )
        )
        print(json.dumps({"bench": "restart", "txs": n_txs, **_restart(work / "data" / "chain")}))
        if not args.no_replay:
            c0 = time.process_time()
            report = replay_from_data_dir(work / "data", str(work / "genesis.json"), workers=args.workers)
            print(
                json.dumps(
                    {
                        "bench": "audit_replay",
                        "ok": report.ok,
                        "txs": report.txs,
                        "blocks": report.blocks,
                        "tx_s": report.tx_per_s,
                        "seconds": report.seconds,
                        "workers": args.workers,
                        "main_cpu_us_per_tx": round((time.process_time() - c0) / max(1, report.txs) * 1e6, 1),
                        "problem": report.problem,
                    }
                )
            )
        if args.prune_keep > 0:
            print(json.dumps(_pruned(work, genesis, args.prune_keep, block_txs, raw)))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _pruned(work: Path, genesis: Genesis, keep_blocks: int, block_txs: list[int], raw: float) -> dict[str, object]:
    """Disk with and without pruning, both compacted (LevelDB frees deleted records only as
    it compacts), and what pruning costs per pruned transaction (`block_txs`: the
    transactions of each height)."""
    n_txs = sum(block_txs)
    path = work / "data" / "chain"
    kv = LevelKV(path)
    kv.compact()
    kv.close()
    unpruned = _du(work / "data")
    ledger = Ledger.open(work / "data", genesis, keep_blocks=keep_blocks)
    base0 = ledger.store.base_height
    c0 = time.thread_time()
    while ledger.prune_history(most=64):
        pass
    prune_cpu = time.thread_time() - c0
    base = ledger.store.base_height
    ledger.close()
    pruned_txs = sum(block_txs[base0:base])
    kv = LevelKV(path)
    kv.compact()
    kv.close()
    pruned = _du(work / "data")
    return {
        "bench": "pruned",
        "keep_blocks": keep_blocks,
        "pruned_heights": base - base0,
        "txs": n_txs,
        "pruned_txs": pruned_txs,
        "compacted_bytes_per_tx_unpruned": round(unpruned / n_txs, 1),
        "compacted_bytes_per_tx_pruned": round(pruned / n_txs, 1),
        "unpruned_over_signed_tx": round(unpruned / n_txs / raw, 2),
        "pruned_over_signed_tx": round(pruned / n_txs / raw, 2),
        "pruned_store_bytes": pruned,
        "prune_cpu_us_per_pruned_tx": round(prune_cpu / max(1, pruned_txs) * 1e6, 1),
    }


if __name__ == "__main__":
    main()
