"""The list and history endpoints the web platform reads (#12), on a real node after the
demo financing round: every filter answers exactly the subset the committed data says,
paging visits every item exactly once, bad parameters are 400 `malformed`, device reports
are opened only for the node's own member with its key configured, one audit runs at a
time, and the events WebSocket takes the token as a `bearer.<token>` subprotocol.

The module's node is the warehouse's, started with `report_key_file` = the warehouse's
key. A second app over the same node core, with a token and no report key, serves the
tests of what a node without the key (or a client without the token) gets.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.client.reports import device_report, open_report
from node.client.rpc import RpcClient
from node.server import rpc_audit, rpc_history, rpc_lists
from node.server.openapi import openapi_document
from node.server.rpc import make_app
from node.server.rpc_history import ReportKey
from node.server.txindex import named_ids
from node.tools.audit import AuditReport
from node.tools.demo import run_step
from node.tools.demo_steps import demo_steps
from node.tools.participants import Participants, participants_of
from primitives.block import Block
from primitives.errors import VOID_RESULTS, Code, GodownError
from primitives.tx import SignedTx
from tests.node.conftest import WAIT, NodeThread, Reply, free_port, http, make_testnet, node_config
from tests.openapi_check import Spec

pytestmark = pytest.mark.timeout(300)
TOKEN = "lists-token"
PAGING = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass
class Lists:
    node: NodeThread
    p: Participants
    net_dir: Path
    chain_id: str
    other_url: str  # the same core served with TOKEN and without the report key
    sealed_away: SignedTx  # a report sealed to the bank only: rejected, committed, never opened here

    def get(self, path: str) -> Reply:
        return http(self.node.url, "GET", path)

    def doc(self, path: str) -> Any:
        r = self.get(path)
        assert r.status == 200, (path, r.status, r.body[:300])
        return r.doc

    def other(self, path: str, token: str | None = TOKEN, method: str = "GET") -> Reply:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return http(self.other_url, method, path, b"" if method == "POST" else None, headers=headers)

    def blocks(self) -> list[Block]:
        core = self.node.core
        store = core.ledger.store
        return [b for h in range(1, store.head_height + 1) if (b := store.get_block(h)) is not None]

    def committed(self) -> list[tuple[int, int, SignedTx, str]]:
        """Every non-void committed transaction, newest first: the ground truth of /v1/txs."""
        out = [(b.height, i, t, r) for b in self.blocks() for i, (t, r) in enumerate(zip(b.txs, b.results))]
        return [x for x in reversed(out) if x[3] not in VOID_RESULTS]


def _serve(node: NodeThread, app: web.Application, port: int) -> web.AppRunner:
    async def start() -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    return node.run(start())


@pytest.fixture(scope="module")
def lists(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lists]:
    net = make_testnet(tmp_path_factory.mktemp("lists") / "net")
    config = replace(node_config(net), report_key_file=net.dir / "keys" / "warehouse.json")
    node = NodeThread(config)
    runner: web.AppRunner | None = None
    try:
        node.start()
        p = participants_of(net)
        client = RpcClient(node.url)
        for step in demo_steps(p, net.chain_id, int(time.time() * 1000)):
            run_step(client, step)
        device = p.devices[2]  # zone-b, lot L2
        view = client.get(f"/v1/devices/{device.id}")
        away = device_report(
            device,
            net.chain_id,
            client.next_nonce(device.id),
            view["seq"] + 1,
            "L2",
            "reading",
            {"celsius": 21},
            {p.bank.id: p.bank.enc_pub},
        )
        answer = client.submit(away, wait_ms=10_000)
        assert answer["code"] == "committed" and answer["result"] == "missing_recipient", answer
        port = free_port()
        runner = _serve(node, make_app(node.core, TOKEN, None), port)
        yield Lists(node, p, net.dir, net.chain_id, f"http://127.0.0.1:{port}", away)
    finally:
        if runner is not None:
            node.run(runner.cleanup())
        node.stop()


def walk_pages(lists: Lists, path: str, key: str, limit: int, short_pages: bool = False) -> list[Any]:
    """Every item of a list endpoint, page by page; asserts each page's size (and, unless
    `short_pages`, that a page with a next is not empty)."""
    sep = "&" if "?" in path else "?"
    out: list[Any] = []
    cursor: str | None = None
    for _ in range(10_000):
        doc = lists.doc(f"{path}{sep}limit={limit}" + ("" if cursor is None else f"&cursor={cursor}"))
        assert len(doc[key]) <= limit
        out.extend(doc[key])
        cursor = doc["next"]
        if cursor is None:
            return out
        assert doc[key] or short_pages, "a page with a next holds at least one item here (small chain)"
    raise AssertionError("paging did not end")


# ---- whoami -------------------------------------------------------------------------------


def test_whoami_names_the_nodes_member_and_what_it_serves(lists: Lists) -> None:
    w = lists.p.warehouse
    doc = lists.doc("/v1/whoami")
    assert doc == {
        "chain_id": lists.chain_id,
        "node_id": lists.node.core.node_id,
        "member": {"id": w.id, "name": w.name, "role": "warehouse"},
        "opens_reports": True,
        "token_required": False,
    }
    other = lists.other("/v1/whoami")
    assert other.status == 200 and other.doc["opens_reports"] is False and other.doc["token_required"] is True


# ---- state lists --------------------------------------------------------------------------


def test_case_filters_answer_exactly_their_subset(lists: Lists) -> None:
    p = lists.p
    every = lists.doc("/v1/cases?limit=500")["cases"]
    ids = [c["id"] for c in every]
    assert ids == sorted(ids) and set(ids) == {"C1", "C2", "S1"}
    for c in every:
        assert c == lists.doc(f"/v1/cases/{c['id']}")  # the same view as the single-object endpoint

    def ids_of(query: str) -> set[str]:
        return {c["id"] for c in lists.doc(f"/v1/cases?{query}")["cases"]}

    assert ids_of(f"party={p.bank.id}") == {"C1", "C2", "S1"}  # bank of C1, C2; supervisor of S1
    assert ids_of(f"party={p.borrower.id}") == {"C1", "C2"}
    assert ids_of(f"party={p.warehouse.id}") == {"C1", "C2", "S1"}
    assert ids_of(f"party={p.insurer.id}") == {"C1", "C2"}
    assert ids_of("party=nobody") == set()
    assert ids_of("kind=supervision") == {"S1"} and ids_of("kind=case") == {"C1", "C2"}
    for state in {c["state"] for c in every}:
        assert ids_of(f"state={state}") == {c["id"] for c in every if c["state"] == state}
    assert ids_of("state=closed") == {"C1"} and ids_of("state=liquidated") == {"C2"}
    assert ids_of(f"state=closed&party={p.bank.id}&kind=case") == {"C1"}
    assert ids_of("state=closed&kind=supervision") == set()


def test_lot_filters(lists: Lists) -> None:
    every = lists.doc("/v1/lots")["lots"]
    assert [x["id"] for x in every] == ["L1", "L2", "L3", "L4"]
    assert every == [lists.doc(f"/v1/lots/{x}") for x in ["L1", "L2", "L3", "L4"]]
    assert lists.doc(f"/v1/lots?warehouse={lists.p.warehouse.id}")["lots"] == every
    assert lists.doc("/v1/lots?warehouse=elsewhere")["lots"] == []
    by_state = {s: {x["id"] for x in lists.doc(f"/v1/lots?state={s}")["lots"]} for s in ("pledged", "free", "empty")}
    assert set().union(*by_state.values()) == {"L1", "L2", "L3", "L4"} and sum(map(len, by_state.values())) == 4
    for lot in every:
        want = "pledged" if lot["case"] else "free" if lot["quantity"] > lot["released"] else "empty"
        assert lot["id"] in by_state[want]
    assert "L3" in by_state["empty"] and "L4" in by_state["free"]  # L3 released in full; L4 received last


def test_device_filters_and_silence(lists: Lists) -> None:
    d = lists.p.devices
    every = lists.doc("/v1/devices")["devices"]
    assert {x["id"] for x in every} == {k.id for k in d}
    head_ms = lists.node.core.ledger.head_time_ms()
    for dev in every:
        single = lists.doc(f"/v1/devices/{dev['id']}")
        assert {k: v for k, v in dev.items() if k != "silent_ms"} == single
        assert dev["silent_ms"] == head_ms - single["last_seen_ms"]  # every demo device reported
    ids = lambda q: {x["id"] for x in lists.doc(f"/v1/devices?{q}")["devices"]}  # noqa: E731
    assert ids("lot=L1") == {d[0].id, d[1].id}  # zone-a
    assert ids("lot=L2") == {d[2].id} == ids("zone=zone-b")
    assert ids("lot=L9") == set()
    assert ids(f"warehouse={lists.p.warehouse.id}&zone=zone-c") == {d[3].id}
    assert ids("state=accepted") == {x["id"] for x in every if x["state"] == "accepted"}
    assert ids("state=retired") == set()


def test_alarm_filters(lists: Lists) -> None:
    every = lists.doc("/v1/alarms")["alarms"]
    assert every, "the demo raises alarms"
    assert every == [lists.doc(f"/v1/alarms/{a['id']}") for a in every]
    for state in ("open", "resolved"):
        assert lists.doc(f"/v1/alarms?state={state}")["alarms"] == [a for a in every if a["state"] == state]
    for field in ("lot", "case", "device"):
        for value in {a[field] for a in every if a[field]}:
            got = lists.doc(f"/v1/alarms?{field}={value}")["alarms"]
            assert got == [a for a in every if a[field] == value], (field, value)
    outbound = [a for a in every if a["kind"] == "unauthorized_outbound"]
    assert outbound and all(a["lot"] == "L1" for a in outbound)


@PAGING
@given(limit=st.integers(1, 6), which=st.sampled_from(["/v1/cases", "/v1/lots", "/v1/devices", "/v1/alarms"]))
def test_state_lists_page_through_every_item_once(lists: Lists, limit: int, which: str) -> None:
    key = which.rsplit("/", 1)[1]
    every = lists.doc(f"{which}?limit=500")[key]
    assert walk_pages(lists, which, key, limit) == every


def test_a_filtered_list_pages_too(lists: Lists) -> None:
    every = lists.doc(f"/v1/cases?party={lists.p.warehouse.id}")["cases"]
    assert walk_pages(lists, f"/v1/cases?party={lists.p.warehouse.id}", "cases", 1) == every


def test_paging_stays_exact_when_a_request_reaches_its_scan_bound(
    lists: Lists, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request reads a bounded number of entries; cut short, its `next` resumes exactly."""
    bank, d0 = lists.p.bank.id, lists.p.devices[0].id
    queries = [
        ("/v1/cases?kind=supervision", "cases"),
        (f"/v1/cases?party={bank}", "cases"),
        ("/v1/alarms?state=resolved", "alarms"),
        ("/v1/txs?type=case.repay", "txs"),
        ("/v1/txs?lot=L1&type=lot.release", "txs"),
        ("/v1/txs", "txs"),
        (f"/v1/reports?device={d0}", "reports"),
    ]
    whole = {q: walk_pages(lists, q, key, 500) for q, key in queries}
    monkeypatch.setattr(rpc_lists, "MAX_SCAN", 2)
    monkeypatch.setattr(rpc_history, "MAX_SCAN", 3)
    for q, key in queries:
        assert whole[q], q
        for limit in (1, 2, 500):
            assert walk_pages(lists, q, key, limit, short_pages=True) == whole[q], (q, limit)


# ---- blocks and transactions --------------------------------------------------------------


def test_blocks_newest_first_with_their_certificates(lists: Lists) -> None:
    store = lists.node.core.ledger.store
    doc = lists.doc("/v1/blocks?limit=5")
    head = doc["blocks"][0]["height"]
    assert head <= store.head_height and [b["height"] for b in doc["blocks"]] == list(range(head, head - 5, -1))
    for b in doc["blocks"]:
        block, commit = store.get_block(b["height"]), store.get_commit(b["height"])
        assert block is not None and commit is not None
        assert b == {
            "height": block.height,
            "hash": block.hash().hex(),
            "time_ms": block.header.time_ms,
            "proposer": block.header.proposer,
            "view": block.header.view,
            "tx_count": len(block.txs),
            "signers": len(commit.votes),
        }
    assert doc["next"] == str(head - 4)
    assert [b["height"] for b in lists.doc("/v1/blocks?before=4")["blocks"]] == [3, 2, 1]
    assert lists.doc("/v1/blocks?before=4")["next"] is None
    assert lists.doc("/v1/blocks?before=1")["blocks"] == []


@PAGING
@given(limit=st.integers(1, 40))
def test_blocks_page_down_to_height_one(lists: Lists, limit: int) -> None:
    got = walk_pages(lists, f"/v1/blocks?before={lists.node.core.ledger.height + 1}", "blocks", limit)
    assert [b["height"] for b in got] == list(range(lists.node.core.ledger.height, 0, -1))


def test_txs_without_filter_are_every_committed_transaction_newest_first(lists: Lists) -> None:
    truth = lists.committed()
    got = walk_pages(lists, f"/v1/txs?before={lists.node.core.ledger.height + 1}", "txs", 500)
    assert [(t["height"], t["index"]) for t in got] == [(h, i) for h, i, _, _ in truth]
    for t, (h, i, stx, result) in zip(got, truth):
        assert t["tx_id"] == stx.tx_id_hex and t["result"] == result
        assert t["time_ms"] == lists.node.core.ledger.store.get_header(h).time_ms  # type: ignore[union-attr]
        single = {k: v for k, v in lists.doc(f"/v1/txs/{stx.tx_id_hex}").items() if k != "status"}
        assert {k: v for k, v in t.items() if k != "time_ms"} == single or single["height"] != h  # a repeated id


def _expected(lists: Lists, keep: Any) -> list[str]:
    return [stx.tx_id_hex for _, _, stx, _ in lists.committed() if keep(stx)]


def test_tx_filters_answer_exactly_their_subset(lists: Lists) -> None:
    p, d = lists.p, lists.p.devices
    body = lambda t, k: t.tx.body.get(k)  # noqa: E731
    cases = {
        "case=C1": lambda t: "C1" in (body(t, "case"), body(t, "supervision")),
        "case=S1": lambda t: "S1" in (body(t, "case"), body(t, "supervision")),
        "lot=L1": lambda t: body(t, "lot") == "L1",
        f"device={d[0].id}": lambda t: d[0].id in (t.tx.sender, body(t, "device")),
        f"party={p.bank.id}": lambda t: p.bank.id in named_ids(t),
        f"party={p.borrower.id}": lambda t: p.borrower.id in named_ids(t),
        "type=case.repay": lambda t: t.tx.type == "case.repay",
        "lot=L1&type=device.report": lambda t: body(t, "lot") == "L1" and t.tx.type == "device.report",
        f"party={p.insurer.id}&case=C1": lambda t: p.insurer.id in named_ids(t) and body(t, "case") == "C1",
        "type=no.such": lambda t: False,
    }
    for query, keep in cases.items():
        want = _expected(lists, keep)
        got = [t["tx_id"] for t in walk_pages(lists, f"/v1/txs?{query}", "txs", 500)]
        assert got == want, query
        assert want or query == "type=no.such", f"the demo made nothing for {query}"
    # a rating names its subject: the borrower's party list holds the bank's rating of it
    rated = [t for t in walk_pages(lists, f"/v1/txs?party={p.borrower.id}", "txs", 500) if t["type"] == "rating.issue"]
    assert rated and all(t["sender"] == p.bank.id for t in rated)
    alarm = lists.doc("/v1/alarms?state=resolved")["alarms"][0]["id"]
    resolved = lists.doc(f"/v1/txs?party={alarm}")["txs"]
    assert [t["type"] for t in resolved] == ["alarm.resolve"]


def test_txs_before_a_height(lists: Lists) -> None:
    at = lists.node.core.ledger.height // 2
    got = lists.doc(f"/v1/txs?party={lists.p.bank.id}&before={at}&limit=500")["txs"]
    want = [stx.tx_id_hex for h, _, stx, _ in lists.committed() if h < at and lists.p.bank.id in named_ids(stx)]
    assert [t["tx_id"] for t in got] == want and want


@PAGING
@given(limit=st.integers(1, 9), query=st.sampled_from(["", "lot=L1", "case=C1", "type=device.report"]))
def test_tx_pages_visit_every_item_once(lists: Lists, limit: int, query: str) -> None:
    path = f"/v1/txs?{query}" if query else "/v1/txs"
    every = lists.doc(f"{path}{'&' if query else '?'}limit=500")["txs"]
    assert walk_pages(lists, path, "txs", limit) == every


# ---- a lot's history ----------------------------------------------------------------------


def test_lot_history_follows_receipt_and_outbound_reports(lists: Lists) -> None:
    doc = lists.doc("/v1/lots/L1/history")
    points = doc["points"]
    assert doc["lot"] == "L1"
    assert [(x["type"], x["quantity"]) for x in points] == [
        ("lot.receive", 1000),
        ("device.report", 990),  # 10 left without an order (the alarm)
        ("device.report", 590),
        ("device.report", 0),
    ]
    lot = lists.doc("/v1/lots/L1")
    assert points[-1]["quantity"] == lot["quantity"] - lot["outbound"]
    assert [x["height"] for x in points] == sorted(x["height"] for x in points)
    for x in points:
        t = lists.doc(f"/v1/txs/{x['tx_id']}")
        assert t["height"] == x["height"] and t["type"] == x["type"]
    assert [x["quantity"] for x in lists.doc("/v1/lots/L3/history")["points"]] == [300, 0]
    assert lists.get("/v1/lots/L9/history").code == "not_found"


# ---- device reports ----------------------------------------------------------------------


def test_reports_are_opened_for_the_nodes_own_member_only(lists: Lists) -> None:
    warehouse = lists.p.warehouse
    reports = walk_pages(lists, "/v1/reports", "reports", 7)
    truth = [(h, i, stx) for h, i, stx, _ in lists.committed() if stx.tx.type == "device.report"]
    assert [(r["height"], r["index"]) for r in reports] == [(h, i) for h, i, _ in truth]
    for r, (_, _, stx) in zip(reports, truth):
        assert r["device"] == stx.tx.sender and r["seq"] == stx.tx.body["seq"] and r["lot"] == stx.tx.body["lot"]
        if warehouse.id in r["recipients"]:
            assert r["opened"] is True
            assert r["data"] == json.loads(json.dumps(open_report(stx, warehouse.id, warehouse.enc_secret)["data"]))
        else:
            assert (r["opened"], r["data"]) == (False, None)
    away = next(r for r in reports if r["tx_id"] == lists.sealed_away.tx_id_hex)
    assert away["recipients"] == [lists.p.bank.id] and away["result"] == "missing_recipient"
    assert (away["opened"], away["data"]) == (False, None)  # the node holds only its member's key
    # the same node without the key configured opens nothing
    other = lists.other("/v1/reports?limit=500")
    assert other.status == 200 and other.doc["reports"]
    assert all((r["opened"], r["data"]) == (False, None) for r in other.doc["reports"])
    assert [r["tx_id"] for r in other.doc["reports"]] == [r["tx_id"] for r in reports]
    refused = lists.other("/v1/reports?limit=500", token=None)
    assert (refused.status, refused.code) == (401, "unauthorized") and "reports" not in refused.doc
    assert set(refused.doc) == {"error"}


def test_report_filters(lists: Lists) -> None:
    d = lists.p.devices
    every = lists.doc("/v1/reports?limit=500")["reports"]
    assert lists.doc("/v1/reports?lot=L1&limit=500")["reports"] == [r for r in every if r["lot"] == "L1"]
    assert lists.doc(f"/v1/reports?device={d[0].id}&limit=500")["reports"] == [
        r for r in every if r["device"] == d[0].id
    ]
    both = lists.doc(f"/v1/reports?device={d[1].id}&lot=L1&limit=500")["reports"]
    assert both == [r for r in every if r["device"] == d[1].id and r["lot"] == "L1"] and both


def test_a_report_key_of_another_member_is_refused(lists: Lists) -> None:
    with pytest.raises(GodownError) as exc:
        ReportKey.load(lists.net_dir / "keys" / "bank.json", lists.p.warehouse.id)
    assert exc.value.code is Code.BAD_CONFIG
    key = ReportKey.load(lists.net_dir / "keys" / "warehouse.json", lists.p.warehouse.id)
    assert key.enc_secret.hex() not in repr(key)


# ---- validators, audit ----------------------------------------------------------------------


def test_validators_health(lists: Lists) -> None:
    core = lists.node.core
    doc = lists.doc("/v1/validators/health")
    assert doc == {
        "validators": [
            {
                "node_id": core.node_id,
                "member": lists.p.warehouse.id,
                "connected": True,
                "last_signed_height": core.ledger.height,
                "is_self": True,
            }
        ]
    }


def test_audit_replays_the_nodes_chain(lists: Lists) -> None:
    r = http(lists.node.url, "POST", "/v1/audit", b"")
    assert r.status == 200, r.body[:300]
    report = r.doc
    assert set(report) == set(AuditReport.__dataclass_fields__)
    assert report["ok"] is True and report["problem"] is None, report
    assert report["blocks"] >= 1 and report["chain_id"] == lists.chain_id
    store = lists.node.core.ledger.store
    assert report["state_root"] == store.state_root_at(report["blocks"]).hex()  # type: ignore[union-attr]
    assert report["txs"] == sum(len(b.txs) for b in lists.blocks()[: report["blocks"]])


def test_a_second_audit_while_one_runs_gets_409(lists: Lists, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()
    real = rpc_audit.AuditRoutes._replay

    async def held(self: rpc_audit.AuditRoutes, url: str) -> dict[str, Any]:
        started.set()
        assert await asyncio.to_thread(release.wait, WAIT)
        return await real(self, url)

    monkeypatch.setattr(rpc_audit.AuditRoutes, "_replay", held)
    first: list[Reply] = []
    t = threading.Thread(target=lambda: first.append(http(lists.node.url, "POST", "/v1/audit", b"")))
    t.start()
    try:
        assert started.wait(WAIT)
        second = http(lists.node.url, "POST", "/v1/audit", b"")
        assert (second.status, second.code) == (409, "audit_running")
        Spec(openapi_document()).check("/v1/audit", "post", second)
    finally:
        release.set()
        t.join(WAIT)
    assert first and first[0].status == 200 and first[0].doc["ok"] is True
    assert http(lists.node.url, "POST", "/v1/audit", b"").status == 200  # and the next one runs again


# ---- the events WebSocket's token --------------------------------------------------------


async def _ws(url: str, protocols: tuple[str, ...], headers: dict[str, str] | None = None) -> tuple[str | None, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, protocols=protocols, headers=headers) as ws:
            msg = await ws.receive(timeout=WAIT)
            return ws.protocol, json.loads(msg.data)


def test_the_events_socket_takes_the_token_as_a_subprotocol(lists: Lists) -> None:
    url = lists.other_url.replace("http://", "ws://") + "/v1/events?from_height=1&kinds=block"
    protocol, first = asyncio.run(_ws(url, (f"bearer.{TOKEN}",)))
    assert protocol == f"bearer.{TOKEN}" and first["kind"] == "block" and first["height"] == 1
    protocol, first = asyncio.run(_ws(url, (), {"Authorization": f"Bearer {TOKEN}"}))
    assert protocol is None and first["height"] == 1
    for offered in ((f"bearer.{TOKEN}x",), ("bearer.",), (TOKEN,), ()):
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            asyncio.run(_ws(url, offered))
        assert exc.value.status == 401, offered
    # the subprotocol is a WebSocket's: a plain request with it as a header is still refused
    plain = http(lists.other_url, "GET", "/v1/cases", headers={"Sec-WebSocket-Protocol": f"bearer.{TOKEN}"})
    assert (plain.status, plain.code) == (401, "unauthorized")


# ---- bad parameters ---------------------------------------------------------------------


BAD = [
    "/v1/cases?limit=0",
    "/v1/cases?limit=501",
    "/v1/cases?limit=x",
    "/v1/cases?limit=-1",
    "/v1/cases?state=bogus",
    "/v1/cases?kind=loan",
    "/v1/cases?partyy=x",
    "/v1/cases?party=a&party=b",
    "/v1/cases?party=",
    "/v1/cases?party=" + "x" * 300,
    "/v1/lots?state=gone",
    "/v1/devices?state=lost",
    "/v1/alarms?state=closed",
    "/v1/blocks?before=0",
    "/v1/blocks?before=x",
    "/v1/blocks?cursor=abc",
    "/v1/txs?before=0",
    "/v1/txs?cursor=abc",
    "/v1/txs?cursor=1.x",
    "/v1/txs?sender=x",
    "/v1/reports?kind=reading",
    "/v1/reports?cursor=..",
    "/v1/whoami?x=1",
    "/v1/validators/health?limit=1",
    "/v1/lots/L1/history?limit=1",
]


def test_bad_parameters_are_400_malformed(lists: Lists) -> None:
    for path in BAD:
        r = lists.get(path)
        assert (r.status, r.code) == (400, "malformed"), (path, r.status, r.body[:200])
        assert r.doc["error"]["message"]
    r = http(lists.node.url, "POST", "/v1/audit?x=1", b"")
    assert (r.status, r.code) == (400, "malformed")


def test_unknown_ids_answer_empty_lists(lists: Lists) -> None:
    for path, key in [
        ("/v1/txs?party=nobody", "txs"),
        ("/v1/txs?party=" + "x" * 256, "txs"),
        ("/v1/reports?lot=nothing", "reports"),
        ("/v1/alarms?lot=nothing", "alarms"),
    ]:
        assert lists.doc(path) == {key: [], "next": None}, path


# ---- the typed clients -------------------------------------------------------------------


def test_the_typed_clients_page_and_read_the_new_endpoints(lists: Lists) -> None:
    from node.client import AsyncClient, Client

    with Client(lists.node.url) as client:
        pages, cursor = [], None
        while True:
            page = client.page("cases", {"party": lists.p.bank.id}, limit=1, cursor=cursor)
            pages.extend(page.items)
            if page.next is None:
                break
            cursor = page.next
        assert pages == lists.doc(f"/v1/cases?party={lists.p.bank.id}")["cases"] and len(pages) == 3
        assert client.whoami() == lists.doc("/v1/whoami")
        assert client.lot_history("L1") == lists.doc("/v1/lots/L1/history")["points"]
        assert client.validators_health() == lists.doc("/v1/validators/health")["validators"]
        assert client.page("txs", {"lot": "L1"}, limit=500).items == lists.doc("/v1/txs?lot=L1&limit=500")["txs"]
        with pytest.raises(GodownError) as exc:
            client.page("cases", {"state": "bogus"})
        assert exc.value.code is Code.MALFORMED

    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with AsyncClient(lists.node.url) as client:
            return await client.audit(), (await client.page("reports", {"lot": "L1"}, limit=500)).items

    report, reports = asyncio.run(run())
    assert report["ok"] is True
    assert reports == lists.doc("/v1/reports?lot=L1&limit=500")["reports"]
