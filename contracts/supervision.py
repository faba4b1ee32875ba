"""Supervision of pledged goods (claims 1–4 of the seed), and the machinery a
financing case reuses: opening a record on a lot (no lot in two open records),
extension requests and decisions (approved only with the goods intact, no open
alarm, and the consents the caller names), and the end notice after which the
goods may leave under the devices' watch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contracts.context import Exec, reject
from contracts.records import (
    Record,
    detach_lot,
    get_record,
    goods_intact,
    open_record_of,
    put_lot,
    put_record,
    require_lot,
    require_record,
    set_state,
    wrong_state,
)
from primitives.errors import Code
from primitives.tx import SignedTx


def open_record(
    ctx: Exec,
    *,
    ident: str,
    kind: str,
    lot_id: str,
    owner: str,
    supervisor: str,
    insurer: str,
    guarantor: str,
    end_ms: int,
    state: str,
    amount: int = 0,
) -> Record:
    """Create a case or supervision holding a lot: `case_exists`, `unknown_lot`,
    `not_a_party` (owner does not own the lot), `lot_already_pledged`."""
    if get_record(ctx, ident) is not None:
        raise reject(Code.CASE_EXISTS, f"{ident} already exists")
    lot = require_lot(ctx, lot_id)
    if lot["owner"] != owner:
        raise reject(Code.NOT_A_PARTY, f"lot {lot_id} belongs to {lot['owner']}, not {owner}")
    holder = open_record_of(ctx, lot)
    if holder is not None:
        raise reject(Code.LOT_ALREADY_PLEDGED, f"lot {lot_id} already backs open {holder['kind']} {holder['id']}")
    rec: Record = {
        "id": ident,
        "kind": kind,
        "lot": lot_id,
        "warehouse": lot["warehouse"],
        "owner": owner,
        "supervisor": supervisor,
        "insurer": insurer,
        "guarantor": guarantor,
        "state": state,
        "end_ms": end_ms,
        "amount": amount,
        "repaid": 0,
        "pledged_quantity": lot["quantity"] - lot["released"],
        "ordered": 0,
        "outbound": 0,
        "released": 0,
        "extension": None,
        "extensions": 0,
        "opened_ms": ctx.now,
    }
    put_record(ctx, rec)
    put_lot(ctx, {**lot, "case": ident})
    ctx.emit("case", case=ident, case_kind=kind, state=state, lot=lot_id)
    return rec


def request_extension(ctx: Exec, rec: Record, sender: str, new_end_ms: int, states: Sequence[str]) -> None:
    if sender != rec["owner"]:
        raise reject(Code.NOT_A_PARTY, f"only {rec['owner']} may ask to extend {rec['id']}")
    if rec["state"] not in states or rec["extension"] is not None:
        raise wrong_state(rec, "request an extension" + (" (one is pending)" if rec["extension"] else ""))
    if not rec["end_ms"] < new_end_ms <= rec["end_ms"] + ctx.policy.max_extension_ms:
        raise reject(
            Code.BAD_BODY,
            f"{_new_end_name(rec)} must be after {rec['end_ms']} and at most {ctx.policy.max_extension_ms} ms later",
        )
    put_record(ctx, {**rec, "extension": {"new_end_ms": new_end_ms, "consents": [], "requested_ms": ctx.now}})
    _extension_event(ctx, rec, "requested", new_end_ms)


def _new_end_name(rec: Record) -> str:
    """The request's name for the new end: `new_maturity_ms` for a case, `new_end_ms` for a supervision."""
    return "new_maturity_ms" if rec["kind"] == "case" else "new_end_ms"


def _extension_event(ctx: Exec, rec: Record, status: str, new_end_ms: int) -> None:
    ctx.emit("extension", case=rec["id"], status=status, **{_new_end_name(rec): new_end_ms})


def decide_extension(ctx: Exec, rec: Record, sender: str, approve: int, consent_roles: Sequence[str]) -> None:
    """Approve (with every named consent, goods intact, no open alarm) or refuse a pending
    extension. A refused extension leaves the record to run to its end date."""
    if sender != rec["supervisor"]:
        raise reject(Code.NOT_A_PARTY, f"only {rec['supervisor']} decides on {rec['id']}")
    ext = rec["extension"]
    if ext is None:
        raise wrong_state(rec, "decide: no extension is pending")
    if not approve:
        put_record(ctx, {**rec, "extension": None})
        _extension_event(ctx, rec, "rejected", ext["new_end_ms"])
        return
    for role in consent_roles:
        party = rec.get(role)
        if not party or party not in ext["consents"]:
            raise reject(Code.CONSENT_MISSING, f"the {role} has not consented to extend {rec['id']}")
    goods_intact(ctx, require_lot(ctx, rec["lot"]))
    put_record(ctx, {**rec, "extension": None, "end_ms": ext["new_end_ms"], "extensions": rec["extensions"] + 1})
    _extension_event(ctx, rec, "approved", ext["new_end_ms"])


# --- plain supervision handlers ---------------------------------------------------


def supervision_open(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    if body["end_ms"] <= ctx.now:
        raise reject(Code.BAD_BODY, "end_ms is already past")
    open_record(
        ctx,
        ident=body["supervision"],
        kind="supervision",
        lot_id=body["lot"],
        owner=body["party"],
        supervisor=stx.tx.sender,
        insurer="",
        guarantor="",
        end_ms=body["end_ms"],
        state="active",
    )


def supervision_extend_request(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    rec = require_record(ctx, body["supervision"], "supervision")
    request_extension(ctx, rec, stx.tx.sender, body["new_end_ms"], ("active",))


def supervision_extend_decide(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    rec = require_record(ctx, body["supervision"], "supervision")
    decide_extension(ctx, rec, stx.tx.sender, body["approve"], ())


def supervision_end(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    """End notice: the whole remaining lot may now leave under the devices' watch;
    the record ends (and the site frees) when the last of it is released."""
    rec = require_record(ctx, body["supervision"], "supervision")
    if stx.tx.sender != rec["supervisor"]:
        raise reject(Code.NOT_A_PARTY, f"only {rec['supervisor']} may end {rec['id']}")
    if rec["state"] != "active":
        raise wrong_state(rec, "end")
    lot = require_lot(ctx, rec["lot"])
    remaining = lot["quantity"] - lot["released"]
    if remaining == 0:
        set_state(ctx, rec, "ended", ended_ms=ctx.now, extension=None)
        detach_lot(ctx, lot)
        return
    set_state(ctx, rec, "ending", extension=None, ordered=rec["released"] + remaining)
