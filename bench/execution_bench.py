"""Execution-only throughput of the contracts: the financing workload (~80% device
reports with 256-byte sealed payloads) through `contracts.execute_block` over an
in-memory state, signatures taken as already verified (the node caches them), no
state-root computation. Prints one JSON line.

    /work/venv/bin/python bench/execution_bench.py [--cases 200] [--reports 38] [--block 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contracts
from contracts import BlockContext, DictState
from contracts.state import clear_decode_cache
from node.load.workload import financing_workload
from node.tools.participants import Participants
from primitives.tx import SignedTx


def _verified(stx: SignedTx, pub: bytes) -> bool:
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--reports", type=int, default=38)
    ap.add_argument("--block", type=int, default=1000, help="max transactions per block")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    chain_id = "bench-exec"
    p = Participants.generate(seed=b"bench")
    genesis = p.genesis(chain_id, 1_000_000)
    t0 = time.perf_counter()
    phases = financing_workload(p, chain_id, args.cases, args.reports)
    build_s = time.perf_counter() - t0
    blocks: list[list[SignedTx]] = []
    for phase in phases:  # a block never spans two phases, so it depends only on earlier blocks
        for i in range(0, len(phase), args.block):
            blocks.append(phase[i : i + args.block])
    n_txs = sum(len(b) for b in blocks)
    reports = sum(1 for b in blocks for s in b if s.tx.type == "device.report")
    payload = next(s for b in blocks for s in b if s.tx.type == "device.report").tx.body["envelope"]["ciphertext"]

    rates, apply_s = [], []
    for _ in range(args.runs):
        clear_decode_cache()  # each run starts cold, as a node's first pass over these blocks would
        state = DictState(contracts.genesis_state(genesis))
        exec_s, commit_s = 0.0, 0.0
        for h, txs in enumerate(blocks, start=1):
            ctx = BlockContext(chain_id, h, 1_000_000 + h * 100, genesis.validator_ids[0])
            t = time.perf_counter()
            out = contracts.execute_block(state, ctx, txs, _verified)
            exec_s += time.perf_counter() - t
            bad = [c for c in out.results if c != "ok"]
            if bad:
                raise SystemExit(f"block {h}: unexpected results {sorted(set(bad))}")
            t = time.perf_counter()
            state.apply(out.changes)
            commit_s += time.perf_counter() - t
        rates.append(n_txs / exec_s)
        apply_s.append(commit_s)
    print(
        json.dumps(
            {
                "bench": "execution",
                "txs": n_txs,
                "blocks": len(blocks),
                "cases": args.cases,
                "report_share": round(reports / n_txs, 3),
                "payload_bytes": len(payload),
                "runs": args.runs,
                "tx_per_s_best": round(max(rates)),
                "tx_per_s_median": round(statistics.median(rates)),
                "state_apply_s_median": round(statistics.median(apply_s), 4),
                "workload_build_s": round(build_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
