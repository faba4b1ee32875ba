"""Mempool: admission codes, duplicates, capacity, and blocks without nonce gaps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.server.mempool import Mempool
from primitives.errors import Code, GodownError, Rejected
from primitives.keys import KeyPair
from primitives.tx import SignedTx, Tx

KEYS = [KeyPair.generate(f"k{i}", "bank") for i in range(3)]


def tx(key: KeyPair, nonce: int) -> SignedTx:
    return Tx("c", "rating.issue", key.id, nonce, {"n": nonce}).sign(key)


class Chain:
    """Committed nonces, as the state would report them."""

    def __init__(self) -> None:
        self.nonces: dict[str, int] = {}

    def admit(self, stx: SignedTx) -> None:
        nxt = self.nonces.get(stx.tx.sender, 0)
        if not nxt <= stx.tx.nonce < nxt + 64:
            raise Rejected(Code.BAD_NONCE, "outside window")

    def next_nonce(self, sender: str) -> int:
        return self.nonces.get(sender, 0)

    def commit(self, txs: list[SignedTx]) -> None:
        for t in txs:
            assert t.tx.nonce == self.nonces.get(t.tx.sender, 0), "nonce gap in a block"
            self.nonces[t.tx.sender] = t.tx.nonce + 1


def test_duplicates_full_and_window() -> None:
    chain = Chain()
    pool = Mempool(chain.admit, chain.next_nonce, max_txs=2)
    pool.add(tx(KEYS[0], 0))
    for bad, code in ((tx(KEYS[0], 0), Code.DUPLICATE), (tx(KEYS[1], 100), Code.BAD_NONCE)):
        with pytest.raises(GodownError) as err:
            pool.add(bad)
        assert err.value.code is code
    pool.add(tx(KEYS[0], 1))
    with pytest.raises(GodownError) as err:
        pool.add(tx(KEYS[1], 0))
    assert err.value.code is Code.MEMPOOL_FULL
    assert pool.next_nonce(KEYS[0].id) == 2


@settings(max_examples=60)
@given(st.permutations([(k, n) for k in range(3) for n in range(6)]), st.integers(1, 7))
def test_blocks_never_have_nonce_gaps(order: list[tuple[int, int]], block_size: int) -> None:
    chain = Chain()
    pool = Mempool(chain.admit, chain.next_nonce)
    for k, n in order:
        pool.add(tx(KEYS[k], n))
    rounds = 0
    while len(pool) and rounds < 50:
        block = pool.take(block_size)
        assert len(block) <= block_size
        chain.commit(block)
        pool.committed(block)
        rounds += 1
    assert len(pool) == 0
    assert all(chain.nonces[k.id] == 6 for k in KEYS)


def brute_ready(pool: Mempool, chain: Chain) -> bool:
    """`ready()` by its definition: some sender's next nonce to hand out is pending."""
    pending = {(t.tx.sender, t.tx.nonce) for t in pool.pending()}
    handed = {s: n for s, n in pool._taken.items()}  # noqa: SLF001 (the definition needs it)
    return any((s, max(chain.next_nonce(s), handed.get(s, 0))) in pending for s, _ in pending)


@settings(max_examples=80)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 2), st.integers(0, 7)),
            st.tuples(st.just("take"), st.integers(1, 5), st.just(0)),
            st.tuples(st.just("commit"), st.just(0), st.just(0)),
            st.tuples(st.just("release"), st.just(0), st.just(0)),
        ),
        max_size=40,
    )
)
def test_ready_is_kept_exact(ops: list[tuple[str, int, int]]) -> None:
    # the pool keeps readiness incrementally; it must always agree with the definition
    chain = Chain()
    pool = Mempool(chain.admit, chain.next_nonce)
    proposed: list[SignedTx] = []
    for op, a, b in ops:
        if op == "add":
            try:
                pool.add(tx(KEYS[a], b))
            except GodownError:
                pass
        elif op == "take":
            proposed += pool.take(a)
        elif op == "commit" and proposed:
            chain.commit(proposed)
            pool.committed(proposed)
            proposed = []
        elif op == "release" and proposed:
            pool.release(proposed)
            proposed = []
        assert pool.ready() == brute_ready(pool, chain)


def test_take_follows_a_run_that_arrived_backwards() -> None:
    chain = Chain()
    pool = Mempool(chain.admit, chain.next_nonce)
    for n in (3, 2, 1):
        pool.add(tx(KEYS[0], n))
    pool.add(tx(KEYS[1], 0))
    assert pool.ready()  # KEYS[1] can go
    assert not Mempool(chain.admit, chain.next_nonce).ready()
    pool.add(tx(KEYS[0], 0))  # arrives last, unlocks the run
    assert [(t.tx.sender, t.tx.nonce) for t in pool.take(10)] == [(KEYS[1].id, 0)] + [(KEYS[0].id, n) for n in range(4)]
    assert not pool.ready() and len(pool) == 0


def test_take_keeps_arrival_order_across_senders() -> None:
    # a client that sends A's 0, B's 0, A's 1, B's 1 in that order gets them executed so
    chain = Chain()
    pool = Mempool(chain.admit, chain.next_nonce)
    order = [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (0, 2)]
    for k, n in order:
        pool.add(tx(KEYS[k], n))
    assert [(t.tx.sender, t.tx.nonce) for t in pool.take(10)] == [(KEYS[k].id, n) for k, n in order]


def test_release_returns_uncommitted_proposal() -> None:
    chain = Chain()
    pool = Mempool(chain.admit, chain.next_nonce)
    for n in range(3):
        pool.add(tx(KEYS[0], n))
    taken = pool.take(10)
    assert len(taken) == 3 and len(pool) == 0
    pool.release(taken)
    assert [t.tx.nonce for t in pool.take(10)] == [0, 1, 2]
