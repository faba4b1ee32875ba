"""Supervision records, the one shape behind both plain supervisions and financing
cases (a case is a supervision with a loan on top), and the lot records they hold.

Record fields: id, kind ("case" | "supervision"), lot, warehouse, owner (the
borrower / supervised party), supervisor (the bank of a case), insurer,
guarantor, state, end_ms (maturity), amount, repaid, pledged_quantity,
ordered / outbound / released (quantities released against orders),
extension (the pending request or None), extensions (approved count).
"""

from __future__ import annotations

from typing import Any

from contracts.context import Exec, reject
from contracts.state import P_CASE, P_LOT, zone_key
from primitives.errors import Code

OPEN_STATES = frozenset({"applied", "pledged", "disbursed", "overdue", "repaid", "defaulted", "active", "ending"})
"""States in which a record holds its lot: a lot backs at most one of these."""

Record = dict[str, Any]


def get_record(ctx: Exec, ident: str) -> Record | None:
    return ctx.state.get(P_CASE + ident.encode())  # type: ignore[no-any-return]


def require_record(ctx: Exec, ident: str, kind: str) -> Record:
    """The case or supervision, `unknown_case` / `unknown_supervision` otherwise."""
    rec = get_record(ctx, ident)
    if rec is None or rec["kind"] != kind:
        code = Code.UNKNOWN_CASE if kind == "case" else Code.UNKNOWN_SUPERVISION
        raise reject(code, f"no {kind} {ident}")
    return rec


def wrong_state(rec: Record, doing: str) -> Exception:
    code = Code.CASE_WRONG_STATE if rec["kind"] == "case" else Code.SUPERVISION_WRONG_STATE
    return reject(code, f"{rec['kind']} {rec['id']} is {rec['state']}: cannot {doing}")


def put_record(ctx: Exec, rec: Record) -> None:
    ctx.state.put(P_CASE + rec["id"].encode(), rec)


def set_state(ctx: Exec, rec: Record, state: str, **changes: Any) -> Record:
    """Store the record in a new state and tell the event stream."""
    new = {**rec, **changes, "state": state}
    put_record(ctx, new)
    ctx.emit("case", case=rec["id"], case_kind=rec["kind"], state=state, lot=rec["lot"])
    return new


def get_lot(ctx: Exec, lot_id: str) -> dict[str, Any] | None:
    return ctx.state.get(P_LOT + lot_id.encode())  # type: ignore[no-any-return]


def require_lot(ctx: Exec, lot_id: str) -> dict[str, Any]:
    lot = get_lot(ctx, lot_id)
    if lot is None:
        raise reject(Code.UNKNOWN_LOT, f"no lot {lot_id}")
    return lot


def put_lot(ctx: Exec, lot: dict[str, Any]) -> None:
    ctx.state.put(P_LOT + lot["id"].encode(), lot)


def open_record_of(ctx: Exec, lot: dict[str, Any]) -> Record | None:
    """The open case or supervision holding the lot, if any."""
    if lot["case"] is None:
        return None
    rec = get_record(ctx, lot["case"])
    return rec if rec is not None and rec["state"] in OPEN_STATES else None


def detach_lot(ctx: Exec, lot: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The lot leaves its record; if it is also empty its site is free again."""
    new = {**lot, **changes, "case": None}
    put_lot(ctx, new)
    free_site_if_empty(ctx, new)
    return new


def free_site_if_empty(ctx: Exec, lot: dict[str, Any]) -> None:
    """A site (warehouse zone) is free once its lot is empty and held by no record."""
    if lot["quantity"] - lot["released"] > 0 or lot["case"] is not None:
        return
    zk = zone_key(lot["warehouse"], lot["zone"])
    zone = ctx.state.get(zk)
    if zone is not None and zone["lot"] == lot["id"]:
        ctx.state.put(zk, {**zone, "lot": None})


def goods_intact(ctx: Exec, lot: dict[str, Any]) -> None:
    """`lot_not_intact` if goods left without an order or were tampered with;
    `open_alarm` while any alarm on the lot is open."""
    if not lot["intact"]:
        raise reject(Code.LOT_NOT_INTACT, f"lot {lot['id']} is not intact")
    if lot["alarms"]:
        raise reject(Code.OPEN_ALARM, f"lot {lot['id']} has open alarms {', '.join(lot['alarms'])}")


def watchers(ctx: Exec, lot: dict[str, Any] | None, warehouse: str) -> list[str]:
    """Who must be able to read a device report on this lot: the warehouse and every
    party of the open record (supervisor/bank, insurer, guarantor)."""
    out = [warehouse]
    if lot is not None:
        rec = open_record_of(ctx, lot)
        if rec is not None:
            for party in (rec["supervisor"], rec["insurer"], rec["guarantor"]):
                if party:
                    out.append(party)
    return out
