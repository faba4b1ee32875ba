"""The genesis ceremony: independent organisations form a consortium without any
private key leaving its owner's host. Each makes its keys and a signed member
card; one of them starts a draft genesis, adds every card it receives, and all of
them verify the result and compare its hash before starting their nodes
(`godown genesis new|add|verify`). `godown testnet init` runs the same steps on
one machine. A failed step leaves the genesis file as it was."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from primitives.block import max_faulty
from primitives.card import MemberCard
from primitives.errors import Code, GodownError
from primitives.genesis import ConsensusParams, Genesis, Policy


def _save_atomically(genesis: Genesis, path: Path) -> None:
    """Write beside the target and rename over it: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=".genesis-", dir=path.parent)
    os.close(fd)
    try:
        genesis.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def new_genesis(
    path: str | Path,
    chain_id: str,
    policy: Policy | None = None,
    consensus: ConsensusParams | None = None,
    genesis_time_ms: int | None = None,
) -> Genesis:
    """Start a draft genesis: chain id, policy and consensus parameters, no members yet."""
    p = Path(path)
    if p.exists():
        raise GodownError(Code.BAD_CONFIG, f"{p} exists already; the ceremony starts from a new file")
    if not chain_id or len(chain_id) > 64:
        raise GodownError(Code.BAD_CONFIG, "chain id must be 1 to 64 characters")
    genesis = Genesis(
        chain_id=chain_id,
        genesis_time_ms=int(time.time() * 1000) if genesis_time_ms is None else genesis_time_ms,
        members=(),
        validators=(),
        policy=policy or Policy(),
        consensus=consensus or ConsensusParams(),
    )
    p.parent.mkdir(parents=True, exist_ok=True)
    _save_atomically(genesis, p)
    return genesis


def with_card(genesis: Genesis, card: MemberCard) -> Genesis:
    """The genesis with one more member (and its validator); refuses duplicates."""
    card.check()
    if any(m.id == card.id for m in genesis.members):
        raise GodownError(Code.MEMBER_EXISTS, f"a member with id {card.id} is in the genesis already")
    if any(m.name == card.name for m in genesis.members):
        raise GodownError(Code.MEMBER_EXISTS, f"a member named {card.name!r} is in the genesis already")
    if any(m.sign_pub == card.sign_pub for m in genesis.members):
        raise GodownError(Code.MEMBER_EXISTS, f"{card.name}'s signing key belongs to a member already")
    validator = card.validator()
    validators = genesis.validators
    if validator is not None:
        if any(v.node_pub == validator.node_pub for v in validators):
            raise GodownError(Code.VALIDATOR_EXISTS, f"{card.name}'s node key is a validator's already")
        if any(v.p2p_addr == validator.p2p_addr for v in validators):
            raise GodownError(Code.VALIDATOR_EXISTS, f"another validator advertises {validator.p2p_addr}")
        validators = (*validators, validator)
    grown = replace(genesis, members=(*genesis.members, card.member()), validators=validators)
    return Genesis.from_json(grown.to_json(), draft=True)  # every genesis rule, once more


def add_card(genesis_path: str | Path, card_path: str | Path) -> MemberCard:
    """Add a card's member (and validator) to the genesis file; on error it is unchanged."""
    p = Path(genesis_path)
    genesis = Genesis.load(p, draft=True)
    card = MemberCard.load(card_path)
    _save_atomically(with_card(genesis, card), p)
    return card


def describe(genesis: Genesis) -> dict[str, Any]:
    """What every organisation checks before starting: the hash, who validates, who is in."""
    names = {m.id: m.name for m in genesis.members}
    n = len(genesis.validators)
    return {
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.hash().hex(),
        "genesis_time_ms": genesis.genesis_time_ms,
        "validators": [
            {"node_id": v.node_id, "member": v.member, "name": names[v.member], "p2p_addr": v.p2p_addr}
            for v in genesis.validators
        ],
        "fault_tolerance": {"n": n, "f": max_faulty(n)} if n else None,
        "members": [{"id": m.id, "name": m.name, "role": m.role} for m in genesis.members],
        "policy": genesis.policy.to_json(),
        "consensus": genesis.consensus.to_json(),
    }


def verify_genesis(path: str | Path) -> dict[str, Any]:
    """Check a finished genesis (at least one validator, every rule) and describe it."""
    return describe(Genesis.load(path))
