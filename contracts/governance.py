"""Governance (DESIGN §5): `gov.propose` → `gov.vote`; the action runs in the vote
that brings its approvals to the threshold.

Threshold: approvals from distinct members who hold a role of the policy's
`gov_roles` now, at least `ceil(gov_approval_pct × governors / 100)`; for a
validator-set change also approvals from the members running at least
`quorum_size(n)` of the n current validators. A proposal closes as

- executed — approved and applied (`result` "ok");
- failed   — approved, but its action's checks no longer hold (`result` names the
  code, e.g. `unknown_member`); the vote itself still succeeds;
- rejected — enough rejections that approval is no longer possible;
- expired  — its `expires_ms` came before approval (closed by the time hook).

Counts are taken afresh at every vote, against the members and validators of
that moment: an approval by a member who has since lost its gov role no longer
counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from contracts.actions import Plan, apply_plan, plan
from contracts.context import Exec, ensure
from contracts.members import governors
from contracts.state import P_MEMBER, P_PROPOSAL, P_PROPOSAL_DUE, due_key
from contracts.validators import current_validators
from primitives.block import quorum_size
from primitives.errors import Code, Rejected
from primitives.tx import SignedTx

OPEN, EXECUTED, FAILED, REJECTED, EXPIRED = "open", "executed", "failed", "rejected", "expired"
PROPOSAL_STATES = (OPEN, EXECUTED, FAILED, REJECTED, EXPIRED)

Proposal = dict[str, Any]


def _key(proposal_id: str) -> bytes:
    return P_PROPOSAL + proposal_id.encode()


def _governor(ctx: Exec, sender: str) -> None:
    role = ctx.state.get(P_MEMBER + sender.encode())["role"]
    ensure(role in ctx.policy.gov_roles, Code.FORBIDDEN_ROLE, f"a {role} has no vote (gov_roles)")


def gov_propose(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    sender, pid, expires = stx.tx.sender, body["proposal"], body["expires_ms"]
    _governor(ctx, sender)
    ensure(ctx.state.get(_key(pid)) is None, Code.PROPOSAL_EXISTS, f"proposal {pid} exists")
    ensure(expires > ctx.now, Code.EXPIRED, f"expires_ms {expires} is not after block time {ctx.now}")
    plan(ctx, body["action"], body["args"])
    rec: Proposal = {
        "id": pid,
        "proposer": sender,
        "action": body["action"],
        "args": body["args"],
        "expires_ms": expires,
        "state": OPEN,
        "approvals": [sender],
        "rejections": [],
        "created_height": ctx.block.height,
        "closed_height": None,
        "result": None,
        "effective_height": None,
        "tally": None,
    }
    ctx.state.put(due_key(P_PROPOSAL_DUE, expires, pid), b"")
    ctx.emit("proposal", proposal=pid, state=OPEN, action=rec["action"])
    _tally(ctx, rec)


def gov_vote(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    sender, pid = stx.tx.sender, body["proposal"]
    _governor(ctx, sender)
    rec = ctx.state.get(_key(pid))
    ensure(rec is not None, Code.UNKNOWN_PROPOSAL, f"no proposal {pid}")
    ensure(rec["state"] != EXPIRED, Code.EXPIRED, f"proposal {pid} expired at {rec['expires_ms']}")
    ensure(rec["state"] == OPEN, Code.PROPOSAL_CLOSED, f"proposal {pid} is {rec['state']}")
    voted = sender in rec["approvals"] or sender in rec["rejections"]
    ensure(not voted, Code.ALREADY_VOTED, f"{sender} has voted on {pid}")
    assert ctx.now < rec["expires_ms"], "the time hook closes proposals at expiry"
    side = "approvals" if body["approve"] else "rejections"
    _tally(ctx, {**rec, side: [*rec[side], sender]})


@dataclass(frozen=True)
class Tally:
    """Approvals counted against the threshold now; validator counts only for a
    validator-set change."""

    approvals: int
    need: int
    possible: int
    validator_approvals: int = 0
    validator_need: int = 0
    validator_possible: int = 0

    @property
    def passed(self) -> bool:
        return self.approvals >= self.need and self.validator_approvals >= self.validator_need

    @property
    def hopeless(self) -> bool:
        return self.possible < self.need or self.validator_possible < self.validator_need


def count(ctx: Exec, rec: Proposal, validator_change: bool) -> Tally:
    """The tally of a proposal against the current members, policy and validators."""
    gov = governors(ctx.state, ctx.policy)
    assert gov, "a governor sent this vote"
    yes = gov & set(rec["approvals"])
    undecided = gov - yes - set(rec["rejections"])
    need = -(-ctx.policy.gov_approval_pct * len(gov) // 100)
    if not validator_change:
        return Tally(len(yes), need, len(yes) + len(undecided))
    members = [v["member"] for v in current_validators(ctx.state)]
    v_yes = sum(1 for m in members if m in yes)
    v_possible = sum(1 for m in members if m in yes or m in undecided)
    return Tally(len(yes), need, len(yes) + len(undecided), v_yes, quorum_size(len(members)), v_possible)


def _tally(ctx: Exec, rec: Proposal) -> None:
    """Store the proposal with its votes; run, fail or reject it if the votes decide it."""
    try:
        p: Plan | None = plan(ctx, rec["action"], rec["args"])
        failure = Code.OK
    except Rejected as exc:
        p, failure = None, exc.code
    t = count(ctx, rec, p is not None and p.validators is not None)
    rec = {**rec, "tally": asdict(t)}
    if t.passed:
        effective = apply_plan(ctx, p) if p is not None else None
        _close(ctx, {**rec, "effective_height": effective}, EXECUTED if p else FAILED, failure.value)
    elif t.hopeless:
        _close(ctx, rec, REJECTED, None)
    else:
        ctx.state.put(_key(rec["id"]), rec)


def _close(ctx: Exec, rec: Proposal, state: str, result: str | None) -> None:
    assert rec["state"] == OPEN, "only an open proposal closes"
    ctx.state.put(_key(rec["id"]), {**rec, "state": state, "closed_height": ctx.block.height, "result": result})
    ctx.state.delete(due_key(P_PROPOSAL_DUE, rec["expires_ms"], rec["id"]))
    ctx.emit("proposal", proposal=rec["id"], state=state, action=rec["action"], result=result)


def expire(ctx: Exec, due_entry: bytes, proposal_id: str) -> None:
    """Time hook: a proposal still open when its expiry comes closes as expired."""
    rec = ctx.state.get(_key(proposal_id))
    ctx.state.delete(due_entry)
    if rec is not None and rec["state"] == OPEN:
        _close(ctx, rec, EXPIRED, None)
