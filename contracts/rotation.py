"""Key rotation by the key holders themselves (not governance).

`member.rotate_key`: a member, signing with its current key, names its new
signing and encryption keys and proves it holds the new signing key. A device's
key is rotated by its warehouse (`device.rotate_key`) and the device must be
accepted by a bank again before its reports count. Either way the old key still
signs for the rest of the block and the new one from the next block on (what
`members.signing_key` returns), since nodes check signatures against committed
state; the id never changes, and no key is ever used twice (the key index).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.context import Exec, ensure
from contracts.devices import require_device
from contracts.members import claim_key, rotated
from contracts.state import P_DEVICE, P_MEMBER
from primitives import codec
from primitives.errors import Code
from primitives.keys import verify_signature
from primitives.tx import SignedTx

ROTATE_KEY_DOMAIN = "godown/rotate-key/v1"


def rotate_key_message(chain_id: str, member: str, sign_pub: bytes, enc_pub: bytes) -> bytes:
    """The bytes the new signing key signs as `proof` of a `member.rotate_key`."""
    doc = {
        "domain": ROTATE_KEY_DOMAIN,
        "chain_id": chain_id,
        "member": member,
        "sign_pub": sign_pub,
        "enc_pub": enc_pub,
    }
    return codec.encode(doc)


def member_rotate_key(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    member, new, enc, proof = stx.tx.sender, body["sign_pub"], body["enc_pub"], body["proof"]
    message = rotate_key_message(ctx.block.chain_id, member, new, enc)
    ensure(verify_signature(new, message, proof), Code.BAD_SIGNATURE, "proof is not the new key's signature")
    claim_key(ctx.state, new, member, "member", Code.MEMBER_EXISTS)
    key = P_MEMBER + member.encode()
    ctx.state.put(key, rotated(ctx.state.get(key), new, ctx.block.height, enc_pub=enc))
    ctx.emit("key_rotated", member=member)


def device_rotate_key(ctx: Exec, stx: SignedTx, body: Mapping[str, Any]) -> None:
    d, new = require_device(ctx, body["device"]), body["sign_pub"]
    ensure(d["warehouse"] == stx.tx.sender, Code.DEVICE_WRONG_WAREHOUSE, f"device {d['id']} is not yours")
    ensure(d["state"] != "retired", Code.DEVICE_WRONG_STATE, f"device {d['id']} is retired")
    claim_key(ctx.state, new, d["id"], "device", Code.DEVICE_EXISTS)
    ctx.state.put(P_DEVICE + d["id"].encode(), rotated(d, new, ctx.block.height, state="registered"))
    ctx.emit("key_rotated", device=d["id"], warehouse=d["warehouse"])
