"""Member cards: signed by the member key and the node key, so a card altered in
transit, or naming a node its member does not hold, is refused with a code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives.card import MemberCard
from primitives.errors import Code, GodownError
from primitives.keys import KeyPair

MEMBER = KeyPair.generate("bank", "bank")
NODE = KeyPair.generate("bank-node", "node")
ADDR = "/ip4/10.0.0.2/tcp/26656"


def test_card_round_trips_and_carries_no_private_key(tmp_path: Path) -> None:
    card = MemberCard.make(MEMBER, NODE, ADDR)
    card.save(tmp_path / "bank.card.json")
    text = (tmp_path / "bank.card.json").read_text()
    assert MEMBER.sign_seed.hex() not in text and NODE.sign_seed.hex() not in text
    assert MEMBER.enc_secret.hex() not in text
    back = MemberCard.load(tmp_path / "bank.card.json")
    assert back == card and back.node_id == NODE.id and back.validator() is not None
    assert back.member().sign_pub == MEMBER.sign_pub


def test_member_only_card() -> None:
    card = MemberCard.from_json(MemberCard.make(MEMBER).to_json())
    assert not card.runs_validator and card.validator() is None


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(["id", "name", "role", "sign_pub", "enc_pub", "node_pub", "p2p_addr"]),
    flip=st.integers(0, 31),
)
def test_any_altered_field_is_refused(field: str, flip: int) -> None:
    doc = MemberCard.make(MEMBER, NODE, ADDR).to_json()
    c = doc["card"]
    if field in ("node_pub", "p2p_addr"):
        target = c["node"]
    else:
        target = c
    value = target[field]
    if field in ("sign_pub", "enc_pub", "node_pub"):
        raw = bytearray(bytes.fromhex(value))
        raw[flip] ^= 1
        target[field] = raw.hex()
    elif field == "role":
        target[field] = "insurer"
    elif field == "p2p_addr":
        target[field] = "/ip4/10.0.0.3/tcp/26656"
    else:
        target[field] = value + "x"
    with pytest.raises(GodownError) as err:
        MemberCard.from_json(doc)
    assert err.value.code in (Code.BAD_SIGNATURE, Code.BAD_CARD)


def test_node_key_must_sign_too() -> None:
    doc = MemberCard.make(MEMBER, NODE, ADDR).to_json()
    doc["node_sig"] = MemberCard.make(MEMBER, KeyPair.generate("other", "node"), ADDR).to_json()["node_sig"]
    with pytest.raises(GodownError) as err:
        MemberCard.from_json(doc)
    assert err.value.code is Code.BAD_SIGNATURE


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["card"].pop("node") and None,  # validator fields dropped: member sig breaks too
        lambda d: d["card"]["node"].pop("p2p_addr"),
        lambda d: d["card"].update(extra="x"),
        lambda d: d.update(sig="zz"),
    ],
)
def test_malformed_cards(mutate: object) -> None:
    doc = MemberCard.make(MEMBER, NODE, ADDR).to_json()
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(GodownError) as err:
        MemberCard.from_json(json.loads(json.dumps(doc)))
    assert err.value.code in (Code.BAD_CARD, Code.BAD_SIGNATURE)


def test_make_refuses_half_a_validator_and_bad_addresses() -> None:
    for node, addr in ((NODE, None), (None, ADDR), (NODE, "10.0.0.2:26656"), (MEMBER, ADDR)):
        with pytest.raises(GodownError) as err:
            MemberCard.make(MEMBER, node, addr)
        assert err.value.code is Code.BAD_CARD
