"""SignaturePool and SignatureCache: signatures checked on worker threads must mark only
valid signatures of senders registered in state, skip what is already known, split large
batches over several futures, and leave the shared cache consistent under concurrent marks.

Everything runs against a real in-memory ledger built from a reproducible genesis, with
transactions really signed (and really tampered with) by the participants' keys.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, wait

import pytest

from node.client.txs import sign_tx
from node.load.workload import workload_device
from node.server.ledger import Ledger, SignatureCache
from node.server.sigpool import MIN_CHUNK, SignaturePool
from node.tools.participants import Participants
from primitives.keys import KeyPair
from primitives.tx import SignedTx

CHAIN = "godown-sigpool-test"
P = Participants.generate(seed=b"sigpool-test")
WAIT_S = 30.0


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    led = Ledger.open(None, P.genesis(CHAIN, 1_700_000_000_000))
    try:
        yield led
    finally:
        led.close()


@pytest.fixture
def pool(ledger: Ledger) -> Iterator[SignaturePool]:
    sp = SignaturePool(ledger.signatures, workers=2)
    try:
        yield sp
    finally:
        sp.close()


def ratings(signer: KeyPair, count: int, first_nonce: int = 0) -> list[SignedTx]:
    return [
        sign_tx(signer, CHAIN, n, "rating.issue", {"subject": P.borrower.id, "grade": "A", "n": n})
        for n in range(first_nonce, first_nonce + count)
    ]


def tampered(stx: SignedTx, other: SignedTx) -> SignedTx:
    """`stx` carrying `other`'s signature: a well-formed 64-byte Ed25519 signature, but not over `stx`."""
    assert len(other.sig) == 64 and other.sig != stx.sig
    return SignedTx(tx=stx.tx, tx_bytes=stx.tx_bytes, sig=other.sig)


def finish(futures: list[Future[None]]) -> None:
    done, not_done = wait(futures, timeout=WAIT_S)
    assert not not_done, "signature checks did not finish in time"
    for f in done:
        assert f.exception() is None


def test_valid_member_signatures_are_marked_in_several_chunks(ledger: Ledger) -> None:
    txs = ratings(P.bank, 60) + ratings(P.warehouse, 40)
    cache = ledger.signatures
    assert not any(cache.known(t, P.bank.sign_pub) for t in txs[:60])
    sp = SignaturePool(cache, workers=4)
    try:
        futures = sp.check(ledger.state, txs)
        # 100 signatures over 4 workers: chunks of max(MIN_CHUNK, 25) = 25.
        assert MIN_CHUNK <= 25
        assert len(futures) == 4
        finish(futures)
    finally:
        sp.close()
    assert all(cache.known(t, P.bank.sign_pub) for t in txs[:60])
    assert all(cache.known(t, P.warehouse.sign_pub) for t in txs[60:])
    # Marked against its own sender's key only.
    assert not cache.known(txs[0], P.warehouse.sign_pub)


def test_small_batch_is_one_future(ledger: Ledger, pool: SignaturePool) -> None:
    txs = ratings(P.insurer, MIN_CHUNK)
    futures = pool.check(ledger.state, txs)
    assert len(futures) == 1
    finish(futures)
    assert all(ledger.signatures.known(t, P.insurer.sign_pub) for t in txs)


def test_tampered_signature_is_not_marked(ledger: Ledger, pool: SignaturePool) -> None:
    good = ratings(P.bank, 40)
    bad = tampered(good[10], good[11])
    assert bad.tx_id == good[10].tx_id and bad.sig != good[10].sig
    batch = good[:10] + [bad] + good[11:]
    futures = pool.check(ledger.state, batch)
    assert futures, "the tampered transaction's sender is a member: it must be checked"
    finish(futures)
    cache = ledger.signatures
    assert not cache.known(bad, P.bank.sign_pub)
    assert not ledger.verify(bad, P.bank.sign_pub)
    assert not cache.known(bad, P.bank.sign_pub)  # a failed inline check does not mark it either
    # The genuine signature of the same transaction is a different cache entry.
    assert not cache.known(good[10], P.bank.sign_pub)
    assert all(cache.known(t, P.bank.sign_pub) for t in good[:10] + good[11:])
    assert ledger.verify(good[10], P.bank.sign_pub)


def test_unregistered_sender_is_skipped(ledger: Ledger, pool: SignaturePool) -> None:
    device = workload_device(CHAIN, 0)
    reports = ratings(device, 5)
    assert pool.check(ledger.state, reports) == []
    assert not any(ledger.signatures.known(t, device.sign_pub) for t in reports)

    # Mixed with a member's transactions: only the member's are checked.
    members = ratings(P.guarantor, 3)
    futures = pool.check(ledger.state, reports + members)
    assert len(futures) == 1
    finish(futures)
    assert all(ledger.signatures.known(t, P.guarantor.sign_pub) for t in members)
    assert not any(ledger.signatures.known(t, device.sign_pub) for t in reports)


def test_already_known_signatures_give_no_work(ledger: Ledger, pool: SignaturePool) -> None:
    txs = ratings(P.borrower, 50)
    finish(pool.check(ledger.state, txs))
    assert all(ledger.signatures.known(t, P.borrower.sign_pub) for t in txs)
    assert pool.check(ledger.state, txs) == []
    assert pool.check(ledger.state, []) == []

    # Known ones are filtered out; only the new ones are checked.
    more = ratings(P.borrower, 3, first_nonce=50)
    futures = pool.check(ledger.state, txs + more)
    assert len(futures) == 1
    finish(futures)
    assert all(ledger.signatures.known(t, P.borrower.sign_pub) for t in more)


def test_signature_cache_concurrent_marks_stay_within_capacity() -> None:
    capacity = 64
    cache = SignatureCache(capacity=capacity)
    base = ratings(P.bank, 1)[0]
    threads_n, per_thread = 8, 400
    # Distinct cache entries (same tx id, distinct signature bytes); mark() does not verify.
    entries = [
        [
            SignedTx(tx=base.tx, tx_bytes=base.tx_bytes, sig=(t * per_thread + i).to_bytes(64, "big"))
            for i in range(per_thread)
        ]
        for t in range(threads_n)
    ]
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n + 2)
    stop = threading.Event()

    def marker(items: list[SignedTx]) -> None:
        try:
            start.wait()
            for stx in items:
                cache.mark(stx, P.bank.sign_pub)
        except BaseException as exc:  # noqa: BLE001 (reported by the test)
            errors.append(exc)

    def reader() -> None:
        try:
            start.wait()
            while not stop.is_set():
                for items in entries:
                    cache.known(items[-1], P.bank.sign_pub)
                    cache.verify(items[0], P.warehouse.sign_pub)  # wrong key: never cached or marked
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # force frequent thread switches inside mark()
    try:
        workers = [threading.Thread(target=marker, args=(items,)) for items in entries]
        readers = [threading.Thread(target=reader) for _ in range(2)]
        for th in workers + readers:
            th.start()
        for th in workers:
            th.join(WAIT_S)
        stop.set()
        for th in readers:
            th.join(WAIT_S)
    finally:
        sys.setswitchinterval(old)
    assert not any(th.is_alive() for th in workers + readers)
    assert errors == []
    flat = [stx for items in entries for stx in items]
    known = [stx for stx in flat if cache.known(stx, P.bank.sign_pub)]
    # Far more distinct entries than capacity were marked: exactly `capacity` remain.
    assert len(known) == capacity
    assert not any(cache.known(stx, P.warehouse.sign_pub) for stx in flat)
