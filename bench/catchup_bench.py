"""Catch-up of a restarted validator: how fast a node that was down replays the
blocks it missed (fetched from peers with their commit certificates, verified,
executed and committed), on a local 4-node consortium.

1. start a fresh consortium and stop one backup (SIGKILL);
2. drive the financing workload (`godown bench`'s) through the other three;
3. restart the stopped node and time it until its height reaches theirs.

Prints one JSON line: {"bench": "catch_up", "blocks", "txs", "seconds", "tx_s", ...}
(`seconds` from the node answering its RPC to reaching the head; `seconds_incl_start`
also counts the process start-up).

    python bench/catchup_bench.py [--cases 200]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.client.rpc import RpcClient  # noqa: E402
from node.load.loadgen import build_load, drive_load  # noqa: E402
from node.tools.launcher import Consortium  # noqa: E402
from node.tools.testnet import init_testnet  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description="catch-up of a restarted validator")
    ap.add_argument("--cases", type=int, default=200)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="godown-catchup-"))
    try:
        net = init_testnet(work / "net", nodes=4)
        with Consortium(net) as cons:
            cons.start_all()
            cons.wait_ready(timeout=90)
            victim = net.nodes[-1]["name"]  # never the primary of view 0
            cons.kill(victim)
            others = dataclasses.replace(net, nodes=tuple(n for n in net.nodes if n["name"] != victim))
            load = asyncio.run(drive_load(others, build_load(others, args.cases), rate=0, duration=600))
            head = max(RpcClient(n["rpc_url"]).status()["height"] for n in others.nodes)
            started = time.monotonic()
            cons.start(victim)
            client = RpcClient(next(n["rpc_url"] for n in net.nodes if n["name"] == victim))
            client.wait_ready(timeout=60)
            ready = time.monotonic()
            while int(client.status()["height"]) < head:
                time.sleep(0.05)
            done = time.monotonic()
            txs = int(load["committed"])
            print(
                json.dumps(
                    {
                        "bench": "catch_up",
                        "node": victim,
                        "blocks": head,
                        "txs": txs,
                        "seconds": round(done - ready, 2),
                        "seconds_incl_start": round(done - started, 2),
                        "tx_s": round(txs / (done - ready), 1),
                    }
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
