"""The typed builders cover the contract registry exactly: one builder per transaction
type, its keyword parameters named, typed and required as the registry declares the
body's fields; any valid values build a body the contracts' own admission check
(`TxSpec.check_body`) takes, and a `Signer` signs it with the envelope's expiry kept
apart from a body field of the same name (`rating.issue`'s `valid_until_ms`)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.registry import TX_TYPES, Field
from contracts.schema import ID
from node.client import BUILDERS, Body, NonceBook, Signer, builders
from primitives.envelope import seal
from primitives.errors import Code, GodownError
from primitives.keys import KeyPair
from primitives.tx import SignedTx

PYTHON_TYPES = {
    "id": "str",
    "str": "str",
    "int": "int",
    "bytes": "bytes",
    "bool": "bool",
    "map": "Mapping[str, Any]",
    "envelope": "Envelope | Mapping[str, Any]",
}
RECIPIENT = KeyPair.generate("warehouse", "warehouse")
ENVELOPE = seal(b"reading", {RECIPIENT.id: RECIPIENT.enc_pub}, b"ad")


def test_every_registry_type_has_a_builder_named_after_it() -> None:
    assert set(BUILDERS) == set(TX_TYPES)
    for tx_type, builder in BUILDERS.items():
        assert builder is getattr(builders, tx_type.replace(".", "_"))
        assert " ".join((builder.__doc__ or "").split()) == TX_TYPES[tx_type].doc


@pytest.mark.parametrize("tx_type", sorted(TX_TYPES))
def test_builder_parameters_are_the_declared_fields(tx_type: str) -> None:
    params = inspect.signature(BUILDERS[tx_type]).parameters
    fields = {f.name: f for f in TX_TYPES[tx_type].fields}
    assert list(params) == [f.name for f in fields.values() if f.required] + [
        f.name for f in fields.values() if not f.required
    ]
    for name, param in params.items():
        f = fields[name]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, name
        want = PYTHON_TYPES[f.type] if f.required else f"{PYTHON_TYPES[f.type]} | None"
        assert param.annotation == want, name
        assert (param.default is inspect.Parameter.empty) == f.required, name
        if not f.required:
            assert param.default is None


def values(f: Field) -> st.SearchStrategy[Any]:
    """Valid values of one declared field, within its constraints."""
    if f.choices:
        return st.sampled_from(f.choices)
    if f.type == "id":
        return st.from_regex(ID, fullmatch=True)
    if f.type == "str":
        return st.text(max_size=256)
    if f.type == "int":
        return st.integers(max(f.minimum, 1), f.maximum)  # positive: what a moving report needs
    if f.type == "bytes":
        return st.binary(min_size=f.size or 0, max_size=f.size or 1024)
    if f.type == "bool":
        return st.booleans()
    if f.type == "map":
        return st.dictionaries(st.text(max_size=8), st.integers(0, 10), max_size=3)
    assert f.type == "envelope"
    return st.just(ENVELOPE)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    tx_type = draw(st.sampled_from(sorted(TX_TYPES)))
    kw: dict[str, Any] = {}
    for f in TX_TYPES[tx_type].fields:
        if f.required or draw(st.booleans()):
            kw[f.name] = draw(values(f))
    if tx_type == "device.report":  # the cross-field rules: goods moving name a lot and a quantity
        kw["lot"] = kw["lot"] or "lot-1"
        if kw["kind"] in ("inbound", "outbound"):
            kw.setdefault("quantity", draw(st.integers(1, 1000)))
    if tx_type == "gov.propose":  # the action and its arguments are checked with the body
        kw["action"], kw["args"] = "member.remove", {"member": draw(st.from_regex(ID, fullmatch=True))}
    return tx_type, kw


@given(bodies())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_valid_values_build_bodies_admission_takes(case: tuple[str, dict[str, Any]]) -> None:
    tx_type, kw = case
    body = BUILDERS[tx_type](**kw)
    assert body.type == tx_type
    TX_TYPES[tx_type].check_body(body.fields)  # the contracts' own admission check
    expected = {k: (v.to_dict() if k == "envelope" else v) for k, v in kw.items()}
    assert dict(body.fields) == expected


def test_a_bad_value_is_refused_at_build_time() -> None:
    with pytest.raises(GodownError) as err:
        builders.rating_issue(subject="borrower", grade="Z", valid_until_ms=1, report_hash=bytes(32))
    assert err.value.code is Code.BAD_BODY
    with pytest.raises(GodownError) as err:
        builders.device_report(lot="", seq=1, kind="inbound", quantity=5, envelope=ENVELOPE)
    assert err.value.code is Code.BAD_BODY  # an inbound report names a lot


def test_envelope_expiry_and_the_ratings_expiry_do_not_collide() -> None:
    bank = KeyPair.generate("bank", "bank")
    signer = Signer(bank, "godown-test", NonceBook())
    body = builders.rating_issue(subject="borrower", grade="A", valid_until_ms=111, report_hash=bytes(32))
    first = signer.sign(body, valid_until_ms=999)
    second = signer.sign(body)
    for signed, expiry in ((first, 999), (second, None)):
        tx = SignedTx.decode(signed.encode()).tx
        assert tx.body["valid_until_ms"] == 111
        assert tx.valid_until_ms == expiry
        assert signed.verify(bank.sign_pub)
    assert (first.tx.nonce, second.tx.nonce) == (0, 1)
    assert signer.sign(body, nonce=7).tx.nonce == 7
    assert signer.sign(body).tx.nonce == 8  # the book follows an explicit nonce


def test_body_is_a_frozen_record() -> None:
    body = builders.case_pledge(case="c1")
    assert body == Body("case.pledge", {"case": "c1"})
    with pytest.raises(AttributeError):
        body.type = "case.close"  # type: ignore[misc]
