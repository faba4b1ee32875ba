"""Memory of correct nodes while one validator floods them with PRE-PREPAREs for
heights far ahead of the chain (the `flood` test misbehaviour), on a local
4-node consortium under light financing load.

A correct node must drop such proposals before holding, decoding or checking
them (they come from a replica that is not the primary, or for heights outside
the window); its memory then stays flat. Every few seconds this prints each
correct node's resident set size; at the end one summary line:

    {"bench": "flood", "seconds", "flooder", "rss_mb_start": {...}, "rss_mb_end": {...},
     "rss_mb_max": {...}, "growth_mb_max", "committed"}

    python bench/flood_bench.py [--duration 40] [--node node1]
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

from node.client.rpc import RpcClient  # noqa: E402
from node.tools.launcher import Consortium  # noqa: E402
from node.tools.participants import participants_of  # noqa: E402
from node.tools.testnet import init_testnet  # noqa: E402
from primitives.errors import GodownError  # noqa: E402
from tests.e2e.manifests import Load  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description="memory under a future-height proposal flood")
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--node", default="insurer", help="the flooding validator (a backup)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="godown-flood-"))
    try:
        net = init_testnet(work / "net", nodes=4, chain_id="flood-bench")
        cons = Consortium(
            net, args={args.node: ["--misbehave", "flood"]}, env={args.node: {"GODOWN_TEST_SWITCHES": "1"}}
        )
        with cons:
            cons.start_all()
            cons.wait_ready(timeout=90)
            correct = [n["name"] for n in net.nodes if n["name"] != args.node]
            pids = {n: cons.procs[n].pid for n in correct}
            start = {n: rss_mb(p) for n, p in pids.items()}
            peak = dict(start)
            load = Load(participants_of(net), net.chain_id)
            clients = {n: RpcClient(next(x["rpc_url"] for x in net.nodes if x["name"] == n)) for n in correct}
            began = time.monotonic()
            committed = 0
            i = 0
            while time.monotonic() - began < args.duration:
                phases = load.next_round(cases=1, reports_per_case=4)
                for phase in phases:
                    c = clients[correct[i % len(correct)]]
                    i += 1
                    try:
                        answers = c.submit_many(phase, wait_ms=20_000)
                        committed += sum(1 for a in answers if a.get("code") == "committed")
                    except GodownError:
                        pass
                now = {n: rss_mb(p) for n, p in pids.items()}
                peak = {n: max(peak[n], now[n]) for n in now}
                print(json.dumps({"t": round(time.monotonic() - began, 1), "rss_mb": now}), flush=True)
            end = {n: rss_mb(p) for n, p in pids.items()}
            print(
                json.dumps(
                    {
                        "bench": "flood",
                        "seconds": round(time.monotonic() - began, 1),
                        "flooder": args.node,
                        "rss_mb_start": start,
                        "rss_mb_end": end,
                        "rss_mb_max": peak,
                        "growth_mb_max": round(max(peak[n] - start[n] for n in start), 1),
                        "committed": committed,
                    }
                ),
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
