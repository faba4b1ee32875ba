"""PBFT-shaped traffic over `p2p.P2PService`: 4 processes, one libp2p host each.

Node 0 is the primary: it broadcasts a block frame (default 350 KB) per round.
Every node broadcasts a 200-byte PREPARE once it has the block, and a 200-byte
COMMIT once it has PREPAREs from 2 others; a node decides a round with COMMITs
from 2 others and its own. The primary keeps `--inflight` rounds open at once.
Each node prints one JSON line of its counters; the parent prints a summary line
(blocks/s decided at the primary, frames/s and MB/s received over all nodes,
p50/p90 round latency at the primary).

    /work/venv/bin/python bench/p2p_bench.py --seconds 10 --block-bytes 350000 --inflight 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections import defaultdict

from p2p.identity import tcp_multiaddr
from p2p.service import P2PService
from primitives.keys import KeyPair

N = 4
QUORUM_OTHERS = 2  # 2f with f = 1: with our own vote, 2f + 1 of 4
HEAD = struct.Struct(">BQB")  # kind, round, sender
BLOCK, PREPARE, COMMIT = 1, 2, 3


def seed(i: int) -> bytes:
    return hashlib.sha256(b"godown-p2p-bench-%d" % i).digest()


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in socks]
    for s in socks:
        s.close()
    return ports


class Node:
    """The vote-counting for one process; `on_frame` runs on the p2p thread."""

    def __init__(self, index: int, svc: P2PService, block_bytes: int, inflight: int) -> None:
        self.index = index
        self.svc = svc
        self.block_bytes = block_bytes
        self.inflight = inflight
        self.lock = threading.Lock()
        self.have_block: set[int] = set()
        self.prepares: dict[int, int] = defaultdict(int)
        self.commits: dict[int, int] = defaultdict(int)
        self.sent_commit: set[int] = set()
        self.decided: set[int] = set()
        self.next_round = 0
        self.started_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.frames_recv = 0
        self.bytes_recv = 0
        self.frames_sent = 0
        self.bytes_sent = 0
        self.running = False

    def vote(self, kind: int, rnd: int) -> None:
        frame = HEAD.pack(kind, rnd, self.index) + b"v" * (200 - HEAD.size)
        self.svc.broadcast(frame)
        self.frames_sent += N - 1
        self.bytes_sent += (N - 1) * len(frame)

    def propose(self) -> None:
        rnd = self.next_round
        self.next_round += 1
        self.started_at[rnd] = time.perf_counter()
        frame = HEAD.pack(BLOCK, rnd, self.index) + os.urandom(self.block_bytes - HEAD.size)
        self.svc.broadcast(frame)
        self.frames_sent += N - 1
        self.bytes_sent += (N - 1) * len(frame)
        self.got_block(rnd)

    def got_block(self, rnd: int) -> None:
        self.have_block.add(rnd)
        self.vote(PREPARE, rnd)
        self.progress(rnd)

    def progress(self, rnd: int) -> None:
        if rnd in self.have_block and rnd not in self.sent_commit and self.prepares[rnd] >= QUORUM_OTHERS:
            self.sent_commit.add(rnd)
            self.vote(COMMIT, rnd)
        if rnd in self.sent_commit and rnd not in self.decided and self.commits[rnd] >= QUORUM_OTHERS:
            self.decided.add(rnd)
            if rnd in self.started_at:
                self.latencies.append(time.perf_counter() - self.started_at.pop(rnd))
            if self.index == 0 and self.running:
                while self.next_round - len(self.decided) < self.inflight:
                    self.propose()

    def on_frame(self, member_id: str, frame: bytes) -> None:
        kind, rnd, _sender = HEAD.unpack_from(frame)
        with self.lock:
            self.frames_recv += 1
            self.bytes_recv += len(frame)
            if kind == BLOCK:
                self.got_block(rnd)
            elif kind == PREPARE:
                self.prepares[rnd] += 1
                self.progress(rnd)
            elif kind == COMMIT:
                self.commits[rnd] += 1
                self.progress(rnd)


def run_node(args: argparse.Namespace) -> None:
    ports = [int(p) for p in args.ports.split(",")]
    keys = [KeyPair(name=f"n{i}", role="bank", sign_seed=seed(i), enc_secret=seed(100 + i)) for i in range(N)]
    peers = {f"n{i}": (keys[i].sign_pub, tcp_multiaddr(ports[i])) for i in range(N)}
    svc = P2PService(seed(args.node), ports[args.node], peers)
    node = Node(args.node, svc, args.block_bytes, args.inflight)
    svc.set_on_frame(node.on_frame)
    svc.start()
    deadline = time.time() + 30
    while len(svc.connected_peers()) < N - 1 and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(max(0.0, args.t0 - time.time()))
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    with node.lock:
        node.running = True
        if args.node == 0:
            for _ in range(args.inflight):
                node.propose()
    time.sleep(args.seconds)
    with node.lock:
        node.running = False
        elapsed = time.perf_counter() - t0
        decided = len(node.decided)
        lat = sorted(node.latencies)
        out = {
            "node": args.node,
            "connected": len(svc.connected_peers()),
            "seconds": round(elapsed, 3),
            "decided": decided,
            "frames_sent": node.frames_sent,
            "frames_recv": node.frames_recv,
            "bytes_sent": node.bytes_sent,
            "bytes_recv": node.bytes_recv,
            "cpu_s": round(time.process_time() - cpu0, 3),
            "dropped": sum(s.dropped_frames for s in svc.stats()),
            "p50_ms": round(1000 * statistics.median(lat), 2) if lat else None,
            "p90_ms": round(1000 * lat[int(0.9 * (len(lat) - 1))], 2) if lat else None,
        }
    print(json.dumps(out), flush=True)
    time.sleep(1.0)  # let the others take their snapshot before our streams close
    svc.stop()


def run_parent(args: argparse.Namespace) -> None:
    ports = free_ports(N)
    t0 = time.time() + args.warmup
    cmd = [sys.executable, os.path.abspath(__file__), "--ports", ",".join(map(str, ports)), "--t0", str(t0)]
    cmd += ["--seconds", str(args.seconds), "--block-bytes", str(args.block_bytes), "--inflight", str(args.inflight)]
    procs = [subprocess.Popen([*cmd, "--node", str(i)], stdout=subprocess.PIPE, text=True) for i in range(N)]
    results = []
    for p in procs:
        stdout, _ = p.communicate(timeout=args.warmup + args.seconds + 60)
        line = [ln for ln in stdout.splitlines() if ln.startswith("{")]
        if p.returncode != 0 or not line:
            raise SystemExit(f"bench node failed (exit {p.returncode})")
        results.append(json.loads(line[-1]))
    for r in results:
        print(json.dumps({"bench": "p2p_pbft", **r}))
    secs = statistics.mean(r["seconds"] for r in results)
    primary = results[0]
    print(
        json.dumps(
            {
                "bench": "p2p_pbft_summary",
                "nodes": N,
                "block_bytes": args.block_bytes,
                "inflight": args.inflight,
                "seconds": round(secs, 2),
                "blocks_per_s": round(primary["decided"] / secs, 1),
                "frames_per_s": round(sum(r["frames_recv"] for r in results) / secs, 1),
                "MB_per_s": round(sum(r["bytes_recv"] for r in results) / secs / 1e6, 2),
                "p50_ms": primary["p50_ms"],
                "p90_ms": primary["p90_ms"],
                "cpu_share": round(sum(r["cpu_s"] for r in results) / secs / N, 2),
                "dropped": sum(r["dropped"] for r in results),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--block-bytes", type=int, default=350_000)
    ap.add_argument("--inflight", type=int, default=1)
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds allowed for start and mesh")
    ap.add_argument("--node", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--ports", help=argparse.SUPPRESS)
    ap.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.node is None:
        run_parent(args)
    else:
        run_node(args)


if __name__ == "__main__":
    main()
