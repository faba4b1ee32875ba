"""The OpenAPI document is enough to write a client: it validates as OpenAPI 3.1, names
every route `make_app` serves (and nothing else), and every answer a real node gives —
successes over real data and errors — validates against the schema the document gives
for that path, method and status, with unknown fields refused (so a field the node adds
without documenting it fails here). The documented event and proposal filters filter.

One node serves the module: WebSocket subscribers (unfiltered and filtered) connect,
the demo financing round runs, then two governance proposals (one left open, one voted
down) and a few more transactions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from contracts import alarm_id_for_tx
from contracts.governance import PROPOSAL_STATES
from contracts.registry import TX_TYPES
from contracts.state import P_CASE
from node.client.rpc import RpcClient
from node.server.openapi import openapi_document
from node.server.openapi.schemas import codes_of, error_statuses
from node.server.rpc import make_app
from node.tools.demo import run_step
from node.tools.demo_steps import demo_steps
from node.tools.participants import participants_of
from node.web.routes import is_ui_path
from primitives.errors import Code, http_status
from primitives.tx import Tx
from tests.node.conftest import NodeThread, http, make_testnet, node_config, token_guarded, wait_until
from tests.node.test_rpc import FAR_NONCE, Chain, EventListener, _bad_submissions, as_json
from tests.openapi_check import Spec

pytestmark = pytest.mark.timeout(300)

FILTERS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "?kinds=alarm": lambda e: e["kind"] in ("alarm_raised", "alarm_resolved"),
    "?kinds=block,proposal": lambda e: e["kind"] in ("block", "proposal"),
    "?kinds=key": lambda e: e["kind"] == "key_rotated",
    "?case=C1": lambda e: e.get("case") == "C1",
    "?kinds=tx&type=gov.vote": lambda e: e["kind"] == "tx" and e["type"] == "gov.vote",
}
"""Each filtered subscription, and which events of the unfiltered stream it must get."""


@pytest.fixture(scope="module")
def spec_doc() -> dict[str, Any]:
    return openapi_document()


# ---- the node ----------------------------------------------------------------------------


@dataclass
class ApiChain(Chain):
    """The module's node, with what each filtered subscriber received."""

    filtered: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiChain]:
    net = make_testnet(tmp_path_factory.mktemp("openapi") / "net")
    # the warehouse's node opens the reports sealed to it: /v1/reports answers decrypted data too
    node = NodeThread(replace(node_config(net), report_key_file=net.dir / "keys" / "warehouse.json"))
    listeners = {q: EventListener(node.url, q) for q in ("", *FILTERS)}
    try:
        running = node.start()
        for lst in listeners.values():
            lst.start()
        wait_until(lambda: running.core.events.subscribers == len(listeners), timeout=5, what="subscribers")
        p = participants_of(net)
        ch = ApiChain(net, node, p, [], [], listeners[""], listeners["?kinds=alarm"], None)
        ch.steps = demo_steps(p, net.chain_id, int(time.time() * 1000))
        ch.got = [run_step(ch.client, s)[0] for s in ch.steps]
        _proposals(ch)
        rotate = ch.signed(p.warehouse, "device.rotate_key", {"device": p.devices[3].id, "sign_pub": bytes(range(32))})
        assert ch.client.submit(rotate, wait_ms=10_000)["code"] == "committed"
        wait_until(lambda: ch.client.status()["state_certified"], timeout=10, what="a settled head")
        head = ch.client.status()["height"]
        wait_until(
            lambda: any(e["kind"] == "block" and e["height"] == head for e in listeners[""].events),
            timeout=10,
            what="the head's block event",
        )
        for q, keep in FILTERS.items():
            want = sum(1 for e in listeners[""].events if keep(e))
            wait_until(lambda q=q, want=want: len(listeners[q].events) >= want, timeout=10, what=f"events {q}")
        for lst in listeners.values():
            lst.stop()
        ch.filtered = {q: listeners[q].events for q in FILTERS}
        yield ch
    finally:
        for lst in listeners.values():
            lst._stop.set()
        node.stop()


def _proposals(ch: Chain) -> None:
    """P-open stays open (only its proposer approves); P-down is voted down by the others."""
    p = ch.p
    expires = int(time.time() * 1000) + 3_600_000
    args = {"field": "min_grade", "value": "BBB"}
    for pid in ("P-open", "P-down"):
        body = {"proposal": pid, "action": "policy.set", "args": args, "expires_ms": expires}
        assert ch.client.submit(ch.signed(p.bank, "gov.propose", body), wait_ms=10_000)["result"] == "ok"
    for voter in (p.warehouse, p.insurer, p.guarantor):
        if ch.get("/v1/proposals/P-down").doc["state"] != "open":
            break
        vote = ch.signed(voter, "gov.vote", {"proposal": "P-down", "approve": False})
        assert ch.client.submit(vote, wait_ms=10_000)["result"] == "ok"
    assert ch.get("/v1/proposals/P-down").doc["state"] == "rejected"
    assert ch.get("/v1/proposals/P-open").doc["state"] == "open"


# ---- the document --------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(chain: Chain, spec_doc: dict[str, Any]) -> None:
    served = chain.get("/openapi.json")
    assert served.status == 200 and served.doc == spec_doc
    assert spec_doc["openapi"] == "3.1.0"
    validate_spec(spec_doc)
    for schema in spec_doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_the_transaction_page_documents_every_type(chain: Chain, spec_doc: dict[str, Any]) -> None:
    assert spec_doc["externalDocs"]["url"] == "/docs/transactions"
    page = chain.get("/docs/transactions")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    text = page.body.decode()
    for name in TX_TYPES:
        assert f"<h2 id='{name}'>" in text, name


def _routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if is_ui_path(path):
            continue  # the web platform's files, not the API
        out.add((route.method.lower(), path.replace("{key:.+}", "{key}")))
    return out


def test_every_route_is_documented_and_every_documented_path_is_routed(chain: Chain, spec_doc: dict[str, Any]) -> None:
    documented = {(m, path) for path, ops in spec_doc["paths"].items() for m in ops}
    assert _routes(make_app(chain.node.core)) == documented


def test_every_operation_documents_its_answers(spec_doc: dict[str, Any]) -> None:
    for path, ops in spec_doc["paths"].items():
        for method, op in ops.items():
            public = op.get("security") == []
            assert public or "401" in op["responses"], f"{method} {path}"
            for status, resp in op["responses"].items():
                schema = resp.get("content", {}).get("application/json", {}).get("schema", {})
                if int(status) >= 400 and op["operationId"] != "ready":
                    assert schema == {"$ref": f"#/components/schemas/Error{status}"}, f"{method} {path} {status}"
                # no 5xx for a client's mistake: only the node's own state (not ready, disk full)
                assert int(status) < 500 or int(status) in (
                    http_status(Code.NOT_READY),
                    http_status(Code.DISK_FULL),
                ), (method, path, status)


def test_error_schemas_list_the_codes_of_each_status(spec_doc: dict[str, Any]) -> None:
    schemas = spec_doc["components"]["schemas"]
    assert schemas["Error"]["properties"]["error"]["properties"]["code"]["enum"] == [c.value for c in Code]
    for status in error_statuses():
        codes = schemas[f"Error{status}"]["properties"]["error"]["properties"]["code"]["enum"]
        assert codes == codes_of(status)
        assert all(http_status(Code(c)) == status for c in codes) or status == 405


def test_tx_bodies_come_from_the_registry(spec_doc: dict[str, Any]) -> None:
    schemas = spec_doc["components"]["schemas"]
    assert set(schemas["Tx"]["properties"]["type"]["enum"]) == set(TX_TYPES)
    for name, tx_spec in TX_TYPES.items():
        body = schemas[f"Body.{name}"]
        assert set(body["properties"]) == {f.name for f in tx_spec.fields}, name
        assert set(body["required"]) == {f.name for f in tx_spec.fields if f.required}, name
    # and every committed transaction's body validates against its type's schema
    spec = Spec(spec_doc)
    rating = {"subject": "R", "grade": "A", "valid_until_ms": 1, "report_hash": "00" * 32}
    spec.check_schema({"$ref": "#/components/schemas/Body.rating.issue"}, rating, "rating")
    bad = spec.validator({"$ref": "#/components/schemas/Body.rating.issue"})
    assert not bad.is_valid({**rating, "grade": "Z"}) and not bad.is_valid({**rating, "extra": 1})


def test_query_parameters_are_documented(spec_doc: dict[str, Any]) -> None:
    params = {p["name"]: p for p in spec_doc["paths"]["/v1/proposals"]["get"]["parameters"]}
    assert tuple(params["state"]["schema"]["enum"]) == PROPOSAL_STATES
    events = {p["name"]: p for p in spec_doc["paths"]["/v1/events"]["get"]["parameters"]}
    assert {"kinds", "from_height", "match"} <= set(events)
    assert "last seen height + 1" in events["from_height"]["description"]


# ---- real answers against the schemas ----------------------------------------------------


def test_successful_reads_match_their_schemas(chain: Chain, spec_doc: dict[str, Any]) -> None:
    spec, p = Spec(spec_doc), chain.p
    committed = chain.steps[0].txs[1]
    alarm = alarm_id_for_tx(next(s for s in chain.steps if s.section == "alarm").txs[0])
    reads = {
        "/v1/health": "/v1/health",
        "/v1/ready": "/v1/ready",
        "/v1/status": "/v1/status",
        f"/v1/txs/{committed.tx_id_hex}": "/v1/txs/{tx_id}",
        "/v1/blocks/1": "/v1/blocks/{height}",
        "/v1/blocks/latest": "/v1/blocks/{height}",
        "/v1/state/" + "0x" + (P_CASE + b"C1").hex(): "/v1/state/{key}",
        "/v1/state/c/C1": "/v1/state/{key}",
        "/v1/state/absent-key": "/v1/state/{key}",
        "/v1/cases/C1": "/v1/cases/{id}",
        "/v1/cases/C2": "/v1/cases/{id}",
        "/v1/cases/S1": "/v1/cases/{id}",
        "/v1/lots/L1": "/v1/lots/{id}",
        f"/v1/devices/{p.devices[0].id}": "/v1/devices/{id}",
        f"/v1/devices/{p.devices[3].id}": "/v1/devices/{id}",
        f"/v1/alarms/{alarm}": "/v1/alarms/{id}",
        "/v1/members": "/v1/members",
        "/v1/validators": "/v1/validators",
        "/v1/proposals": "/v1/proposals",
        "/v1/proposals?state=open&limit=5": "/v1/proposals",
        "/v1/proposals/P-open": "/v1/proposals/{id}",
        "/v1/proposals/P-down": "/v1/proposals/{id}",
        "/v1/genesis": "/v1/genesis",
        f"/v1/accounts/{p.bank.id}": "/v1/accounts/{id}",
        "/v1/whoami": "/v1/whoami",
        "/v1/cases": "/v1/cases",
        f"/v1/cases?party={p.bank.id}&limit=1": "/v1/cases",
        "/v1/cases?kind=supervision&state=ended": "/v1/cases",
        "/v1/lots": "/v1/lots",
        "/v1/lots?state=empty&limit=1": "/v1/lots",
        "/v1/devices": "/v1/devices",
        "/v1/devices?lot=L1&state=accepted": "/v1/devices",
        "/v1/alarms": "/v1/alarms",
        "/v1/alarms?state=open&lot=L1": "/v1/alarms",
        "/v1/blocks": "/v1/blocks",
        "/v1/blocks?before=3&limit=1": "/v1/blocks",
        "/v1/txs": "/v1/txs",
        "/v1/txs?limit=500": "/v1/txs",
        f"/v1/txs?party={p.bank.id}&limit=3": "/v1/txs",
        "/v1/txs?case=C1&type=case.repay": "/v1/txs",
        "/v1/lots/L1/history": "/v1/lots/{id}/history",
        "/v1/reports": "/v1/reports",
        "/v1/reports?lot=L1&limit=2": "/v1/reports",
        "/v1/validators/health": "/v1/validators/health",
        "/metrics": "/metrics",
        "/openapi.json": "/openapi.json",
        "/docs/transactions": "/docs/transactions",
    }
    for path, template in reads.items():
        r = chain.get(path)
        assert r.status == 200, (path, r.body[:200])
        spec.check(template, "get", r)
    assert chain.get("/v1/cases/C1").doc["kind"] == "case" and chain.get("/v1/cases/S1").doc["kind"] == "supervision"
    assert chain.get("/v1/whoami").doc["opens_reports"] is True
    reports = chain.get("/v1/reports?limit=500").doc["reports"]
    assert any(r["opened"] for r in reports), "the schema is checked against opened reports"
    assert len(chain.get("/v1/lots/L1/history").doc["points"]) >= 2
    assert chain.get("/v1/alarms?state=open&lot=L1").doc["alarms"] or chain.get("/v1/alarms").doc["alarms"]
    audit = chain.post(b"", None, path="/v1/audit")
    assert audit.status == 200 and audit.doc["ok"] is True, audit.body[:300]
    spec.check("/v1/audit", "post", audit)
    block_txs = [t for h in range(1, chain.client.status()["height"] + 1) for t in chain.client.block(h)["txs"]]
    assert {t["type"] for t in block_txs} >= {"gov.propose", "gov.vote", "device.report", "case.apply"}


def test_views_use_the_request_field_names(chain: Chain) -> None:
    """A view shows a field under the name of the transaction field that set it."""
    apply = next(t for s in chain.steps for t in s.txs if t.tx.type == "case.apply" and t.tx.body["case"] == "C1")
    case = chain.get("/v1/cases/C1").doc
    for name in ("lot", "bank", "amount"):
        assert case[name] == apply.tx.body[name], name
    assert case["maturity_ms"] >= apply.tx.body["maturity_ms"] and case["extensions"] >= 1  # the demo extends C1
    assert "supervisor" not in case and "end_ms" not in case
    opened = next(t for s in chain.steps for t in s.txs if t.tx.type == "supervision.open")
    sup = chain.get("/v1/cases/S1").doc
    assert sup["party"] == opened.tx.body["party"] and sup["lot"] == opened.tx.body["lot"]
    assert sup["supervisor"] == opened.tx.sender and "owner" not in sup


def test_event_messages_match_the_event_schema(chain: Chain, spec_doc: dict[str, Any]) -> None:
    spec = Spec(spec_doc)
    schema = spec.response("/v1/events", "get", 101)["content"]["application/json"]["schema"]
    events = chain.all_events.events
    kinds = {e["kind"] for e in events}
    assert {"block", "tx", "case", "alarm_raised", "alarm_resolved", "proposal", "extension"} <= kinds, kinds
    assert {"repayment", "release_order", "key_rotated"} <= kinds, kinds
    for i, event in enumerate(events):
        spec.check_schema(schema, event, f"event {i} ({event['kind']})")
    lagged = {"kind": "lagged", "message": "subscriber too slow; reconnect"}  # what rpc.events sends
    spec.check_schema(schema, lagged, "lagged")
    assert not spec.validator(schema).is_valid({"kind": "block", "height": 1})


def test_submissions_match_their_schemas(chain: Chain, spec_doc: dict[str, Any]) -> None:
    spec = Spec(spec_doc)
    one = chain.rating()
    spec.check("/v1/txs", "post", chain.post(as_json(one), path="/v1/txs?wait_ms=10000"))
    n = chain.client.next_nonce(chain.p.bank.id)
    later = chain.rating(nonce=n + 1)  # pending until n fills the gap
    spec.check("/v1/txs", "post", chain.post(later.encode(), "application/msgpack"))
    pending = chain.get(f"/v1/txs/{later.tx_id_hex}")
    assert pending.doc["status"] == "pending"
    spec.check("/v1/txs/{tx_id}", "get", pending)
    first = chain.rating(nonce=n)
    batch = [first, chain.rating(key=chain.p.borrower), chain.rating(nonce=FAR_NONCE)]
    as_list = chain.post(json.dumps([{"tx": t.tx_bytes.hex(), "sig": t.sig.hex()} for t in batch]).encode())
    spec.check("/v1/txs", "post", as_list)
    assert [x["code"] for x in as_list.doc["results"]] == ["accepted", "forbidden_role", "bad_nonce"]
    wrapped = {"txs": [{"tx": chain.rating(nonce=n + 2).tx_bytes.hex(), "sig": "00" * 64}, {"tx": 1}]}
    spec.check("/v1/txs", "post", chain.post(json.dumps(wrapped).encode(), path="/v1/txs?wait_ms=5000"))
    wait_until(lambda: chain.get(f"/v1/txs/{later.tx_id_hex}").doc.get("status") == "committed", what="commit")


def test_error_answers_match_their_schemas(chain: Chain, spec_doc: dict[str, Any]) -> None:
    spec = Spec(spec_doc)
    reads = [
        ("/v1/txs/zz", "/v1/txs/{tx_id}", 400),
        ("/v1/txs/" + "ab" * 32, "/v1/txs/{tx_id}", 404),
        ("/v1/blocks/abc", "/v1/blocks/{height}", 400),
        ("/v1/blocks/99999999", "/v1/blocks/{height}", 404),
        ("/v1/state/0xzz", "/v1/state/{key}", 400),
        ("/v1/state/k?height=x", "/v1/state/{key}", 400),
        ("/v1/state/k?height=1", "/v1/state/{key}", 404),
        ("/v1/state/" + "k" * 600, "/v1/state/{key}", 413),
        ("/v1/cases/nope", "/v1/cases/{id}", 404),
        ("/v1/cases/" + "x" * 300, "/v1/cases/{id}", 400),
        ("/v1/lots/nope", "/v1/lots/{id}", 404),
        ("/v1/devices/nope", "/v1/devices/{id}", 404),
        ("/v1/alarms/nope", "/v1/alarms/{id}", 404),
        ("/v1/proposals/nope", "/v1/proposals/{id}", 404),
        ("/v1/proposals?state=bogus", "/v1/proposals", 400),
        ("/v1/proposals?limit=0", "/v1/proposals", 400),
        ("/v1/proposals?limit=x", "/v1/proposals", 400),
        ("/v1/accounts/" + "x" * 300, "/v1/accounts/{id}", 400),
        ("/v1/events", "/v1/events", 400),  # a plain GET, no WebSocket upgrade
        ("/v1/whoami?x=1", "/v1/whoami", 400),
        ("/v1/cases?limit=0", "/v1/cases", 400),
        ("/v1/cases?state=bogus", "/v1/cases", 400),
        ("/v1/lots?warehouse=", "/v1/lots", 400),
        ("/v1/devices?zone=" + "z" * 300, "/v1/devices", 400),
        ("/v1/alarms?state=closed", "/v1/alarms", 400),
        ("/v1/blocks?before=0", "/v1/blocks", 400),
        ("/v1/txs?cursor=zz", "/v1/txs", 400),
        ("/v1/lots/nope/history", "/v1/lots/{id}/history", 404),
        ("/v1/lots/" + "x" * 300 + "/history", "/v1/lots/{id}/history", 400),
        ("/v1/reports?device=a&device=b", "/v1/reports", 400),
        ("/v1/validators/health?x=1", "/v1/validators/health", 400),
    ]
    for path, template, status in reads:
        r = chain.get(path)
        assert r.status == status, (path, r.status, r.body[:200])
        spec.check(template, "get", r)
    seen = set()
    for label, body, ctype, status, _ in _bad_submissions(chain):
        r = chain.post(body, ctype)
        assert r.status == status, (label, r.status, r.body[:200])
        spec.check("/v1/txs", "post", r)
        seen.add(status)
    stx = chain.rating()
    assert chain.client.submit(stx, wait_ms=10_000)["code"] == "committed"
    replay = chain.post(as_json(stx))
    assert replay.status == 409
    spec.check("/v1/txs", "post", replay)
    assert seen | {409} >= {400, 401, 403, 409, 413, 415, 422}
    bad_audit = chain.post(b"", None, path="/v1/audit?x=1")
    assert bad_audit.status == 400
    spec.check("/v1/audit", "post", bad_audit)
    wrong_method = http(chain.url, "POST", "/v1/status", b"{}")
    assert wrong_method.status == 405
    spec.check_schema({"$ref": "#/components/schemas/Error405"}, wrong_method.doc, "405")


def test_unauthorised_answers_match_their_schemas(chain: Chain, spec_doc: dict[str, Any]) -> None:
    spec, core = Spec(spec_doc), chain.node.core
    with token_guarded(chain.node, core) as url:
        for path, ops in spec_doc["paths"].items():
            for method, op in ops.items():
                concrete = path.replace("{tx_id}", "ab" * 32).replace("{height}", "1").replace("{key}", "k")
                r = http(url, method.upper(), concrete.replace("{id}", "x"), b"{}" if method == "post" else None)
                if op.get("security") == []:
                    assert r.status != 401, path
                    continue
                assert (r.status, r.code) == (401, "unauthorized"), path
                spec.check(path, method, r)


def test_a_full_mempool_answers_429(tmp_path: Path, spec_doc: dict[str, Any]) -> None:
    net = make_testnet(tmp_path / "net")
    node = NodeThread(replace(node_config(net), mempool_max_txs=1))
    try:
        node.start()
        bank, borrower = participants_of(net).bank, participants_of(net).borrower
        body = {"subject": borrower.id, "grade": "A", "valid_until_ms": 2**50, "report_hash": bytes(32)}
        n = RpcClient(node.url).next_nonce(bank.id)
        gapped = [Tx(net.chain_id, "rating.issue", bank.id, n + k, body).sign(bank) for k in (1, 2)]
        first = http(node.url, "POST", "/v1/txs", as_json(gapped[0]))
        assert first.doc["code"] == "accepted"  # and pending until nonce n comes: the mempool stays full
        r = http(node.url, "POST", "/v1/txs", as_json(gapped[1]))
        assert (r.status, r.code) == (429, "mempool_full")
        Spec(spec_doc).check("/v1/txs", "post", r)
    finally:
        node.stop()


# ---- filters -------------------------------------------------------------------------------


def test_every_documented_event_filter_filters(chain: ApiChain) -> None:
    every = chain.all_events.events
    for query, keep in FILTERS.items():
        want = [e for e in every if keep(e)]
        assert want, f"the module made no event for {query}"
        assert chain.filtered[query] == want, query


def test_proposal_filters_filter(chain: Chain) -> None:
    every = chain.get("/v1/proposals").doc["proposals"]
    assert [x["id"] for x in every] == sorted(x["id"] for x in every) and len(every) >= 2
    for state in PROPOSAL_STATES:
        got = chain.get(f"/v1/proposals?state={state}").doc["proposals"]
        assert got == [x for x in every if x["state"] == state], state
    assert [x["id"] for x in chain.get("/v1/proposals?state=open").doc["proposals"]] == ["P-open"]
    assert [x["id"] for x in chain.get("/v1/proposals?state=rejected").doc["proposals"]] == ["P-down"]
    assert chain.get("/v1/proposals?limit=1").doc["proposals"] == every[:1]


def test_a_body_that_breaks_its_schema_is_refused_by_the_node_too(chain: Chain, spec_doc: dict[str, Any]) -> None:
    """The body schemas say what admission checks: a body they refuse, the node refuses."""
    spec = Spec(spec_doc)
    body = {"subject": chain.p.borrower.id, "grade": "Z", "valid_until_ms": 2**50, "report_hash": bytes(32)}
    as_json_body = {**body, "report_hash": "00" * 32}
    assert not spec.validator({"$ref": "#/components/schemas/Body.rating.issue"}).is_valid(as_json_body)
    stx = Tx(chain.chain_id, "rating.issue", chain.p.bank.id, 0, body).sign(chain.p.bank)
    r = chain.post(as_json(stx))
    assert (r.status, r.code) == (422, "bad_body")
