"""Members, their roles and keys, the policy and validators: the state at height 0,
and the lookups every other contract makes (who is this sender, what role)."""

from __future__ import annotations

from typing import Any

from contracts.context import reject
from contracts.state import K_CHAIN, K_POLICY, K_VALIDATORS, P_DEVICE, P_MEMBER, Overlay, StateReader, decode_value
from primitives import codec
from primitives.errors import Code
from primitives.genesis import Genesis, Policy, Validator


def member_record(member_id: str, name: str, role: str, sign_pub: bytes, enc_pub: bytes) -> dict[str, Any]:
    return {"id": member_id, "name": name, "role": role, "sign_pub": sign_pub, "enc_pub": enc_pub}


def validator_record(v: Validator) -> dict[str, Any]:
    """A validator as state holds it: node id, the member running it, node key, address."""
    return {"node_id": v.node_id, "member": v.member, "node_pub": v.node_pub, "p2p_addr": v.p2p_addr}


def genesis_state(genesis: Genesis) -> dict[bytes, bytes]:
    """State at height 0: chain id, policy, validators and every member (role and keys)."""
    out: dict[bytes, bytes] = {
        K_CHAIN: codec.encode(genesis.chain_id),
        K_POLICY: codec.encode(genesis.policy.to_json()),
        K_VALIDATORS: codec.encode([validator_record(v) for v in genesis.validators]),
    }
    for m in genesis.members:
        out[P_MEMBER + m.id.encode()] = codec.encode(member_record(m.id, m.name, m.role, m.sign_pub, m.enc_pub))
    return out


def load_policy(state: StateReader) -> Policy:
    """The policy stored at genesis (defaults if absent)."""
    raw = state.get(K_POLICY)
    if raw is None:
        return Policy()
    return Policy.from_json(decode_value(raw))


def sender_identity(state: Overlay, sender: str) -> tuple[str, bytes] | None:
    """(role, signing public key) of a member or a registered device, or None."""
    m = state.get(P_MEMBER + sender.encode())
    if m is not None:
        return m["role"], m["sign_pub"]
    d = state.get(P_DEVICE + sender.encode())
    if d is not None:
        return "device", d["sign_pub"]
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
