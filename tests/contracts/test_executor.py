"""The executor's pipeline: chain → sender → signature → nonce → expiry → type → role
→ body → handler, nonce consumption, rollback, admission, determinism."""

from __future__ import annotations

import pytest

import contracts
from contracts import BlockContext, DictState
from node.client.txs import sign_tx
from primitives.errors import Code, Rejected
from primitives.keys import KeyPair
from primitives.tx import SignedTx, Tx
from tests.contracts.chain import World, verify_real

CHAIN = "test-chain"


def _nonce(w: World, who: KeyPair) -> int:
    return contracts.next_nonce(w.chain.state, who.id)


def test_wrong_chain_and_unknown_sender_consume_no_nonce() -> None:
    w = World()
    tx = sign_tx(w.B, "other-chain", 0, "device.accept", {"device": "x"})
    assert w.one(tx) == "wrong_chain"
    stranger = KeyPair.generate("x", "bank")
    assert w.one(sign_tx(stranger, CHAIN, 0, "device.accept", {"device": "x"})) == "unknown_sender"
    assert _nonce(w, w.B) == 0 and _nonce(w, stranger) == 0


def test_bad_signature_consumes_no_nonce() -> None:
    w = World()
    good = sign_tx(w.B, CHAIN, 0, "device.accept", {"device": "x"})
    forged = SignedTx(good.tx, good.tx_bytes, w.I.sign(good.tx_bytes))
    assert w.one(forged) == "bad_signature"
    assert _nonce(w, w.B) == 0
    assert w.one(good) == "unknown_device"  # the real one still fits nonce 0, and consumes it
    assert _nonce(w, w.B) == 1


def test_nonce_must_rise_by_one() -> None:
    w = World()
    assert w.one(sign_tx(w.B, CHAIN, 1, "device.accept", {"device": "x"})) == "bad_nonce"
    t0 = sign_tx(w.B, CHAIN, 0, "device.accept", {"device": "x"})
    assert w.run(t0, t0) == ["unknown_device", "bad_nonce"]  # a replay
    assert _nonce(w, w.B) == 1


@pytest.mark.parametrize(
    "tx_type, body, code",
    [
        ("no.such", {}, "unknown_tx_type"),
        ("case.apply", {"case": "c", "lot": "l", "bank": "b", "amount": 1, "maturity_ms": 1}, "forbidden_role"),
        ("device.accept", {}, "bad_body"),
        ("device.accept", {"device": "x", "extra": 1}, "bad_body"),
        ("device.accept", {"device": 5}, "bad_body"),
        ("device.accept", {"device": "has/slash"}, "bad_body"),
        ("case.repay", {"case": "c", "amount": -1}, "bad_body"),
        ("case.repay", {"case": "c", "amount": True}, "bad_body"),
    ],
)
def test_rejections_before_the_handler_consume_the_nonce(tx_type: str, body: dict, code: str) -> None:
    w = World()
    assert w.one(sign_tx(w.B, CHAIN, 0, tx_type, body)) == code
    assert _nonce(w, w.B) == 1


def test_expired_by_block_time() -> None:
    w = World()
    late = sign_tx(w.B, CHAIN, 0, "device.accept", {"device": "x"}, valid_until_ms=w.now + 500)
    assert w.one(late, advance_ms=1000) == "expired"
    fresh = sign_tx(w.B, CHAIN, 1, "device.accept", {"device": "x"}, valid_until_ms=w.now + 5000)
    assert w.one(fresh) == "unknown_device"


def test_rejected_tx_changes_nothing_but_the_nonce() -> None:
    w = World()
    w.disbursed()
    before = w.chain.state.items()
    tx = w.tx(w.B, "case.repay", case="C1", amount=10**6)  # overpayment
    ctx = BlockContext(CHAIN, w.chain.height + 1, w.now + 1, "v")
    out = contracts.execute_block(w.chain.state, ctx, [tx], verify_real)
    assert out.results == ("overpayment",)
    nkey = contracts.state_key_for("nonce", w.B.id)
    assert set(out.changes) == {nkey}
    assert out.events == ()
    assert w.chain.state.items() == before  # execute_block never writes to its input


def test_partial_effects_of_a_rejected_handler_are_rolled_back() -> None:
    """An inbound report for a lot arriving in another zone fails after the device
    record was already rewritten: the rewrite must be undone."""
    w = World()
    w.devices("zone-a", (0,))
    w.devices("zone-b", (1,))
    w.ok(w.report(w.d[0], "L9", "inbound", 10))
    before = contracts.view_device(w.chain.state, w.d[1].id)
    assert w.one(w.report(w.d[1], "L9", "inbound", 10)) == "device_wrong_warehouse"
    assert contracts.view_device(w.chain.state, w.d[1].id) == before
    assert contracts.next_nonce(w.chain.state, w.d[1].id) == 1


def test_overlay_rollback_restores_values_and_dirtiness() -> None:
    from contracts.state import Overlay

    base = DictState({b"k": b"\x01"})
    ov = Overlay(base)
    ov.put(b"a", 1)
    ov.forget_journal()
    m = ov.mark()
    ov.put(b"a", 2)
    ov.put(b"k", 5)
    ov.delete(b"b")
    ov.rollback(m)
    assert ov.get(b"a") == 1 and ov.get(b"k") == 1 and ov.get(b"b") is None
    assert set(ov.changes()) == {b"a"}


def test_execute_block_is_deterministic() -> None:
    w = World()
    w.disbursed()
    txs = [
        w.report(w.d[0], "L1", "reading"),
        w.report(w.d[0], "L1", "outbound", 5),
        w.tx(w.B, "case.repay", case="C1", amount=500),
        w.tx(w.B, "case.release_order", case="C1", quantity=600),
    ]
    ctx = BlockContext(CHAIN, w.chain.height + 1, w.now + 1, "v")
    a = contracts.execute_block(w.chain.state, ctx, txs, verify_real)
    b = contracts.execute_block(DictState(w.chain.state.items()), ctx, txs, verify_real)
    assert a == b
    assert a.results == ("ok", "ok", "ok", "release_exceeds_repaid")


def test_admit_runs_the_cheap_checks() -> None:
    w = World()
    state = w.chain.state
    ok = sign_tx(w.B, CHAIN, 3, "device.accept", {"device": "x"})
    contracts.admit(state, ok, verify_real, CHAIN, w.now)  # handler rules are not admission's business
    last = sign_tx(w.B, CHAIN, contracts.NONCE_WINDOW - 1, "device.accept", {"device": "x"})
    contracts.admit(state, last, verify_real, CHAIN, w.now)  # the window's last nonce
    cases = [
        (sign_tx(w.B, "other", 0, "device.accept", {"device": "x"}), Code.WRONG_CHAIN),
        (sign_tx(KeyPair.generate("s", "bank"), CHAIN, 0, "device.accept", {"device": "x"}), Code.UNKNOWN_SENDER),
        (SignedTx(ok.tx, ok.tx_bytes, bytes(64)), Code.BAD_SIGNATURE),
        (sign_tx(w.R, CHAIN, 0, "device.accept", {"device": "x"}), Code.FORBIDDEN_ROLE),
        (sign_tx(w.B, CHAIN, 0, "device.accept", {"dev": "x"}), Code.BAD_BODY),
        (sign_tx(w.B, CHAIN, contracts.NONCE_WINDOW, "device.accept", {"device": "x"}), Code.BAD_NONCE),
        (sign_tx(w.B, CHAIN, 100_000, "device.accept", {"device": "x"}), Code.BAD_NONCE),
        (sign_tx(w.B, CHAIN, 0, "device.accept", {"device": "x"}, valid_until_ms=w.now - 1), Code.EXPIRED),
        (sign_tx(w.B, CHAIN, 0, "nope", {}), Code.UNKNOWN_TX_TYPE),
    ]
    for stx, code in cases:
        with pytest.raises(Rejected) as info:
            contracts.admit(state, stx, verify_real, CHAIN, w.now)
        assert info.value.code == code
    w.one(sign_tx(w.B, CHAIN, 0, "device.accept", {"device": "x"}))
    with pytest.raises(Rejected) as info:
        contracts.admit(state, sign_tx(w.B, CHAIN, 0, "device.accept", {"device": "x"}), verify_real, CHAIN, w.now)
    assert info.value.code == Code.BAD_NONCE


def test_genesis_state_and_members_view() -> None:
    w = World()
    members = contracts.view_members(w.chain.state)
    assert {m["id"] for m in members} == {k.id for k in w.p.members()}
    bank = next(m for m in members if m["id"] == w.B.id)
    assert bank["role"] == "bank" and bank["sign_pub"] == w.B.sign_pub.hex() and bank["rating"] is None


def test_registry_describes_every_type() -> None:
    from contracts.registry import FIELD_TYPES, TX_TYPES
    from primitives.keys import ROLES

    assert len(TX_TYPES) >= 24
    for name, spec in TX_TYPES.items():
        assert spec.type == name and spec.doc and spec.roles
        assert set(spec.roles) <= set(ROLES)
        for f in spec.fields:
            assert f.type in FIELD_TYPES and f.description


def test_tx_decodes_and_executes_identically_after_wire_roundtrip() -> None:
    w = World()
    tx = w.tx(w.B, "device.accept", device="x")
    again = SignedTx.decode(tx.encode())
    assert again.tx == tx.tx and w.one(again) == "unknown_device"
    assert isinstance(again.tx, Tx)
