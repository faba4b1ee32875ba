"""Governance and key rotation from a member's side: the bodies of `gov.propose`,
`gov.vote` and `member.rotate_key` (DESIGN §5), so that an operator's tool or a
bank's service never hand-builds them."""

from __future__ import annotations

from typing import Any

from contracts import rotate_key_message
from node.client.rpc import RpcClient
from node.client.txs import sign_and_submit
from primitives.card import MemberCard
from primitives.errors import Code, GodownError
from primitives.keys import KeyPair

ACTIONS = (
    "member.add",
    "member.remove",
    "member.set_role",
    "validator.add",
    "validator.remove",
    "node.rotate_key",
    "policy.set",
)


def proposal_body(proposal: str, action: str, args: dict[str, Any], expires_ms: int) -> dict[str, Any]:
    """A `gov.propose` body; a card in `args` goes as its signed JSON document."""
    if action not in ACTIONS:
        raise GodownError(Code.BAD_BODY, f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    doc = {k: (v.to_json() if isinstance(v, MemberCard) else v) for k, v in args.items()}
    return {"proposal": proposal, "action": action, "args": doc, "expires_ms": expires_ms}


def rotation_body(chain_id: str, member_id: str, new_key: KeyPair) -> dict[str, Any]:
    """A `member.rotate_key` body: the new keys, and the new signing key's proof of possession."""
    proof = new_key.sign(rotate_key_message(chain_id, member_id, new_key.sign_pub, new_key.enc_pub))
    return {"sign_pub": new_key.sign_pub, "enc_pub": new_key.enc_pub, "proof": proof}


def rotate_member_key(client: RpcClient, key: KeyPair, out: str, wait: bool = True) -> dict[str, Any]:
    """Make the member's next key (same id, kept as its alias), write it to `out`, and
    submit the rotation signed with the current key. The old key file stays valid until
    the rotation commits; then use the new one."""
    new_key = KeyPair.generate(key.name, key.role, alias=key.id)
    chain_id = client.status()["chain_id"]
    new_key.save(out)
    return sign_and_submit(client, key, "member.rotate_key", rotation_body(chain_id, key.id, new_key), wait)
