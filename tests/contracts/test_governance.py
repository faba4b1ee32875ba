"""Governance (DESIGN §5): proposals, votes, thresholds, expiry, and every action
with its codes. Validator-set scheduling is in test_governance_validators.py."""

from __future__ import annotations

import pytest

import contracts
from primitives.genesis import Policy
from primitives.keys import KeyPair
from tests.contracts.chain import World
from tests.contracts.gov import approve_all, card, newcomer, proposal, propose, vote


def test_propose_rules() -> None:
    w = World()
    args = {"member": w.R2.id, "role": "auditor"}
    assert w.run(
        propose(w, w.R, "p1", "member.set_role", **args),
        propose(w, w.A, "p1", "member.set_role", **args),
        propose(w, w.B, "p1", "member.set_role", expires_ms=w.now + 1000, **args),
        propose(w, w.B, "p1", "no.such", **args),
        propose(w, w.B, "p1", "member.set_role", member=w.R2.id),
        propose(w, w.B, "p1", "member.set_role", **args, extra=1),
        propose(w, w.B, "p1", "member.set_role", member=5, role="auditor"),
        propose(w, w.B, "p1", "member.set_role", member="nobody", role="auditor"),
        propose(w, w.B, "p1", "member.set_role", member=w.R2.id, role="device"),
        propose(w, w.B, "p1", "member.set_role", expires_ms=w.now + 1001, **args),
        propose(w, w.W, "p1", "member.set_role", **args),
    ) == [
        "forbidden_role",
        "forbidden_role",
        "expired",
        "bad_action",
        "bad_action",
        "bad_action",
        "bad_action",
        "unknown_member",
        "bad_action",
        "ok",
        "proposal_exists",
    ]
    p = proposal(w, "p1")
    assert p["state"] == "open" and p["approvals"] == [w.B.id] and p["rejections"] == []
    assert p["action"] == "member.set_role" and p["args"] == args and p["result"] is None
    assert [x["id"] for x in contracts.list_proposals(w.chain.state, "open")] == ["p1"]
    assert w.chain.state.get(contracts.state_key_for("proposal", "p1")) is not None
    assert contracts.list_proposals(w.chain.state, "executed") == []


@pytest.mark.parametrize("pct, need", [(1, 1), (20, 1), (21, 2), (50, 3), (60, 3), (67, 4), (80, 4), (100, 5)])
def test_threshold_is_exact(pct: int, need: int) -> None:
    """5 governors: the action runs at the vote that makes ceil(pct·5/100) approvals, not one before."""
    w = World(policy=Policy(gov_approval_pct=pct))
    voters = [w.B, w.W, w.I, w.G, w.B2]
    w.ok(propose(w, voters[0], "p", "member.set_role", member=w.R2.id, role="auditor"))
    for i in range(1, need):
        assert proposal(w, "p")["state"] == "open" and _role(w, w.R2.id) == "borrower"
        w.ok(vote(w, voters[i], "p"))
    p = proposal(w, "p")
    assert p["state"] == "executed" and p["result"] == "ok" and len(p["approvals"]) == need
    assert p["tally"]["approvals"] == need == p["tally"]["need"]
    assert _role(w, w.R2.id) == "auditor"
    if need < 5:
        assert w.one(vote(w, voters[need], "p")) == "proposal_closed"


def _role(w: World, member: str) -> str:
    view = contracts.view_members(w.chain.state)
    return next(m["role"] for m in view if m["id"] == member)


def test_votes_only_from_governors_and_once() -> None:
    w = World()
    w.ok(propose(w, w.B, "p", "member.set_role", member=w.R2.id, role="auditor"))
    assert w.run(
        vote(w, w.R, "p"),
        vote(w, w.A, "p"),
        vote(w, w.W, "nope"),
        vote(w, w.B, "p"),
        vote(w, w.B, "p", approve=False),
        vote(w, w.W, "p", approve=False),
        vote(w, w.W, "p"),
    ) == [
        "forbidden_role",
        "forbidden_role",
        "unknown_proposal",
        "already_voted",
        "already_voted",
        "ok",
        "already_voted",
    ]
    p = proposal(w, "p")
    assert p["approvals"] == [w.B.id] and p["rejections"] == [w.W.id] and p["state"] == "open"


def test_rejections_close_once_approval_is_impossible() -> None:
    w = World()  # need 4 of 5
    w.ok(propose(w, w.B, "p", "member.set_role", member=w.R2.id, role="auditor"))
    w.ok(vote(w, w.W, "p", approve=False))
    assert proposal(w, "p")["state"] == "open"  # B + 3 undecided could still make 4
    w.ok(vote(w, w.I, "p", approve=False))
    p = proposal(w, "p")
    assert p["state"] == "rejected" and p["closed_height"] == w.chain.height and p["result"] is None
    assert w.one(vote(w, w.G, "p")) == "proposal_closed"
    assert _role(w, w.R2.id) == "borrower"


def test_expiry_closes_the_proposal_by_block_time() -> None:
    w = World()
    w.ok(propose(w, w.B, "p", "member.set_role", expires_ms=w.now + 3000, member=w.R2.id, role="auditor"))
    w.ok(vote(w, w.W, "p"))  # block time = expires_ms - 1000
    assert w.one(vote(w, w.I, "p")) == "expired"  # block time = expires_ms: the hook closed it first
    p = proposal(w, "p")
    assert p["state"] == "expired" and p["approvals"] == [w.B.id, w.W.id]
    assert any(e["kind"] == "proposal" and e["state"] == "expired" for e in w.chain.outcomes[-1].events)
    assert w.one(vote(w, w.G, "p")) == "expired"


def test_an_approved_action_whose_checks_fail_closes_as_failed() -> None:
    w = World(policy=Policy(gov_approval_pct=40))  # need 2
    w.ok(propose(w, w.B, "a", "member.remove", member=w.R2.id), propose(w, w.W, "b", "member.remove", member=w.R2.id))
    w.ok(vote(w, w.I, "a"))
    assert proposal(w, "a")["state"] == "executed"
    assert w.one(vote(w, w.G, "b")) == "ok"  # the vote is recorded; the action no longer applies
    p = proposal(w, "b")
    assert p["state"] == "failed" and p["result"] == "unknown_member" and p["approvals"] == [w.W.id, w.G.id]


def test_member_add_remove_and_the_newcomer_signs_from_then_on() -> None:
    w = World()  # 5 governors, need 4
    new = newcomer("bank3")
    doc = card(new)
    w.ok(propose(w, w.B, "add", "member.add", card=doc))
    assert approve_all(w, "add", [w.W, w.I]) == ["ok", "ok"]
    assert new.id not in {m["id"] for m in _members(w)}
    w.ok(vote(w, w.G, "add"))
    assert proposal(w, "add")["state"] == "executed" and _role(w, new.id) == "bank"
    assert w.one(w.tx(new, "device.accept", device="x")) == "unknown_device"  # a member now: signs
    # 6 governors now: 67% of 6 needs 5; the newcomer proposes and counts
    w.ok(propose(w, new, "rm", "member.remove", member=w.R2.id))
    approve_all(w, "rm", [w.B, w.W, w.I])
    assert w.R2.id in {m["id"] for m in _members(w)}
    w.ok(vote(w, w.G, "rm"))
    assert w.R2.id not in {m["id"] for m in _members(w)}
    assert w.one(w.tx(w.R2, "case.close", case="x")) == "unknown_sender"


def _members(w: World) -> list[dict]:  # type: ignore[type-arg]
    return contracts.view_members(w.chain.state)


def test_member_add_refuses_duplicates_and_bad_cards() -> None:
    w = World()
    n1 = newcomer("n1")
    same_name = KeyPair("bank", "bank", n1.sign_seed, n1.enc_secret)
    same_key = KeyPair(w.B2.name + "-x", "bank", w.B2.sign_seed, w.B2.enc_secret, alias="other-id")
    device_id = KeyPair("d", "bank", n1.sign_seed, n1.enc_secret, alias=w.d[0].id)
    node_id = KeyPair("n", "bank", n1.sign_seed, n1.enc_secret, alias=w.p.node_key(w.I).id)
    w.ok(w.tx(w.W, "device.register", device=w.d[0].id, sign_pub=w.d[0].sign_pub, zone="z", kind="scale"))
    bad_sig = card(newcomer("bank4"))
    bad_sig["sig"] = "00" * 64
    bad_id = KeyPair("bank5", "bank", n1.sign_seed, n1.enc_secret, alias="a/b")
    bad_role = card(newcomer("bank6"))
    bad_role["card"]["role"] = "device"
    assert (
        w.run(
            propose(w, w.B, "p", "member.add", card=card(w.B2)),
            propose(w, w.B, "p", "member.add", card=card(same_name)),
            propose(w, w.B, "p", "member.add", card=card(same_key)),
            propose(w, w.B, "p", "member.add", card=card(device_id)),
            propose(w, w.B, "p", "member.add", card=card(node_id)),
            propose(w, w.B, "p", "member.add", card=bad_sig),
            propose(w, w.B, "p", "member.add", card={"card": {}}),
            propose(w, w.B, "p", "member.add", card=card(bad_id)),
            propose(w, w.B, "p", "member.add", card=bad_role),
        )
        == ["member_exists"] * 5 + ["bad_action"] * 4
    )


def test_removing_or_demoting_the_last_governor_is_refused() -> None:
    w = World(policy=Policy(gov_roles=("bank",)))  # governors: bank, bank2 (need 2)
    assert w.run(
        propose(w, w.W, "x", "member.set_role", member=w.R.id, role="auditor"),
        propose(w, w.B, "p", "member.remove", member=w.B2.id),
    ) == ["forbidden_role", "ok"]
    w.ok(vote(w, w.B2, "p"))
    assert proposal(w, "p")["state"] == "executed"
    assert w.run(
        propose(w, w.B, "q", "member.set_role", member=w.B.id, role="insurer"),
        propose(w, w.B, "q", "policy.set", field="gov_roles", value=[]),
        propose(w, w.B, "q", "policy.set", field="gov_roles", value=["device"]),
        propose(w, w.B, "q", "member.set_role", member=w.I.id, role="bank"),
    ) == ["last_governor", "last_governor", "bad_action", "ok"]  # the last one runs at once (1 of 1)
    assert _role(w, w.I.id) == "bank" and proposal(w, "q")["state"] == "executed"


def test_set_role_changes_who_governs() -> None:
    w = World(policy=Policy(gov_approval_pct=40))  # need 2 of 5
    w.ok(propose(w, w.B, "p", "member.set_role", member=w.A.id, role="insurer"))
    w.ok(vote(w, w.W, "p"))
    assert _role(w, w.A.id) == "insurer"
    # A governs now: 6 governors, 40% needs 3
    w.ok(propose(w, w.B2, "r", "member.set_role", member=w.R2.id, role="auditor"))
    w.ok(propose(w, w.A, "q", "member.set_role", member=w.B2.id, role="borrower"))
    assert approve_all(w, "q", [w.B2, w.W]) == ["ok", "ok"]  # B2 still governs when it votes
    assert _role(w, w.B2.id) == "borrower" and w.one(vote(w, w.B2, "r", False)) == "forbidden_role"
    w.ok(vote(w, w.W, "r"))  # B2's approval no longer counts: 1 of 5 governors
    assert proposal(w, "r")["state"] == "open" and proposal(w, "r")["tally"]["approvals"] == 1


def test_policy_set() -> None:
    w = World(policy=Policy(gov_approval_pct=100))
    assert w.run(
        propose(w, w.B, "p", "policy.set", field="no_such", value=1),
        propose(w, w.B, "p", "policy.set", field="gov_approval_pct", value="50"),
        propose(w, w.B, "p", "policy.set", field="gov_approval_pct", value=True),
        propose(w, w.B, "p", "policy.set", field="gov_approval_pct", value=0),
        propose(w, w.B, "p", "policy.set", field="gov_approval_pct", value=101),
        propose(w, w.B, "p", "policy.set", field="min_grade", value="Z"),
        propose(w, w.B, "p", "policy.set", field="extension_consents", value=["insurer", 3]),
        propose(w, w.B, "p", "policy.set", field="extension_consents", value=["pirate"]),
        propose(w, w.B, "p", "policy.set", field="gov_approval_pct", value=20),
    ) == ["bad_action"] * 8 + ["ok"]
    approve_all(w, "p", [w.W, w.I, w.G])
    assert proposal(w, "p")["state"] == "open"  # 100%: all five
    w.ok(vote(w, w.B2, "p"))
    assert proposal(w, "p")["state"] == "executed"
    w.ok(propose(w, w.B, "q", "member.set_role", member=w.R2.id, role="auditor"))  # 20% of 5: runs at once
    assert proposal(w, "q")["state"] == "executed" and _role(w, w.R2.id) == "auditor"
