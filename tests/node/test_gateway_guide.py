"""docs/gateway-firmware.md, followed literally against a real node: the "firmware" here
builds its reports from the guide with hashlib, libsodium and a plain msgpack writer
only (none of godown's encoders), submits them as application/msgpack, and meets the
answers the guide promises (a committed report, a safe resubmission, a replayed seq
recorded as bad_sequence, a nonce gap held until it fills)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import msgpack
import nacl.bindings as sodium
import nacl.signing
import pytest

from node.client.reports import open_report
from node.client.rpc import RpcClient
from node.client.txs import require_ok, sign_and_submit
from node.tools.participants import Participants, participants_of
from primitives.tx import SignedTx
from tests.node.conftest import NodeThread, Reply, http, make_testnet, node_config
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(300)
SEED = hashlib.sha256(b"gateway guide device").digest()


class Firmware:
    """A device gateway as a vendor would write it from the guide."""

    def __init__(self, seed: bytes, chain_id: str) -> None:
        self.key = nacl.signing.SigningKey(seed)
        self.sign_pub = bytes(self.key.verify_key)
        self.id = hashlib.sha256(self.sign_pub).digest()[:20].hex()  # guide §1
        self.chain_id = chain_id

    @staticmethod
    def canonical(value: Any) -> bytes:
        """Guide §4 step 2: sorted str keys, shortest ints, bin for bytes."""

        def sort(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: sort(v[k]) for k in sorted(v)}
            if isinstance(v, list):
                return [sort(x) for x in v]
            return v

        return msgpack.packb(sort(value), use_bin_type=True)  # type: ignore[no-any-return]

    def report(self, nonce: int, seq: int, kind: str, data: dict[str, Any], recipients: dict[str, bytes]) -> bytes:
        """Guide §3–§5: seal, build the body and the Tx, sign, wrap as Signed bytes."""
        ad = self.canonical({"device": self.id, "kind": kind, "lot": "", "seq": seq})
        assert ad[:8] == bytes.fromhex("84a6646576696365") and ad[8:10] == b"\xd9\x28"  # the layout in §4 step 3
        content_key, nonce24 = sodium.randombytes(32), sodium.randombytes(24)
        ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(self.canonical(data), ad, nonce24, content_key)
        wrapped = [[rid, sodium.crypto_box_seal(content_key, pub)] for rid, pub in sorted(recipients.items())]
        assert all(len(w) == 80 for _, w in wrapped)
        envelope = {"ciphertext": ciphertext, "nonce": nonce24, "recipients": wrapped}
        body = {"envelope": envelope, "kind": kind, "lot": "", "seq": seq}
        tx = self.canonical(
            {"body": body, "chain_id": self.chain_id, "nonce": nonce, "sender": self.id, "type": "device.report"}
        )
        return self.canonical({"sig": self.key.sign(tx).signature, "tx": tx})

    @staticmethod
    def tx_id(signed: bytes) -> str:
        return hashlib.sha256(msgpack.unpackb(signed)["tx"]).hexdigest()


class Site:
    def __init__(self, node: NodeThread, p: Participants, chain_id: str) -> None:
        self.node, self.p, self.client = node, p, RpcClient(node.url)
        self.device = Firmware(SEED, chain_id)

    def post(self, signed: bytes, wait_ms: int = 0) -> Reply:
        return http(self.node.url, "POST", f"/v1/txs?wait_ms={wait_ms}", signed, "application/msgpack")

    def get(self, path: str) -> Any:
        return http(self.node.url, "GET", path).doc


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    net = make_testnet(tmp_path_factory.mktemp("guide") / "net")
    node = NodeThread(node_config(net))
    try:
        node.start()
        s = Site(node, participants_of(net), net.chain_id)
        d = s.device  # guide §2: the warehouse registers, a bank accepts
        body = {"device": d.id, "sign_pub": d.sign_pub, "zone": "guide-zone", "kind": "scale"}
        require_ok(sign_and_submit(s.client, s.p.warehouse, "device.register", body))
        require_ok(sign_and_submit(s.client, s.p.bank, "device.accept", {"device": d.id}))
        yield s
    finally:
        node.stop()


def test_a_report_built_from_the_guide_commits_and_its_recipient_opens_it(site: Site) -> None:
    d, p = site.device, site.p
    assert site.get(f"/v1/devices/{d.id}")["state"] == "accepted"
    nonce = site.get(f"/v1/accounts/{d.id}")["next_nonce"]
    seq = site.get(f"/v1/devices/{d.id}")["seq"] + 1
    recipients = {p.warehouse.id: p.warehouse.enc_pub, p.bank.id: p.bank.enc_pub}
    signed = d.report(nonce, seq, "heartbeat", {"battery_mv": 3600}, recipients)
    r = site.post(signed, wait_ms=30_000)
    assert r.status == 200 and r.doc["code"] == "committed" and r.doc["result"] == "ok", r.doc
    assert r.doc["tx_id"] == d.tx_id(signed)
    opened = open_report(SignedTx.decode(signed), p.bank.id, p.bank.enc_secret)
    assert opened["data"] == {"battery_mv": 3600} and opened["seq"] == seq

    again = site.post(signed)  # guide §8: the same bytes again are safe
    assert (again.status, again.code) == (409, "duplicate")
    doc = site.get(f"/v1/txs/{d.tx_id(signed)}")
    assert doc["status"] == "committed" and doc["result"] == "ok"


def test_a_replayed_seq_is_recorded_as_bad_sequence_and_uses_its_nonce(site: Site) -> None:
    d, p = site.device, site.p
    nonce = site.get(f"/v1/accounts/{d.id}")["next_nonce"]
    seq = site.get(f"/v1/devices/{d.id}")["seq"]  # the last accepted one, not above it
    signed = d.report(nonce, seq, "reading", {"weight_g": 1}, {p.warehouse.id: p.warehouse.enc_pub})
    r = site.post(signed, wait_ms=30_000)
    assert r.doc["code"] == "committed" and r.doc["result"] == "bad_sequence", r.doc
    assert site.get(f"/v1/accounts/{d.id}")["committed_nonce"] == nonce + 1


def test_a_nonce_gap_holds_the_later_report_until_it_fills(site: Site) -> None:
    d, p = site.device, site.p
    nonce = site.get(f"/v1/accounts/{d.id}")["committed_nonce"]
    seq = site.get(f"/v1/devices/{d.id}")["seq"] + 1
    to = {p.warehouse.id: p.warehouse.enc_pub}
    later = d.report(nonce + 1, seq + 1, "reading", {"weight_g": 2}, to)
    assert site.post(later).doc["code"] == "accepted"
    assert site.get(f"/v1/txs/{d.tx_id(later)}")["status"] == "pending"
    first = d.report(nonce, seq, "reading", {"weight_g": 3}, to)
    assert site.post(first, wait_ms=30_000).doc["result"] == "ok"
    wait_until(lambda: site.get(f"/v1/txs/{d.tx_id(later)}").get("status") == "committed", what="the held report")
    assert site.get(f"/v1/txs/{d.tx_id(later)}")["result"] == "ok"
    assert site.get(f"/v1/devices/{d.id}")["seq"] == seq + 1


def test_a_refused_report_keeps_its_nonce_and_json_submission_works_too(site: Site) -> None:
    d, p = site.device, site.p
    nonce = site.get(f"/v1/accounts/{d.id}")["next_nonce"]
    seq = site.get(f"/v1/devices/{d.id}")["seq"] + 1
    signed = d.report(nonce, seq, "inbound", {"weight_g": 4}, {p.warehouse.id: p.warehouse.enc_pub})
    r = site.post(signed)  # an inbound report names a lot: refused at admission
    assert (r.status, r.code) == (422, "bad_body")
    assert site.get(f"/v1/accounts/{d.id}")["next_nonce"] == nonce
    fixed = msgpack.unpackb(d.report(nonce, seq, "heartbeat", {}, {p.warehouse.id: p.warehouse.enc_pub}))
    as_json = json.dumps({"tx": fixed["tx"].hex(), "sig": fixed["sig"].hex()}).encode()
    r = http(site.node.url, "POST", "/v1/txs?wait_ms=30000", as_json, "application/json")
    assert r.doc["code"] == "committed" and r.doc["result"] == "ok", r.doc
