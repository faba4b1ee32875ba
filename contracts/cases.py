"""Steps C/D–G and default: a financing case is a supervision with a loan on top.

apply (borrower) → pledge (warehouse) → disburse (bank: ratings, devices, lot) →
[overdue, by the time hook] → repay (partial frees a share of the lot) →
release_order (within what repayment freed) → close; or overdue → default →
liquidate. Extensions go through the supervision machinery with the consents
the policy names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.context import Exec, reject
from contracts.members import require_member
from contracts.ratings import require_rating
from contracts.records import (
    Record,
    detach_lot,
    goods_intact,
    put_record,
    require_lot,
    require_record,
    set_state,
    wrong_state,
)
from contracts.state import P_DEVICE, P_MATURITY_DUE, due_key, zone_key
from contracts.supervision import decide_extension, open_record, request_extension
from primitives.errors import Code
from primitives.tx import SignedTx

RUNNING = ("disbursed", "overdue")


def _case(ctx: Exec, body: Mapping[str, Any]) -> Record:
    return require_record(ctx, body["case"], "case")


def _bank_only(rec: Record, sender: str) -> None:
    if sender != rec["supervisor"]:
        raise reject(Code.NOT_A_PARTY, f"{sender} is not the bank of case {rec['id']}")


def freed_quantity(rec: Record) -> int:
    """Quantity of the lot that repayment so far has freed (pro rata, rounded down)."""
    if rec["amount"] == 0 or rec["repaid"] >= rec["amount"]:
        return int(rec["pledged_quantity"])
    return int(rec["pledged_quantity"] * rec["repaid"] // rec["amount"])


def case_apply(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    require_member(ctx.state, body["bank"], "bank")
    insurer, guarantor = body.get("insurer", ""), body.get("guarantor", "")
    if insurer:
        require_member(ctx.state, insurer, "insurer")
    if guarantor:
        require_member(ctx.state, guarantor, "guarantor")
    open_record(
        ctx,
        ident=body["case"],
        kind="case",
        lot_id=body["lot"],
        owner=stx.tx.sender,
        supervisor=body["bank"],
        insurer=insurer,
        guarantor=guarantor,
        end_ms=body["maturity_ms"],
        state="applied",
        amount=body["amount"],
    )


def case_pledge(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    rec = _case(ctx, body)
    if stx.tx.sender != rec["warehouse"]:
        raise reject(Code.NOT_A_PARTY, f"lot {rec['lot']} is held by {rec['warehouse']}")
    if rec["state"] != "applied":
        raise wrong_state(rec, "pledge")
    goods_intact(ctx, require_lot(ctx, rec["lot"]))
    set_state(ctx, rec, "pledged", pledged_ms=ctx.now)


def case_disburse(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    rec = _case(ctx, body)
    _bank_only(rec, stx.tx.sender)
    if rec["state"] == "applied":
        raise reject(Code.LOT_NOT_PLEDGED, f"lot {rec['lot']} is not pledged yet")
    if rec["state"] != "pledged":
        raise wrong_state(rec, "disburse")
    require_rating(ctx, rec["owner"])
    require_rating(ctx, rec["warehouse"])
    lot = require_lot(ctx, rec["lot"])
    zone = ctx.state.get(zone_key(lot["warehouse"], lot["zone"]))
    devices = zone["devices"] if zone else []
    if not devices:
        raise reject(Code.DEVICES_NOT_ACCEPTED, f"zone {lot['zone']} has no monitoring device")
    for device_id in devices:
        d = ctx.state.get(P_DEVICE + device_id.encode())
        if d["state"] != "accepted":
            raise reject(Code.DEVICES_NOT_ACCEPTED, f"device {device_id} on zone {lot['zone']} is {d['state']}")
    goods_intact(ctx, lot)
    ctx.state.put(due_key(P_MATURITY_DUE, rec["end_ms"], rec["id"]), b"")
    set_state(ctx, rec, "disbursed", disbursed_ms=ctx.now)


def case_extend_request(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    request_extension(ctx, _case(ctx, body), stx.tx.sender, body["new_maturity_ms"], ("disbursed",))


def case_extend_consent(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    rec = _case(ctx, body)
    sender = stx.tx.sender
    if sender not in (rec["insurer"], rec["guarantor"]):
        raise reject(Code.NOT_A_PARTY, f"{sender} is neither insurer nor guarantor of case {rec['id']}")
    ext = rec["extension"]
    if ext is None:
        raise wrong_state(rec, "consent: no extension is pending")
    if sender not in ext["consents"]:
        put_record(ctx, {**rec, "extension": {**ext, "consents": [*ext["consents"], sender]}})
        ctx.emit("extension", case=rec["id"], status="consent", by=sender)


def case_extend_decide(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    decide_extension(ctx, _case(ctx, body), stx.tx.sender, body["approve"], ctx.policy.extension_consents)


def case_repay(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    rec = _case(ctx, body)
    _bank_only(rec, stx.tx.sender)
    if rec["state"] not in RUNNING:
        raise wrong_state(rec, "repay")
    amount = body["amount"]
    if rec["repaid"] + amount > rec["amount"]:
        raise reject(Code.OVERPAYMENT, f"only {rec['amount'] - rec['repaid']} is outstanding")
    repaid = rec["repaid"] + amount
    if repaid == rec["amount"]:
        set_state(ctx, rec, "repaid", repaid=repaid, repaid_ms=ctx.now)
    else:
        put_record(ctx, {**rec, "repaid": repaid})
        ctx.emit("repayment", case=rec["id"], repaid=repaid, outstanding=rec["amount"] - repaid)


def case_release_order(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    rec = _case(ctx, body)
    _bank_only(rec, stx.tx.sender)
    if rec["state"] not in (*RUNNING, "repaid"):
        raise wrong_state(rec, "order a release")
    quantity = body["quantity"]
    if rec["ordered"] + quantity > freed_quantity(rec):
        raise reject(
            Code.RELEASE_EXCEEDS_REPAID,
            f"repayment has freed {freed_quantity(rec) - rec['ordered']} more, not {quantity}",
        )
    put_record(ctx, {**rec, "ordered": rec["ordered"] + quantity})
    ctx.emit("release_order", case=rec["id"], quantity=quantity, ordered=rec["ordered"] + quantity)


def case_close(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    """Closes a repaid case (or withdraws one not yet disbursed); the lot is free and,
    once empty, so is its site."""
    rec = _case(ctx, body)
    if stx.tx.sender not in (rec["supervisor"], rec["warehouse"]):
        raise reject(Code.NOT_A_PARTY, f"{stx.tx.sender} is neither bank nor warehouse of case {rec['id']}")
    if rec["state"] not in ("applied", "pledged", "repaid"):
        raise wrong_state(rec, "close")
    set_state(ctx, rec, "closed", closed_ms=ctx.now)
    detach_lot(ctx, require_lot(ctx, rec["lot"]))


def case_default(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    rec = _case(ctx, body)
    _bank_only(rec, stx.tx.sender)
    if rec["state"] == "disbursed":
        raise reject(Code.NOT_OVERDUE, f"case {rec['id']} matures at {rec['end_ms']}")
    if rec["state"] != "overdue":
        raise wrong_state(rec, "default")
    set_state(ctx, rec, "defaulted", defaulted_ms=ctx.now)


def case_liquidate(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    """The bank takes the goods: the lot passes to it, free of the case."""
    rec = _case(ctx, body)
    _bank_only(rec, stx.tx.sender)
    if rec["state"] != "defaulted":
        raise wrong_state(rec, "liquidate")
    set_state(ctx, rec, "liquidated", liquidated_ms=ctx.now)
    detach_lot(ctx, require_lot(ctx, rec["lot"]), owner=rec["supervisor"])


def mature(ctx: Exec, rec: Record) -> bool:
    """Time hook: a running case past maturity and not repaid becomes overdue.
    Returns False if the case is not due yet (it was extended)."""
    if rec["end_ms"] > ctx.now:
        return False
    if rec["state"] == "disbursed" and rec["repaid"] < rec["amount"]:
        set_state(ctx, rec, "overdue", overdue_ms=ctx.now, extension=None)
    return True
