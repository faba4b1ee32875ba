"""Per-request deadlines at a backup (node/server/pbft/deadlines.py), against a real mempool
and a simulated primary: a correct (arrival-order) primary is never found overdue however
long its queue, and one that skips a sender while committing later transactions is, within
the timeout."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.server.mempool import Mempool
from node.server.pbft.deadlines import RequestDeadlines
from primitives.errors import Rejected
from primitives.keys import KeyPair
from primitives.tx import SignedTx, Tx
from tests.node.test_mempool import Chain

KEYS = [KeyPair.generate(f"s{i}", "bank") for i in range(4)]
TIMEOUT = 4.0


class World:
    """A backup (mempool + deadlines) and the primary's queue, in one-second steps."""

    def __init__(self) -> None:
        self.chain = Chain()
        self.pool = Mempool(self.chain.admit, self.chain.next_nonce)
        self.deadlines = RequestDeadlines(TIMEOUT, max_tracked=1000)
        self.primary_queue: list[SignedTx] = []  # arrival order at the primary
        self.nonces = [0] * len(KEYS)
        self.now = 0.0
        self.verdicts: list[tuple[float, bool, bool]] = []

    def arrive(self, sender: int, here: bool) -> None:
        """A client transaction: submitted to this backup (and forwarded), or elsewhere."""
        key = KEYS[sender]
        stx = Tx("c", "rating.issue", key.id, self.nonces[sender], {"n": self.nonces[sender]}).sign(key)
        if here:
            try:
                self.pool.add(stx)
            except Rejected:
                return
            self.deadlines.arrived(stx.tx_id, self.now, own=True)
        self.nonces[sender] += 1
        self.primary_queue.append(stx)

    def commit(self, count: int, skip: str | None = None) -> None:
        """The primary commits the first `count` of its queue in order (leaving out `skip`'s)."""
        block = [t for t in self.primary_queue if t.tx.sender != skip][:count]
        for t in block:
            self.primary_queue.remove(t)
        self.chain.commit(block)
        self.pool.committed(block)
        self.deadlines.committed(block, self.pool)

    def tick(self) -> None:
        self.now += 1.0
        v = self.deadlines.check(self.pool, self.now)
        self.verdicts.append((self.now, v.overdue, v.suspect))


steps = st.lists(
    st.tuples(st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=4), st.integers(0, 4)),
    min_size=5,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_an_arrival_order_primary_is_never_overdue(plan: list[tuple[list[tuple[int, bool]], int]]) -> None:
    """Whatever arrives where and however slowly the primary works through its queue (a
    backlog far longer than the timeout included), it never passes a request over."""
    w = World()
    for arrivals, throughput in plan:
        for sender, here in arrivals:
            w.arrive(sender, here)
        w.commit(throughput)
        w.tick()
    assert not any(overdue for _, overdue, _ in w.verdicts), w.verdicts


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3), st.integers(0, 5))
def test_a_censoring_primary_is_overdue_within_the_timeout(others_per_step: int, warmup: int) -> None:
    """The primary skips sender 0 and commits everyone else's, including transactions that
    reached this backup after sender 0's: at the timeout the backup asks for a view change."""
    w = World()
    for _ in range(warmup):
        w.arrive(1, here=True)
        w.commit(5)
        w.tick()
    w.arrive(0, here=True)
    censored_at = w.now
    for _ in range(int(TIMEOUT) + 2):
        for i in range(others_per_step):
            w.arrive(1 + i % 3, here=True)
        w.commit(10, skip=KEYS[0].id)
        w.tick()
    overdue_at = [t for t, overdue, _ in w.verdicts if overdue]
    assert overdue_at and overdue_at[0] - censored_at <= TIMEOUT + 1, w.verdicts


def test_no_evidence_only_suspects_and_a_void_copy_is_evidence() -> None:
    """Only this backup's clients' transactions wait, nothing newer of theirs commits: that
    is suspicion, not evidence; a block carrying a void copy of the waiting one is."""
    w = World()
    w.arrive(0, here=True)
    waiting = w.pool.pending()[0]
    for _ in range(int(TIMEOUT) + 1):
        w.arrive(1, here=False)  # others' transactions, never seen here, commit
        w.commit(5, skip=KEYS[0].id)
        w.tick()
    assert any(s for _, _, s in w.verdicts) and not any(o for _, o, _ in w.verdicts)
    forged = SignedTx(waiting.tx, waiting.tx_bytes, bytes(64))
    w.deadlines.committed([forged], w.pool)  # in a block, but void: the real one is still pending
    w.tick()
    assert w.verdicts[-1][1], "a void copy in a block is evidence the primary passed it over"


def test_the_relay_goes_once_per_request_and_view() -> None:
    w = World()
    w.arrive(0, here=True)
    relays = []
    for _ in range(int(TIMEOUT)):
        w.now += 1.0
        relays.append(len(w.deadlines.check(w.pool, w.now).relay))
    assert relays.count(1) == 1 and relays[1] == 1  # at half the timeout, once
    w.deadlines.new_view(w.now)
    w.now += TIMEOUT / 2
    assert len(w.deadlines.check(w.pool, w.now).relay) == 1  # again for the new primary
