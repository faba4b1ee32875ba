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
    """A backup (mempool + deadlines) and a correct primary (a real mempool: arrival order,
    a transaction that came before the nonce it follows goes right after that one), in
    one-second steps."""

    def __init__(self) -> None:
        self.chain = Chain()
        self.pool = Mempool(self.chain.admit, self.chain.next_nonce)
        self.primary = Mempool(self.chain.admit, self.chain.next_nonce)
        self.deadlines = RequestDeadlines(TIMEOUT, max_tracked=1000)
        self.nonces = [0] * len(KEYS)
        self.late: list[SignedTx] = []  # sent elsewhere, reaching the primary only next step
        self.now = 0.0
        self.verdicts: list[tuple[float, bool, bool]] = []

    def arrive(self, sender: int, here: bool, late: bool = False) -> None:
        """A client transaction: submitted to this backup (and forwarded), or elsewhere
        (`late`: reaching the primary after what arrives in this step)."""
        key = KEYS[sender]
        stx = Tx("c", "rating.issue", key.id, self.nonces[sender], {"n": self.nonces[sender]}).sign(key)
        if here:
            try:
                self.pool.add(stx)
            except Rejected:
                return
            self.deadlines.arrived(stx.tx_id, self.now, own=True)
        self.nonces[sender] += 1
        if late and not here:
            self.late.append(stx)
        else:
            self._to_primary(stx)

    def _to_primary(self, stx: SignedTx) -> None:
        try:
            self.primary.add(stx)
        except Rejected:
            pass  # outside the window: its sender sends it again, as a client would

    def commit(self, count: int, skip: str | None = None) -> None:
        """The primary commits `count` in its order (a faulty one leaves out `skip`'s)."""
        for stx in self.late:
            self._to_primary(stx)
        self.late = []
        taken = self.primary.take(count if skip is None else 10**6)
        block = [t for t in taken if t.tx.sender != skip][:count]
        self.primary.release([t for t in taken if t not in block])
        self.chain.commit(block)
        self.primary.committed(block)
        self.pool.committed(block)
        self.deadlines.committed(block, self.pool, self.now)

    def tick(self) -> None:
        self.now += 1.0
        v = self.deadlines.check(self.pool, self.now)
        self.verdicts.append((self.now, v.overdue, v.suspect))


steps = st.lists(
    st.tuples(st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.booleans()), max_size=4), st.integers(0, 4)),
    min_size=5,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_an_arrival_order_primary_is_never_overdue(plan: list[tuple[list[tuple[int, bool, bool]], int]]) -> None:
    """Whatever arrives where, in which nonce order, and however slowly the primary works
    through its queue (a backlog far longer than the timeout included), it never passes a
    request over."""
    w = World()
    for arrivals, throughput in plan:
        for sender, here, late in arrivals:
            w.arrive(sender, here, late)
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
    w.deadlines.committed([forged], w.pool, w.now)  # in a block, but void: the real one is still pending
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


def test_a_request_that_came_before_its_predecessor_is_timed_from_its_turn() -> None:
    """Sender 0's nonce 1 reaches this backup first; nonce 0 reaches the primary through
    another node only after four of this backup's later transactions, so a correct primary
    commits those first (nonce 1 goes right after nonce 0). Timed from its arrival here, the
    backup would see its own later transactions overtake it past the timeout and ask for a
    view change; timed from its turn, it does not."""
    w = World()
    w.arrive(0, here=False, late=True)  # reserve nonce 0 …
    first = w.late.pop()
    w.arrive(0, here=True)  # … nonce 1 arrives here at t=0
    w.tick()
    for _ in range(4):
        w.arrive(1, here=True)  # this backup's later ones, at t=1, reach the primary first
    w.late.append(first)  # nonce 0 reaches the primary now, behind them
    w.commit(0)
    for _ in range(int(TIMEOUT) + 4):
        w.commit(1)
        w.tick()
    assert w.chain.next_nonce(KEYS[0].id) == 2, "nonce 1 committed right after nonce 0"
    assert not any(overdue for _, overdue, _ in w.verdicts), w.verdicts
