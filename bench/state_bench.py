"""Measure storage: the state tree's apply of one block's changes, proofs, rebuild at
open; and the chain store's commit of a 1,000-tx block (one synced WriteBatch) and its
integrity check at open over many blocks.

Prints one JSON line per figure. Default: a state of 200,000 keys, blocks of 3,000
changes (1,000 tx × ~3 keys: two thirds updates of existing keys, one third inserts).

    /work/venv/bin/python bench/state_bench.py [--keys 200000] [--changes 3000] [--blocks 10]
        [--backend memory|leveldb|both] [--chain] [--open-blocks 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time

from primitives.block import Block, Commit, Header, commit_vote_bytes, txs_root
from primitives.hashing import sha256
from primitives.keys import KeyPair
from primitives.state_proof import verify_proof
from primitives.tx import SignedTx, Tx
from storage.chain import ChainStore
from storage.kv import KV, Batch, LevelKV, MemoryKV
from storage.state_tree import StateTree


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def run(kv: KV, backend: str, keys: int, changes: int, blocks: int, rng: random.Random) -> None:
    tree = StateTree(kv)
    present: list[bytes] = []
    chunk = 20_000
    for start in range(0, keys, chunk):
        batch = Batch()
        load = {b"k/%012d" % i: os.urandom(40) for i in range(start, min(keys, start + chunk))}
        tree.apply(load, batch)
        kv.write(batch, sync=False)
        present.extend(load)
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
    emit(
        backend=backend,
        what="apply_ms",
        state_keys=len(present),
        changes=changes,
        median=round(statistics.median(times) * 1e3, 2),
        max=round(max(times) * 1e3, 2),
        cpu_median=round(statistics.median(cpu) * 1e3, 2),
        cpu_max=round(max(cpu) * 1e3, 2),
        keys_per_s=round(changes / statistics.median(times)),
    )
    sample = rng.sample(present, 2000)
    t0 = time.perf_counter()
    proofs = [tree.prove(k) for k in sample]
    t_prove = time.perf_counter() - t0
    root = tree.root
    t0 = time.perf_counter()
    ok = all(verify_proof(root, k, tree.get(k), p) for k, p in zip(sample, proofs))
    t_verify = time.perf_counter() - t0
    size = statistics.mean(len(p.siblings) * 480 + 64 for p in proofs)
    emit(
        backend=backend,
        what="proofs",
        prove_per_s=round(len(sample) / t_prove),
        verify_per_s=round(len(sample) / t_verify),
        all_ok=ok,
        mean_bytes=round(size),
    )
    t0 = time.perf_counter()
    again = StateTree(kv)
    emit(
        backend=backend,
        what="rebuild_at_open_s",
        state_keys=len(present),
        s=round(time.perf_counter() - t0, 2),
        same_root=again.root == root,
    )


def _block(store: ChainStore, txs: list[SignedTx], signer: KeyPair) -> tuple[Block, Commit]:
    h = store.head_height + 1
    sr, rr = store.state_root_at(h - 1), store.results_root_at(h - 1)
    assert sr is not None and rr is not None
    header = Header("bench", h, store.head_hash, h, 0, signer.id, txs_root(txs), sr, rr)
    block = Block(header, tuple(txs), tuple(["ok"] * len(txs)))
    sig = signer.sign(commit_vote_bytes("bench", h, 0, block.hash()))
    return block, Commit("bench", h, 0, block.hash(), ((signer.id, sig),))


def run_chain(keys: int, blocks: int, open_blocks: int) -> None:
    """commit_block of 1,000-tx blocks on a state of `keys`, then open/verify timings."""
    signer = KeyPair.generate("bench", "bank")
    txs = [Tx("bench", "bench.op", signer.id, n, {"blob": os.urandom(64)}).sign(signer) for n in range(1000 * blocks)]
    with tempfile.TemporaryDirectory() as d:
        store = ChainStore.open_path(os.path.join(d, "db"))
        t0 = time.perf_counter()
        store.init_genesis(sha256(b"genesis"), {b"k/%012d" % i: os.urandom(40) for i in range(keys)})
        emit(what="chain_genesis_s", state_keys=keys, s=round(time.perf_counter() - t0, 2))
        rng = random.Random(2)
        times = []
        for b in range(blocks):
            chunk = txs[b * 1000 : (b + 1) * 1000]
            block, commit = _block(store, chunk, signer)
            changes: dict[bytes, bytes | None] = {b"k/%012d" % rng.randrange(keys): os.urandom(40) for _ in range(2000)}
            changes.update({b"n/%d/%d" % (b, i): os.urandom(40) for i in range(3000 - len(changes))})
            t0 = time.perf_counter()
            store.commit_block(block, commit, changes)
            times.append(time.perf_counter() - t0)
        emit(
            what="commit_block_ms",
            txs=1000,
            changes=3000,
            state_keys=keys,
            synced=True,
            median=round(statistics.median(times) * 1e3, 1),
            max=round(max(times) * 1e3, 1),
        )
        store.close()
        t0 = time.perf_counter()
        store = ChainStore.open_path(os.path.join(d, "db"))
        emit(
            what="open_with_integrity_check_s",
            blocks=store.head_height,
            state_keys=keys,
            s=round(time.perf_counter() - t0, 2),
        )
        store.close()
    with tempfile.TemporaryDirectory() as d:
        store = ChainStore.open_path(os.path.join(d, "db"))
        store.init_genesis(sha256(b"genesis"), {})
        small = txs[:10]
        for b in range(open_blocks):
            block, commit = _block(store, small, signer)
            store.commit_block(block, commit, {b"c/%d" % (b % 5000): b"%d" % b})
        store.close()
        for deep in (256, None):
            t0 = time.perf_counter()
            store = ChainStore.open_path(os.path.join(d, "db"), deep_blocks=deep)
            emit(
                what="open_with_integrity_check_s",
                blocks=store.head_height,
                txs_per_block=10,
                deep_blocks=deep if deep is not None else "all",
                s=round(time.perf_counter() - t0, 2),
            )
            store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--changes", type=int, default=3_000)
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--backend", choices=["memory", "leveldb", "both"], default="both")
    ap.add_argument("--chain", action="store_true", help="also measure the chain store (LevelDB)")
    ap.add_argument("--open-blocks", type=int, default=10_000)
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
    if a.chain:
        run_chain(a.keys, a.blocks, a.open_blocks)


if __name__ == "__main__":
    main()
