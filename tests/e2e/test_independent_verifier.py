"""The specification is enough: `minimal_verifier` (PyNaCl + msgpack, no godown import)
checks a live four-node consortium's answers — the genesis hash, a commit certificate,
a state proof against a certified root, a sealed device report — and refuses each of
them altered."""

from __future__ import annotations

import json

import nacl.exceptions
import pytest

from contracts import state_key_for
from tests.e2e import minimal_verifier as mv
from tests.e2e.manifests import MakeNet, Manifest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _flip(data: bytes, at: int = -1) -> bytes:
    b = bytearray(data)
    b[at] ^= 1
    return bytes(b)


def test_a_minimal_verifier_checks_live_answers(make_net: MakeNet) -> None:
    net = make_net(Manifest("verifier"))
    net.start()
    acks = net.run_round(via=net.names, cases=1, reports_per_case=2)
    head = net.wait_settled(net.names)
    rpc = net.client(net.names[1])
    genesis_doc = json.loads((net.testnet.dir / "genesis.json").read_text())
    validators = {v["node_id"]: bytes.fromhex(v["node_pub"]) for v in genesis_doc["validators"]}

    # genesis hash: the canonical encoding of the genesis document, linked by block 1
    first, _ = mv.check_block(bytes.fromhex(rpc.block(1)["raw"]))
    assert first["prev_hash"] == mv.sha256(mv.canonical(genesis_doc))

    # a commit certificate of a block with transactions
    busy = max(acks, key=lambda a: a.index).height
    doc = rpc.block(busy)
    header, block_hash = mv.check_block(bytes.fromhex(doc["raw"]))
    commit = bytes.fromhex(doc["commit_raw"])
    assert mv.certified_by(commit, header, block_hash, validators) >= 3
    with pytest.raises(ValueError):
        mv.check_block(_flip(bytes.fromhex(doc["raw"])))
    with pytest.raises(ValueError, match="below the quorum"):
        forged = mv.decode(commit)
        forged["votes"] = [[v, _flip(s)] for v, s in forged["votes"]]
        mv.certified_by(mv.canonical(forged), header, block_hash, validators)

    # a state entry proven against the root the settled head certifies (its own header)
    p = net.load.participants
    key = state_key_for("member", p.bank.id)
    state = rpc.get(f"/v1/state/0x{key.hex()}")
    root, value = bytes.fromhex(state["state_root"]), bytes.fromhex(state["value_raw"])
    siblings = [bytes.fromhex(s) for s in state["proof"]["siblings"]]
    bucket = bytes.fromhex(state["proof"]["bucket"])
    assert mv.proves(root, key, value, siblings, bucket)
    assert not mv.proves(root, key, _flip(value), siblings, bucket)
    assert not mv.proves(_flip(root), key, value, siblings, bucket)
    head_doc = rpc.block(head)
    head_header, head_hash = mv.check_block(bytes.fromhex(head_doc["raw"]))
    assert state["height"] == head and head_header["state_root"] == root  # the empty block carries it
    assert mv.certified_by(bytes.fromhex(head_doc["commit_raw"]), head_header, head_hash, validators) >= 3
    absent = rpc.get(f"/v1/state/0x{state_key_for('member', 'nobody').hex()}")
    proof = absent["proof"]
    assert mv.proves(
        root,
        state_key_for("member", "nobody"),
        None,
        [bytes.fromhex(s) for s in proof["siblings"]],
        None if proof["bucket"] is None else bytes.fromhex(proof["bucket"]),
    )

    # a sealed device report: the device's key from its proven state entry, the payload
    # opened with the bank's encryption key
    reports = [rpc.tx(a.tx_id) for a in acks]
    report = next(r for r in reports if r["type"] == "device.report")
    device_key = state_key_for("device", report["sender"])
    entry = rpc.get(f"/v1/state/0x{device_key.hex()}")
    record = bytes.fromhex(entry["value_raw"])
    rows = [bytes.fromhex(s) for s in entry["proof"]["siblings"]]
    assert entry["state_root"] == state["state_root"]  # the same settled state
    assert mv.proves(root, device_key, record, rows, bytes.fromhex(entry["proof"]["bucket"]))
    device_pub = mv.decode(record)["sign_pub"]
    raw = bytes.fromhex(report["raw"])
    data = mv.open_report(raw, device_pub, p.bank.id, p.bank.enc_secret)
    assert data["seq"] == report["body"]["seq"] and "reading" in data
    with pytest.raises(nacl.exceptions.CryptoError):  # a wrong key cannot unwrap
        mv.open_report(raw, device_pub, p.bank.id, p.borrower.enc_secret)
