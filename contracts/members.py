"""Members, their roles and keys, the policy and validators: the state at height 0,
and the lookups every other contract makes (who is this sender, what role)."""

from __future__ import annotations

from typing import Any

from contracts.context import reject
from contracts.state import (
    K_CHAIN,
    K_CONSENSUS,
    K_POLICY,
    K_VALIDATORS,
    P_DEVICE,
    P_MEMBER,
    P_SIGN_KEY,
    Overlay,
    StateReader,
    decode_value,
)
from primitives import codec
from primitives.errors import Code
from primitives.genesis import Genesis, Policy, Validator


def member_record(member_id: str, name: str, role: str, sign_pub: bytes, enc_pub: bytes) -> dict[str, Any]:
    return {"id": member_id, "name": name, "role": role, "sign_pub": sign_pub, "enc_pub": enc_pub}


def validator_record(v: Validator) -> dict[str, Any]:
    """A validator as state holds it: node id, the member running it, node key, address."""
    return {"node_id": v.node_id, "member": v.member, "node_pub": v.node_pub, "p2p_addr": v.p2p_addr}


def genesis_state(genesis: Genesis) -> dict[bytes, bytes]:
    """State at height 0: chain id, policy, consensus parameters, validators, and every
    member (role and keys) with its signing key in the key index."""
    out: dict[bytes, bytes] = {
        K_CHAIN: codec.encode(genesis.chain_id),
        K_POLICY: codec.encode(genesis.policy.to_json()),
        K_CONSENSUS: codec.encode(genesis.consensus.to_json()),
        K_VALIDATORS: codec.encode([validator_record(v) for v in genesis.validators]),
    }
    for m in genesis.members:
        out[P_MEMBER + m.id.encode()] = codec.encode(member_record(m.id, m.name, m.role, m.sign_pub, m.enc_pub))
        out[P_SIGN_KEY + m.sign_pub] = codec.encode(key_owner(m.id, "member"))
    return out


def key_owner(owner: str, kind: str) -> dict[str, str]:
    """A key index entry: who registered the signing key (a member or a device)."""
    return {"owner": owner, "kind": kind}


def claim_key(state: Overlay, sign_pub: bytes, owner: str, kind: str, code: Code) -> None:
    """Enter a signing key in the index; `code` if any member or device ever used it
    (entries outlive rotations and removals, so a retired key never returns)."""
    found = state.get(P_SIGN_KEY + sign_pub)
    if found is not None:
        raise reject(code, f"signing key already used by {found['kind']} {found['owner']}")
    state.put(P_SIGN_KEY + sign_pub, key_owner(owner, kind))


def load_policy(state: StateReader) -> Policy:
    """The policy stored at genesis (defaults if absent)."""
    raw = state.get(K_POLICY)
    if raw is None:
        return Policy()
    return Policy.from_json(decode_value(raw))


def signing_key(record: dict[str, Any], height: int | None) -> bytes:
    """The key a member's or device's transactions in block `height` are signed with:
    a key rotated in that very block signs from the next one (None: the next block)."""
    if height is not None and record.get("rotated_height") == height:
        return record["prev_sign_pub"]  # type: ignore[no-any-return]
    return record["sign_pub"]  # type: ignore[no-any-return]


def rotated(record: dict[str, Any], sign_pub: bytes, height: int, **changes: Any) -> dict[str, Any]:
    """The record with a new signing key, the old one still valid for the rest of `height`."""
    prev = signing_key(record, height)
    return {**record, **changes, "sign_pub": sign_pub, "prev_sign_pub": prev, "rotated_height": height}


def sender_identity(state: Overlay, sender: str, height: int | None = None) -> tuple[str, bytes] | None:
    """(role, signing public key for block `height`) of a member or a registered device, or None."""
    m = state.get(P_MEMBER + sender.encode())
    if m is not None:
        return m["role"], signing_key(m, height)
    d = state.get(P_DEVICE + sender.encode())
    if d is not None:
        return "device", signing_key(d, height)
    return None


def sender_key(state: StateReader, sender: str) -> bytes | None:
    """The signing key a sender is registered with in committed state (member or device),
    or None: what an auditor needs to check signatures ahead of execution."""
    found = sender_identity(Overlay(state), sender)
    return None if found is None else found[1]


def require_member(state: Overlay, member_id: str, role: str | None = None) -> dict[str, Any]:
    """The member record, `unknown_member` if absent; `bad_body` if its role differs."""
    m = state.get(P_MEMBER + member_id.encode())
    if m is None:
        raise reject(Code.UNKNOWN_MEMBER, f"{member_id} is not a member")
    if role is not None and m["role"] != role:
        raise reject(Code.BAD_BODY, f"{member_id} is a {m['role']}, not a {role}")
    return m  # type: ignore[no-any-return]


def governors(state: Overlay, policy: Policy) -> set[str]:
    """Ids of the members whose role is among the policy's `gov_roles`, as of now."""
    roles = set(policy.gov_roles)
    return {m["id"] for _, m in state.scan(P_MEMBER) if m["role"] in roles}
