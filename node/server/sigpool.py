"""Signature checks on worker threads, ahead of the code that needs them.

libsodium's Ed25519 verification runs in C with the GIL released (PyNaCl calls
it through cffi), so a node can check a batch of signatures on another core
while its event loop goes on: a client batch's while consensus runs, a proposal's
while the previous block executes. Valid signatures land in the ledger's
`SignatureCache`; admission and execution then find them there. A signature the
pool has not reached yet is simply checked again inline, so nothing waits on the
pool for correctness, only for speed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import contracts
from node.server.ledger import SignatureCache
from primitives.tx import SignedTx

MIN_CHUNK = 16  # below this a hand-off to a thread costs more than it saves
WORKER_NICE = 10


def _lower_priority() -> None:
    """Worker threads yield the cores to the event loop, which carries consensus: on
    Linux a thread's nice value is its own (setpriority on its thread id)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)


class SignaturePool:
    def __init__(self, cache: SignatureCache, workers: int = 2) -> None:
        self._cache = cache
        self._workers = max(1, workers)
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="sigcheck", initializer=_lower_priority)

    def check(self, state: contracts.StateReader, txs: Iterable[SignedTx]) -> list[Future[None]]:
        """Start checking the signatures of `txs` whose senders `state` knows (the others
        are left to execution, which sees their keys once registered)."""
        keys: dict[str, bytes | None] = {}
        todo: list[tuple[SignedTx, bytes]] = []
        for stx in txs:
            sender = stx.tx.sender
            if sender not in keys:
                keys[sender] = contracts.sender_key(state, sender)
            key = keys[sender]
            if key is not None and not self._cache.known(stx, key):
                todo.append((stx, key))
        if not todo:
            return []
        size = max(MIN_CHUNK, -(-len(todo) // self._workers))
        return [self._executor.submit(self._run, todo[i : i + size]) for i in range(0, len(todo), size)]

    def _run(self, items: list[tuple[SignedTx, bytes]]) -> None:
        for stx, key in items:
            if stx.verify(key):
                self._cache.mark(stx, key)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
