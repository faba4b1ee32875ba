"""Governance shortcuts over a `World`: new members' cards, proposals, votes, the
validator schedule. In the default World the governors are warehouse, bank,
insurer, guarantor and bank2 (5: 67% needs 4); warehouse, bank, insurer and
guarantor run the 4 validators (2f+1 = 3)."""

from __future__ import annotations

from typing import Any

import contracts
from node.tools.participants import derived_key
from primitives.card import MemberCard
from primitives.genesis import Validator
from primitives.keys import NODE_ROLE, KeyPair
from primitives.tx import SignedTx
from tests.contracts.chain import World

FAR = 10**12


def newcomer(name: str, role: str = "bank") -> KeyPair:
    return derived_key(b"gov-tests", name, role)


def node_of(name: str) -> KeyPair:
    return derived_key(b"gov-tests-node", name, NODE_ROLE)


def card(member: KeyPair, node: KeyPair | None = None, port: int = 30000) -> dict[str, Any]:
    """A member card document (as an action argument), with a node if given, on
    loopback at `port` (the World's validators listen on 26656…26659)."""
    addr = None if node is None else f"/ip4/127.0.0.1/tcp/{port}"
    return MemberCard.make(member, node, addr).to_json()


def propose(w: World, who: KeyPair, pid: str, action: str, expires_ms: int = FAR, **args: Any) -> SignedTx:
    return w.tx(who, "gov.propose", proposal=pid, action=action, args=args, expires_ms=expires_ms)


def vote(w: World, who: KeyPair, pid: str, approve: bool = True) -> SignedTx:
    return w.tx(who, "gov.vote", proposal=pid, approve=approve)


def proposal(w: World, pid: str) -> dict[str, Any]:
    view = contracts.view_proposal(w.chain.state, pid)
    assert view is not None
    return view


def validators(w: World) -> tuple[Validator, ...]:
    return contracts.validator_schedule(w.chain.state)[0]


def pending(w: World) -> tuple[int, tuple[Validator, ...]] | None:
    return contracts.validator_schedule(w.chain.state)[1]


def approve_all(w: World, pid: str, voters: list[KeyPair]) -> list[str]:
    """Each voter approves in its own block (so each vote sees the last one's effect)."""
    return [w.one(vote(w, v, pid)) for v in voters]
