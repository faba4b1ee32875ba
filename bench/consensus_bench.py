"""Replica logic throughput for n=4 with no network: blocks/s and CPU µs per block.

Four `Replica`s exchange messages through an in-memory FIFO; the primary keeps
its window full. Measured with the simulator's keyed-hash signer (pure replica
logic) and with Ed25519 (what a node pays), each with and without the canonical
wire encoding. Prints one JSON line per configuration.

    /work/venv/bin/python bench/consensus_bench.py [--blocks 2000]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import deque

from consensus.actions import Broadcast, Execute, Ready, Send
from consensus.config import ReplicaConfig
from consensus.messages import Message, decode_message, encode_message
from consensus.replica import Replica
from consensus.signing import Ed25519Signer, Ed25519Verifier, FakeSigner, FakeVerifier, Signer, Verifier
from primitives.hashing import sha256
from primitives.keys import KeyPair


def run(blocks: int, signer_kind: str, wire: bool, n: int = 4, payload_bytes: int = 256) -> dict[str, object]:
    ids = [f"v{i}" for i in range(n)]
    if signer_kind == "ed25519":
        pairs = {i: KeyPair(i, "bank", sha256(i.encode()), sha256(b"e" + i.encode()), alias=i) for i in ids}
        signers: dict[str, Signer] = {i: Ed25519Signer(p) for i, p in pairs.items()}
        verifier: Verifier = Ed25519Verifier({i: p.sign_pub for i, p in pairs.items()})
    else:
        signers = {i: FakeSigner(i) for i in ids}
        verifier = FakeVerifier(ids)
    reps = {
        i: Replica(
            ReplicaConfig("bench", tuple(ids), i, window=8, checkpoint_interval=16),
            signers[i],
            verifier,
            lambda p: sha256(p) if p else None,
            random.Random(1),
        )
        for i in ids
    }
    queue: deque[tuple[str, Message | bytes]] = deque()
    executed = dict.fromkeys(ids, 0)
    roots = dict.fromkeys(ids, bytes(32))
    messages = 0

    def handle(me: str, ready: Ready) -> None:
        nonlocal messages
        for a in ready.actions:
            if isinstance(a, (Broadcast, Send)):
                item: Message | bytes = encode_message(a.message) if wire else a.message
                targets = [a.to] if isinstance(a, Send) else [i for i in ids if i != me]
                for t in targets:
                    queue.append((t, item))
                    messages += 1
            elif isinstance(a, Execute):
                executed[me] = a.height
                roots[me] = sha256(roots[me] + a.payload)
                handle(me, reps[me].on_executed(a.height, roots[me]))

    filler = bytes(payload_bytes)
    proposed = 0
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    primary = reps[ids[0]]
    while min(executed.values()) < blocks:
        while proposed < blocks and primary.can_propose:
            proposed += 1
            handle(ids[0], primary.propose(b"%d:" % proposed + filler))
        if not queue:
            break
        to, item = queue.popleft()
        msg = decode_message(item) if isinstance(item, bytes) else item
        handle(to, reps[to].step(msg))
    cpu = time.process_time() - start_cpu
    wall = time.perf_counter() - start_wall
    done = min(executed.values())
    return {
        "bench": "consensus_replica",
        "n": n,
        "signer": signer_kind,
        "wire_encoding": wire,
        "blocks": done,
        "blocks_per_s": round(done / wall, 1),
        "cpu_us_per_block": round(cpu / max(1, done) * 1e6, 1),  # all n replicas together
        "cpu_us_per_block_per_replica": round(cpu / max(1, done) / n * 1e6, 1),
        "messages_per_block": round(messages / max(1, done), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=2000)
    args = ap.parse_args()
    for signer_kind in ("fake", "ed25519"):
        for wire in (False, True):
            print(json.dumps(run(args.blocks, signer_kind, wire)), flush=True)


if __name__ == "__main__":
    main()
