"""How long a new validator takes to become able to vote, by state sync versus by
block replay, on one chain built here with the financing workload (DESIGN §10) on
real LevelDB stores. Both paths run in this one process, side by side, without the
network (p2p carries ~60k tx/s of blocks here, so it is not what bounds either):

- "replay": a fresh node fetches every block and, as catch-up does, checks its
  commit certificate, every transaction signature (one core), executes it and
  commits it (one synced write per block);
- "state_sync": a serving node builds the snapshot of its head (chunks of the state
  tree), the new node verifies the manifest and every chunk against the certified
  state root and installs them into a fresh store.

After either, the node goes on by blocks from the same height, so the difference is
the time to vote. Prints one JSON line per path and one with the ratio.

    python bench/statesync_bench.py [--cases 4000] [--reports 38] [--block 1000]
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

from node.load.workload import financing_workload  # noqa: E402
from node.server.ledger import Ledger  # noqa: E402
from node.tools.participants import Participants  # noqa: E402
from primitives.block import Block, Commit, commit_vote_bytes  # noqa: E402
from storage.chain import ChainStore  # noqa: E402
from storage.snapshot import Installer, Trusted, take_snapshot, verify_manifest  # noqa: E402


def _build(work: Path, cases: int, reports: int, size: int) -> tuple[Ledger, list[tuple[Block, Commit]], int]:
    """The source chain: the workload in blocks of `size`, certified by one validator."""
    chain_id = "bench-statesync"
    p = Participants.generate(seed=b"statesync-bench")
    validator = p.node_key(p.warehouse)
    genesis = p.genesis(chain_id, 1_000_000, validating=1)
    ledger = Ledger.open(work / "source", genesis)
    chain: list[tuple[Block, Commit]] = []
    n = 0
    for phase in financing_workload(p, chain_id, cases, reports):
        for i in range(0, len(phase), size):
            h = ledger.height + 1
            block = ledger.build_block(phase[i : i + size], 1_000_000 + h * 100, view=0, proposer=validator.id)
            sig = validator.sign(commit_vote_bytes(chain_id, h, 0, block.hash()))
            commit = Commit(chain_id, h, 0, block.hash(), ((validator.id, sig),))
            ledger.commit(block, commit, ledger.execute(block))
            chain.append((block, commit))
            n += len(block.txs)
    return ledger, chain, n


def _replay(work: Path, genesis_of: Ledger, chain: list[tuple[Block, Commit]]) -> float:
    ledger = Ledger.open(work / "replayed", genesis_of.genesis)
    t0 = time.perf_counter()
    for block, commit in chain:
        ledger.check_commit(block, commit)
        ledger.commit(block, commit, ledger.execute(block))  # execution checks every signature (one core)
    seconds = time.perf_counter() - t0
    assert ledger.store.state_root == genesis_of.store.state_root
    ledger.close()
    return seconds


def _state_sync(work: Path, source: Ledger, last: tuple[Block, Commit]) -> dict[str, float]:
    t0 = time.perf_counter()
    snap = take_snapshot(source.store, source.genesis.chain_id)  # the serving side
    t1 = time.perf_counter()
    # what header h+1 would certify: the state root, block hash and results root after h
    trusted = Trusted(source.height, source.store.state_root, last[0].hash(), source.last_results_root())
    manifest = verify_manifest(snap.manifest_bytes, source.genesis.chain_id, source.genesis.hash(), trusted)
    (work / "synced").mkdir()
    store = ChainStore.open_path(work / "synced" / "chain")
    installer = Installer(store, manifest, trusted.state_root)
    size = 0
    for i in range(manifest.chunks):
        chunk = snap.chunk(i)
        assert chunk is not None
        size += len(chunk)
        installer.add(i, chunk)
    root = installer.finish()
    t2 = time.perf_counter()
    assert root == source.store.state_root
    store.close()
    return {"build_s": t1 - t0, "verify_install_s": t2 - t1, "chunks": manifest.chunks, "bytes": size}


def main() -> None:
    ap = argparse.ArgumentParser(description="state sync versus block replay for a joining validator")
    ap.add_argument("--cases", type=int, default=4000, help="4000 cases x 50 transactions = 200,002 transactions")
    ap.add_argument("--reports", type=int, default=38)
    ap.add_argument("--block", type=int, default=1000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="godown-statesync-bench-"))
    try:
        source, chain, n_txs = _build(work, args.cases, args.reports, args.block)
        replay_s = _replay(work, source, chain)
        print(json.dumps({"bench": "replay", "txs": n_txs, "blocks": len(chain), "seconds": round(replay_s, 2),
                          "tx_s": round(n_txs / replay_s)}))  # fmt: skip
        sync = _state_sync(work, source, chain[-1])
        sync_s = sync["build_s"] + sync["verify_install_s"]
        print(json.dumps({"bench": "state_sync", "txs": n_txs, "seconds": round(sync_s, 2),
                          "build_s": round(sync["build_s"], 2), "verify_install_s": round(sync["verify_install_s"], 2),
                          "chunks": sync["chunks"], "snapshot_bytes": sync["bytes"]}))  # fmt: skip
        print(json.dumps({"bench": "ratio", "replay_over_state_sync": round(replay_s / sync_s, 1)}))
        source.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
