"""Steps B, C, E: monitoring devices — registration by the warehouse, acceptance by
a bank, suspension and retirement — and the reports the devices sign themselves.

A report is accepted only from a registered and accepted device, bound to the
lot's warehouse, with a rising sequence number, and with a sealed payload whose
clear-text recipient list includes the warehouse and every party of the open
record on the lot. What a report means for the lot (goods in, goods out,
tamper) is decided here; alarms are raised through `contracts.alarms`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.alarms import raise_alarm
from contracts.context import Exec, alarm_id_for_tx, reject
from contracts.members import claim_key
from contracts.records import get_lot, open_record_of, put_lot, put_record, watchers
from contracts.state import P_DEVICE, P_DEVICE_LIVE, P_HEARTBEAT_DUE, P_INBOUND, P_MEMBER, due_key, zone_key
from primitives.envelope import Envelope
from primitives.errors import Code
from primitives.tx import SignedTx

REPORT_KINDS = ("inbound", "reading", "heartbeat", "tamper", "outbound")
MAX_QUANTITY = 2**53 - 1
DEVICE_KINDS = ("scale", "rfid", "camera", "door", "temperature", "other")


def _device_key(device_id: str) -> bytes:
    return P_DEVICE + device_id.encode()


def require_device(ctx: Exec, device_id: str) -> dict[str, Any]:
    d = ctx.state.get(_device_key(device_id))
    if d is None:
        raise reject(Code.UNKNOWN_DEVICE, f"no device {device_id}")
    return d  # type: ignore[no-any-return]


def last_seen(ctx: Exec, device_id: str) -> tuple[int, int]:
    """(last sequence number, last report time) of a device. Kept apart from the
    device record, in a two-integer entry, so a report rewrites only that."""
    seq, seen = ctx.state.get(P_DEVICE_LIVE + device_id.encode())
    return seq, seen


def _set_seen(ctx: Exec, device_id: str, seq: int) -> None:
    ctx.state.put(P_DEVICE_LIVE + device_id.encode(), [seq, ctx.now])


def arm_heartbeat(ctx: Exec, device: dict[str, Any], seen_ms: int) -> dict[str, Any]:
    """Put the device in the heartbeat due-index (if it is not there already)."""
    if device["hb_due"] is not None:
        return device
    due = seen_ms + ctx.policy.heartbeat_interval_ms
    ctx.state.put(due_key(P_HEARTBEAT_DUE, due, device["id"]), b"")
    return {**device, "hb_due": due}


def check_report_shape(body: Mapping[str, Any]) -> None:
    """What a report's kind asks of its other fields, decided by the body alone: goods
    moving (inbound, outbound) and tampering name a lot; goods moving, a quantity."""
    kind, lot_id, quantity = body["kind"], body["lot"], body.get("quantity", 0)
    if kind in ("inbound", "outbound", "tamper") and not lot_id:
        raise reject(Code.BAD_BODY, f"device.report: a {kind} report names a lot")
    if kind in ("inbound", "outbound") and quantity <= 0:
        raise reject(Code.BAD_BODY, f"device.report: an {kind} report has a positive quantity")


def device_register(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    device_id = body["device"]
    if ctx.state.get(_device_key(device_id)) is not None:
        raise reject(Code.DEVICE_EXISTS, f"device {device_id} is already registered")
    if ctx.state.get(P_MEMBER + device_id.encode()) is not None:
        raise reject(Code.MEMBER_EXISTS, f"{device_id} is a member id")
    claim_key(ctx.state, body["sign_pub"], device_id, "device", Code.DEVICE_EXISTS)
    warehouse = stx.tx.sender
    ctx.state.put(
        _device_key(device_id),
        {
            "id": device_id,
            "warehouse": warehouse,
            "zone": body["zone"],
            "kind": body["kind"],
            "sign_pub": body["sign_pub"],
            "state": "registered",
            "hb_due": None,
            "alarm": None,
            "registered_ms": ctx.now,
        },
    )
    _set_seen(ctx, device_id, -1)
    zk = zone_key(warehouse, body["zone"])
    zone = ctx.state.get(zk) or {"warehouse": warehouse, "zone": body["zone"], "devices": [], "lot": None}
    ctx.state.put(zk, {**zone, "devices": [*zone["devices"], device_id]})


def device_accept(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    d = require_device(ctx, body["device"])
    if d["state"] not in ("registered", "suspended"):
        raise reject(Code.DEVICE_WRONG_STATE, f"device {d['id']} is {d['state']}")
    seq, _ = last_seen(ctx, d["id"])
    _set_seen(ctx, d["id"], seq)
    d = arm_heartbeat(ctx, {**d, "state": "accepted", "accepted_by": stx.tx.sender}, ctx.now)
    ctx.state.put(_device_key(d["id"]), d)


def device_suspend(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    d = require_device(ctx, body["device"])
    _own_or_bank(ctx, stx, d)
    if d["state"] != "accepted":
        raise reject(Code.DEVICE_WRONG_STATE, f"device {d['id']} is {d['state']}")
    ctx.state.put(_device_key(d["id"]), {**d, "state": "suspended"})


def device_retire(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    d = require_device(ctx, body["device"])
    _own_or_bank(ctx, stx, d)
    if d["state"] == "retired":
        raise reject(Code.DEVICE_WRONG_STATE, f"device {d['id']} is already retired")
    ctx.state.put(_device_key(d["id"]), {**d, "state": "retired"})
    zk = zone_key(d["warehouse"], d["zone"])
    zone = ctx.state.get(zk)
    if zone is not None:
        ctx.state.put(zk, {**zone, "devices": [x for x in zone["devices"] if x != d["id"]]})


def _own_or_bank(ctx: Exec, stx: SignedTx, d: dict[str, Any]) -> None:
    sender = stx.tx.sender
    if sender != d["warehouse"] and ctx.state.get(P_MEMBER + sender.encode())["role"] != "bank":
        raise reject(Code.DEVICE_WRONG_WAREHOUSE, f"device {d['id']} belongs to warehouse {d['warehouse']}")


def device_report(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    device_id = stx.tx.sender
    key = _device_key(device_id)
    d = ctx.state.get(key)
    if d["state"] != "accepted":
        raise reject(Code.DEVICE_NOT_ACCEPTED, f"device {device_id} is {d['state']}")
    seq = body["seq"]
    prev_seq, _ = last_seen(ctx, device_id)
    if seq <= prev_seq:
        raise reject(Code.BAD_SEQUENCE, f"sequence {seq} is not above {prev_seq}")
    kind = body["kind"]
    envelope = Envelope.from_dict(body["envelope"])  # its shape was checked with the body
    lot_id = body["lot"]
    quantity = body.get("quantity", 0)
    lot = get_lot(ctx, lot_id) if lot_id else None
    if lot is not None and lot["warehouse"] != d["warehouse"]:
        raise reject(Code.DEVICE_WRONG_WAREHOUSE, f"lot {lot_id} is not in warehouse {d['warehouse']}")
    if kind == "inbound":
        if lot is not None:
            raise reject(Code.LOT_EXISTS, f"lot {lot_id} is already received")
    elif lot_id and lot is None:
        raise reject(Code.UNKNOWN_LOT, f"no lot {lot_id}")
    recipients = envelope.recipients
    for party in watchers(ctx, lot, d["warehouse"]):
        if party not in recipients:
            raise reject(Code.MISSING_RECIPIENT, f"{party} must be a recipient of this report")

    _set_seen(ctx, device_id, seq)
    if d["hb_due"] is None:
        d = arm_heartbeat(ctx, d, ctx.now)
        ctx.state.put(key, d)
    if kind == "inbound":
        _inbound(ctx, d, lot_id, quantity)
    elif kind == "outbound":
        _outbound(ctx, stx, d, lot, quantity)  # type: ignore[arg-type]
    elif kind == "tamper":
        raise_alarm(ctx, alarm_id_for_tx(stx), "tamper", device_id, lot_id, spoils_lot=True)


def _inbound(ctx: Exec, d: dict[str, Any], lot_id: str, quantity: int) -> None:
    key = P_INBOUND + lot_id.encode()
    seen = ctx.state.get(key)
    if seen is None:
        seen = {"lot": lot_id, "warehouse": d["warehouse"], "zone": d["zone"], "quantity": 0, "first_ms": ctx.now}
    elif seen["warehouse"] != d["warehouse"] or seen["zone"] != d["zone"]:
        raise reject(Code.DEVICE_WRONG_WAREHOUSE, f"lot {lot_id} is arriving in another zone")
    total = seen["quantity"] + quantity
    if total > MAX_QUANTITY:
        raise reject(Code.BAD_BODY, f"more than {MAX_QUANTITY} reported coming in")
    ctx.state.put(key, {**seen, "quantity": total})


def _outbound(ctx: Exec, stx: SignedTx, d: dict[str, Any], lot: dict[str, Any], quantity: int) -> None:
    """Goods left: counted against the open record's release orders, else an alarm."""
    # counted up to the lot's quantity: more cannot leave, and the sum stays bounded
    lot = {**lot, "outbound": min(lot["outbound"] + quantity, lot["quantity"])}
    put_lot(ctx, lot)
    rec = open_record_of(ctx, lot)
    if rec is None:
        return
    if rec["outbound"] + quantity <= rec["ordered"]:
        put_record(ctx, {**rec, "outbound": rec["outbound"] + quantity})
        return
    raise_alarm(
        ctx,
        alarm_id_for_tx(stx),
        "unauthorized_outbound",
        d["id"],
        lot["id"],
        spoils_lot=True,
        detail=f"{quantity} left; {rec['ordered'] - rec['outbound']} ordered and not yet out",
    )
