"""Step A: qualification audit and rating of borrowers and warehouses.

A rater (bank, insurer, guarantor) issues a grade with an expiry and the hash of
its audit report; the latest rating of a subject is the one disbursement checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.context import Exec, reject
from contracts.members import require_member
from contracts.state import P_RATING
from primitives.errors import Code
from primitives.genesis import GRADES
from primitives.tx import SignedTx

RATED_ROLES = ("borrower", "warehouse")


def rating_issue(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    subject = body["subject"]
    member = require_member(ctx.state, subject)
    if member["role"] not in RATED_ROLES:
        raise reject(Code.BAD_BODY, f"only {' and '.join(RATED_ROLES)} members are rated")
    if body["valid_until_ms"] <= ctx.now:
        raise reject(Code.BAD_BODY, "valid_until_ms is already past")
    ctx.state.put(
        P_RATING + subject.encode(),
        {
            "subject": subject,
            "grade": body["grade"],
            "valid_until_ms": body["valid_until_ms"],
            "issuer": stx.tx.sender,
            "report_hash": body["report_hash"],
            "issued_ms": ctx.now,
        },
    )


def require_rating(ctx: Exec, subject: str) -> None:
    """`rating_missing` unless the subject holds an unexpired rating; `rating_too_low`
    unless it is at or above the policy grade."""
    r = ctx.state.get(P_RATING + subject.encode())
    if r is None or r["valid_until_ms"] <= ctx.now:
        raise reject(Code.RATING_MISSING, f"{subject} has no valid rating")
    if GRADES.index(r["grade"]) > GRADES.index(ctx.policy.min_grade):
        raise reject(Code.RATING_TOO_LOW, f"{subject} is rated {r['grade']}, below {ctx.policy.min_grade}")
