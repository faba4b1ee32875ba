"""CPU per committed transaction per node under saturating load, and where it goes.

A fresh local consortium (node processes) takes the financing workload from
`godown bench`'s load generator. Around the load, the utime+stime of every thread of
every node is read from /proc/<pid>/task/<tid>/stat, so each node's CPU per committed
transaction is exact and per thread; thread names come from `py-spy dump` (a thread py-spy
does not list is native: LevelDB's compaction thread, libp2p's C parts). Meanwhile
py-spy samples one backup node, and each sample is put in one category by the frames on
its stack (leaf first), which splits that node's Python CPU into verify, decode,
execute, state root, commit, consensus, p2p, rpc, mempool, events and other.

Prints JSON lines: one per node, one breakdown for the sampled node, one summary.

    pip install py-spy    # a sampling profiler (PyPI); needs ptrace rights (root here)
    python bench/node_cost.py [--duration 20] [--nodes 4] [--rate 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.load.loadgen import REPORTS_PER_CASE, TXS_PER_CASE, build_load, drive_load, reachable  # noqa: E402
from node.tools.launcher import Consortium  # noqa: E402
from node.tools.testnet import Testnet, init_testnet  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("verify", ("nacl", "sigpool", "verify_signature", "signatures.py")),
    ("state_root", ("state_tree.py",)),
    ("commit", ("storage/chain.py", "storage/kv.py", "plyvel")),
    ("execute", ("contracts/",)),
    ("decode", ("codec.py", "primitives/tx.py", "primitives/block.py", "msgpack")),
    ("mempool", ("mempool.py",)),
    ("events", ("server/events.py",)),
    ("consensus", ("consensus/", "server/pbft/")),
    ("p2p", ("p2p/", "libp2p", "trio", "multiaddr", "yamux", "noise")),
    ("rpc", ("aiohttp", "server/rpc", "openapi")),
)
"""A sample's category: the first (leaf-most) frame on its stack that names one of these."""


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (utime + stime) of every thread of `pid`."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a thread that ended meanwhile
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    return out


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id → Python thread name, for the threads py-spy sees."""
    try:
        dump = subprocess.run(["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {int(tid): name for tid, name in re.findall(r'^Thread (\d+) \([^)]*\): "([^"]*)"', dump, re.M)}


def category(stack: str) -> str:
    for frame in reversed(stack.split(";")):
        for name, marks in CATEGORIES:
            if any(m in frame for m in marks):
                return name
    return "other"


def breakdown(raw: Path) -> Counter[str]:
    """Samples per category from a py-spy raw (collapsed) file."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            counts[category(stack)] += int(n)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description="CPU per committed transaction per node, and its breakdown")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--rate", type=int, default=0, help="0: saturating")
    ap.add_argument("--spy-rate", type=int, default=100, help="py-spy samples/s (0: no sampling)")
    ap.add_argument("--raw", default=None, help="also keep py-spy's collapsed stacks in this file")
    ap.add_argument("--keep", action="store_true", help="keep the consortium's directory (logs, stores) and print it")
    args = ap.parse_args()
    if shutil.which("py-spy") is None:
        sys.exit("node_cost: needs py-spy (pip install py-spy)")

    work = Path(tempfile.mkdtemp(prefix="godown-node-cost-"))
    try:
        init_testnet(work / "net", nodes=args.nodes)
        net = Testnet.load(work / "net")
        with Consortium(net) as cons:
            cons.start_all()
            cons.wait_ready(timeout=90)
            pids = {name: proc.pid for name, proc in cons.procs.items()}
            up, _ = reachable(net, 30.0)
            cases = max(4, int((args.rate or 3000) * args.duration // TXS_PER_CASE))
            phases = build_load(up, cases)
            names = {n: thread_names(pid) for n, pid in pids.items()}
            sampled = list(pids)[-1]  # a backup: view 0's primary is the first
            raw = work / "spy.txt"
            spy = None
            if args.spy_rate > 0:
                spy = subprocess.Popen(
                    ["py-spy", "record", "--pid", str(pids[sampled]), "--format", "raw", "-o", str(raw)]
                    + ["-r", str(args.spy_rate), "--nonblocking", "--threads"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            before = {n: thread_cpu(pid) for n, pid in pids.items()}
            t0 = time.monotonic()
            figures = asyncio.run(drive_load(up, phases, args.rate, args.duration * 3))
            wall = time.monotonic() - t0
            after = {n: thread_cpu(pid) for n, pid in pids.items()}
            for n, pid in pids.items():  # threads started during the load (signature workers, say)
                names[n].update(thread_names(pid))
            if spy is not None:
                spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
                spy.wait(timeout=30)
        committed = int(figures["committed"]) or 1
        total_us = 0.0
        for n in pids:
            per_thread: Counter[str] = Counter()
            for tid, cpu in after[n].items():
                used = cpu - before[n].get(tid, 0.0)
                per_thread[names[n].get(tid, "native")] += used
            cpu_s = sum(per_thread.values())
            total_us += cpu_s / committed * 1e6
            print(
                json.dumps(
                    {
                        "bench": "node_cpu",
                        "node": n,
                        "cpu_s": round(cpu_s, 2),
                        "us_per_tx": round(cpu_s / committed * 1e6, 1),
                        "threads_us_per_tx": {k: round(v / committed * 1e6, 1) for k, v in per_thread.most_common()},
                    }
                )
            )
        if args.raw and raw.exists():
            shutil.copy(raw, args.raw)
        samples = breakdown(raw) if raw.exists() else Counter()
        node_cpu = {tid: cpu - before[sampled].get(tid, 0.0) for tid, cpu in after[sampled].items()}
        python_s = sum(v for tid, v in node_cpu.items() if tid in names[sampled])
        native_s = sum(v for tid, v in node_cpu.items() if tid not in names[sampled])
        total_samples = sum(samples.values()) or 1
        split = {k: round(python_s * c / total_samples / committed * 1e6, 1) for k, c in samples.most_common()}
        split["native_threads"] = round(native_s / committed * 1e6, 1)
        line = {"bench": "node_cpu_breakdown", "node": sampled, "us_per_tx": split, "samples": total_samples}
        print(json.dumps(line))
        print(
            json.dumps(
                {
                    "bench": "node_cost",
                    "nodes": args.nodes,
                    "committed": figures["committed"],
                    "tx_s": figures["tx_s"],
                    "p50_ms": figures["p50_ms"],
                    "p99_ms": figures["p99_ms"],
                    "wall_s": round(wall, 1),
                    "us_per_tx_per_node": round(total_us / len(pids), 1),
                    "workload": f"financing, {REPORTS_PER_CASE} reports per case",
                }
            )
        )
    finally:
        if args.keep:
            print(json.dumps({"bench": "node_cost_kept", "dir": str(work)}))
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
