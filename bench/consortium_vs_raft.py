"""godown's 4-node consortium beside a 4-node Python Raft cluster, on this machine.

Runs, one after the other (never together: they share the cores):
1. a fresh local godown consortium (`godown testnet init` + nodes as processes)
   loaded by `godown bench` with the financing workload;
2. `../shared/bench/raft_baseline.py` (pysyncobj; each node verifies every
   transaction's Ed25519 signature when applying it).
Prints each system's JSON line and a final line with the ratio.

    pip install '.[bench]'
    python bench/consortium_vs_raft.py [--duration 20] [--nodes 4] [--raft-txs 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.load.loadgen import run_bench  # noqa: E402
from node.tools.launcher import Consortium  # noqa: E402
from node.tools.testnet import init_testnet  # noqa: E402

RAFT = ROOT.parent / "shared" / "bench" / "raft_baseline.py"
RAFT_TIMEOUT_S = 120  # a healthy run of 10,000 transactions takes ~10 s here


def godown_figures(nodes: int, duration: float, rate: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="godown-vs-raft-"))
    try:
        net = init_testnet(work / "net", nodes=nodes)
        with Consortium(net) as cons:
            cons.start_all()
            cons.wait_ready(timeout=90)
            return {"system": "godown-pbft", **run_bench(str(net.dir), duration, rate)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def raft_figures(nodes: int, txs: int, script: Path, attempts: int = 2) -> dict[str, object]:
    """The baseline's JSON line. pysyncobj now and then fails to settle a leader and
    the script then waits out its own 300 s deadline: such a run is cut short and
    tried again once."""
    error = ""
    for _ in range(attempts):
        # its own session, so a run cut short takes its node processes with it (left
        # behind, they hold the ports and every later attempt fails to settle too)
        proc = subprocess.Popen(
            [sys.executable, str(script), "--txs", str(txs), "--nodes", str(nodes)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=RAFT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            error = f"no result within {RAFT_TIMEOUT_S} s"
            continue
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # any node it left running
        lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
        if proc.returncode == 0 and lines:
            return json.loads(lines[-1])  # type: ignore[no-any-return]
        error = (stderr or stdout)[-500:]
    return {"system": "pysyncobj-raft", "error": error}


def main() -> None:
    ap = argparse.ArgumentParser(description="godown beside a Python Raft cluster")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--raft-txs", type=int, default=10000)
    ap.add_argument("--raft-script", type=Path, default=RAFT)
    args = ap.parse_args()
    ours = godown_figures(args.nodes, args.duration, args.rate)
    print(json.dumps(ours))
    raft = raft_figures(args.nodes, args.raft_txs, args.raft_script)
    print(json.dumps(raft))
    raft_tx_s = raft.get("tx_s_all_nodes") or raft.get("tx_s")
    ratio = round(float(ours["tx_s"]) / float(raft_tx_s), 2) if raft_tx_s else None  # type: ignore[arg-type]
    print(
        json.dumps({"bench": "consortium_vs_raft", "godown_tx_s": ours["tx_s"], "raft_tx_s": raft_tx_s, "ratio": ratio})
    )


if __name__ == "__main__":
    main()
