"""Every transaction type: who may send it, its body fields, one sentence of doc,
and its handler. The node renders this into its documentation page and the CLI's
`tx` command; the executor uses it to check roles and body schemas."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contracts import alarms, cases, devices, governance, lots, ratings, rotation, supervision
from contracts.actions import ACTIONS, check_action_shape
from contracts.context import Handler
from contracts.schema import FIELD_TYPES, MAX_INT, Field, check_fields
from contracts.schema import field as _f
from primitives.errors import Code
from primitives.genesis import GRADES

__all__ = ["FIELD_TYPES", "MAX_INT", "TX_TYPES", "Field", "TxSpec"]

MEMBER_ROLES = ("warehouse", "bank", "insurer", "guarantor", "borrower", "auditor")
"""Every role but `device`: governance checks the policy's `gov_roles` itself."""


@dataclass(frozen=True)
class TxSpec:
    type: str
    roles: tuple[str, ...]
    fields: tuple[Field, ...]
    doc: str
    handler: Handler
    rules: Callable[[Mapping[str, Any]], None] | None = None
    """Rules across fields that the body alone decides (a report's kind and its lot)."""

    def check_body(self, body: Mapping[str, Any]) -> None:
        """Everything the transaction alone decides, checked at admission and again in the
        block: exactly the known fields, their types and constraints, the cross-field rules."""
        check_fields(self.type, self.fields, body, Code.BAD_BODY)
        if self.rules is not None:
            self.rules(body)


_CASE = _f("case", "id", "case id")
_SUP = _f("supervision", "id", "supervision id")
_DEVICE = _f("device", "id", "device id")

_SPECS = (
    TxSpec(
        "rating.issue",
        ("bank", "insurer", "guarantor"),
        (
            _f("subject", "id", "member rated (a borrower or a warehouse)"),
            _f("grade", "str", "grade, best first: AAA AA A BBB BB B CCC CC C D", choices=GRADES),
            _f("valid_until_ms", "int", "the rating expires at this time"),
            _f("report_hash", "bytes", "SHA-256 of the audit report (32 bytes)", size=32),
        ),
        "Step A: rate a borrower or warehouse after the qualification audit.",
        ratings.rating_issue,
    ),
    TxSpec(
        "device.register",
        ("warehouse",),
        (
            _DEVICE,
            _f("sign_pub", "bytes", "the device's Ed25519 public key (32 bytes); it signs its own reports", size=32),
            _f("zone", "id", "the warehouse zone (site) it watches"),
            _f("kind", "str", "scale, rfid, camera, door, temperature or other", choices=devices.DEVICE_KINDS),
        ),
        "Step B: the warehouse installs a monitoring device in one of its zones.",
        devices.device_register,
    ),
    TxSpec(
        "device.accept",
        ("bank",),
        (_DEVICE,),
        "Step B: a bank audits and accepts a registered (or suspended) device.",
        devices.device_accept,
    ),
    TxSpec(
        "device.suspend",
        ("warehouse", "bank"),
        (_DEVICE,),
        "Suspend an accepted device (its warehouse, or a bank); its reports are refused.",
        devices.device_suspend,
    ),
    TxSpec(
        "device.retire",
        ("warehouse", "bank"),
        (_DEVICE,),
        "Retire a device for good; it leaves its zone.",
        devices.device_retire,
    ),
    TxSpec(
        "device.report",
        ("device",),
        (
            _f("lot", "str", "the lot reported on (empty for a plain heartbeat)"),
            _f("seq", "int", "the device's sequence number, rising with every report"),
            _f("kind", "str", "inbound, reading, heartbeat, tamper or outbound", choices=devices.REPORT_KINDS),
            _f("quantity", "int", "goods moved (inbound/outbound), in the lot's unit", required=False),
            _f(
                "envelope",
                "envelope",
                "the sealed monitoring data; recipients must include the warehouse "
                "and every party of the open case on the lot",
            ),
        ),
        "Steps C/E/F: a device's signed, sealed report; outbound beyond the release orders raises an alarm.",
        devices.device_report,
        devices.check_report_shape,
    ),
    TxSpec(
        "lot.receive",
        ("warehouse",),
        (
            _f("lot", "id", "lot (warehouse receipt) id"),
            _f("zone", "id", "zone whose devices reported the goods coming in"),
            _f("owner", "id", "member who owns the goods"),
            _f("commodity", "str", "what the goods are"),
            _f("unit", "str", "the lot's smallest unit (kg, bale, …)"),
            _f("quantity", "int", "at most what the devices reported coming in", minimum=1),
        ),
        "Step C: issue the warehouse receipt for goods the devices saw come in.",
        lots.lot_receive,
    ),
    TxSpec(
        "lot.release",
        ("warehouse",),
        (
            _f("lot", "id", "lot id"),
            _f("quantity", "int", "quantity handed out", minimum=1),
        ),
        "Step F: record goods handed out, within the outbound reports and the release orders.",
        lots.lot_release,
    ),
    TxSpec(
        "case.apply",
        ("borrower",),
        (
            _CASE,
            _f("lot", "id", "the lot to pledge (owned by the sender)"),
            _f("bank", "id", "the lending bank"),
            _f("insurer", "id", "insurer of the goods", required=False),
            _f("guarantor", "id", "guarantor of the loan", required=False),
            _f("amount", "int", "loan amount in minor currency units", minimum=1),
            _f("maturity_ms", "int", "maturity time"),
        ),
        "Step C/D: the borrower applies for a loan against a lot; a lot backs one open case only.",
        cases.case_apply,
    ),
    TxSpec(
        "case.pledge",
        ("warehouse",),
        (_CASE,),
        "Step C/D: the warehouse confirms the lot is pledged to the case.",
        cases.case_pledge,
    ),
    TxSpec(
        "case.disburse",
        ("bank",),
        (_CASE,),
        "Step D: disburse; needs valid ratings, the lot pledged and intact, every zone device accepted.",
        cases.case_disburse,
    ),
    TxSpec(
        "case.extend_request",
        ("borrower",),
        (_CASE, _f("new_maturity_ms", "int", "requested maturity")),
        "Ask to extend the term of a disbursed case.",
        cases.case_extend_request,
    ),
    TxSpec(
        "case.extend_consent",
        ("insurer", "guarantor"),
        (_CASE,),
        "The case's insurer or guarantor consents to the pending extension.",
        cases.case_extend_consent,
    ),
    TxSpec(
        "case.extend_decide",
        ("bank",),
        (_CASE, _f("approve", "int", "1 approve, 0 refuse", choices=(0, 1))),
        "Decide an extension; approval needs the policy's consents, the lot intact and no open alarm.",
        cases.case_extend_decide,
    ),
    TxSpec(
        "case.repay",
        ("bank",),
        (_CASE, _f("amount", "int", "amount repaid (minor units)", minimum=1)),
        "Step F: the bank confirms a (partial) repayment; it frees a pro-rata share of the lot.",
        cases.case_repay,
    ),
    TxSpec(
        "case.release_order",
        ("bank",),
        (_CASE, _f("quantity", "int", "quantity allowed to leave", minimum=1)),
        "Step F: order goods released, within what repayment freed.",
        cases.case_release_order,
    ),
    TxSpec(
        "case.close",
        ("bank", "warehouse"),
        (_CASE,),
        "Step G: close a repaid (or undisbursed) case; the lot and, once empty, the site are free.",
        cases.case_close,
    ),
    TxSpec("case.default", ("bank",), (_CASE,), "Declare an overdue case in default.", cases.case_default),
    TxSpec(
        "case.liquidate",
        ("bank",),
        (_CASE,),
        "Liquidate a defaulted case: the lot passes to the bank.",
        cases.case_liquidate,
    ),
    TxSpec(
        "supervision.open",
        ("bank", "insurer", "guarantor"),
        (
            _SUP,
            _f("party", "id", "the supervised party (owner of the lot)"),
            _f("lot", "id", "the supervised lot"),
            _f("end_ms", "int", "end of the supervision period"),
        ),
        "Open a plain supervision of a lot (no loan); the sender supervises.",
        supervision.supervision_open,
    ),
    TxSpec(
        "supervision.extend_request",
        ("borrower",),
        (_SUP, _f("new_end_ms", "int", "requested end")),
        "The supervised party asks to extend the period.",
        supervision.supervision_extend_request,
    ),
    TxSpec(
        "supervision.extend_decide",
        ("bank", "insurer", "guarantor"),
        (_SUP, _f("approve", "int", "1 approve, 0 refuse", choices=(0, 1))),
        "The supervisor decides; approval needs the goods intact and no open alarm.",
        supervision.supervision_extend_decide,
    ),
    TxSpec(
        "supervision.end",
        ("bank", "insurer", "guarantor"),
        (_SUP,),
        "End notice: the goods may leave under the devices' watch; the site frees when they have.",
        supervision.supervision_end,
    ),
    TxSpec(
        "alarm.resolve",
        ("bank", "warehouse"),
        (
            _f("alarm", "str", "alarm id"),
            _f("note", "str", "how it was resolved", required=False),
        ),
        "Clear an open alarm (a party of its lot, device or case).",
        alarms.alarm_resolve,
    ),
)

_PROPOSAL = _f("proposal", "id", "proposal id, chosen by the proposer")
_ACTIONS_DOC = "; ".join(f"{a.name} {{{', '.join(f.name for f in a.fields)}}}: {a.doc}" for a in ACTIONS.values())
_PROPOSE_FIELDS = (
    _PROPOSAL,
    _f("action", "str", f"what to do, with args: {_ACTIONS_DOC}"),
    _f("args", "map", "the action's arguments, checked in full now and again when it runs"),
    _f("expires_ms", "int", "block time from which the proposal can no longer be approved"),
)
_ROTATE_FIELDS = (
    _f("sign_pub", "bytes", "the new Ed25519 signing key (32 bytes)", size=32),
    _f("enc_pub", "bytes", "the new X25519 encryption key (32 bytes)", size=32),
    _f(
        "proof",
        "bytes",
        "the new key's signature over canonical {domain: godown/rotate-key/v1, chain_id, member, sign_pub, enc_pub}",
        size=64,
    ),
)


def _check_proposal_shape(body: Mapping[str, Any]) -> None:
    check_action_shape(body["action"], body["args"])


_GOV_SPECS = (
    TxSpec(
        "gov.propose",
        MEMBER_ROLES,
        _PROPOSE_FIELDS,
        "Propose a governance action (sender's role in the policy's gov_roles); the proposer's approval counts.",
        governance.gov_propose,
        _check_proposal_shape,
    ),
    TxSpec(
        "gov.vote",
        MEMBER_ROLES,
        (_PROPOSAL, _f("approve", "bool", "true approves, false rejects")),
        "Vote on an open proposal (sender's role in gov_roles); the vote that reaches the threshold runs the "
        "action, validator-set changes also need 2f+1 of the validators' members.",
        governance.gov_vote,
    ),
    TxSpec(
        "member.rotate_key",
        MEMBER_ROLES,
        _ROTATE_FIELDS,
        "Rotate the sender's own keys, signed with its current key; the new key signs from the next block.",
        rotation.member_rotate_key,
    ),
    TxSpec(
        "device.rotate_key",
        ("warehouse",),
        (_DEVICE, _f("sign_pub", "bytes", "the device's new key (32 bytes)", size=32)),
        "A device's warehouse rotates its key; a bank must accept the device again.",
        rotation.device_rotate_key,
    ),
)

TX_TYPES: dict[str, TxSpec] = {s.type: s for s in (*_SPECS, *_GOV_SPECS)}
