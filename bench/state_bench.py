"""Measure the authenticated state tree: apply of one block's changes, proofs, rebuild.

Prints one JSON line per figure. Default: a state of 200,000 keys, blocks of 3,000
changes (1,000 tx × ~3 keys: two thirds updates of existing keys, one third inserts).

    /work/venv/bin/python bench/state_bench.py [--keys 200000] [--changes 3000] [--blocks 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time

from storage.kv import Batch, KV, LevelKV, MemoryKV
from storage.state_tree import StateTree, verify_proof


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def run(kv: KV, backend: str, keys: int, changes: int, blocks: int, rng: random.Random) -> None:
    tree = StateTree(kv)
    present: list[bytes] = []
    chunk = 20_000
    for start in range(0, keys, chunk):
        batch = Batch()
        ch = {b"k/%012d" % i: os.urandom(40) for i in range(start, min(keys, start + chunk))}
        tree.apply(ch, batch)
        kv.write(batch, sync=False)
        present.extend(ch)
    next_id = keys
    times: list[float] = []
    cpu: list[float] = []
    for _ in range(blocks):
        ch: dict[bytes, bytes | None] = {}
        for k in rng.sample(present, changes * 2 // 3):
            ch[k] = os.urandom(40)
        for _ in range(changes - len(ch)):
            k = b"k/%012d" % next_id
            next_id += 1
            ch[k] = os.urandom(40)
            present.append(k)
        batch = Batch()
        t0, c0 = time.perf_counter(), time.thread_time()
        tree.apply(ch, batch)
        times.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
        t1 = time.perf_counter()
        kv.write(batch, sync=True)
        emit(backend=backend, what="block_write_synced_ms", ms=round((time.perf_counter() - t1) * 1e3, 2))
    emit(backend=backend, what="apply_ms", state_keys=len(present), changes=changes,
         median=round(statistics.median(times) * 1e3, 2), max=round(max(times) * 1e3, 2),
         cpu_median=round(statistics.median(cpu) * 1e3, 2), cpu_max=round(max(cpu) * 1e3, 2),
         keys_per_s=round(changes / statistics.median(times)))
    sample = rng.sample(present, 2000)
    t0 = time.perf_counter()
    proofs = [tree.prove(k) for k in sample]
    t_prove = time.perf_counter() - t0
    root = tree.root
    t0 = time.perf_counter()
    ok = all(verify_proof(root, k, tree.get(k), p) for k, p in zip(sample, proofs))
    t_verify = time.perf_counter() - t0
    size = statistics.mean(len(p.siblings) * 480 + 64 for p in proofs)
    emit(backend=backend, what="proofs", prove_per_s=round(len(sample) / t_prove),
         verify_per_s=round(len(sample) / t_verify), all_ok=ok, mean_bytes=round(size))
    t0 = time.perf_counter()
    again = StateTree(kv)
    emit(backend=backend, what="rebuild_at_open_s", state_keys=len(present),
         s=round(time.perf_counter() - t0, 2), same_root=again.root == root)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--changes", type=int, default=3_000)
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--backend", choices=["memory", "leveldb", "both"], default="both")
    a = ap.parse_args()
    if a.backend in ("memory", "both"):
        run(MemoryKV(), "memory", a.keys, a.changes, a.blocks, random.Random(1))
    if a.backend in ("leveldb", "both"):
        with tempfile.TemporaryDirectory() as d:
            kv = LevelKV(os.path.join(d, "db"))
            try:
                run(kv, "leveldb", a.keys, a.changes, a.blocks, random.Random(1))
            finally:
                kv.close()


if __name__ == "__main__":
    main()
