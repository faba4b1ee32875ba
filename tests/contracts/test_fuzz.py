"""Schema-valid but arbitrary bodies for every transaction type, from every allowed
role, never crash the executor: each gets a stable code, and state stays canonical."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.actions import ACTIONS
from contracts.registry import MAX_INT, TX_TYPES
from contracts.state import decode_value, decoded_values_intact, encode_value
from node.client.txs import sign_tx
from primitives.errors import Code
from tests.contracts.chain import World

CODES = {c.value for c in Code}


def _base() -> World:
    w = World(seed=b"fuzz")
    w.disbursed()
    w.devices("zone-b", (1,))
    w.ok(w.report(w.d[0], "L1", "tamper"))
    return w


def _value(data: st.DataObject, w: World, ftype: str) -> Any:
    ids = [w.R.id, w.W.id, w.B.id, w.I.id, w.G.id, w.d[0].id, w.d[1].id, "L1", "C1", "zone-a", "zone-b", "x"]
    if ftype == "id":
        return data.draw(st.sampled_from(ids) | st.from_regex(r"[A-Za-z0-9._:\-]{1,64}", fullmatch=True))
    if ftype == "str":
        return data.draw(
            st.sampled_from(["", "L1", "inbound", "outbound", "tamper", "reading", "A", "BBB", "scale"])
            | st.sampled_from(sorted(ACTIONS))
            | st.text(max_size=20)
        )
    if ftype == "bool":
        return data.draw(st.booleans())
    if ftype == "map":
        args = [
            {},
            {"member": w.R.id, "role": "auditor"},
            {"member": w.R2.id},
            {"node_id": "x"},
            {"card": {"card": {}, "sig": ""}},
            {"field": "gov_approval_pct", "value": 50},
            {"field": "min_grade", "value": 3},
        ]
        return data.draw(
            st.sampled_from(args) | st.dictionaries(st.text(max_size=6), st.integers(-(2**63), 2**63), max_size=3)
        )
    if ftype == "int":
        return data.draw(
            st.sampled_from([0, 1, 5, 1000, w.now, w.now + 10**7, MAX_INT])
            | st.integers(min_value=0, max_value=MAX_INT)
        )
    if ftype == "bytes":
        return data.draw(st.sampled_from([bytes(32), w.d[2].sign_pub]) | st.binary(max_size=40))
    env = w.report(w.d[0], "L1", "reading").tx.body["envelope"]
    return data.draw(st.sampled_from([env, {}, {**env, "recipients": []}]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_arbitrary_valid_bodies_get_stable_codes(data: st.DataObject) -> None:
    w = _base()
    keys = {
        "warehouse": [w.W],
        "bank": [w.B, w.B2],
        "insurer": [w.I],
        "guarantor": [w.G],
        "borrower": [w.R, w.R2],
        "device": [w.d[0], w.d[1]],
        "auditor": [w.A],
    }
    txs = []
    for _ in range(data.draw(st.integers(1, 4))):
        name = data.draw(st.sampled_from(sorted(TX_TYPES)))
        spec = TX_TYPES[name]
        signer = data.draw(st.sampled_from([k for r in spec.roles for k in keys[r]]))
        body = {f.name: _value(data, w, f.type) for f in spec.fields if f.required or data.draw(st.booleans())}
        txs.append(sign_tx(signer, "test-chain", w.r.nonces.take(signer), name, body))
    results = w.run(*txs, advance_ms=data.draw(st.sampled_from([1, 1000, 10**6])))
    assert set(results) <= CODES
    for raw in w.chain.state.items().values():
        assert encode_value(decode_value(raw)) == raw
    assert decoded_values_intact()
