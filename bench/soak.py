"""Soak of a local 4-node consortium (f=1) outside pytest: paced financing load
through every node while one node at a time is killed (-9) and restarted or
paused (SIGSTOP) and resumed, then the checks of `node.load.soak` (nothing
acknowledged lost, no fork, nobody left behind) and the longest recovery per
fault kind.

Prints one JSON line {"bench": "soak", ...} (and one with the faults and view changes);
exits 1 if a promise was broken, keeping the testnet's folder (node logs) for a look.

    python bench/soak.py [--duration 900] [--seed N] [--rate 150]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.load.soak import SoakConfig, run_soak  # noqa: E402
from node.tools.launcher import Consortium  # noqa: E402
from node.tools.testnet import init_testnet  # noqa: E402
from primitives.genesis import ConsensusParams  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description="soak a local 4-node consortium under crash and pause faults")
    ap.add_argument("--duration", type=float, default=900.0, help="seconds of load and faults")
    ap.add_argument("--seed", type=int, default=None, help="replays the fault schedule (default: random)")
    ap.add_argument("--rate", type=int, default=SoakConfig.rate, help="tx/s offered in total")
    ap.add_argument("--keep", action="store_true", help="keep the testnet folder even when all is well")
    ap.add_argument(
        "--patient-client",
        action="store_true",
        help="a client that waits long on a silent node and keeps sending to it (the soak's first client)",
    )
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    cfg = SoakConfig(duration_s=args.duration, seed=seed, rate=args.rate)
    if args.patient_client:
        cfg = dataclasses.replace(cfg, wait_ms=5_000, client_timeout_s=12.0, suspect_s=0.0)
    work = Path(tempfile.mkdtemp(prefix="godown-soak-"))
    net = init_testnet(work / "net", nodes=4, chain_id="soak", consensus=ConsensusParams(view_change_timeout_ms=1000))
    result = run_soak(net, Consortium(net), cfg)
    for line in result.lines(key="bench"):
        print(line, flush=True)
    for problem in result.problems[:50]:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    if len(result.problems) > 50:
        print(f"... and {len(result.problems) - 50} more", file=sys.stderr)
    if result.problems or args.keep:
        print(f"testnet and node logs kept in {work}", file=sys.stderr)
        sys.exit(1 if result.problems else 0)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
