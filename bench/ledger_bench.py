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
- "disk": bytes on disk per committed transaction.

    python bench/ledger_bench.py [--cases 200] [--reports 38] [--block 1000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.load.workload import financing_workload, workload_device  # noqa: E402
from node.server.ledger import Ledger  # noqa: E402
from node.tools.audit import replay_from_data_dir  # noqa: E402
from node.tools.participants import Participants  # noqa: E402
from primitives.block import Commit, commit_vote_bytes  # noqa: E402
from primitives.tx import SignedTx  # noqa: E402


def _blocks(phases: list[list[SignedTx]], size: int) -> list[list[SignedTx]]:
    out = []
    for phase in phases:  # a block never spans two phases, so it depends only on earlier blocks
        for i in range(0, len(phase), size):
            out.append(phase[i : i + size])
    return out


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description="single-node ledger benchmark")
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--reports", type=int, default=38)
    ap.add_argument("--block", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2, help="signature-check processes for the replay")
    args = ap.parse_args()

    chain_id = "bench-ledger"
    p = Participants.generate(seed=b"ledger-bench")
    validator = p.node_key(p.warehouse)  # a single validator: one signature certifies a block
    genesis = p.genesis(chain_id, 1_000_000, validating=1)
    blocks = _blocks(financing_workload(p, chain_id, args.cases, args.reports), args.block)
    n_txs = sum(len(b) for b in blocks)

    work = Path(tempfile.mkdtemp(prefix="godown-ledger-bench-"))
    try:
        genesis.save(work / "genesis.json")
        ledger = Ledger.open(work / "data", genesis)
        keys = {m.id: m.sign_pub for m in genesis.members}
        keys.update((d.id, d.sign_pub) for d in (workload_device(chain_id, i) for i in range(args.cases)))
        for b in blocks:  # as admission did on a node: every signature checked once, before execution
            for stx in b:
                assert stx.verify(keys[stx.tx.sender])
                ledger.signatures.mark(stx, keys[stx.tx.sender])
        exec_s = commit_s = 0.0
        ok = 0
        for h, txs in enumerate(blocks, start=1):
            block = ledger.build_block(txs, 1_000_000 + h * 100, view=0, proposer=validator.id)
            t0 = time.perf_counter()
            outcome = ledger.execute(block)
            root = ledger.store._tree.compute_root(outcome.changes)  # the state-root part of execution
            t1 = time.perf_counter()
            sig = validator.sign(commit_vote_bytes(chain_id, h, 0, block.hash()))
            commit = Commit(chain_id, h, 0, block.hash(), ((validator.id, sig),))
            t2 = time.perf_counter()
            new_root = ledger.commit(block, commit, outcome)
            t3 = time.perf_counter()
            assert new_root == root
            exec_s += t1 - t0
            commit_s += (t1 - t0) + (t3 - t2)
            ok += sum(1 for r in outcome.results if r == "ok")
        ledger.close()
        print(
            json.dumps(
                {
                    "bench": "execution",
                    "txs": n_txs,
                    "ok": ok,
                    "blocks": len(blocks),
                    "block_txs": args.block,
                    "tx_s": round(n_txs / exec_s),
                    "us_per_tx": round(exec_s / n_txs * 1e6, 1),
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
                    "synced_writes": len(blocks),
                }
            )
        )
        disk = _du(work / "data")
        print(json.dumps({"bench": "disk", "bytes": disk, "bytes_per_tx": round(disk / n_txs, 1)}))
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
                    "problem": report.problem,
                }
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
