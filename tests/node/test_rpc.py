"""The RPC of a real single-validator node (LevelDB in tmp, aiohttp on 127.0.0.1):
bad input never gets a 5xx and always a stable code; reads, proofs, domain views,
events, metrics and the OpenAPI document agree with what was committed.

One node serves the whole module: the demo financing round runs once at set-up
(with WebSocket subscribers listening), then every test reads from or submits to
that chain, asking the node for fresh nonces.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import alarm_id_for_tx
from contracts.registry import TX_TYPES
from contracts.state import P_ALARM, P_CASE, P_LOT
from node.client.rpc import RpcClient
from node.tools.demo import run_step
from node.tools.demo_steps import Step, demo_steps
from node.tools.participants import Participants, participants_of
from node.tools.testnet import Testnet as NetDir
from primitives import codec
from primitives.block import Block, Commit
from primitives.keys import KeyPair
from primitives.state_proof import StateProof, verify_proof
from primitives.tx import MAX_TX_BYTES, SignedTx, Tx
from tests.node.conftest import (
    WAIT,
    NodeThread,
    Reply,
    http,
    make_testnet,
    node_config,
    token_guarded,
    wait_until,
)

pytestmark = pytest.mark.timeout(300)
FAR_NONCE = 2**40
"""A nonce far outside any admission window, so a transaction carrying it is never admitted."""


class EventListener:
    """A WebSocket client of /v1/events on its own loop and thread, collecting events."""

    def __init__(self, url: str, query: str = "") -> None:
        self.url = url.replace("http://", "ws://") + "/v1/events" + query
        self.events: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> EventListener:
        self._thread.start()
        if not self.connected.wait(WAIT):
            raise AssertionError(f"could not connect to {self.url}: {self.error!r}")
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start() / stop()
            self.error = exc
            self.connected.set()

    async def _main(self) -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(self.url) as ws:
            self.connected.set()
            while not self._stop.is_set():
                try:
                    msg = await ws.receive(timeout=0.1)
                except asyncio.TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                self.events.append(json.loads(msg.data))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(WAIT)
        assert not self._thread.is_alive(), "event listener did not stop"

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("kind") == kind]


@dataclass
class Chain:
    """The module's node after the demo round."""

    net: NetDir
    node: NodeThread
    p: Participants
    steps: list[Step]
    got: list[list[str]]
    all_events: EventListener
    alarm_events: EventListener
    events_error: str | None
    client: RpcClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = RpcClient(self.url)

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def chain_id(self) -> str:
        return self.net.chain_id

    def get(self, path: str, **kw: Any) -> Reply:
        return http(self.url, "GET", path, **kw)

    def post(self, body: bytes, ctype: str | None = "application/json", path: str = "/v1/txs", **kw: Any) -> Reply:
        return http(self.url, "POST", path, body, ctype, **kw)

    def signed(
        self, key: KeyPair, tx_type: str, body: dict[str, Any], nonce: int | None = None, chain_id: str | None = None
    ) -> SignedTx:
        n = self.client.next_nonce(key.id) if nonce is None else nonce
        return Tx(chain_id or self.chain_id, tx_type, key.id, n, body).sign(key)

    def rating(
        self,
        key: KeyPair | None = None,
        nonce: int | None = None,
        chain_id: str | None = None,
        signer: KeyPair | None = None,
        grade: str = "A",
    ) -> SignedTx:
        """A valid `rating.issue` by the bank (or by `key`, which may not be allowed to)."""
        key = key or self.p.bank
        body = {"subject": self.p.borrower.id, "grade": grade, "valid_until_ms": 2**50, "report_hash": bytes(32)}
        stx = self.signed(key, "rating.issue", body, nonce, chain_id)
        if signer is not None:  # same bytes, someone else's signature
            return SignedTx(stx.tx, stx.tx_bytes, signer.sign(stx.tx_bytes))
        return stx


def as_json(stx: SignedTx) -> bytes:
    return json.dumps({"tx": stx.tx_bytes.hex(), "sig": stx.sig.hex()}).encode()


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    net = make_testnet(tmp_path_factory.mktemp("rpc") / "net")
    node = NodeThread(node_config(net))
    listeners = [EventListener(node.url), EventListener(node.url, "?kinds=alarm_raised")]
    try:
        running = node.start()
        events_error: str | None = None
        try:
            for lst in listeners:
                lst.start()
            wait_until(lambda: running.core.events.subscribers == 2, timeout=5, what="both subscribers registered")
        except AssertionError as exc:
            events_error = str(exc)
        p = participants_of(net)
        client = RpcClient(node.url)
        steps = demo_steps(p, net.chain_id, int(time.time() * 1000))
        got = [run_step(client, s)[0] for s in steps]
        last = steps[-1].txs[-1].tx_id_hex  # a block's event comes first, then its transactions' events
        if events_error is None:
            wait_until(
                lambda: any(e.get("tx_id") == last for e in listeners[0].events),
                timeout=10,
                what="the last transaction's event",
            )
            # and the empty block that certifies the quiet chain's state: then nothing more comes
            wait_until(lambda: client.status()["state_certified"], timeout=10, what="the certifying empty block")
            head = client.status()["height"]
            wait_until(
                lambda: any(e.get("kind") == "block" and e.get("height") == head for e in listeners[0].events),
                timeout=10,
                what="the head's block event",
            )
        for lst in listeners:
            lst.stop()
        yield Chain(net, node, p, steps, got, listeners[0], listeners[1], events_error)
    finally:
        for lst in listeners:
            lst._stop.set()
        node.stop()


# ---- the demo round, events, views ---------------------------------------------------------


def test_demo_round_commits_with_the_expected_result_codes(chain: Chain) -> None:
    for step, got in zip(chain.steps, chain.got):
        assert got == step.expected, step.label


def test_events_stream_blocks_txs_and_the_unauthorised_outbound_alarm(chain: Chain) -> None:
    assert chain.events_error is None, chain.events_error
    head = chain.client.status()["height"]
    blocks = chain.all_events.of_kind("block")
    assert [b["height"] for b in blocks] == list(range(1, head + 1))
    for b in blocks[:3]:
        assert b["hash"] == chain.client.block(b["height"])["hash"]
    txs = chain.all_events.of_kind("tx")
    committed = [t for s, g in zip(chain.steps, chain.got) for t, c in zip(s.txs, g)]
    assert {e["tx_id"] for e in txs} == {t.tx_id_hex for t in committed}
    by_id = {e["tx_id"]: e for e in txs}
    for step, got in zip(chain.steps, chain.got):
        for stx, code in zip(step.txs, got):
            assert by_id[stx.tx_id_hex]["result"] == code
            assert by_id[stx.tx_id_hex]["type"] == stx.tx.type
    leak = next(s for s in chain.steps if s.section == "alarm").txs[0]
    alarm_id = alarm_id_for_tx(leak)
    raised = chain.all_events.of_kind("alarm_raised")
    assert alarm_id in {e["alarm"] for e in raised}
    assert next(e for e in raised if e["alarm"] == alarm_id)["height"] == by_id[leak.tx_id_hex]["height"]
    # the filtered subscriber saw the alarms and nothing else
    assert chain.alarm_events.events and all(e["kind"] == "alarm_raised" for e in chain.alarm_events.events)
    assert [e["alarm"] for e in chain.alarm_events.events] == [e["alarm"] for e in raised]
    assert alarm_id in {e["alarm"] for e in chain.all_events.of_kind("alarm_resolved")}


def test_domain_views_after_the_demo(chain: Chain) -> None:
    p = chain.p
    case = chain.get("/v1/cases/C1").doc
    assert case["lot"] == "L1" and case["bank"] == p.bank.id and case["state"] == "closed"
    c2 = chain.get("/v1/cases/C2").doc
    assert c2["state"] == "liquidated"
    lot = chain.get("/v1/lots/L1").doc
    assert lot["quantity"] == 1000 and lot["released"] == 1000
    assert chain.get("/v1/lots/L4").doc["quantity"] == 800
    d0 = p.devices[0]
    reports = [t for s in chain.steps for t in s.txs if t.tx.sender == d0.id]
    dev = chain.get(f"/v1/devices/{d0.id}").doc
    assert dev["state"] == "accepted" and dev["seq"] == max(t.tx.body["seq"] for t in reports)
    members = {m["id"]: m for m in chain.get("/v1/members").doc["members"]}
    assert {k.id for k in p.members()} <= set(members)
    assert members[p.bank.id]["role"] == "bank" and members[p.bank.id]["enc_pub"] == p.bank.enc_pub.hex()
    assert members[p.borrower.id]["rating"]["grade"] == "A"
    sent = sum(1 for s in chain.steps for t in s.txs if t.tx.sender == p.bank.id)
    account = chain.get(f"/v1/accounts/{p.bank.id}").doc
    assert account["committed_nonce"] == sent and account["next_nonce"] == sent
    alarm = chain.get(f"/v1/alarms/{alarm_id_for_tx(next(s for s in chain.steps if s.section == 'alarm').txs[0])}")
    assert alarm.status == 200 and alarm.doc["state"] == "resolved"
    for path in ("/v1/cases/nope", "/v1/lots/nope", "/v1/devices/nope", "/v1/alarms/nope"):
        r = chain.get(path)
        assert (r.status, r.code) == (404, "not_found"), path
    assert chain.get("/v1/accounts/" + "x" * 300).status == 400


def test_metrics_report_height_and_alarms(chain: Chain) -> None:
    r = chain.get("/metrics")
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.body.decode()
    height = chain.client.status()["height"]
    assert re.search(rf"^godown_height {height}(\.0)?$", text, re.M), text[:500]
    core = chain.node.core
    raised = sum(1 for _ in core.ledger.state.scan(P_ALARM))
    assert raised >= 1
    assert re.search(rf"^godown_alarms_raised_total {raised}(\.0)?$", text, re.M)


# ---- reads: transactions, blocks, state proofs ---------------------------------------------


def test_get_tx_block_and_latest(chain: Chain) -> None:
    stx = chain.steps[0].txs[1]
    doc = chain.get(f"/v1/txs/{stx.tx_id_hex}").doc
    assert doc["status"] == "committed" and doc["result"] == "ok" and doc["sender"] == chain.p.bank.id
    assert SignedTx.decode(bytes.fromhex(doc["raw"])).tx_id == stx.tx_id
    block = chain.get(f"/v1/blocks/{doc['height']}").doc
    assert block["txs"][doc["index"]]["tx_id"] == stx.tx_id_hex
    decoded = Block.decode(bytes.fromhex(block["raw"]))
    assert decoded.hash().hex() == block["hash"] and decoded.height == doc["height"]
    commit = Commit.decode(bytes.fromhex(block["commit_raw"]))
    assert commit.block_hash == decoded.hash()
    commit.verify(chain.node.core.genesis.validator_keys(), decoded.header)
    status = chain.client.status()
    latest = chain.get("/v1/blocks/latest").doc
    assert latest["height"] == status["height"] and latest["hash"] == status["head_hash"]


@pytest.mark.parametrize(
    "path,status,code",
    [
        ("/v1/txs/" + "ab" * 32, 404, "not_found"),
        ("/v1/txs/zz", 400, "malformed"),
        ("/v1/txs/abcd", 400, "malformed"),
        ("/v1/blocks/0", 404, "not_found"),
        ("/v1/blocks/99999999", 404, "not_found"),
        ("/v1/blocks/-1", 400, "malformed"),
        ("/v1/blocks/abc", 400, "malformed"),
        ("/v1/blocks/" + "9" * 40, 404, "not_found"),
        ("/v1/blocks/%C2%B2", 400, "malformed"),  # '²' passes str.isdigit()
        ("/v1/state/0xzz", 400, "malformed"),
        ("/v1/state/" + "k" * 600, 413, "oversize"),
        ("/v1/nowhere", 404, "not_found"),
        ("/v2/status", 404, "not_found"),
    ],
)
def test_bad_reads_get_their_code(chain: Chain, path: str, status: int, code: str) -> None:
    r = chain.get(path)
    assert (r.status, r.code) == (status, code), r.body[:200]


def test_wrong_method_is_a_client_error_with_a_code(chain: Chain) -> None:
    r = http(chain.url, "POST", "/v1/status", b"{}")
    assert r.status == 405 and r.code == "malformed"
    r = http(chain.url, "PUT", "/v1/txs", b"{}")  # GET lists them (#12), POST submits
    assert r.status == 405 and r.code == "malformed"


def test_state_entry_with_a_proof_that_verifies_and_fails_when_altered(chain: Chain) -> None:
    key = P_CASE + b"C1"
    doc = chain.get("/v1/state/0x" + key.hex()).doc
    assert doc["exists"] and doc["key"] == key.hex() and doc["value"]["lot"] == "L1"
    assert chain.get("/v1/state/" + key.decode()).doc["value_raw"] == doc["value_raw"]  # utf-8 form
    root, value = bytes.fromhex(doc["state_root"]), bytes.fromhex(doc["value_raw"])
    proof = StateProof.from_json(doc["proof"])
    assert verify_proof(root, key, value, proof)
    assert root.hex() == chain.client.status()["state_root"]
    assert not verify_proof(root, key, value + b"\x00", proof)
    assert not verify_proof(root, key, None, proof)
    assert not verify_proof(root, P_CASE + b"C2", value, proof)
    assert not verify_proof(bytes(32), key, value, proof)
    if proof.siblings:
        row = bytearray(proof.siblings[0])
        row[0] ^= 1
        assert not verify_proof(root, key, value, StateProof((bytes(row), *proof.siblings[1:]), proof.bucket))
    # absence is proven too
    absent = chain.get("/v1/state/0x" + (P_LOT + b"no-such-lot").hex()).doc
    assert absent["exists"] is False and absent["value_raw"] is None
    aproof = StateProof.from_json(absent["proof"])
    assert verify_proof(bytes.fromhex(absent["state_root"]), P_LOT + b"no-such-lot", None, aproof)
    assert not verify_proof(bytes.fromhex(absent["state_root"]), P_LOT + b"no-such-lot", b"x", aproof)
    # ?height= answers the latest height only, and says so for any other
    assert chain.get(f"/v1/state/0x{key.hex()}?height={doc['height']}").doc["value_raw"] == doc["value_raw"]
    older = chain.get(f"/v1/state/0x{key.hex()}?height={doc['height'] - 1}")
    assert (older.status, older.code) == (404, "not_found")
    bad = chain.get(f"/v1/state/0x{key.hex()}?height=latest-ish")
    assert (bad.status, bad.code) == (400, "malformed")
    # the next block's header certifies that root: on this quiet chain, the empty block
    # the node cuts after `empty_block_after_ms`, and then the latest state is certified
    height = doc["height"]
    wait_until(lambda: chain.client.status()["state_certified"], what="the certifying empty block")
    head = chain.client.block("latest")  # the empty block: next after `height`, or `height` itself
    assert head["height"] in (height, height + 1) and head["txs"] == []
    assert head["header"]["state_root"] == doc["state_root"]
    assert chain.client.status()["height"] == head["height"]  # one empty block, and no more


# ---- submitting: success, ?wait_ms, and every refusal ----------------------------------------


def test_wait_ms_returns_the_committed_result(chain: Chain) -> None:
    stx = chain.rating()
    r = chain.post(as_json(stx), path="/v1/txs?wait_ms=10000")
    assert r.status == 200, r.body
    assert r.doc["code"] == "committed" and r.doc["tx_id"] == stx.tx_id_hex and r.doc["result"] == "ok"
    got = chain.get(f"/v1/txs/{stx.tx_id_hex}").doc
    assert (got["height"], got["index"], got["status"]) == (r.doc["height"], r.doc["index"], "committed")
    # without waiting the answer is "accepted"; as msgpack too
    stx2 = chain.rating()
    r2 = chain.post(stx2.encode(), "application/msgpack")
    assert r2.status == 200 and r2.doc == {"tx_id": stx2.tx_id_hex, "code": "accepted"}
    wait_until(lambda: chain.get(f"/v1/txs/{stx2.tx_id_hex}").doc.get("status") == "committed", what="commit")


def test_a_gapped_transaction_is_pending_until_the_gap_fills(chain: Chain) -> None:
    bank = chain.p.bank.id
    n = chain.client.next_nonce(bank)
    later = chain.rating(nonce=n + 1)
    assert chain.post(as_json(later)).doc == {"tx_id": later.tx_id_hex, "code": "accepted"}
    doc = chain.get(f"/v1/txs/{later.tx_id_hex}").doc
    assert doc["status"] == "pending" and doc["nonce"] == n + 1 and "height" not in doc
    assert chain.get(f"/v1/accounts/{bank}").doc["committed_nonce"] == n
    assert chain.post(as_json(later)).code == "duplicate"
    first = chain.rating(nonce=n, grade="B")
    r = chain.post(as_json(first), path="/v1/txs?wait_ms=10000")
    assert r.doc["code"] == "committed" and r.doc["result"] == "ok"
    wait_until(
        lambda: chain.get(f"/v1/txs/{later.tx_id_hex}").doc.get("status") == "committed",
        timeout=10,
        what="the gapped transaction to commit",
    )
    assert chain.get(f"/v1/accounts/{bank}").doc["committed_nonce"] == n + 2


def test_replayed_and_duplicate_transactions_are_refused(chain: Chain) -> None:
    stx = chain.rating()
    assert chain.client.submit(stx, wait_ms=10_000)["code"] == "committed"
    again = chain.post(as_json(stx))
    assert (again.status, again.code) == (409, "duplicate")
    replay = chain.rating(nonce=stx.tx.nonce, grade="AA")  # same nonce, other bytes
    r = chain.post(as_json(replay))
    assert (r.status, r.code) == (409, "bad_nonce")
    far = chain.rating(nonce=stx.tx.nonce + 2**40)
    assert chain.post(as_json(far)).code == "bad_nonce"


def _bad_submissions(chain: Chain) -> list[tuple[str, bytes, str | None, int, str]]:
    p = chain.p
    good = chain.rating(nonce=FAR_NONCE)  # never admitted: its nonce is far outside any window
    stranger = KeyPair.generate("stranger", "bank")
    tx_hex, sig_hex = good.tx_bytes.hex(), good.sig.hex()
    tx_before_sig = (
        b"\x82"
        + msgpack.packb("tx")
        + msgpack.packb(good.tx_bytes, use_bin_type=True)
        + msgpack.packb("sig")
        + msgpack.packb(good.sig, use_bin_type=True)
    )  # canonical order is sig, tx
    assert msgpack.unpackb(tx_before_sig) == good.to_dict()
    inner = good.tx.to_dict()
    wide_nonce = b"\x86" + b"".join(  # nonce as uint64 (non-minimal), keys otherwise sorted
        msgpack.packb(k)
        + (b"\xcf" + (5).to_bytes(8, "big") if k == "nonce" else msgpack.packb(inner[k], use_bin_type=True))
        for k in sorted(inner)
    )
    big_body = Tx(chain.chain_id, "rating.issue", p.bank.id, 0, {"pad": "x" * (MAX_TX_BYTES + 10)}).sign(p.bank)
    return [
        ("malformed JSON", b'{"tx": ', "application/json", 400, "malformed"),
        ("JSON of the wrong shape", b'{"tx": 1, "sig": 2}', "application/json", 400, "malformed"),
        (
            "extra field",
            json.dumps({"tx": tx_hex, "sig": sig_hex, "x": ""}).encode(),
            "application/json",
            400,
            "malformed",
        ),
        (
            "non-hex tx",
            json.dumps({"tx": "zz" + tx_hex, "sig": sig_hex}).encode(),
            "application/json",
            400,
            "malformed",
        ),
        ("non-hex sig", json.dumps({"tx": tx_hex, "sig": "xy"}).encode(), "application/json", 400, "malformed"),
        ("short sig", json.dumps({"tx": tx_hex, "sig": "00" * 10}).encode(), "application/json", 401, "bad_signature"),
        (
            "tx bytes not msgpack",
            json.dumps({"tx": "c1c1", "sig": sig_hex}).encode(),
            "application/json",
            400,
            "malformed",
        ),
        ("empty body", b"", "application/json", 400, "malformed"),
        ("empty list", b"[]", "application/json", 400, "malformed"),
        ("deeply nested JSON", b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "malformed"),
        ("invalid utf-8", b"\xff\xfe{", "application/json", 400, "malformed"),
        ("malformed msgpack", b"\xc1\x00\x01", "application/msgpack", 400, "malformed"),
        ("truncated msgpack", good.encode()[:-5], "application/msgpack", 400, "malformed"),
        ("trailing bytes", good.encode() + b"\x00", "application/msgpack", 400, "malformed"),
        ("non-canonical map order", tx_before_sig, "application/msgpack", 400, "malformed"),
        (
            "non-minimal integer in the tx",
            codec.encode({"tx": wide_nonce, "sig": good.sig}),
            "application/msgpack",
            400,
            "malformed",
        ),
        ("float in msgpack", msgpack.packb(1.5), "application/msgpack", 400, "malformed"),
        ("unsupported media type", b"<tx/>", "application/xml", 415, "unsupported_media"),
        ("bad signature", as_json(chain.rating(signer=p.insurer)), "application/json", 401, "bad_signature"),
        ("wrong chain id", as_json(chain.rating(chain_id="other-chain")), "application/json", 422, "wrong_chain"),
        (
            "forbidden role: a borrower rates",
            as_json(chain.rating(key=p.borrower)),
            "application/json",
            403,
            "forbidden_role",
        ),
        (
            "unknown sender",
            as_json(Tx(chain.chain_id, "rating.issue", stranger.id, 0, {}).sign(stranger)),
            "application/json",
            422,
            "unknown_sender",
        ),
        (
            "unknown tx type",
            as_json(chain.signed(p.bank, "loan.steal", {"amount": 1})),
            "application/json",
            422,
            "unknown_tx_type",
        ),
        ("bad body", as_json(chain.signed(p.bank, "rating.issue", {"grade": 7})), "application/json", 422, "bad_body"),
        ("oversize transaction", big_body.encode(), "application/msgpack", 413, "oversize"),
        ("oversize request body", b"[" + b" " * (9 * 1024 * 1024) + b"]", "application/json", 413, "oversize"),
    ]


def test_bad_submissions_get_their_status_and_code(chain: Chain) -> None:
    wait_until(lambda: chain.client.status()["state_certified"], what="a settled head")  # no empty block to come
    height = chain.client.status()["height"]
    failures = []
    for label, body, ctype, status, code in _bad_submissions(chain):
        r = chain.post(body, ctype)
        if (r.status, r.code) != (status, code):
            failures.append(f"{label}: got {r.status} {r.code} {r.body[:120]!r}, want {status} {code}")
    assert not failures, "\n".join(failures)
    assert chain.client.status()["height"] == height  # none of them made a block
    assert chain.client.status()["mempool"] == 0


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-unknown"])
def test_an_undecodable_content_encoding_is_malformed(chain: Chain, encoding: str) -> None:
    r = chain.post(as_json(chain.rating(nonce=FAR_NONCE)), headers={"Content-Encoding": encoding})
    assert 400 <= r.status < 500, (r.status, r.body[:200])
    if encoding != "br":  # aiohttp refuses br itself, before any handler, with a plain-text 400
        assert r.code == ("bad_nonce" if encoding == "x-unknown" else "malformed"), r.body[:200]


@pytest.mark.parametrize("wait", ["abc", "-5", "1.5", "%C2%B2", "9" * 30])
def test_bad_wait_ms_is_refused_or_capped(chain: Chain, wait: str) -> None:
    r = chain.post(as_json(chain.rating(nonce=FAR_NONCE)), path=f"/v1/txs?wait_ms={wait}")
    if wait == "9" * 30:  # a huge number is capped, not an error; the tx itself is refused
        assert (r.status, r.code) == (409, "bad_nonce")
    else:
        assert (r.status, r.code) == (400, "malformed"), r.body


def test_list_submission_answers_per_item(chain: Chain) -> None:
    p = chain.p
    first = chain.rating()
    second = chain.rating(nonce=first.tx.nonce + 1)
    forbidden = chain.rating(key=p.borrower)
    items = [
        {"tx": first.tx_bytes.hex(), "sig": first.sig.hex()},
        {"tx": "zz", "sig": "00"},
        {"tx": second.tx_bytes.hex(), "sig": p.insurer.sign(second.tx_bytes).hex()},
        {"tx": forbidden.tx_bytes.hex(), "sig": forbidden.sig.hex()},
        {"tx": first.tx_bytes.hex(), "sig": first.sig.hex()},
        "not an object",
        {"tx": second.tx_bytes.hex(), "sig": second.sig.hex()},
    ]
    r = chain.post(json.dumps(items).encode(), path="/v1/txs?wait_ms=10000")
    assert r.status == 200, r.body
    codes = [x["code"] for x in r.doc["results"]]
    assert codes == ["committed", "malformed", "bad_signature", "forbidden_role", "duplicate", "malformed", "committed"]
    assert r.doc["results"][0]["tx_id"] == first.tx_id_hex and r.doc["results"][1]["tx_id"] is None
    # the same as msgpack, wrapped form {"txs": [...]} as JSON
    third = chain.rating()
    doc = [third.to_dict(), {"tx": b"\xc1", "sig": bytes(64)}, {"nope": 1}]
    r = chain.post(codec.encode(doc), "application/msgpack", path="/v1/txs?wait_ms=10000")
    assert [x["code"] for x in r.doc["results"]] == ["committed", "malformed", "malformed"]
    fourth = chain.rating()
    r = chain.post(json.dumps({"txs": [json.loads(as_json(fourth))]}).encode())
    assert r.status == 200 and r.doc["results"] == [{"tx_id": fourth.tx_id_hex, "code": "accepted"}]
    assert chain.client.submit(chain.rating(nonce=fourth.tx.nonce + 1), wait_ms=10_000)["code"] == "committed"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=300),
    ctype=st.sampled_from(["application/json", "application/msgpack", "", "text/plain", "image/png"]),
)
def test_random_bytes_never_get_a_5xx(chain: Chain, body: bytes, ctype: str) -> None:
    r = chain.post(body, ctype or None)
    if r.status == 200:  # only a list (as canonical msgpack or JSON) is answered item by item
        assert isinstance(r.doc["results"], list) and r.doc["results"], r.body[:200]
        assert all(x["code"] not in ("accepted", "committed") for x in r.doc["results"]), r.doc
    else:
        assert 400 <= r.status < 500 and r.code, (r.status, r.body[:200])


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "00" * 64, "zz"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["tx", "sig", "txs", "x"]) | st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_json_values, wait=st.sampled_from(["", "?wait_ms=0", "?wait_ms=50", "?wait_ms=x"]))
def test_random_json_never_gets_a_5xx(chain: Chain, doc: Any, wait: str) -> None:
    r = chain.post(json.dumps(doc).encode(), path="/v1/txs" + wait)
    assert r.status < 500, (r.status, r.body[:200])
    if r.status >= 400:
        assert r.code


_msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=12) | st.binary(max_size=70),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=16,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_signed_transactions_never_get_a_5xx(chain: Chain, data: st.DataObject) -> None:
    """Correctly signed, canonical transactions with arbitrary types and bodies reach the
    contracts' admission checks; whatever they hold, the answer is a 4xx with a code."""
    signer = data.draw(st.sampled_from([*chain.p.members(), *chain.p.devices]))
    body = data.draw(
        st.dictionaries(
            st.sampled_from(sorted({f.name for t in TX_TYPES.values() for f in t.fields})) | st.text(max_size=6),
            _msgpack_values,
            max_size=6,
        )
    )
    tx_type = data.draw(st.sampled_from(sorted(TX_TYPES)) | st.text(max_size=12))
    stx = Tx(chain.chain_id, tx_type, signer.id, FAR_NONCE, body).sign(signer)
    as_list = data.draw(st.booleans())
    doc = [stx.to_dict()] if as_list else stx.to_dict()
    r = chain.post(codec.encode(doc), "application/msgpack")
    assert r.status < 500, (r.status, r.body[:300])
    item = r.doc["results"][0] if as_list else r.doc["error"]
    assert item["code"] not in ("accepted", "committed", "internal"), item


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_msgpack_values)
def test_random_msgpack_documents_never_get_a_5xx(chain: Chain, doc: Any) -> None:
    r = chain.post(codec.encode(doc), "application/msgpack")
    if isinstance(doc, list) and doc:  # a list gets a refusal per item
        assert r.status == 200 and len(r.doc["results"]) == len(doc), (r.status, r.body[:200])
        assert all(x["code"] == "malformed" for x in r.doc["results"]), r.doc
    else:
        assert 400 <= r.status < 500 and r.code, (r.status, r.body[:200])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(alphabet=st.characters(codec="ascii", exclude_characters="#?\r\n "), max_size=60))
def test_random_read_paths_never_get_a_5xx(chain: Chain, path: str) -> None:
    for prefix in ("/v1/blocks/", "/v1/txs/", "/v1/state/", "/v1/cases/", "/v1/accounts/"):
        from urllib.parse import quote

        r = chain.get(prefix + quote(path, safe=""))
        assert r.status < 500, (prefix, path, r.status, r.body[:200])


# ---- documents and access -------------------------------------------------------------------


def test_bearer_token_guards_reads_and_writes(chain: Chain) -> None:
    core = chain.node.core
    with token_guarded(chain.node, core) as url:
        for path in ("/v1/status", "/v1/members", "/metrics", "/v1/blocks/latest"):
            r = http(url, "GET", path)
            assert (r.status, r.code) == (401, "unauthorized"), path
            assert http(url, "GET", path, headers={"Authorization": "Bearer wrong"}).status == 401
            assert http(url, "GET", path, headers={"Authorization": "Bearer s3cret-token"}).status == 200, path
        stx = chain.rating()
        r = http(url, "POST", "/v1/txs", as_json(stx))
        assert (r.status, r.code) == (401, "unauthorized")
        assert chain.get(f"/v1/txs/{stx.tx_id_hex}").status == 404  # refused before admission
        r = http(url, "POST", "/v1/txs?wait_ms=10000", as_json(stx), headers={"Authorization": "Bearer s3cret-token"})
        assert r.status == 200 and r.doc["code"] == "committed"
        assert RpcClient(url, "s3cret-token").status()["height"] >= r.doc["height"]
