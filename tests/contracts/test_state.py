"""State plumbing: the fast state encoder equals the canonical codec on everything the
contracts store; DictState scans in key order; integer sums stay bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from contracts import DictState
from contracts.registry import MAX_INT
from contracts.state import decode_value, encode_value
from node.load.workload import financing_workload
from node.tools.demo_steps import demo_steps
from node.tools.participants import Participants
from primitives import codec
from tests.contracts.chain import Chain, World


def test_state_values_are_canonical_after_demo_and_workload() -> None:
    p = Participants.generate(seed=b"canon")
    chain = Chain.new(p, chain_id="canon")
    for step in demo_steps(p, "canon", chain.time_ms):
        chain.run(step.txs)
    for phase in financing_workload(p, "canon", 2, 3):
        chain.run(phase)
    items = chain.state.items()
    assert len(items) > 40
    for raw in items.values():
        value = decode_value(raw)
        assert codec.encode(value) == raw == encode_value(value)
        assert codec.decode(raw) == value


_json = st.recursive(
    st.none() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(_json)
def test_encode_value_matches_codec(value: object) -> None:
    assert encode_value(value) == codec.encode(value)


def test_dict_state_scan_and_apply() -> None:
    s = DictState({b"a/2": b"x", b"a/1": b"y", b"b/1": b"z"})
    assert [k for k, _ in s.scan(b"a/")] == [b"a/1", b"a/2"]
    s.apply({b"a/0": b"w", b"a/2": None, b"a/9": None, b"a/1": b"v"})
    assert list(s.scan(b"a/")) == [(b"a/0", b"w"), (b"a/1", b"v")]
    assert s.get(b"a/2") is None and list(s.scan(b"c")) == []


def test_quantities_cannot_overflow() -> None:
    w = World()
    w.devices()
    d = w.d[0]
    assert w.one(w.report(d, "L1", "inbound", MAX_INT + 1)) == "bad_body"
    assert w.one(w.report(d, "L1", "inbound", MAX_INT)) == "ok"
    assert w.one(w.report(d, "L1", "inbound", 1)) == "bad_body"
    w.ok(w.tx(w.W, "lot.receive", lot="L1", zone="zone-a", owner=w.R.id, commodity="x", unit="g", quantity=MAX_INT))
    for _ in range(3):
        w.ok(w.report(d, "L1", "outbound", MAX_INT))
    assert w.chain.lot("L1")["outbound"] == MAX_INT


class _CountingReader:
    def __init__(self, inner: DictState) -> None:
        self.inner, self.gets, self.scanned = inner, 0, 0

    def get(self, key: bytes) -> bytes | None:
        self.gets += 1
        return self.inner.get(key)

    def scan(self, prefix: bytes):  # type: ignore[no-untyped-def]
        for item in self.inner.scan(prefix):
            self.scanned += 1
            yield item


def test_time_hook_reads_only_what_is_due() -> None:
    """With many accepted devices and disbursed cases, a block in which nothing is due
    reads no device or case; when one device falls silent only its entry is touched."""
    import contracts
    from contracts import BlockContext
    from primitives.genesis import Policy
    from tests.contracts.chain import verify_real

    p = Participants.generate(seed=b"hook")
    chain = Chain.new(p, chain_id="hook", policy=Policy(heartbeat_interval_ms=60_000))
    for phase in financing_workload(p, "hook", 30, 0)[:7]:  # up to disbursement
        assert set(chain.run(phase)) == {"ok"}
    counting = _CountingReader(chain.state)
    out = contracts.execute_block(counting, BlockContext("hook", 99, chain.time_ms + 1000, "v"), [], verify_real)
    # the policy and the scheduled validator set; the first entry of each due index
    assert out.changes == {} and counting.gets <= 2 and counting.scanned <= 3
    counting = _CountingReader(chain.state)
    out = contracts.execute_block(counting, BlockContext("hook", 99, chain.time_ms + 61_000, "v"), [], verify_real)
    raised = [e for e in out.events if e["kind"] == "alarm_raised"]
    assert len(raised) == 30  # every device went silent at once
    assert counting.gets <= 2 + 30 * 5  # per silent device: itself, its last report, zone, lot, case
