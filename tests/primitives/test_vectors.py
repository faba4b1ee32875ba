"""docs/test-vectors.json: the committed file is what the code generates now, and every
vector holds when checked through the real APIs (what another team's implementation
must reproduce, docs/protocol.md)."""

from __future__ import annotations

import json
from typing import Any

import nacl.public
import pytest

from contracts.registry import TX_TYPES
from contracts.rotation import rotate_key_message
from node.client.reports import open_report, report_associated_data
from node.tools import vectors
from primitives import codec
from primitives.block import Block, Commit, Header, commit_vote_bytes, results_root
from primitives.card import MemberCard
from primitives.envelope import Envelope, SealSecrets, open_envelope, seal, wrap_key
from primitives.errors import Code, GodownError
from primitives.genesis import Genesis
from primitives.hashing import merkle_root, sha256
from primitives.keys import KeyPair, id_from_public_key, verify_signature
from primitives.state_proof import StateProof, verify_proof
from primitives.tx import SignedTx, Tx
from storage.kv import Batch, MemoryKV
from storage.state_tree import StateTree

DOC: dict[str, Any] = json.loads(vectors.PATH.read_text(encoding="utf-8"))
V: dict[str, Any] = DOC["vectors"]
KEYS = {k["name"]: k for k in V["keys"]["keys"]}


def _b(h: str) -> bytes:
    return bytes.fromhex(h)


def test_the_committed_file_is_what_the_generator_makes_now() -> None:
    assert vectors.PATH.read_text(encoding="utf-8") == vectors.render()
    assert vectors.main(["--check"]) == 0


def test_every_vector_names_its_code_and_says_what_it_is() -> None:
    assert DOC["format"] and DOC["version"] == 1
    for name, v in V.items():
        assert v["description"] and v["code"], name
        for path in v["code"]:
            assert (vectors.PATH.parents[1] / path).is_file(), f"{name}: {path}"


@pytest.mark.parametrize("case", V["encoding.canonical"]["cases"], ids=lambda c: c["description"])
def test_canonical_encodings(case: dict[str, Any]) -> None:
    value = vectors.untyped(case["value"])
    assert codec.encode(value).hex() == case["hex"]
    assert codec.decode(_b(case["hex"])) == value


@pytest.mark.parametrize("case", V["encoding.refused"]["cases"], ids=lambda c: c["description"])
def test_non_canonical_inputs_are_refused(case: dict[str, Any]) -> None:
    with pytest.raises(GodownError) as exc:
        codec.decode(_b(case["hex"]))
    assert exc.value.code.value == case["code"]


@pytest.mark.parametrize("k", V["keys"]["keys"], ids=lambda k: k["name"])
def test_keys_from_seeds(k: dict[str, str]) -> None:
    pair = KeyPair(k["name"], k["role"], _b(k["sign_seed"]), _b(k["enc_secret"]))
    assert (pair.sign_pub.hex(), pair.enc_pub.hex(), pair.id) == (k["sign_pub"], k["enc_pub"], k["id"])
    assert id_from_public_key(pair.sign_pub) == sha256(pair.sign_pub)[:20].hex() == k["id"]


def _check_tx(v: dict[str, Any]) -> SignedTx:
    stx = SignedTx.decode(_b(v["signed_hex"]))
    assert stx.tx_bytes.hex() == v["tx_hex"] and stx.sig.hex() == v["sig"]
    assert Tx.from_dict(vectors.untyped(v["tx_value"])).encode().hex() == v["tx_hex"]
    assert stx.tx_id_hex == v["tx_id"] == sha256(_b(v["tx_hex"])).hex()
    assert stx.verify(_b(v["signer_sign_pub"]))
    assert not stx.verify(_b(KEYS["insurer"]["sign_pub"]))
    TX_TYPES[stx.tx.type].check_body(stx.tx.body)  # what admission checks of the body alone
    return stx


def test_transactions() -> None:
    for name in ("tx.rating_issue", "tx.device_register"):
        _check_tx(V[name])
    forged = _b(V["tx.rating_issue"]["tx_hex"])
    assert not verify_signature(
        _b(V["tx.rating_issue"]["signer_sign_pub"]), forged[:-1] + b"\x01", _b(V["tx.rating_issue"]["sig"])
    )


def test_block_header_hash_and_roots() -> None:
    v = V["block.header"]
    header = Header.from_dict(vectors.untyped(v["header_value"]))
    assert codec.encode(header.to_dict()).hex() == v["header_hex"]
    assert header.hash().hex() == v["block_hash"] == sha256(_b(v["header_hex"])).hex()
    block = Block.decode(_b(v["block_hex"]))
    block.check_txs_root()
    assert block.header == header and block.hash().hex() == v["block_hash"]
    assert header.prev_hash.hex() == V["genesis"]["genesis_hash"]
    assert header.state_root.hex() == V["state.proof"]["root"]
    tr = V["block.txs_root"]
    assert [t.encode().hex() for t in block.txs] == tr["leaves"] and header.txs_root.hex() == tr["root"]
    rr = V["block.results_root"]
    assert results_root(rr["results"]).hex() == rr["root"]


@pytest.mark.parametrize("case", V["merkle.roots"]["cases"], ids=lambda c: c["description"])
def test_merkle_roots(case: dict[str, Any]) -> None:
    assert merkle_root([_b(x) for x in case["leaves"]]).hex() == case["root"]


def test_commit_votes_and_certificates() -> None:
    vote = V["commit.vote"]
    header = Header.from_dict(vectors.untyped(V["block.header"]["header_value"]))
    message = commit_vote_bytes(header.chain_id, header.height, header.view, header.hash())
    assert message.hex() == vote["vote_hex"] and codec.decode(message) == vectors.untyped(vote["vote_value"])
    cert = V["commit.certificate"]
    keys = {v["node_id"]: _b(v["node_pub"]) for v in cert["validators"]}
    for s in vote["signatures"]:
        assert verify_signature(keys[s["node_id"]], message, _b(s["sig"]))
    for case in cert["cases"]:
        commit = Commit.decode(_b(case["certificate_hex"]))
        if case["expect"] == "valid":
            assert commit.verify(keys, header) == case["signers"]
        else:
            with pytest.raises(GodownError) as exc:
                commit.verify(keys, header)
            assert exc.value.code.value == case["code"]


def test_checkpoint_vote() -> None:
    from consensus.messages import checkpoint_vote_bytes

    v = V["checkpoint.vote"]
    value = vectors.untyped(v["vote_value"])
    message = checkpoint_vote_bytes(value["chain_id"], value["height"], value["state_root"])
    assert message.hex() == v["vote_hex"]
    node_pub = _b(next(k["sign_pub"] for k in KEYS.values() if k["id"] == v["node_id"]))
    assert verify_signature(node_pub, message, _b(v["sig"]))


def test_state_keys_are_distinct_and_the_genesis_state_uses_them() -> None:
    keys = [_b(c["key"]) for c in V["state.keys"]["cases"]]
    assert len(set(keys)) == len(keys)
    families = {k[:2] for k in keys}
    assert all(_b(k)[:2] in families for k in V["state.proof"]["state"])


def test_state_proofs() -> None:
    v = V["state.proof"]
    tree = StateTree(MemoryKV())
    tree.apply({_b(k): _b(x) for k, x in v["state"].items()}, Batch())
    assert tree.root.hex() == v["root"]
    for case in v["cases"]:
        stored = None if case["stored"] is None else _b(case["stored"])
        proof = StateProof.from_json(case["proof"])
        assert verify_proof(_b(v["root"]), _b(case["key"]), stored, proof) is case["expect"], case["description"]
    good = v["cases"][0]
    assert tree.prove(_b(good["key"])).to_json() == good["proof"]


def test_sealed_device_report() -> None:
    v = V["envelope.device_report"]
    stx = _check_tx(v)
    assert v["signer_sign_pub"] == KEYS["scale-1"]["sign_pub"]
    body = stx.tx.body
    ad = report_associated_data(stx.tx.sender, body["seq"], body["lot"], body["kind"])
    assert ad.hex() == v["associated_data_hex"] and codec.decode(ad) == vectors.untyped(v["associated_data_value"])
    env = Envelope.from_dict(body["envelope"])
    assert env.to_dict() == {
        "nonce": _b(v["envelope"]["nonce"]),
        "ciphertext": _b(v["envelope"]["ciphertext"]),
        "recipients": [[r, _b(k)] for r, k in v["envelope"]["recipients"]],
    }
    opener = v["opener"]
    plain = open_envelope(env, opener["id"], _b(opener["enc_secret"]), ad)
    assert plain.hex() == v["plaintext_hex"] and codec.decode(plain) == vectors.untyped(v["plaintext_value"])
    assert open_report(stx, opener["id"], _b(opener["enc_secret"]))["data"] == codec.decode(plain)
    wrong = v["wrong_associated_data_expect"]
    with pytest.raises(GodownError) as exc:
        open_envelope(env, opener["id"], _b(opener["enc_secret"]), _b(v["wrong_associated_data_hex"]))
    assert exc.value.code.value == wrong["code"] == Code.TAMPERED.value
    with pytest.raises(GodownError) as exc:
        open_envelope(env, opener["id"], _b(KEYS["insurer"]["enc_secret"]), ad)
    assert exc.value.code is Code.NOT_RECIPIENT


def test_sealing_the_given_secrets_gives_the_vector_and_libsodium_opens_each_wrapped_key() -> None:
    v = V["envelope.device_report"]
    recipients = {r["id"]: _b(r["enc_pub"]) for r in v["recipients"]}
    secrets = SealSecrets(_b(v["content_key"]), _b(v["nonce"]), tuple(_b(s) for s in v["ephemeral_secrets"]))
    env = seal(_b(v["plaintext_hex"]), recipients, _b(v["associated_data_hex"]), secrets=secrets)
    assert [[r, k.hex()] for r, k in env.wrapped] == v["envelope"]["recipients"]
    assert env.ciphertext.hex() == v["envelope"]["ciphertext"]
    secret_of = {k["id"]: _b(k["enc_secret"]) for k in KEYS.values()}
    for rid, wrapped in env.wrapped:  # the sealed box of libsodium opens what wrap_key made
        assert nacl.public.SealedBox(nacl.public.PrivateKey(secret_of[rid])).decrypt(wrapped) == secrets.content_key
    fresh = seal(b"payload", recipients, b"ad")  # without secrets: random, and still opens
    assert fresh.nonce != env.nonce
    assert open_envelope(fresh, v["opener"]["id"], _b(v["opener"]["enc_secret"]), b"ad") == b"payload"
    assert len(wrap_key(secrets.content_key, next(iter(recipients.values())), secrets.ephemeral[0])) == 80


def test_member_cards() -> None:
    for case in V["card.member"]["cases"]:
        card = MemberCard.from_json(case["document"])
        assert card.signed_bytes().hex() == case["signed_hex"]
        assert verify_signature(card.sign_pub, _b(case["signed_hex"]), card.sig)
        forged = {**case["document"], "card": {**case["document"]["card"], "name": "mallory"}}
        with pytest.raises(GodownError) as exc:
            MemberCard.from_json(forged)
        assert exc.value.code is Code.BAD_SIGNATURE


def test_genesis_hash() -> None:
    v = V["genesis"]
    genesis = Genesis.from_json(v["document"])
    assert codec.encode(v["document"]).hex() == v["document_hex"]
    assert genesis.hash().hex() == v["genesis_hash"] == sha256(_b(v["document_hex"])).hex()


def test_governance_transactions_and_the_rotation_proof() -> None:
    for case in V["gov.transactions"]["cases"]:
        _check_tx(case)
    p = V["gov.rotate_key_proof"]
    m = vectors.untyped(p["message_value"])
    message = rotate_key_message(m["chain_id"], m["member"], m["sign_pub"], m["enc_pub"])
    assert message.hex() == p["message_hex"]
    assert verify_signature(_b(p["new_key"]["sign_pub"]), message, _b(p["proof"]))
    rotate = SignedTx.decode(_b(V["gov.transactions"]["cases"][2]["signed_hex"]))
    assert rotate.tx.body["proof"].hex() == p["proof"]


@pytest.mark.parametrize("case", V["validators.effective_height"]["cases"], ids=lambda c: str(c["approved_height"]))
def test_effective_height_agrees_with_the_replica(case: dict[str, int]) -> None:
    from consensus.membership import after_height_for

    config = _replica_config(case["checkpoint_interval"], case["window"])
    assert after_height_for(config, case["approved_height"]) == case["effective_height"]
    assert (
        vectors._effective(case["approved_height"], case["checkpoint_interval"], case["window"])
        == case["effective_height"]
    )


def _replica_config(interval: int, window: int) -> Any:
    from consensus.config import ReplicaConfig

    return ReplicaConfig(chain_id="c", validators=("a",), node_id="a", checkpoint_interval=interval, window=window)
