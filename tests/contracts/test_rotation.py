"""Key rotation: a member rotates its own keys (the new key signs from the next
block, through the node's SignatureCache and admission too); a warehouse rotates
a device's key and the device needs a bank's acceptance again."""

from __future__ import annotations

from typing import Any

import pytest

import contracts
from node.server.ledger import SignatureCache
from primitives.errors import Code, Rejected
from primitives.keys import KeyPair
from primitives.tx import SignedTx
from tests.contracts.chain import World
from tests.contracts.gov import card, newcomer, propose, vote


def _successor(old: KeyPair, name: str) -> KeyPair:
    """New keys under the same id."""
    fresh = newcomer(name, old.role)
    return KeyPair(old.name, old.role, fresh.sign_seed, fresh.enc_secret, alias=old.id)


def _rotate(w: World, old: KeyPair, new: KeyPair, chain_id: str = "test-chain", **over: Any) -> SignedTx:
    proof = new.sign(contracts.rotate_key_message(chain_id, old.id, new.sign_pub, new.enc_pub))
    body = {"sign_pub": new.sign_pub, "enc_pub": new.enc_pub, "proof": proof, **over}
    return w.tx(old, "member.rotate_key", **body)


def _probe(w: World, who: KeyPair) -> SignedTx:
    """A cheap transaction whose code is `unknown_device` once its signature holds."""
    return w.tx(who, "device.accept", device="ghost")


def _admit(w: World, stx: SignedTx) -> Code:
    try:
        contracts.admit(w.chain.state, stx, lambda s, k: s.verify(k), "test-chain", w.now)
    except Rejected as exc:
        return exc.code
    return Code.OK


def test_member_key_rotation_takes_effect_from_the_next_block() -> None:
    w = World()
    cache = SignatureCache()
    new = _successor(w.B, "bank-2nd")
    rotation = _rotate(w, w.B, new)
    same_block = _probe(w, w.B)  # signed with the old key after the rotation, in the same block
    assert w.chain.run([rotation, same_block], verify=cache.verify) == ["ok", "unknown_device"]
    m = next(m for m in contracts.view_members(w.chain.state) if m["id"] == w.B.id)
    assert m["sign_pub"] == new.sign_pub.hex() and m["enc_pub"] == new.enc_pub.hex()
    assert contracts.sender_key(w.chain.state, w.B.id) == new.sign_pub
    stale = _probe(w, w.B)
    w.r.nonces.next[w.B.id] -= 1  # a bad signature consumes no nonce: the good one takes the same
    fresh = _probe(w, new)
    assert _admit(w, stale) == Code.BAD_SIGNATURE and _admit(w, fresh) == Code.OK
    assert w.chain.run([stale, fresh], verify=cache.verify) == ["bad_signature", "unknown_device"]


def test_member_rotation_rules() -> None:
    w = World()
    new = _successor(w.B, "bank-2nd")
    other_chain = _rotate(w, w.B, new, chain_id="other")
    wrong_signer = newcomer("someone").sign(
        contracts.rotate_key_message("test-chain", w.B.id, new.sign_pub, new.enc_pub)
    )
    w.ok(w.tx(w.W, "device.register", device=w.d[0].id, sign_pub=w.d[0].sign_pub, zone="z", kind="scale"))
    assert w.run(
        other_chain,
        _rotate(w, w.B, new, proof=w.B.sign(b"x")),
        _rotate(w, w.B, new, sign_pub=bytes(5)),
        _rotate(w, w.B, new, proof=wrong_signer),
        _rotate(w, w.B, KeyPair("x", "bank", w.I.sign_seed, w.I.enc_secret, alias=w.B.id)),  # insurer's key
        _rotate(w, w.B, KeyPair("x", "bank", w.d[0].sign_seed, w.d[0].enc_secret, alias=w.B.id)),  # a device's
        _rotate(w, w.B, w.B),  # its own current key
    ) == [
        "bad_signature",
        "bad_signature",
        "bad_body",
        "bad_signature",
        "member_exists",
        "member_exists",
        "member_exists",
    ]


def test_double_rotation_in_one_block_and_no_key_comes_back() -> None:
    w = World()
    mid, last = _successor(w.B, "b-mid"), _successor(w.B, "b-last")
    assert w.run(_rotate(w, w.B, mid), _rotate(w, w.B, last), _probe(w, w.B)) == ["ok", "ok", "unknown_device"]
    by_mid = _probe(w, mid)
    w.r.nonces.next[w.B.id] -= 1
    assert w.run(by_mid, _probe(w, last)) == ["bad_signature", "unknown_device"]
    assert w.run(_rotate(w, last, w.B), _rotate(w, last, mid)) == ["member_exists", "member_exists"]


def test_rotated_member_still_governs_under_the_same_id() -> None:
    w = World()
    new = _successor(w.W, "w-2nd")
    w.ok(_rotate(w, w.W, new))
    w.ok(propose(w, w.B, "p", "member.set_role", member=w.R2.id, role="auditor"))
    assert w.one(vote(w, new, "p")) == "ok"
    assert contracts.view_proposal(w.chain.state, "p")["approvals"] == [w.B.id, w.W.id]  # type: ignore[index]


def _second_warehouse(w: World) -> KeyPair:
    wh2 = newcomer("warehouse2", "warehouse")
    w.ok(propose(w, w.B, "wh2", "member.add", card=card(wh2)))
    for v in (w.W, w.I, w.G):
        w.ok(vote(w, v, "wh2"))
    return wh2


def test_device_rotation_needs_acceptance_again_and_keeps_the_sequence() -> None:
    w = World()
    w.devices(idx=(0, 1))
    dev = w.d[0]
    assert w.one(w.report(dev, "", "heartbeat")) == "ok"
    new = KeyPair(dev.name, "device", w.d[3].sign_seed, w.d[3].enc_secret, alias=dev.id)
    wh2 = _second_warehouse(w)
    w.ok(w.tx(w.W, "device.register", device=w.d[2].id, sign_pub=w.d[2].sign_pub, zone="zone-b", kind="door"))
    w.ok(w.tx(w.W, "device.retire", device=w.d[2].id))
    assert w.run(
        w.tx(w.B, "device.rotate_key", device=dev.id, sign_pub=new.sign_pub),
        w.tx(w.W, "device.rotate_key", device="ghost", sign_pub=new.sign_pub),
        w.tx(wh2, "device.rotate_key", device=dev.id, sign_pub=new.sign_pub),
        w.tx(w.W, "device.rotate_key", device=w.d[2].id, sign_pub=new.sign_pub),
        w.tx(w.W, "device.rotate_key", device=dev.id, sign_pub=bytes(31)),
        w.tx(w.W, "device.rotate_key", device=dev.id, sign_pub=w.d[1].sign_pub),
        w.tx(w.W, "device.rotate_key", device=dev.id, sign_pub=w.B.sign_pub),
        w.tx(w.W, "device.rotate_key", device=dev.id, sign_pub=new.sign_pub),
    ) == [
        "forbidden_role",
        "unknown_device",
        "device_wrong_warehouse",
        "device_wrong_state",
        "bad_body",
        "device_exists",
        "device_exists",
        "ok",
    ]
    view = contracts.view_device(w.chain.state, dev.id)
    assert view is not None and view["state"] == "registered" and view["sign_pub"] == new.sign_pub.hex()
    assert w.one(w.report(new, "", "heartbeat")) == "device_not_accepted"
    w.ok(w.tx(w.B, "device.accept", device=dev.id))
    by_old = w.report(dev, "", "heartbeat")
    w.r.nonces.next[dev.id] -= 1
    assert w.run(by_old, w.report(new, "", "heartbeat")) == ["bad_signature", "ok"]
    assert contracts.view_device(w.chain.state, dev.id)["seq"] == 3  # type: ignore[index]


@pytest.mark.parametrize("field", ["sign_pub", "enc_pub"])
def test_rotation_body_lengths(field: str) -> None:
    w = World()
    assert w.one(_rotate(w, w.B, _successor(w.B, "b"), **{field: bytes(33)})) == "bad_body"
