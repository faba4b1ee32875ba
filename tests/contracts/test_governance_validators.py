"""Validator-set changes by governance: 2f+1 of the validators' members, one change
pending at a time, effective after the first checkpoint boundary after approval,
switched by the time hook of the first block above it."""

from __future__ import annotations

import pytest

from primitives.genesis import ConsensusParams, Policy
from primitives.keys import KeyPair
from tests.contracts.chain import World
from tests.contracts.gov import approve_all, card, newcomer, node_of, pending, proposal, propose, validators, vote


def _ids(vs: tuple) -> list[str]:  # type: ignore[type-arg]
    return [v.node_id for v in vs]


def test_validator_changes_need_two_thirds_of_the_validators_members() -> None:
    w = World(policy=Policy(gov_approval_pct=40))  # 2 of 5 governors suffice for other actions
    gone = w.p.node_key(w.G).id
    w.ok(propose(w, w.B2, "p", "validator.remove", node_id=gone))  # bank2 runs no validator
    w.ok(vote(w, w.W, "p"))
    p = proposal(w, "p")
    assert p["state"] == "open" and p["tally"]["approvals"] >= p["tally"]["need"]
    assert p["tally"]["validator_approvals"] == 1 and p["tally"]["validator_need"] == 3
    w.ok(vote(w, w.B, "p"))
    assert proposal(w, "p")["state"] == "open" and pending(w) is None
    w.ok(vote(w, w.I, "p"))
    assert proposal(w, "p")["state"] == "executed" and pending(w) is not None


def test_validator_change_rejected_once_the_validator_quorum_is_out_of_reach() -> None:
    w = World(policy=Policy(gov_approval_pct=40))
    w.ok(propose(w, w.B2, "p", "validator.remove", node_id=w.p.node_key(w.G).id))
    w.ok(vote(w, w.W, "p", approve=False))
    assert proposal(w, "p")["state"] == "open"
    w.ok(vote(w, w.B, "p", approve=False))  # 2 of 4 validators' members against: 3 cannot be reached
    assert proposal(w, "p")["state"] == "rejected"


@pytest.mark.parametrize("interval, window, final_height", [(4, 8, 5), (4, 8, 8), (10, 8, 7), (1, 8, 3), (4, 1, 5)])
def test_effective_height_and_the_switch_at_the_first_block_above_it(
    interval: int, window: int, final_height: int
) -> None:
    """The change governs from the first checkpoint boundary at least the high-watermark span after the
    approving block (nothing then in flight straddles two sets), switching right above it."""
    w = World(consensus=ConsensusParams(checkpoint_interval=interval, window=window))
    before = validators(w)
    gone = w.p.node_key(w.W).id
    w.ok(propose(w, w.B, "p", "validator.remove", node_id=gone))
    w.ok(vote(w, w.I, "p"), vote(w, w.G, "p"))
    while w.chain.height < final_height - 1:
        w.run()
    w.ok(vote(w, w.B2, "p"))  # the fourth approval, in block final_height
    assert w.chain.height == final_height
    lead = 2 * interval + window  # the replica's high-watermark span
    e = -(-(final_height + lead) // interval) * interval
    assert e % interval == 0 and e >= final_height + lead and e - interval < final_height + lead
    assert proposal(w, "p")["effective_height"] == e and proposal(w, "p")["state"] == "executed"
    assert pending(w) == (e, before[1:])
    while w.chain.height < e:
        assert validators(w) == before
        w.run()
    assert w.chain.height == e and validators(w) == before and pending(w) is not None
    w.run()  # block e + 1: its hook switches
    assert validators(w) == before[1:] and pending(w) is None
    assert any(ev["kind"] == "validators" and ev["state"] == "switched" for ev in w.chain.outcomes[-1].events)


def _scheduled(w: World, pid: str, action: str, **args: object) -> None:
    """Propose and approve a validator-set change (B, W, I, G): it is pending after this."""
    w.ok(propose(w, w.B, pid, action, **args))
    assert approve_all(w, pid, [w.W, w.I, w.G]) == ["ok"] * 3
    assert proposal(w, pid)["state"] == "executed", proposal(w, pid)


def test_one_validator_change_pending_at_a_time() -> None:
    w = World(consensus=ConsensusParams(checkpoint_interval=100))
    b2_node = node_of("b2")
    w.ok(propose(w, w.B, "late", "validator.add", card=card(w.B2, b2_node)))  # opened before any change
    _scheduled(w, "p", "validator.remove", node_id=w.p.node_key(w.G).id)
    assert w.run(
        propose(w, w.B, "q", "validator.remove", node_id=w.p.node_key(w.I).id),
        propose(w, w.B, "q", "member.remove", member=w.I.id),
        propose(w, w.B, "q", "member.add", card=card(newcomer("bank3"), node_of("n3"))),
        propose(w, w.B, "q", "member.add", card=card(newcomer("bank3"))),  # no node: not a validator change
    ) == ["validator_change_pending"] * 3 + ["ok"]
    assert approve_all(w, "late", [w.W, w.I, w.G]) == ["ok"] * 3
    p = proposal(w, "late")
    assert p["state"] == "failed" and p["result"] == "validator_change_pending"
    while pending(w) is not None:
        w.run()
    w.ok(propose(w, w.B, "again", "validator.add", card=card(w.B2, b2_node)))  # allowed once switched


def test_validator_add_appends_and_checks_the_card() -> None:
    w = World()
    before = validators(w)
    other = newcomer("bank3")
    impostor = KeyPair("bank2", "bank", other.sign_seed, other.enc_secret, alias=w.B2.id)  # B2's id, not its keys
    x = node_of("x")
    assert w.run(
        propose(w, w.B, "p", "validator.add", card=card(w.B2)),
        propose(w, w.B, "p", "validator.add", card=card(other, x)),
        propose(w, w.B, "p", "validator.add", card=card(impostor, x)),
        propose(w, w.B, "p", "validator.add", card=card(w.B2, w.p.node_key(w.W))),
        propose(w, w.B, "p", "validator.add", card=card(w.B2, x, port=26656)),  # the warehouse node's address
        propose(w, w.B, "p", "validator.add", card=card(w.B2, x)),
    ) == ["bad_action", "unknown_member", "bad_action", "validator_exists", "validator_exists", "ok"]
    approve_all(w, "p", [w.W, w.I, w.G])
    e, nxt = pending(w)  # type: ignore[misc]
    assert nxt[:4] == before and nxt[4].node_id == node_of("x").id and nxt[4].member == w.B2.id


def test_member_add_with_a_node_and_member_remove_with_its_validators() -> None:
    w = World(consensus=ConsensusParams(checkpoint_interval=2))
    new, node = newcomer("warehouse2", "warehouse"), node_of("wh2")
    _scheduled(w, "add", "member.add", card=card(new, node))
    assert new.id in {m for m in _member_ids(w)}  # the member at once, its validator at the boundary
    assert [v.node_id for v in pending(w)[1]][-1] == node.id  # type: ignore[index]
    while pending(w) is not None:
        w.run()
    assert validators(w)[-1].member == new.id and len(validators(w)) == 5
    # 6 governors (need 5), 5 validators (need 4): remove the warehouse and its node
    w.ok(propose(w, w.B, "rm", "member.remove", member=w.W.id))
    assert approve_all(w, "rm", [w.I, w.G, new, w.W]) == ["ok"] * 4
    assert proposal(w, "rm")["state"] == "executed" and w.W.id not in _member_ids(w)
    assert all(v.member != w.W.id for v in pending(w)[1])  # type: ignore[index]


def _member_ids(w: World) -> set[str]:
    import contracts

    return {m["id"] for m in contracts.view_members(w.chain.state)}


def test_validator_remove_keeps_order_and_never_leaves_none() -> None:
    w = World()
    before = validators(w)
    assert w.one(propose(w, w.B, "x", "validator.remove", node_id="no-such-node")) == "unknown_validator"
    _scheduled(w, "p", "validator.remove", node_id=before[1].node_id)
    assert pending(w)[1] == (before[0], before[2], before[3])  # type: ignore[index]
    solo = World(validating=1)
    only = validators(solo)[0]
    assert solo.run(
        propose(solo, solo.B, "p", "validator.remove", node_id=only.node_id),
        propose(solo, solo.B, "p", "member.remove", member=only.member),
    ) == ["last_validator", "last_validator"]


def test_node_rotate_key_replaces_in_place() -> None:
    w = World()
    before = validators(w)
    bank_node = before[1].node_id
    fresh = node_of("bank-new")
    assert w.run(
        propose(w, w.B, "p", "node.rotate_key", node_id="nope", card=card(w.B, fresh)),
        propose(w, w.B, "p", "node.rotate_key", node_id=bank_node, card=card(w.I, fresh)),
        propose(w, w.B, "p", "node.rotate_key", node_id=bank_node, card=card(w.B)),
        propose(w, w.B, "p", "node.rotate_key", node_id=bank_node, card=card(w.B, w.p.node_key(w.B))),
        propose(w, w.B, "p", "node.rotate_key", node_id=bank_node, card=card(w.B, w.p.node_key(w.I))),
        propose(w, w.B, "p", "node.rotate_key", node_id=bank_node, card=card(w.B, fresh, port=26656)),
        propose(w, w.B, "p", "node.rotate_key", node_id=bank_node, card=card(w.B, fresh, port=26657)),
    ) == [
        "unknown_validator",
        "bad_action",
        "bad_action",
        "validator_exists",
        "validator_exists",
        "validator_exists",
        "ok",
    ]
    approve_all(w, "p", [w.W, w.I, w.G])
    nxt = pending(w)[1]  # type: ignore[index]
    assert nxt[0] == before[0] and nxt[2:] == before[2:]
    assert nxt[1].node_id == fresh.id and nxt[1].node_pub == fresh.sign_pub and nxt[1].member == w.B.id
