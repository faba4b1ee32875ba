"""The light client against a real node: block, transaction and state answers are
checked from raw bytes against headers certified by the validators (the genesis set on
this chain; tests/e2e/test_membership.py follows changes), on a quiet chain too (the
certifying empty block), and anything altered in transit is refused with `unverified`.
`godown query … --verify` says how the answer was certified."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts import SCHEDULED_SET_KEY, state_key_for
from node.client.rpc import RpcClient
from node.client.txs import sign_tx
from node.client.verify import LightClient
from node.tools.participants import participants_of
from primitives import codec
from primitives.errors import Code, GodownError
from primitives.genesis import Genesis
from primitives.keys import KeyPair
from tests.node.conftest import NodeThread, make_testnet, node_config
from tests.node.test_cli import assert_clean_error, run_inproc


class Tampering(RpcClient):
    """A client whose answers are altered on the way, as a man in the middle would."""

    def __init__(self, url: str, alter: Any) -> None:
        super().__init__(url)
        self.alter = alter

    def get(self, path: str) -> Any:
        return self.alter(path, super().get(path))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeThread, Genesis, str, str]]:
    net = make_testnet(tmp_path_factory.mktemp("light") / "net")
    node = NodeThread(node_config(net))
    node.start()
    try:
        p = participants_of(net)
        client = RpcClient(node.url)
        subject = p.borrower.id
        body = {"subject": subject, "grade": "A", "valid_until_ms": 2**50, "report_hash": bytes(32)}
        answer = client.submit(sign_tx(p.bank, net.chain_id, 0, "rating.issue", body), wait_ms=10_000)
        assert answer["code"] == "committed", answer
        yield node, Genesis.load(net.dir / "genesis.json"), subject, answer["tx_id"]
    finally:
        node.stop()


def test_a_state_answer_is_certified_on_a_quiet_chain(node: tuple[NodeThread, Genesis, str, str]) -> None:
    thread, genesis, subject, _ = node
    light = LightClient(RpcClient(thread.url), genesis)
    answer, cert = light.state(state_key_for("rating", subject))
    assert answer["exists"] and answer["value"]["grade"] == "A"
    # nothing else is submitted: the empty block after the quiet interval certifies it
    # (by the next header, or by the head's own once that empty block is the head)
    assert cert.header.state_root.hex() == answer["state_root"] and cert.height in (
        answer["height"],
        answer["height"] + 1,
    )
    assert (cert.signers, cert.validators, cert.quorum) == (1, 1, 1)
    absent, _ = light.state(state_key_for("rating", "nobody"))  # absence is proven too
    assert absent["exists"] is False


def test_a_transaction_and_a_block_are_certified(node: tuple[NodeThread, Genesis, str, str]) -> None:
    thread, genesis, _, tx_id = node
    light = LightClient(RpcClient(thread.url), genesis)
    answer, cert = light.tx(tx_id)
    assert answer["result"] == "ok" and cert.height == answer["height"] + 1
    block, bcert = light.block(answer["height"])
    assert tx_id in {t.tx_id_hex for t in block.txs} and bcert.height == answer["height"]


def _flip(hexstr: str) -> str:
    return hexstr[:-2] + ("00" if hexstr[-2:] != "00" else "01")


ALTERATIONS = {
    "state value": lambda path, doc: {**doc, "value_raw": _flip(doc["value_raw"])} if "/v1/state/" in path else doc,
    "state root and proof's root": lambda path, doc: (
        {**doc, "state_root": _flip(doc["state_root"])} if "/v1/state/" in path else doc
    ),
    "a certificate's signature": lambda path, doc: (
        {**doc, "commit_raw": _flip(doc["commit_raw"])} if "/v1/blocks/" in path else doc
    ),
    "a block's bytes": lambda path, doc: {**doc, "raw": _flip(doc["raw"])} if "/v1/blocks/" in path else doc,
    "a validator change invented by the node": lambda path, doc: (
        {**doc, "changes": [_invented_change()]} if path == "/v1/validators/changes" else doc
    ),
    "a validator change the node says it lacks": lambda path, doc: (
        {**doc, "complete": False} if path == "/v1/validators/changes" else doc
    ),
}


def _invented_change() -> dict[str, Any]:
    """A scheduled set of one made-up validator, with an empty proof: what a lying node
    would need the client to take on its word."""
    node = KeyPair.generate("intruder", "bank")
    record = {"node_id": node.id, "member": "m", "node_pub": node.sign_pub, "p2p_addr": "/ip4/127.0.0.1/tcp/1"}
    value = codec.encode({"validators": [record], "effective_height": 8, "approved_height": 1})
    entry = {"key": SCHEDULED_SET_KEY.hex(), "value": value.hex(), "height": 1, "state_root": "00" * 32}
    return {"entry": {**entry, "proof": {"siblings": [], "bucket": None}}}


@pytest.mark.parametrize("what", sorted(ALTERATIONS))
def test_an_answer_altered_in_transit_is_refused(node: tuple[NodeThread, Genesis, str, str], what: str) -> None:
    thread, genesis, subject, _ = node
    light = LightClient(Tampering(thread.url, ALTERATIONS[what]), genesis, wait_s=2.0)
    with pytest.raises(GodownError) as refused:
        light.state(state_key_for("rating", subject))
    assert refused.value.code is Code.UNVERIFIED


def test_another_genesis_validators_certify_nothing(node: tuple[NodeThread, Genesis, str, str], tmp_path: Path) -> None:
    thread, _, subject, _ = node
    other = Genesis.load(make_testnet(tmp_path / "other").dir / "genesis.json")
    with pytest.raises(GodownError) as refused:
        LightClient(RpcClient(thread.url), other).state(state_key_for("rating", subject))
    assert refused.value.code is Code.UNVERIFIED


def test_query_verify_says_where_and_by_whom(node: tuple[NodeThread, Genesis, str, str], tmp_path: Path) -> None:
    thread, genesis, subject, tx_id = node
    gfile = tmp_path / "genesis.json"
    gfile.write_text(json.dumps(genesis.to_json()))
    key = "0x" + state_key_for("rating", subject).hex()
    proc = run_inproc("query", "state", key, "--verify", "--genesis", str(gfile), "--rpc", thread.url)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["verified"].endswith("by 1 of 1 validators (quorum 1)")
    assert doc["verified"].startswith(
        ("certified at height {}".format(doc["height"]), "certified at height {}".format(doc["height"] + 1))
    )
    proc = run_inproc("query", "tx", tx_id, "--verify", "--genesis", str(gfile), "--rpc", thread.url)
    assert proc.returncode == 0 and "certified at height" in json.loads(proc.stdout)["verified"], proc.stderr
    assert_clean_error(run_inproc("query", "state", key, "--verify", "--rpc", thread.url), "bad_config")
    other = make_testnet(tmp_path / "other").dir / "genesis.json"
    assert_clean_error(
        run_inproc("query", "state", key, "--verify", "--genesis", str(other), "--rpc", thread.url), "unverified"
    )
