"""Governance actions: what an approved proposal does.

Each action is a pure planning function of (context, arguments) that makes every
check and returns a `Plan` — the writes, the next validator set if it changes
it, the new policy if it sets one — without writing anything. A proposal is
planned when proposed (so a bad one fails early, with the very checks it will
meet when it runs), on every vote (to know whether it changes the validator set),
and once more when approved, just before `apply_plan`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from contracts.context import Exec, ensure, reject
from contracts.members import governors, key_owner, member_record, require_member, validator_record
from contracts.schema import ID, Field, check_fields, field
from contracts.state import K_POLICY, P_DEVICE, P_MEMBER, P_SIGN_KEY
from contracts.validators import ValidatorRecord, current_validators, known_validators, pending_change, schedule
from primitives.card import MemberCard
from primitives.errors import Code, GodownError
from primitives.genesis import Policy
from primitives.keys import ROLES


@dataclass(frozen=True)
class Plan:
    """What an action will do: state writes, the next validator set (a validator-set
    change), a new policy."""

    writes: tuple[tuple[bytes, Any], ...] = ()
    validators: tuple[ValidatorRecord, ...] | None = None
    policy: Policy | None = None


@dataclass(frozen=True)
class Action:
    name: str
    fields: tuple[Field, ...]
    doc: str
    plan: Callable[[Exec, Mapping[str, Any]], Plan]


def _card(doc: Any) -> MemberCard:
    """A member card from its JSON document; `bad_action` unless well formed and signed."""
    try:
        card = MemberCard.from_json(doc)
    except GodownError as exc:
        raise reject(Code.BAD_ACTION, f"card refused ({exc.code.value}): {exc.message}") from None
    ensure(ID.fullmatch(card.id) is not None, Code.BAD_ACTION, f"member id {card.id!r} is not 1–64 of [A-Za-z0-9._:-]")
    return card


def _card_of_member(ctx: Exec, card: MemberCard) -> dict[str, Any]:
    """The member a card speaks for: it must run a node and carry the member's current keys."""
    ensure(card.runs_validator, Code.BAD_ACTION, f"card of {card.id} names no node")
    m = require_member(ctx.state, card.id)
    same = card.sign_pub == m["sign_pub"] and card.enc_pub == m["enc_pub"]
    ensure(same, Code.BAD_ACTION, f"card keys are not those of member {card.id}")
    return m


def _new_node(ctx: Exec, card: MemberCard, others: list[ValidatorRecord]) -> ValidatorRecord:
    """The card's node as a validator record: `validator_exists` if its id, key or
    address is another validator's, or its id a member's."""
    v = card.validator()
    assert v is not None, "checked by the caller"
    for o in others:
        dup = o["node_id"] == v.node_id or o["node_pub"] == v.node_pub or o["p2p_addr"] == v.p2p_addr
        ensure(not dup, Code.VALIDATOR_EXISTS, f"node {v.node_id} or address {v.p2p_addr} is already a validator's")
    taken = v.node_id == card.id or ctx.state.get(P_MEMBER + v.node_id.encode()) is not None
    ensure(not taken, Code.VALIDATOR_EXISTS, f"node id {v.node_id} is a member id")
    return validator_record(v)


def _member_add(ctx: Exec, args: Mapping[str, Any]) -> Plan:
    card = _card(args["card"])
    key = P_MEMBER + card.id.encode()
    ensure(ctx.state.get(key) is None, Code.MEMBER_EXISTS, f"member {card.id} exists")
    ensure(ctx.state.get(P_DEVICE + card.id.encode()) is None, Code.MEMBER_EXISTS, f"{card.id} is a device id")
    names = {m["name"] for _, m in ctx.state.scan(P_MEMBER)}
    ensure(card.name not in names, Code.MEMBER_EXISTS, f"a member is named {card.name!r}")
    ensure(ctx.state.get(P_SIGN_KEY + card.sign_pub) is None, Code.MEMBER_EXISTS, "signing key already used")
    validators = current_validators(ctx.state)
    node_ids = {v["node_id"] for v in known_validators(ctx.state)}
    ensure(card.id not in node_ids, Code.MEMBER_EXISTS, f"{card.id} is a validator node id")
    writes = (
        (key, member_record(card.id, card.name, card.role, card.sign_pub, card.enc_pub)),
        (P_SIGN_KEY + card.sign_pub, key_owner(card.id, "member")),
    )
    if not card.runs_validator:
        return Plan(writes)
    return Plan(writes, (*validators, _new_node(ctx, card, validators)))


def _member_remove(ctx: Exec, args: Mapping[str, Any]) -> Plan:
    member = require_member(ctx.state, args["member"])["id"]
    writes = ((P_MEMBER + member.encode(), None),)
    if all(v["member"] != member for v in known_validators(ctx.state)):
        return Plan(writes)
    return Plan(writes, tuple(v for v in current_validators(ctx.state) if v["member"] != member))


def _member_set_role(ctx: Exec, args: Mapping[str, Any]) -> Plan:
    m = require_member(ctx.state, args["member"])
    role = args["role"]
    ensure(role in ROLES and role != "device", Code.BAD_ACTION, f"role must be a member role of {ROLES}")
    return Plan(((P_MEMBER + m["id"].encode(), {**m, "role": role}),))


def _validator_add(ctx: Exec, args: Mapping[str, Any]) -> Plan:
    card = _card(args["card"])
    _card_of_member(ctx, card)
    validators = current_validators(ctx.state)
    return Plan((), (*validators, _new_node(ctx, card, validators)))


def _validator_index(ctx: Exec, node_id: str) -> tuple[int, list[ValidatorRecord]]:
    validators = current_validators(ctx.state)
    found = [i for i, v in enumerate(validators) if v["node_id"] == node_id]
    ensure(bool(found), Code.UNKNOWN_VALIDATOR, f"{node_id} is not a current validator")
    return found[0], validators


def _validator_remove(ctx: Exec, args: Mapping[str, Any]) -> Plan:
    i, validators = _validator_index(ctx, args["node_id"])
    return Plan((), (*validators[:i], *validators[i + 1 :]))


def _node_rotate_key(ctx: Exec, args: Mapping[str, Any]) -> Plan:
    i, validators = _validator_index(ctx, args["node_id"])
    card = _card(args["card"])
    old = validators[i]
    ensure(card.id == old["member"], Code.BAD_ACTION, f"node {old['node_id']} is run by {old['member']}")
    _card_of_member(ctx, card)
    ensure(card.node_pub != old["node_pub"], Code.VALIDATOR_EXISTS, "the card names the node's current key")
    new = _new_node(ctx, card, [*validators[:i], *validators[i + 1 :]])
    return Plan((), (*validators[:i], new, *validators[i + 1 :]))


def _policy_set(ctx: Exec, args: Mapping[str, Any]) -> Plan:
    name, value = args["field"], args["value"]
    doc = ctx.policy.to_json()
    ensure(name in doc, Code.BAD_ACTION, f"policy has no field {name!r}; fields: {', '.join(sorted(doc))}")
    old = doc[name]
    if type(old) is list:
        ok = type(value) is list and all(type(x) is str for x in value)
    else:
        ok = type(value) is type(old)
    ensure(ok, Code.BAD_ACTION, f"policy field {name} takes a {type(old).__name__}")
    ensure(name != "gov_roles" or "device" not in value, Code.BAD_ACTION, "devices cannot govern")
    try:
        policy = Policy.from_json({**doc, name: value})
    except GodownError as exc:
        raise reject(Code.BAD_ACTION, exc.message) from None
    return Plan(policy=policy)


_CARD = field("card", "map", "a member card document (MemberCard.to_json(), bytes as hex)")
_MEMBER = field("member", "id", "member id")
_NODE = field("node_id", "id", "validator node id")

ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("member.add", (_CARD,), "add a member (and the validator its card names)", _member_add),
        Action("member.remove", (_MEMBER,), "remove a member and the validators it runs", _member_remove),
        Action(
            "member.set_role",
            (_MEMBER, field("role", "str", "a member role")),
            "change a member's role",
            _member_set_role,
        ),
        Action("validator.add", (_CARD,), "add the node an existing member's card names", _validator_add),
        Action("validator.remove", (_NODE,), "remove a validator", _validator_remove),
        Action(
            "node.rotate_key",
            (_NODE, _CARD),
            "replace a validator's node key and address (card of its member with the new node)",
            _node_rotate_key,
        ),
        Action(
            "policy.set",
            (field("field", "str", "policy field"), field("value", "any", "its new value")),
            "update one policy field",
            _policy_set,
        ),
    )
}


def check_action_shape(name: str, args: Mapping[str, Any]) -> Action:
    """`bad_action` unless `name` is an action and `args` its exact typed arguments: what a
    proposal alone decides, so admission refuses it (the rest needs the state)."""
    action = ACTIONS.get(name)
    if action is None:
        raise reject(Code.BAD_ACTION, f"no action {name!r}; actions: {', '.join(ACTIONS)}")
    check_fields(name, action.fields, args, Code.BAD_ACTION)
    return action


def plan(ctx: Exec, name: str, args: Mapping[str, Any]) -> Plan:
    """Check an action against the current state and return what it would do; raise its
    code otherwise (`bad_action`, `validator_change_pending`, `last_governor`, ...)."""
    p = check_action_shape(name, args).plan(ctx, args)
    if p.validators is not None:
        ensure(pending_change(ctx.state) is None, Code.VALIDATOR_CHANGE_PENDING, "a validator-set change is pending")
        ensure(bool(p.validators), Code.LAST_VALIDATOR, "the action would leave no validator")
    ensure(_governors_after(ctx, p) > 0, Code.LAST_GOVERNOR, "the action would leave no member with a gov role")
    return p


def _governors_after(ctx: Exec, p: Plan) -> int:
    policy = p.policy or ctx.policy
    ids = governors(ctx.state, policy)
    roles = set(policy.gov_roles)
    for key, value in p.writes:
        if key.startswith(P_MEMBER):
            ident = key[len(P_MEMBER) :].decode()
            ids.discard(ident)
            if value is not None and value["role"] in roles:
                ids.add(ident)
    return len(ids)


def apply_plan(ctx: Exec, p: Plan) -> int | None:
    """Carry out a plan made in this same transaction; return the height after which a
    new validator set governs (None if the plan leaves the set alone)."""
    for key, value in p.writes:
        ctx.state.put(key, value)
    if p.policy is not None:
        ctx.state.put(K_POLICY, p.policy.to_json())
        ctx.policy = p.policy
    return None if p.validators is None else schedule(ctx, list(p.validators))
