"""The independent verifier (`minimal_verifier`, no godown import) reaches every verdict
the spec's test vectors expect: the vectors alone are enough to check an implementation
of docs/protocol.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from tests.e2e import minimal_verifier as mv

VECTORS = json.loads((Path(__file__).parents[2] / "docs" / "test-vectors.json").read_text())["vectors"]


def typed(v: Any) -> Any:
    """A vector's JSON-written msgpack value (docs/test-vectors.json `format`) as Python."""
    if isinstance(v, dict):
        if set(v) == {"$bin"}:
            return bytes.fromhex(v["$bin"])
        if set(v) == {"$int"}:
            return int(v["$int"])
        return {k: typed(x) for k, x in v.items()}
    if isinstance(v, list):
        return [typed(x) for x in v]
    return v


def test_encodings() -> None:
    for case in VECTORS["encoding.canonical"]["cases"]:
        assert mv.canonical(typed(case["value"])).hex() == case["hex"], case["description"]
        assert mv.decode(bytes.fromhex(case["hex"])) == typed(case["value"]), case["description"]
    for case in VECTORS["encoding.refused"]["cases"]:
        with pytest.raises(ValueError):
            mv.decode(bytes.fromhex(case["hex"]))


@pytest.mark.parametrize("name", [n for n in VECTORS if n.startswith("tx.")] + ["envelope.device_report"])
def test_transactions(name: str) -> None:
    v = VECTORS[name]
    tx = bytes.fromhex(v["tx_hex"])
    assert mv.canonical(typed(v["tx_value"])) == tx and mv.sha256(tx).hex() == v["tx_id"]
    nacl.signing.VerifyKey(bytes.fromhex(v["signer_sign_pub"])).verify(tx, bytes.fromhex(v["sig"]))
    assert mv.canonical({"sig": bytes.fromhex(v["sig"]), "tx": tx}).hex() == v["signed_hex"]


def test_blocks_roots_and_certificates() -> None:
    header = VECTORS["block.header"]
    parsed, block_hash = mv.check_block(bytes.fromhex(header["block_hex"]))
    assert block_hash.hex() == header["block_hash"] and mv.canonical(parsed).hex() == header["header_hex"]
    for case in VECTORS["merkle.roots"]["cases"]:
        assert mv.merkle_root([bytes.fromhex(x) for x in case["leaves"]]).hex() == case["root"]
    leaves = VECTORS["block.txs_root"]
    assert mv.merkle_root([bytes.fromhex(x) for x in leaves["leaves"]]).hex() == leaves["root"]
    results = VECTORS["block.results_root"]
    assert mv.merkle_root([r.encode() for r in results["results"]]).hex() == results["root"]
    certs = VECTORS["commit.certificate"]
    validators = {v["node_id"]: bytes.fromhex(v["node_pub"]) for v in certs["validators"]}
    for case in certs["cases"]:
        cert = bytes.fromhex(case["certificate_hex"])
        if case["expect"] == "valid":
            assert mv.certified_by(cert, parsed, block_hash, validators) == case["signers"]
        else:
            with pytest.raises(ValueError):
                mv.certified_by(cert, parsed, block_hash, validators)
    genesis = VECTORS["genesis"]
    assert mv.sha256(mv.canonical(genesis["document"])).hex() == genesis["genesis_hash"]


def test_state_proofs() -> None:
    v = VECTORS["state.proof"]
    root = bytes.fromhex(v["root"])
    for case in v["cases"]:
        proof = case["proof"]
        verdict = mv.proves(
            root,
            bytes.fromhex(case["key"]),
            None if case["stored"] is None else bytes.fromhex(case["stored"]),
            [bytes.fromhex(s) for s in proof["siblings"]],
            None if proof["bucket"] is None else bytes.fromhex(proof["bucket"]),
        )
        assert verdict is case["expect"], case["description"]


def test_sealed_report() -> None:
    v = VECTORS["envelope.device_report"]
    opener = v["opener"]
    signed = bytes.fromhex(v["signed_hex"])
    pub = bytes.fromhex(v["signer_sign_pub"])
    assert mv.open_report(signed, pub, opener["id"], bytes.fromhex(opener["enc_secret"])) == typed(v["plaintext_value"])
