"""The demo's financing round, run through execute_block, ends with the expected codes."""

from __future__ import annotations

import contracts
from node.tools.demo_steps import demo_steps
from node.tools.participants import Participants
from tests.contracts.chain import Chain


def test_demo_steps_end_with_expected_codes_and_states() -> None:
    p = Participants.generate(seed=b"demo")
    chain = Chain.new(p, chain_id="demo-chain")
    steps = demo_steps(p, "demo-chain", chain.time_ms)
    assert {s.section for s in steps} >= {"A", "B", "C", "D", "E", "F", "G", "ext", "alarm", "default", "supervision"}
    for step in steps:
        assert chain.run(step.txs) == step.expected, step.label
    assert chain.case("C1")["state"] == "closed"
    assert chain.case("C2")["state"] == "liquidated"
    assert chain.case("S1")["state"] == "ended"
    assert contracts.view_case(chain.state, "C1-b2") is None
    assert chain.lot("L2")["owner"] == p.bank.id
    assert chain.lot("L1")["released"] == 1000
    kinds = [e["kind"] for o in chain.outcomes for e in o.events]
    assert kinds.count("alarm_raised") == 1 and kinds.count("alarm_resolved") == 1
    assert any(e.get("state") == "overdue" for o in chain.outcomes for e in o.events)


def test_demo_steps_work_with_wall_clock_gaps() -> None:
    """Block times far apart (slow commits) still give the same codes: nothing in the
    demo depends on a step happening before a deadline; devices report often enough
    that 5 s between steps raises no heartbeat alarm that a later step would trip on."""
    p = Participants.generate(seed=b"demo2")
    chain = Chain.new(p, chain_id="demo-chain")
    steps = demo_steps(p, "demo-chain", chain.time_ms)
    for step in steps:
        assert chain.run(step.txs, advance_ms=5_000) == step.expected, step.label
