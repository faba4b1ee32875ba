"""Alarms: raised by the contracts (unauthorised outbound, tamper, silent device),
cleared only by an `alarm.resolve` from a party. An open alarm on a lot blocks
extensions; goods that left without an order mark the lot not intact until the
last alarm on it is resolved."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.context import Exec, reject
from contracts.records import get_lot, get_record, put_lot
from contracts.state import P_ALARM, P_DEVICE
from primitives.errors import Code
from primitives.tx import SignedTx

KINDS = ("unauthorized_outbound", "tamper", "heartbeat")


def raise_alarm(
    ctx: Exec, alarm_id: str, kind: str, device: str, lot_id: str | None, spoils_lot: bool = False, detail: str = ""
) -> None:
    """Record an open alarm, link it to the lot (and so to the lot's open record)."""
    lot = get_lot(ctx, lot_id) if lot_id else None
    case = lot["case"] if lot is not None else None
    ctx.state.put(
        P_ALARM + alarm_id.encode(),
        {
            "id": alarm_id,
            "kind": kind,
            "device": device,
            "lot": lot_id,
            "case": case,
            "state": "open",
            "raised_ms": ctx.now,
            "raised_height": ctx.block.height,
            "detail": detail,
            "resolved_by": None,
            "resolved_ms": None,
            "note": "",
        },
    )
    if lot is not None:
        put_lot(ctx, {**lot, "alarms": [*lot["alarms"], alarm_id], "intact": 0 if spoils_lot else lot["intact"]})
    ctx.emit("alarm_raised", alarm=alarm_id, alarm_kind=kind, device=device, lot=lot_id, case=case, detail=detail)


def alarm_resolve(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    alarm_id = body["alarm"]
    key = P_ALARM + alarm_id.encode()
    alarm = ctx.state.get(key)
    if alarm is None:
        raise reject(Code.UNKNOWN_ALARM, f"no alarm {alarm_id}")
    if alarm["state"] != "open":
        raise reject(Code.ALARM_RESOLVED, f"alarm {alarm_id} is already resolved")
    sender = stx.tx.sender
    parties: set[str] = set()
    device = ctx.state.get(P_DEVICE + alarm["device"].encode())
    if device is not None:
        parties.add(device["warehouse"])
    lot = get_lot(ctx, alarm["lot"]) if alarm["lot"] else None
    if lot is not None:
        parties.add(lot["warehouse"])
    rec = get_record(ctx, alarm["case"]) if alarm["case"] else None
    if rec is not None:
        parties.add(rec["supervisor"])
    if sender not in parties:
        raise reject(Code.NOT_A_PARTY, f"{sender} is not a party to alarm {alarm_id}")
    ctx.state.put(
        key, {**alarm, "state": "resolved", "resolved_by": sender, "resolved_ms": ctx.now, "note": body.get("note", "")}
    )
    if lot is not None and alarm_id in lot["alarms"]:
        left = [a for a in lot["alarms"] if a != alarm_id]
        put_lot(ctx, {**lot, "alarms": left, "intact": 1 if not left else lot["intact"]})
    if device is not None and device.get("alarm") == alarm_id:
        ctx.state.put(P_DEVICE + alarm["device"].encode(), {**device, "alarm": None})
    ctx.emit(
        "alarm_resolved", alarm=alarm_id, alarm_kind=alarm["kind"], by=sender, lot=alarm["lot"], case=alarm["case"]
    )
