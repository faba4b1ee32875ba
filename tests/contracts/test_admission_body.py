"""One rule for body errors: whatever the transaction alone decides — field types, byte
lengths, allowed values, ranges, a report's kind against its lot and quantity, a
proposal's action and arguments — is refused at admission with a message naming the
field, so the sender's nonce stays unused; a primary that puts such a transaction in a
block anyway gets the same code recorded for it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import contracts
from contracts.registry import TX_TYPES
from primitives.envelope import Envelope
from primitives.errors import Code, Rejected
from primitives.tx import SignedTx
from tests.contracts.chain import World, verify_real

W = World()


def _envelope() -> dict[str, Any]:
    return Envelope(bytes(24), bytes(40), ((W.W.id, bytes(80)),)).to_dict()


def _broken_bodies() -> list[tuple[Any, str, dict[str, Any], Code, str]]:
    """(signer, type, body, code, what the message names), one per kind of rule."""
    far = W.now + 10**9
    rating = {"subject": W.R.id, "grade": "A", "valid_until_ms": far, "report_hash": bytes(32)}
    device = {"device": "dev-x", "sign_pub": bytes(32), "zone": "zone-a", "kind": "scale"}
    apply = {"case": "C9", "lot": "L9", "bank": W.B.id, "amount": 1000, "maturity_ms": far}
    report = {"lot": "L9", "seq": 1, "kind": "reading", "envelope": _envelope()}
    rotate = {"sign_pub": bytes(32), "enc_pub": bytes(32), "proof": bytes(64)}
    propose = {
        "proposal": "p1",
        "action": "policy.set",
        "args": {"field": "min_grade", "value": "A"},
        "expires_ms": far,
    }
    d = W.d[0]
    return [
        (W.B, "rating.issue", {**rating, "grade": "Z"}, Code.BAD_BODY, "grade"),
        (W.B, "rating.issue", {**rating, "report_hash": bytes(31)}, Code.BAD_BODY, "report_hash"),
        (W.W, "device.register", {**device, "sign_pub": bytes(33)}, Code.BAD_BODY, "sign_pub"),
        (W.W, "device.register", {**device, "kind": "laser"}, Code.BAD_BODY, "kind"),
        (W.R, "case.apply", {**apply, "amount": 0}, Code.BAD_BODY, "amount"),
        (W.B, "case.repay", {"case": "C9", "amount": 0}, Code.BAD_BODY, "amount"),
        (W.B, "case.release_order", {"case": "C9", "quantity": 0}, Code.BAD_BODY, "quantity"),
        (W.B, "case.extend_decide", {"case": "C9", "approve": 2}, Code.BAD_BODY, "approve"),
        (W.W, "lot.release", {"lot": "L9", "quantity": 0}, Code.BAD_BODY, "quantity"),
        (d, "device.report", {**report, "kind": "smell"}, Code.BAD_BODY, "kind"),
        (d, "device.report", {**report, "kind": "inbound", "lot": "", "quantity": 5}, Code.BAD_BODY, "lot"),
        (d, "device.report", {**report, "kind": "outbound", "quantity": 0}, Code.BAD_BODY, "quantity"),
        (d, "device.report", {**report, "kind": "tamper", "lot": ""}, Code.BAD_BODY, "lot"),
        (d, "device.report", {**report, "envelope": {"nonce": bytes(3)}}, Code.BAD_BODY, "envelope"),
        (W.B, "member.rotate_key", {**rotate, "proof": bytes(63)}, Code.BAD_BODY, "proof"),
        (W.B, "member.rotate_key", {**rotate, "enc_pub": bytes(31)}, Code.BAD_BODY, "enc_pub"),
        (W.B, "gov.propose", {**propose, "action": "chain.delete"}, Code.BAD_ACTION, "chain.delete"),
        (W.B, "gov.propose", {**propose, "args": {"field": "min_grade"}}, Code.BAD_ACTION, "value"),
    ]


@pytest.mark.parametrize("case", range(len(_broken_bodies())))
def test_a_body_error_is_refused_at_admission_and_recorded_alike_in_a_block(case: int) -> None:
    w = World()  # fresh nonces and state for every case
    signer, tx_type, body, code, names = _broken_bodies()[case]
    if tx_type == "device.report":
        w.devices()
    stx = w.tx(signer, tx_type, **body)
    nonce = contracts.next_nonce(w.chain.state, stx.tx.sender)
    with pytest.raises(Rejected) as refused:
        contracts.admit(w.chain.state, stx, verify_real, w.chain.genesis.chain_id, w.now)
    assert refused.value.code == code
    assert names in refused.value.message  # the message says what is wrong
    assert contracts.next_nonce(w.chain.state, stx.tx.sender) == nonce  # admission consumed nothing
    assert w.one(stx) == code.value  # a block that carries it anyway records the same code
    assert contracts.next_nonce(w.chain.state, stx.tx.sender) == nonce + 1


def test_well_formed_bodies_pass_admission_whatever_the_state_says() -> None:
    """Admission judges only the body: a valid body about a lot or case that does not
    exist passes it (the handler refuses it in the block with its own code)."""
    w = World()
    stx = w.tx(w.B, "case.repay", case="no-such-case", amount=5)
    contracts.admit(w.chain.state, stx, verify_real, w.chain.genesis.chain_id, w.now)
    assert w.one(stx) == Code.UNKNOWN_CASE.value


_VALUES = st.one_of(
    st.integers(min_value=-2, max_value=2**53 + 1),
    st.binary(max_size=70),
    st.text(max_size=8),
    st.sampled_from(["A", "Z", "scale", "inbound", "outbound", "tamper", "reading", ""]),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    tx_type=st.sampled_from(sorted(TX_TYPES)),
    values=st.dictionaries(st.sampled_from(["case", "lot", "amount", "quantity", "kind", "grade", "seq"]), _VALUES),
)
def test_admission_and_block_agree_on_every_body_the_body_alone_refuses(tx_type: str, values: dict[str, Any]) -> None:
    """For arbitrary bodies: if `check_body` refuses one, admission refuses it with that
    code, and so does execution in a block, before any state is read."""
    spec = TX_TYPES[tx_type]
    body = {f.name: values.get(f.name, _plain(f.type)) for f in spec.fields if f.required or f.name in values}
    try:
        spec.check_body(body)
    except Rejected as exc:
        signer = W.d[0] if "device" in spec.roles else _member_for(spec.roles)
        stx: SignedTx = W.tx(signer, tx_type, **body)
        with pytest.raises(Rejected) as refused:
            contracts.admit(W.chain.state, stx, lambda *_: True, W.chain.genesis.chain_id, W.now)
        if refused.value.code not in (Code.UNKNOWN_SENDER, Code.FORBIDDEN_ROLE):
            assert refused.value.code == exc.code


def _plain(type_: str) -> Any:
    return {"id": "x1", "str": "x", "int": 1, "bytes": bytes(32), "bool": True, "map": {}, "envelope": _envelope()}[
        type_
    ]


def _member_for(roles: tuple[str, ...]) -> Any:
    by_role = {"bank": W.B, "warehouse": W.W, "insurer": W.I, "guarantor": W.G, "borrower": W.R, "auditor": W.A}
    return next(by_role[r] for r in roles if r in by_role)
