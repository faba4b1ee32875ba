"""The genesis ceremony as organisations run it: each makes its keys in its own
folder and hands over only a card; the genesis is built from the cards, checked,
and its hash compared. Every refusal has a code and leaves the file unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.server.config import NodeConfig
from node.tools.ceremony import add_card, new_genesis, verify_genesis
from node.tools.node_init import init_node
from node.tools.testnet import init_testnet
from primitives.card import MemberCard
from primitives.errors import Code, GodownError
from primitives.genesis import Genesis, Policy
from primitives.keys import KeyPair

ORGS = (("warehouse", "warehouse"), ("bank", "bank"), ("insurer", "insurer"), ("guarantor", "guarantor"))


def _org(root: Path, name: str, role: str, i: int, node: bool = True) -> Path:
    """One organisation's own folder: its keys never leave it; returns its card."""
    home = root / name
    member = KeyPair.generate(name, role)
    member.save(home / "member.key.json")
    node_key = KeyPair.generate(f"{name}-node", "node") if node else None
    if node_key:
        node_key.save(home / "node.key.json")
    card = MemberCard.make(member, node_key, f"/ip4/10.1.0.{i}/tcp/26656" if node else None)
    card.save(root / f"{name}.card.json")
    return root / f"{name}.card.json"


@pytest.fixture
def cards(tmp_path: Path) -> list[Path]:
    out = [_org(tmp_path, n, r, i + 1) for i, (n, r) in enumerate(ORGS)]
    out.append(_org(tmp_path, "borrower", "borrower", 9, node=False))
    return out


def test_ceremony_builds_a_genesis_from_cards(tmp_path: Path, cards: list[Path]) -> None:
    g = tmp_path / "genesis.json"
    new_genesis(g, "wr-1", Policy(min_grade="A"), genesis_time_ms=1_000)
    for c in cards:
        add_card(g, c)
    summary = verify_genesis(g)
    genesis = Genesis.load(g)
    assert summary["genesis_hash"] == genesis.hash().hex()
    assert [v["name"] for v in summary["validators"]] == [n for n, _ in ORGS]
    assert summary["fault_tolerance"] == {"n": 4, "f": 1}
    assert {m["name"] for m in summary["members"]} == {"warehouse", "bank", "insurer", "guarantor", "borrower"}
    assert summary["policy"]["min_grade"] == "A"
    # node keys are not member keys, and the genesis names each node's member
    members = {m.id for m in genesis.members}
    assert all(v.node_id not in members and v.member in members for v in genesis.validators)
    # the same cards in the same order give the same hash on another organisation's machine
    g2 = tmp_path / "again.json"
    new_genesis(g2, "wr-1", Policy(min_grade="A"), genesis_time_ms=1_000)
    for c in cards:
        add_card(g2, c)
    assert Genesis.load(g2).hash() == genesis.hash()


def _refused(g: Path, card: Path, code: Code) -> None:
    before = g.read_bytes()
    with pytest.raises(GodownError) as err:
        add_card(g, card)
    assert err.value.code is code, err.value
    assert g.read_bytes() == before  # the file is unchanged


def test_refusals_leave_the_file_unchanged(tmp_path: Path, cards: list[Path]) -> None:
    g = tmp_path / "genesis.json"
    new_genesis(g, "wr-1")
    add_card(g, cards[0])
    _refused(g, cards[0], Code.MEMBER_EXISTS)  # the same card twice
    # another member under the same name
    other = KeyPair.generate("warehouse", "warehouse")
    MemberCard.make(other).save(tmp_path / "dup-name.card.json")
    _refused(g, tmp_path / "dup-name.card.json", Code.MEMBER_EXISTS)
    # a second member naming the first one's node key
    doc = json.loads(cards[0].read_text())
    thief = KeyPair.generate("thief", "bank")
    node_key = KeyPair.load(tmp_path / "warehouse" / "node.key.json")  # (in a real ceremony it could not sign)
    MemberCard.make(thief, node_key, "/ip4/10.9.9.9/tcp/1").save(tmp_path / "thief.card.json")
    _refused(g, tmp_path / "thief.card.json", Code.VALIDATOR_EXISTS)
    # altered in transit
    doc["card"]["name"] = "warehouse-2"
    (tmp_path / "tampered.card.json").write_text(json.dumps(doc))
    _refused(g, tmp_path / "tampered.card.json", Code.BAD_SIGNATURE)
    # unknown role (re-signed, so only the role is wrong)
    odd = MemberCard.make(KeyPair.generate("odd", "bank")).to_json()
    odd["card"]["role"] = "pirate"
    (tmp_path / "odd.card.json").write_text(json.dumps(odd))
    _refused(g, tmp_path / "odd.card.json", Code.BAD_CARD)
    # a validator without an address
    half = MemberCard.make(KeyPair.generate("half", "bank"), KeyPair.generate("n", "node"), "/ip4/1.2.3.4/tcp/5")
    doc = half.to_json()
    del doc["card"]["node"]["p2p_addr"]
    (tmp_path / "half.card.json").write_text(json.dumps(doc))
    _refused(g, tmp_path / "half.card.json", Code.BAD_CARD)


def test_verify_refuses_a_draft_and_a_edited_genesis(tmp_path: Path, cards: list[Path]) -> None:
    g = tmp_path / "genesis.json"
    new_genesis(g, "wr-1")
    add_card(g, cards[-1])  # a member without a node: still no validator
    with pytest.raises(GodownError) as err:
        verify_genesis(g)
    assert err.value.code is Code.BAD_CONFIG
    add_card(g, cards[0])
    doc = json.loads(g.read_text())
    doc["validators"][0]["node_pub"] = "00" * 32  # node id no longer derived from its key
    g.write_text(json.dumps(doc))
    with pytest.raises(GodownError) as err:
        verify_genesis(g)
    assert err.value.code is Code.BAD_CONFIG
    with pytest.raises(GodownError):
        new_genesis(g, "wr-2")  # never over an existing file


def test_node_init_takes_peers_from_genesis(tmp_path: Path, cards: list[Path]) -> None:
    g = tmp_path / "genesis.json"
    new_genesis(g, "wr-1")
    for c in cards:
        add_card(g, c)
    out = tmp_path / "bank" / "node"
    cfg = init_node(
        g,
        tmp_path / "bank" / "node.key.json",
        "/ip4/0.0.0.0/tcp/26656",
        "0.0.0.0:26650",
        out,
        member_key_path=tmp_path / "bank" / "member.key.json",
    )
    assert "peers" not in cfg and cfg["p2p"] == {"host": "0.0.0.0", "port": 26656}
    assert cfg["rpc"]["token"]  # exposed RPC gets a token
    assert "report_key_file" not in cfg  # reports are opened only when the operator asks
    opening = init_node(
        g,
        tmp_path / "bank" / "node.key.json",
        "/ip4/0.0.0.0/tcp/26656",
        "127.0.0.1:26650",
        tmp_path / "bank" / "opening",
        member_key_path=tmp_path / "bank" / "member.key.json",
        open_reports=True,
    )
    assert opening["report_key_file"] == opening["member_key_file"]
    loaded = NodeConfig.load(tmp_path / "bank" / "opening" / "config.json")
    assert loaded.report_key_file == (tmp_path / "bank" / "member.key.json").resolve()
    with pytest.raises(GodownError) as err:  # nothing to open reports with
        init_node(
            g,
            tmp_path / "bank" / "node.key.json",
            "/ip4/0.0.0.0/tcp/1",
            "127.0.0.1:2",
            tmp_path / "z",
            open_reports=True,
        )
    assert err.value.code is Code.BAD_CONFIG
    assert (out / "genesis.json").read_bytes() == g.read_bytes()
    with pytest.raises(GodownError) as err:  # a member key is not a node key
        init_node(g, tmp_path / "bank" / "member.key.json", "/ip4/0.0.0.0/tcp/1", "127.0.0.1:2", tmp_path / "x")
    assert err.value.code is Code.BAD_CONFIG
    with pytest.raises(GodownError) as err:  # another member's key as --member-key
        init_node(
            g,
            tmp_path / "insurer" / "node.key.json",
            "/ip4/0.0.0.0/tcp/1",
            "127.0.0.1:2",
            tmp_path / "y",
            member_key_path=tmp_path / "bank" / "member.key.json",
        )
    assert err.value.code is Code.BAD_CONFIG


def test_testnet_init_is_the_ceremony(tmp_path: Path) -> None:
    net = init_testnet(tmp_path / "net", nodes=4)
    genesis = Genesis.load(net.dir / "genesis.json")
    rebuilt = tmp_path / "rebuilt.json"
    new_genesis(rebuilt, genesis.chain_id, genesis.policy, genesis.consensus, genesis.genesis_time_ms)
    for m in genesis.members:
        add_card(rebuilt, net.dir / "cards" / f"{m.name}.card.json")
    assert Genesis.load(rebuilt).hash() == genesis.hash()
    for n in net.nodes:
        node_key, member_key = net.node_key(n["name"]), net.key(n["name"])
        assert node_key.id == n["node_id"] != member_key.id == n["member_id"]
        assert genesis.validator(node_key.id) is not None
