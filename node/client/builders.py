"""A typed builder for every transaction type of `contracts.registry.TX_TYPES`.

Each builder takes the body's fields as keyword arguments, named and typed as the
registry declares them (optional fields default to None and are left out), and checks
the body as admission will (`TxSpec.check_body`), so a mistake is a `bad_body` here
rather than a refused transaction. A builder makes only the body: the envelope's own
fields (nonce, expiry `valid_until_ms`) are the `Signer`'s, so a body field of the same
name (`rating.issue`'s `valid_until_ms`, the rating's expiry) cannot collide with them.

`tests/node/test_client_builders.py` checks that this module matches the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.registry import TX_TYPES
from primitives.envelope import Envelope
from primitives.errors import Code, GodownError


@dataclass(frozen=True)
class Body:
    """A checked transaction body and its type, ready for `Signer.sign`."""

    type: str
    fields: Mapping[str, Any]


def build(tx_type: str, fields: Mapping[str, Any]) -> Body:
    """A checked body of `tx_type` from its fields; None values are left out, a sealed
    `Envelope` goes as its map."""
    spec = TX_TYPES.get(tx_type)
    if spec is None:
        raise GodownError(Code.UNKNOWN_TX_TYPE, f"unknown transaction type {tx_type!r}")
    body = {k: (v.to_dict() if isinstance(v, Envelope) else v) for k, v in fields.items() if v is not None}
    spec.check_body(body)
    return Body(tx_type, body)


def rating_issue(*, subject: str, grade: str, valid_until_ms: int, report_hash: bytes) -> Body:
    """Step A: rate a borrower or warehouse after the qualification audit."""
    return build(
        "rating.issue",
        {"subject": subject, "grade": grade, "valid_until_ms": valid_until_ms, "report_hash": report_hash},
    )


def device_register(*, device: str, sign_pub: bytes, zone: str, kind: str) -> Body:
    """Step B: the warehouse installs a monitoring device in one of its zones."""
    return build("device.register", {"device": device, "sign_pub": sign_pub, "zone": zone, "kind": kind})


def device_accept(*, device: str) -> Body:
    """Step B: a bank audits and accepts a registered (or suspended) device."""
    return build("device.accept", {"device": device})


def device_suspend(*, device: str) -> Body:
    """Suspend an accepted device (its warehouse, or a bank); its reports are refused."""
    return build("device.suspend", {"device": device})


def device_retire(*, device: str) -> Body:
    """Retire a device for good; it leaves its zone."""
    return build("device.retire", {"device": device})


def device_report(
    *,
    lot: str,
    seq: int,
    kind: str,
    envelope: Envelope | Mapping[str, Any],
    quantity: int | None = None,
) -> Body:
    """Steps C/E/F: a device's signed, sealed report; outbound beyond the release orders raises an alarm."""
    return build("device.report", {"lot": lot, "seq": seq, "kind": kind, "quantity": quantity, "envelope": envelope})


def lot_receive(*, lot: str, zone: str, owner: str, commodity: str, unit: str, quantity: int) -> Body:
    """Step C: issue the warehouse receipt for goods the devices saw come in."""
    return build(
        "lot.receive",
        {"lot": lot, "zone": zone, "owner": owner, "commodity": commodity, "unit": unit, "quantity": quantity},
    )


def lot_release(*, lot: str, quantity: int) -> Body:
    """Step F: record goods handed out, within the outbound reports and the release orders."""
    return build("lot.release", {"lot": lot, "quantity": quantity})


def case_apply(
    *,
    case: str,
    lot: str,
    bank: str,
    amount: int,
    maturity_ms: int,
    insurer: str | None = None,
    guarantor: str | None = None,
) -> Body:
    """Step C/D: the borrower applies for a loan against a lot; a lot backs one open case only."""
    return build(
        "case.apply",
        {
            "case": case,
            "lot": lot,
            "bank": bank,
            "insurer": insurer,
            "guarantor": guarantor,
            "amount": amount,
            "maturity_ms": maturity_ms,
        },
    )


def case_pledge(*, case: str) -> Body:
    """Step C/D: the warehouse confirms the lot is pledged to the case."""
    return build("case.pledge", {"case": case})


def case_disburse(*, case: str) -> Body:
    """Step D: disburse; needs valid ratings, the lot pledged and intact, every zone device accepted."""
    return build("case.disburse", {"case": case})


def case_extend_request(*, case: str, new_maturity_ms: int) -> Body:
    """Ask to extend the term of a disbursed case."""
    return build("case.extend_request", {"case": case, "new_maturity_ms": new_maturity_ms})


def case_extend_consent(*, case: str) -> Body:
    """The case's insurer or guarantor consents to the pending extension."""
    return build("case.extend_consent", {"case": case})


def case_extend_decide(*, case: str, approve: int) -> Body:
    """Decide an extension; approval needs the policy's consents, the lot intact and no open alarm."""
    return build("case.extend_decide", {"case": case, "approve": approve})


def case_repay(*, case: str, amount: int) -> Body:
    """Step F: the bank confirms a (partial) repayment; it frees a pro-rata share of the lot."""
    return build("case.repay", {"case": case, "amount": amount})


def case_release_order(*, case: str, quantity: int) -> Body:
    """Step F: order goods released, within what repayment freed."""
    return build("case.release_order", {"case": case, "quantity": quantity})


def case_close(*, case: str) -> Body:
    """Step G: close a repaid (or undisbursed) case; the lot and, once empty, the site are free."""
    return build("case.close", {"case": case})


def case_default(*, case: str) -> Body:
    """Declare an overdue case in default."""
    return build("case.default", {"case": case})


def case_liquidate(*, case: str) -> Body:
    """Liquidate a defaulted case: the lot passes to the bank."""
    return build("case.liquidate", {"case": case})


def supervision_open(*, supervision: str, party: str, lot: str, end_ms: int) -> Body:
    """Open a plain supervision of a lot (no loan); the sender supervises."""
    return build("supervision.open", {"supervision": supervision, "party": party, "lot": lot, "end_ms": end_ms})


def supervision_extend_request(*, supervision: str, new_end_ms: int) -> Body:
    """The supervised party asks to extend the period."""
    return build("supervision.extend_request", {"supervision": supervision, "new_end_ms": new_end_ms})


def supervision_extend_decide(*, supervision: str, approve: int) -> Body:
    """The supervisor decides; approval needs the goods intact and no open alarm."""
    return build("supervision.extend_decide", {"supervision": supervision, "approve": approve})


def supervision_end(*, supervision: str) -> Body:
    """End notice: the goods may leave under the devices' watch; the site frees when they have."""
    return build("supervision.end", {"supervision": supervision})


def alarm_resolve(*, alarm: str, note: str | None = None) -> Body:
    """Clear an open alarm (a party of its lot, device or case)."""
    return build("alarm.resolve", {"alarm": alarm, "note": note})


def gov_propose(*, proposal: str, action: str, args: Mapping[str, Any], expires_ms: int) -> Body:
    """Propose a governance action (sender's role in the policy's gov_roles); the proposer's approval counts."""
    return build("gov.propose", {"proposal": proposal, "action": action, "args": args, "expires_ms": expires_ms})


def gov_vote(*, proposal: str, approve: bool) -> Body:
    """Vote on an open proposal (sender's role in gov_roles); the vote that reaches the threshold
    runs the action, validator-set changes also need 2f+1 of the validators' members."""
    return build("gov.vote", {"proposal": proposal, "approve": approve})


def member_rotate_key(*, sign_pub: bytes, enc_pub: bytes, proof: bytes) -> Body:
    """Rotate the sender's own keys, signed with its current key; the new key signs from the next block."""
    return build("member.rotate_key", {"sign_pub": sign_pub, "enc_pub": enc_pub, "proof": proof})


def device_rotate_key(*, device: str, sign_pub: bytes) -> Body:
    """A device's warehouse rotates its key; a bank must accept the device again."""
    return build("device.rotate_key", {"device": device, "sign_pub": sign_pub})


BUILDERS: dict[str, Callable[..., Body]] = {
    "rating.issue": rating_issue,
    "device.register": device_register,
    "device.accept": device_accept,
    "device.suspend": device_suspend,
    "device.retire": device_retire,
    "device.report": device_report,
    "lot.receive": lot_receive,
    "lot.release": lot_release,
    "case.apply": case_apply,
    "case.pledge": case_pledge,
    "case.disburse": case_disburse,
    "case.extend_request": case_extend_request,
    "case.extend_consent": case_extend_consent,
    "case.extend_decide": case_extend_decide,
    "case.repay": case_repay,
    "case.release_order": case_release_order,
    "case.close": case_close,
    "case.default": case_default,
    "case.liquidate": case_liquidate,
    "supervision.open": supervision_open,
    "supervision.extend_request": supervision_extend_request,
    "supervision.extend_decide": supervision_extend_decide,
    "supervision.end": supervision_end,
    "alarm.resolve": alarm_resolve,
    "gov.propose": gov_propose,
    "gov.vote": gov_vote,
    "member.rotate_key": member_rotate_key,
    "device.rotate_key": device_rotate_key,
}
"""The builder of every transaction type, by type name."""
