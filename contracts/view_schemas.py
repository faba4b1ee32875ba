"""JSON Schemas of the views in `contracts.views` and of the events the contracts emit,
kept beside the records they describe (change a record, change its schema here; the
node's OpenAPI document and its tests read them from this module)."""

from __future__ import annotations

from contracts.actions import ACTIONS
from contracts.alarms import KINDS as ALARM_KINDS
from contracts.devices import DEVICE_KINDS
from contracts.governance import PROPOSAL_STATES
from contracts.records import OPEN_STATES
from primitives.errors import Code
from primitives.genesis import GRADES
from primitives.jschema import (
    ID,
    INT,
    MAP,
    STR,
    Schema,
    array,
    described,
    enum,
    hex_bytes,
    nullable,
    obj,
    ref,
)
from primitives.keys import ROLES

CASE_STATES = ("applied", "pledged", "disbursed", "overdue", "repaid", "closed", "defaulted", "liquidated")
SUPERVISION_STATES = ("active", "ending", "ended")
assert OPEN_STATES <= {*CASE_STATES, *SUPERVISION_STATES}, "every open state is documented"

_TIME = described(INT, "milliseconds since the epoch (block time)")
_WHEN = {  # set when the record enters the state of that name
    f"{s}_ms": _TIME
    for s in ("pledged", "disbursed", "repaid", "closed", "overdue", "defaulted", "liquidated", "ended")
}
_RECORD = {
    "id": ID,
    "lot": ID,
    "warehouse": described(ID, "the warehouse holding the lot"),
    "insurer": described(STR, "insurer id, or empty"),
    "guarantor": described(STR, "guarantor id, or empty"),
    "amount": described(INT, "loan amount (0 for a supervision)"),
    "repaid": INT,
    "pledged_quantity": described(INT, "the lot's quantity held when the record opened"),
    "ordered": described(INT, "quantity ordered released"),
    "outbound": described(INT, "quantity devices reported leaving within the orders"),
    "released": described(INT, "quantity released by the warehouse"),
    "extensions": described(INT, "approved extensions"),
    "opened_ms": _TIME,
}


def _extension(new_end: str) -> Schema:
    return nullable(
        obj(
            {new_end: INT, "consents": array(ID), "requested_ms": _TIME},
            description="the pending extension request, null when none is pending",
        )
    )


CASE = obj(
    {
        **_RECORD,
        "kind": {"const": "case"},
        "owner": described(ID, "the borrower (sender of case.apply)"),
        "bank": ID,
        "maturity_ms": described(INT, "maturity (extended by approved extensions)"),
        "state": enum(CASE_STATES),
        "extension": _extension("new_maturity_ms"),
    },
    _WHEN,
    "A financing case, under the field names of case.apply.",
)
SUPERVISION = obj(
    {
        **_RECORD,
        "kind": {"const": "supervision"},
        "party": described(ID, "the supervised party (owner of the lot)"),
        "supervisor": described(ID, "sender of supervision.open"),
        "end_ms": INT,
        "state": enum(SUPERVISION_STATES),
        "extension": _extension("new_end_ms"),
    },
    _WHEN,
    "A plain supervision, under the field names of supervision.open.",
)
CASE_OR_SUPERVISION: Schema = {
    "oneOf": [ref("Case"), ref("Supervision")],
    "discriminator": {
        "propertyName": "kind",
        "mapping": {"case": "#/components/schemas/Case", "supervision": "#/components/schemas/Supervision"},
    },
}

LOT = obj(
    {
        "id": ID,
        "warehouse": ID,
        "zone": ID,
        "owner": ID,
        "commodity": STR,
        "unit": STR,
        "quantity": INT,
        "released": INT,
        "outbound": described(INT, "quantity devices reported leaving"),
        "case": described(nullable(ID), "the case or supervision holding the lot"),
        "intact": described(enum((0, 1), INT), "0 once goods left without an order or were tampered with"),
        "alarms": described(array(STR), "ids of open alarms on the lot"),
        "received_ms": _TIME,
    },
    description="A lot (warehouse receipt), under the field names of lot.receive.",
)

_KEY_ROTATION = {
    "prev_sign_pub": described(hex_bytes(32), "the signing key before the last rotation"),
    "rotated_height": described(INT, "height of the last key rotation"),
}
DEVICE = obj(
    {
        "id": ID,
        "warehouse": ID,
        "zone": ID,
        "kind": enum(DEVICE_KINDS),
        "sign_pub": hex_bytes(32),
        "state": enum(("registered", "accepted", "suspended", "retired")),
        "hb_due": described(nullable(INT), "time by which the next report is due"),
        "alarm": described(nullable(STR), "its open heartbeat alarm"),
        "registered_ms": _TIME,
        "seq": described({"type": "integer", "minimum": -1}, "last sequence number (-1: no report yet)"),
        "last_seen_ms": _TIME,
    },
    {"accepted_by": ID, **_KEY_ROTATION},
    "A monitoring device, under the field names of device.register.",
)

ALARM = obj(
    {
        "id": STR,
        "kind": enum(ALARM_KINDS),
        "device": ID,
        "lot": nullable(STR),
        "case": nullable(ID),
        "state": enum(("open", "resolved")),
        "raised_ms": _TIME,
        "raised_height": INT,
        "detail": STR,
        "resolved_by": nullable(ID),
        "resolved_ms": nullable(INT),
        "note": STR,
    },
    description="An alarm raised by the contracts; alarm.resolve sets resolved_by and note.",
)

RATING = obj(
    {
        "subject": ID,
        "grade": enum(GRADES),
        "valid_until_ms": INT,
        "issuer": ID,
        "report_hash": hex_bytes(32),
        "issued_ms": _TIME,
    },
    description="The latest rating of a member, under the field names of rating.issue.",
)
MEMBER = obj(
    {
        "id": ID,
        "name": STR,
        "role": enum(tuple(r for r in ROLES if r != "device")),
        "sign_pub": hex_bytes(32),
        "enc_pub": hex_bytes(32),
        "rating": nullable(ref("Rating")),
    },
    _KEY_ROTATION,
    "A member with its keys and current rating.",
)
VALIDATOR = obj({"node_id": ID, "member": ID, "node_pub": hex_bytes(32), "p2p_addr": STR})

TALLY = obj(
    {
        "approvals": INT,
        "need": INT,
        "possible": INT,
        "validator_approvals": INT,
        "validator_need": INT,
        "validator_possible": INT,
    },
    description="Votes counted against the threshold; validator counts only for a validator-set change.",
)
PROPOSAL = obj(
    {
        "id": ID,
        "proposer": ID,
        "action": enum(sorted(ACTIONS)),
        "args": described(MAP, "the action's arguments (see gov.propose)"),
        "state": enum(PROPOSAL_STATES),
        "approvals": array(ID),
        "rejections": array(ID),
        "expires_ms": INT,
        "result": described(nullable(enum([c.value for c in Code])), "the action's code once run"),
        "created_height": INT,
        "closed_height": nullable(INT),
        "effective_height": described(nullable(INT), "for a validator-set change, the height it governs from"),
        "tally": nullable(ref("Tally")),
    },
    description="A governance proposal, under the field names of gov.propose.",
)

VIEW_SCHEMAS: dict[str, Schema] = {
    "Case": CASE,
    "Supervision": SUPERVISION,
    "CaseOrSupervision": CASE_OR_SUPERVISION,
    "Lot": LOT,
    "Device": DEVICE,
    "Alarm": ALARM,
    "Rating": RATING,
    "Member": MEMBER,
    "Validator": VALIDATOR,
    "Tally": TALLY,
    "Proposal": PROPOSAL,
}


def _event(kind: str, required: dict[str, Schema], optional: dict[str, Schema] | None = None, doc: str = "") -> Schema:
    return obj({"kind": {"const": kind}, "height": INT, **required}, optional, doc)


_CASE_ID = described(ID, "the case or supervision id")
CONTRACT_EVENTS: dict[str, Schema] = {
    "case": _event(
        "case",
        {"case": _CASE_ID, "case_kind": enum(("case", "supervision")), "state": STR, "lot": ID},
        doc="A case or supervision opened or changed state.",
    ),
    "extension": _event(
        "extension",
        {"case": _CASE_ID, "status": enum(("requested", "consent", "approved", "rejected"))},
        {
            "new_maturity_ms": described(INT, "a case's requested maturity"),
            "new_end_ms": described(INT, "a supervision's requested end"),
            "by": described(ID, "who consented (status consent)"),
        },
        "An extension requested, consented to, approved or rejected.",
    ),
    "repayment": _event(
        "repayment", {"case": ID, "repaid": INT, "outstanding": INT}, doc="A partial repayment (a full one: case)."
    ),
    "release_order": _event("release_order", {"case": ID, "quantity": INT, "ordered": INT}),
    "alarm_raised": _event(
        "alarm_raised",
        {
            "alarm": STR,
            "alarm_kind": enum(ALARM_KINDS),
            "device": ID,
            "lot": nullable(STR),
            "case": nullable(ID),
            "detail": STR,
        },
    ),
    "alarm_resolved": _event(
        "alarm_resolved",
        {"alarm": STR, "alarm_kind": enum(ALARM_KINDS), "by": ID, "lot": nullable(STR), "case": nullable(ID)},
    ),
    "proposal": _event(
        "proposal",
        {"proposal": ID, "state": enum(PROPOSAL_STATES), "action": STR},
        {"result": nullable(STR)},
        "A proposal opened or closed (with its result).",
    ),
    "validators": _event(
        "validators",
        {"state": enum(("scheduled", "switched")), "effective_height": INT},
        {"validators": array(ID)},
        "A validator-set change scheduled, or in force from effective_height.",
    ),
    "key_rotated": _event(
        "key_rotated",
        {},
        {"member": ID, "device": ID, "warehouse": ID},
        "A member (member) or device (device, warehouse) rotated its signing key.",
    ),
}
"""Every event kind the contracts emit (`ctx.emit`), by kind."""
