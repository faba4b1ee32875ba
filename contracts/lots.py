"""Step C and F: lots (warehouse receipts) — received only after devices reported the
goods coming in, released only after devices reported them going out and, while a
record holds the lot, only within what its release orders allow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.context import Exec, reject
from contracts.members import require_member
from contracts.records import (
    detach_lot,
    free_site_if_empty,
    get_lot,
    open_record_of,
    put_lot,
    put_record,
    require_lot,
    set_state,
)
from contracts.state import P_INBOUND, zone_key
from primitives.errors import Code
from primitives.tx import SignedTx


def lot_receive(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    lot_id, zone_name, quantity = body["lot"], body["zone"], body["quantity"]
    warehouse = stx.tx.sender
    if get_lot(ctx, lot_id) is not None:
        raise reject(Code.LOT_EXISTS, f"lot {lot_id} exists")
    require_member(ctx.state, body["owner"])
    seen = ctx.state.get(P_INBOUND + lot_id.encode())
    if seen is None or seen["warehouse"] != warehouse or seen["zone"] != zone_name:
        raise reject(Code.NO_INBOUND_REPORT, f"no device reported lot {lot_id} coming into {zone_name}")
    if quantity > seen["quantity"]:
        raise reject(Code.NO_INBOUND_REPORT, f"devices reported {seen['quantity']} coming in, not {quantity}")
    zk = zone_key(warehouse, zone_name)
    zone = ctx.state.get(zk)
    if zone["lot"] is not None:
        raise reject(Code.SITE_OCCUPIED, f"zone {zone_name} still holds lot {zone['lot']}")
    ctx.state.put(zk, {**zone, "lot": lot_id})
    ctx.state.delete(P_INBOUND + lot_id.encode())
    put_lot(
        ctx,
        {
            "id": lot_id,
            "warehouse": warehouse,
            "zone": zone_name,
            "owner": body["owner"],
            "commodity": body["commodity"],
            "unit": body["unit"],
            "quantity": quantity,
            "released": 0,
            "outbound": 0,
            "case": None,
            "intact": 1,
            "alarms": [],
            "received_ms": ctx.now,
        },
    )


def lot_release(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    lot = require_lot(ctx, body["lot"])
    quantity = body["quantity"]
    if stx.tx.sender != lot["warehouse"]:
        raise reject(Code.NOT_A_PARTY, f"lot {lot['id']} is held by {lot['warehouse']}")
    if quantity <= 0 or lot["released"] + quantity > lot["quantity"]:
        raise reject(Code.BAD_BODY, f"quantity must be in 1..{lot['quantity'] - lot['released']}")
    if lot["released"] + quantity > lot["outbound"]:
        raise reject(
            Code.NO_OUTBOUND_REPORT, f"devices reported {lot['outbound'] - lot['released']} unreleased going out"
        )
    rec = open_record_of(ctx, lot)
    if rec is not None:
        if rec["released"] + quantity > rec["ordered"]:
            if rec["released"] == rec["ordered"]:
                raise reject(Code.NO_RELEASE_ORDER, f"no open release order on {rec['kind']} {rec['id']}")
            raise reject(
                Code.RELEASE_EXCEEDS_REPAID,
                f"only {rec['ordered'] - rec['released']} of lot {lot['id']} is ordered released",
            )
        rec = {**rec, "released": rec["released"] + quantity}
        put_record(ctx, rec)
    lot = {**lot, "released": lot["released"] + quantity}
    if (
        rec is not None
        and rec["kind"] == "supervision"
        and rec["state"] == "ending"
        and lot["released"] == lot["quantity"]
    ):
        set_state(ctx, rec, "ended", ended_ms=ctx.now)
        detach_lot(ctx, lot)
        return
    put_lot(ctx, lot)
    free_site_if_empty(ctx, lot)
