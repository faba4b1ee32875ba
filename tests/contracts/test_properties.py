"""Property tests: whatever the sequence of transactions (valid or not, from any
party, at any block times), the ledger's invariants hold:

- no lot is ever held by two open cases/supervisions (no double pledge);
- a case never orders more than repayment freed, nor releases more than ordered;
- a lot never releases more than devices saw leaving or than it holds;
- a rejected transaction changes nothing but its sender's nonce;
- execute_block is deterministic.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import contracts
from contracts import BlockContext
from contracts.cases import freed_quantity
from contracts.records import OPEN_STATES
from contracts.state import P_CASE, P_LOT, decode_value, decoded_values_intact
from primitives.genesis import Policy
from tests.contracts.chain import World, verify_real

CASES = ("C1", "C2", "C3")
SUPS = ("S1", "S2")
LOTS = ("L1", "L2")

_case = st.sampled_from(CASES)
_lot = st.sampled_from(LOTS)
_qty = st.integers(min_value=1, max_value=700)
_amt = st.integers(min_value=1, max_value=1200)

ACTION = st.one_of(
    *[st.tuples(st.just("next"), _case, _lot, st.sampled_from(("B", "B2")), _amt, _qty)] * 6,
    st.tuples(st.just("apply"), _case, _lot, st.sampled_from(("B", "B2")), _amt),
    st.tuples(st.just("pledge"), st.sampled_from(CASES + SUPS)),
    st.tuples(st.just("disburse"), _case, st.sampled_from(("B", "B2"))),
    st.tuples(st.just("repay"), _case, _amt),
    st.tuples(st.just("order"), _case, _qty),
    st.tuples(st.just("out"), _lot, _qty),
    st.tuples(st.just("release"), _lot, _qty),
    st.tuples(st.just("close"), _case, st.sampled_from(("B", "W"))),
    st.tuples(st.just("default"), _case),
    st.tuples(st.just("liquidate"), _case),
    st.tuples(st.just("sup_open"), st.sampled_from(SUPS), _lot),
    st.tuples(st.just("sup_end"), st.sampled_from(SUPS)),
    st.tuples(st.just("ext"), _case),
    st.tuples(st.just("consent"), _case, st.sampled_from(("I", "G"))),
    st.tuples(st.just("decide"), _case, st.integers(0, 1)),
    st.tuples(st.just("resolve"), st.sampled_from(("B", "W"))),
    st.tuples(st.just("tamper"), _lot),
)


def _world() -> World:
    w = World(policy=Policy(heartbeat_interval_ms=120_000), seed=b"prop")
    w.rate()
    w.devices("zone-a", (0,))
    w.devices("zone-b", (1,))
    w.lot("L1", "zone-a", 0, 1000)
    w.lot("L2", "zone-b", 1, 600)
    return w


def _tx(w: World, action: tuple[Any, ...], alarms: list[str]) -> Any:
    kind, *a = action
    who = {"B": w.B, "B2": w.B2, "W": w.W, "I": w.I, "G": w.G}
    case = contracts.view_case(w.chain.state, a[0]) if kind != "next" and a and a[0] in CASES else None
    bank = w.B2 if case is not None and case["bank"] == w.B2.id else w.B
    dev = {"L1": w.d[0], "L2": w.d[1]}
    if kind == "next":  # the natural next step of a case, to reach deep states often
        # drive the first case that is not finished yet
        target = next(
            (c for c in CASES if (v := contracts.view_case(w.chain.state, c)) is None or v["state"] in OPEN_STATES),
            CASES[0],
        )
        a = [target, *a[1:]]
        case = contracts.view_case(w.chain.state, target)
        state = case["state"] if case else None
        if state is None:
            return _tx(w, ("apply", *a[:4]), alarms)
        if state == "applied":
            return _tx(w, ("pledge", a[0]), alarms)
        if state == "pledged":
            bank = "B" if case["bank"] == w.B.id else "B2"
            return _tx(w, ("disburse", a[0], bank), alarms)
        if state in ("disbursed", "overdue") and a[3] % 3:
            return _tx(w, ("repay", a[0], a[3]), alarms)
        if state in ("disbursed", "overdue", "repaid") and a[4] % 2:
            return _tx(w, ("order", a[0], a[4]), alarms)
        if state in ("disbursed", "overdue", "repaid"):
            lot = contracts.view_lot(w.chain.state, case["lot"])
            if lot["outbound"] > lot["released"]:
                return _tx(w, ("release", case["lot"], a[4]), alarms)
            return _tx(w, ("out", case["lot"], a[4]), alarms)
        return _tx(w, ("close", a[0], "B"), alarms)
    if kind == "apply":
        return w.tx(
            w.R,
            "case.apply",
            case=a[0],
            lot=a[1],
            bank=who[a[2]].id,
            insurer=w.I.id,
            guarantor=w.G.id,
            amount=a[3],
            maturity_ms=w.now + 20_000,
        )
    if kind == "pledge":
        return w.tx(w.W, "case.pledge", case=a[0])
    if kind == "disburse":
        return w.tx(who[a[1]], "case.disburse", case=a[0])
    if kind == "repay":
        return w.tx(bank, "case.repay", case=a[0], amount=a[1])
    if kind == "order":
        return w.tx(bank, "case.release_order", case=a[0], quantity=a[1])
    if kind == "out":
        return w.report(dev[a[0]], a[0], "outbound", a[1], recipients=_all(w))
    if kind == "release":
        return w.tx(w.W, "lot.release", lot=a[0], quantity=a[1])
    if kind == "close":
        return w.tx(bank if a[1] == "B" else w.W, "case.close", case=a[0])
    if kind == "default":
        return w.tx(bank, "case.default", case=a[0])
    if kind == "liquidate":
        return w.tx(bank, "case.liquidate", case=a[0])
    if kind == "sup_open":
        return w.tx(w.B, "supervision.open", supervision=a[0], party=w.R.id, lot=a[1], end_ms=w.now + 50_000)
    if kind == "sup_end":
        return w.tx(w.B, "supervision.end", supervision=a[0])
    if kind == "ext":
        return w.tx(w.R, "case.extend_request", case=a[0], new_maturity_ms=w.now + 40_000)
    if kind == "consent":
        return w.tx(who[a[1]], "case.extend_consent", case=a[0])
    if kind == "decide":
        return w.tx(bank, "case.extend_decide", case=a[0], approve=a[1])
    if kind == "resolve":
        return w.tx(who[a[0]], "alarm.resolve", alarm=alarms[-1] if alarms else "none")
    return w.report(dev[a[0]], a[0], "tamper", recipients=_all(w))


def _all(w: World) -> dict[str, bytes]:
    return {**w.p.watchers(), w.B2.id: w.B2.enc_pub}


def _check_invariants(w: World) -> None:
    state = w.chain.state
    records = [decode_value(v) for _, v in state.scan(P_CASE)]
    lots = {decode_value(v)["id"]: decode_value(v) for _, v in state.scan(P_LOT)}
    for lot_id, lot in lots.items():
        holders = [r["id"] for r in records if r["lot"] == lot_id and r["state"] in OPEN_STATES]
        assert len(holders) <= 1, (lot_id, holders)
        assert lot["case"] == (holders[0] if holders else None) or (lot["case"] is not None and not holders), (
            lot,
            holders,
        )
        assert 0 <= lot["released"] <= min(lot["outbound"], lot["quantity"]), lot
    for r in records:
        assert 0 <= r["released"] <= r["ordered"], r
        assert r["outbound"] <= r["ordered"], r
        assert 0 <= r["repaid"] <= r["amount"] or r["kind"] == "supervision", r
        if r["kind"] == "case":
            assert r["ordered"] <= freed_quantity(r), r
        else:
            assert r["ordered"] <= r["pledged_quantity"], r


ADVANCE = st.one_of(st.integers(min_value=0, max_value=15_000), st.just(200_000))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(ACTION, ADVANCE), min_size=15, max_size=40))
def test_invariants_hold_for_any_sequence(actions: list[tuple[tuple[Any, ...], int]]) -> None:
    w = _world()
    alarms: list[str] = []
    for action, advance in actions:
        stx = _tx(w, action, alarms)
        height, t = w.chain.height + 1, w.now + advance
        ctx = BlockContext(w.chain.genesis.chain_id, height, t, "v")
        out = contracts.execute_block(w.chain.state, ctx, [stx], verify_real)
        assert out == contracts.execute_block(w.chain.state, ctx, [stx], verify_real)  # deterministic
        if out.results[0] != "ok":
            hook_only = contracts.execute_block(w.chain.state, ctx, [], verify_real)
            nonce_key = contracts.state_key_for("nonce", stx.tx.sender)
            assert {k: v for k, v in out.changes.items() if k != nonce_key} == hook_only.changes, out.results
            assert out.events == hook_only.events
        w.chain.run([stx], time_ms=t)
        assert w.chain.outcomes[-1] == out
        alarms += [e["alarm"] for e in out.events if e["kind"] == "alarm_raised"]
        _check_invariants(w)
    assert decoded_values_intact()  # no handler edited a value it was handed
