"""The JSON-over-HTTP RPC (DESIGN §7), on aiohttp.

Bad input never gets a 5xx: every error is `{"error": {"code", "message"}}`
with a 4xx status chosen by `primitives.errors.http_status`. Bytes are lowercase
hex. Reads and writes need a bearer token when the config sets one (it must
when the RPC listens beyond loopback); the probes of load balancers and
orchestrators (`/v1/health`, `/v1/ready`) and the API's documentation do not: a
probe carries no token, and they reveal nothing a client could not learn anyway.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Middleware

import contracts
import node.web.routes
from contracts.governance import PROPOSAL_STATES
from node.server.core import NodeCore
from node.server.events import Subscription, check_resume, stored_events
from node.server.health import readiness
from node.server.openapi import PUBLIC_PATHS, openapi_document, tx_types_page
from node.server.rpc_audit import AuditRoutes, add_audit_routes
from node.server.rpc_common import error_response, json_answer, tx_view
from node.server.rpc_history import HistoryRoutes, ReportKey, add_history_routes
from node.server.rpc_lists import ListRoutes, add_list_routes
from primitives import codec
from primitives.block import Block
from primitives.codec import jsonable
from primitives.errors import Code, GodownError, http_status
from primitives.tx import SignedTx

log = logging.getLogger("godown.rpc")

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_TXS_PER_REQUEST = 5000
MAX_WAIT_MS = 60_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CORE = web.AppKey("core", NodeCore)


_json = json_answer


_HTTP_CODES = {
    400: Code.MALFORMED,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN_ROLE,
    404: Code.NOT_FOUND,
    405: Code.MALFORMED,
    413: Code.OVERSIZE,
    415: Code.UNSUPPORTED_MEDIA,
    429: Code.RATE_LIMITED,
}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    core = request.app[CORE]
    try:
        return await handler(request)
    except GodownError as exc:
        core.metrics.rpc_errors.labels(exc.code.value).inc()
        return error_response(exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, Code.MALFORMED if exc.status < 500 else Code.INTERNAL)
        core.metrics.rpc_errors.labels(code.value).inc()
        return error_response(code, exc.reason or code.value, exc.status)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("rpc handler failed", extra={"path": request.path})
        core.metrics.rpc_errors.labels(Code.INTERNAL.value).inc()
        return error_response(Code.INTERNAL, "internal error; see the node log")


WS_TOKEN_PREFIX = "bearer."
"""A browser cannot set Authorization on a WebSocket: it may offer the subprotocol
`bearer.<token>` instead, which the server echoes back (`ws_token_protocols`)."""


def ws_token_protocols(request: web.Request) -> tuple[str, ...]:
    """The `bearer.` subprotocols the client offered (the one that passed the check is echoed)."""
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    return tuple(p.strip() for p in offered.split(",") if p.strip().startswith(WS_TOKEN_PREFIX))


def auth_middleware(token: str | None) -> Middleware:
    expected = f"Bearer {token}".encode()
    as_protocol = f"{WS_TOKEN_PREFIX}{token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token and request.path not in PUBLIC_PATHS and not node.web.routes.is_ui_path(request.path):
            given = request.headers.get("Authorization", "")
            offered = ws_token_protocols(request) if request.path == "/v1/events" else ()
            if not hmac.compare_digest(given.encode(), expected) and not any(
                hmac.compare_digest(p.encode(), as_protocol) for p in offered
            ):
                return error_response(Code.UNAUTHORIZED, "a valid bearer token is required")
        return await handler(request)

    return check


def _hex_param(request: web.Request, name: str, length: int | None = None) -> bytes:
    raw = request.match_info[name]
    try:
        value = bytes.fromhex(raw)
    except ValueError:
        raise GodownError(Code.MALFORMED, f"{name} must be lowercase hex") from None
    if length is not None and len(value) != length:
        raise GodownError(Code.MALFORMED, f"{name} must be {length} bytes of hex")
    return value


def _signed_from_json(item: Any) -> SignedTx:
    if not isinstance(item, dict) or set(item) != {"tx", "sig"} or not all(isinstance(item[k], str) for k in item):
        raise GodownError(Code.MALFORMED, 'each transaction must be {"tx": hex, "sig": hex}')
    try:
        raw, sig = bytes.fromhex(item["tx"]), bytes.fromhex(item["sig"])
    except ValueError:
        raise GodownError(Code.MALFORMED, "tx and sig must be hex") from None
    return SignedTx.from_dict({"tx": raw, "sig": sig})


async def _read_txs(request: web.Request) -> tuple[list[SignedTx | GodownError], bool]:
    """The submitted transactions (each decoded or its error) and whether a list was sent."""
    try:
        body = await request.read()
    except web.RequestPayloadError:  # e.g. a Content-Encoding the body does not match
        raise GodownError(Code.MALFORMED, "request body could not be read (bad Content-Encoding?)") from None
    if not body:
        raise GodownError(Code.MALFORMED, "empty body")
    ctype = request.content_type
    if ctype == "application/msgpack":
        doc = codec.decode(body, max_bytes=MAX_BODY_BYTES)
        items = doc if isinstance(doc, list) else [doc]
        parse: Callable[[Any], SignedTx] = SignedTx.from_dict
    elif ctype in ("application/json", "text/plain", "application/octet-stream", ""):
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nesting too deep for the parser
            raise GodownError(Code.MALFORMED, "body is not JSON") from None
        if isinstance(doc, dict) and "txs" in doc:
            doc = doc["txs"]
        items = doc if isinstance(doc, list) else [doc]
        parse = _signed_from_json
    else:
        raise GodownError(Code.UNSUPPORTED_MEDIA, "send application/json or application/msgpack")
    if not items:
        raise GodownError(Code.MALFORMED, "no transactions")
    if len(items) > MAX_TXS_PER_REQUEST:
        raise GodownError(Code.OVERSIZE, f"at most {MAX_TXS_PER_REQUEST} transactions per request")
    out: list[SignedTx | GodownError] = []
    for item in items:
        try:
            out.append(parse(item).remember())  # its block, proposed later, then needs no decoding
        except GodownError as exc:
            out.append(exc)
    return out, isinstance(doc, list)


def _from_height(request: web.Request) -> int | None:
    raw = request.query.get("from_height")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19):
        raise GodownError(Code.MALFORMED, "from_height must be a positive integer")
    return int(raw)


def _block_view(block: Block, commit: Any) -> dict[str, Any]:
    return {
        "height": block.height,
        "hash": block.hash().hex(),
        "header": jsonable(block.header.to_dict()),
        "txs": [{**tx_view(t), "result": r} for t, r in zip(block.txs, block.results)],
        "commit": jsonable(commit.to_dict()) if commit else None,
        "raw": block.encode().hex(),
        "commit_raw": commit.encode().hex() if commit else None,
    }


class Routes:
    def __init__(self, core: NodeCore) -> None:
        self.core = core

    async def status(self, request: web.Request) -> web.Response:
        return _json(self.core.status())

    async def health(self, request: web.Request) -> web.Response:
        """Alive: the node's event loop answers (what a liveness probe restarts on)."""
        return _json({"alive": True})

    async def ready(self, request: web.Request) -> web.Response:
        """200 when the node should get traffic; else 503 `not_ready` with the reasons."""
        reasons = readiness(self.core)
        doc: dict[str, Any] = {
            "ready": not reasons,
            "height": self.core.ledger.height,
            "reasons": [{"reason": r.reason, "message": r.message} for r in reasons],
        }
        if not reasons:
            return _json(doc)
        message = "; ".join(r.message for r in reasons)
        return _json({**doc, "error": {"code": Code.NOT_READY.value, "message": message}}, http_status(Code.NOT_READY))

    async def submit(self, request: web.Request) -> web.Response:
        core = self.core
        items, many = await _read_txs(request)
        raw_wait = request.query.get("wait_ms", "0")
        if not (raw_wait.isascii() and raw_wait.isdigit()):
            raise GodownError(Code.MALFORMED, "wait_ms must be a non-negative integer")
        wait_ms = min(int(raw_wait), MAX_WAIT_MS)
        await core.check_signatures_now(t for t in items if not isinstance(t, GodownError))
        results: list[dict[str, Any]] = []
        admitted: list[tuple[int, SignedTx]] = []
        for item in items:
            if isinstance(item, GodownError):
                results.append({"tx_id": None, "code": item.code.value, "message": item.message})
                continue
            try:
                core.submit(item)
                results.append({"tx_id": item.tx_id_hex, "code": "accepted"})
                admitted.append((len(results) - 1, item))
            except GodownError as exc:
                results.append({"tx_id": item.tx_id_hex, "code": exc.code.value, "message": exc.message})
        if wait_ms and admitted:
            futs = [core.wait_committed(t.tx_id) for _, t in admitted]
            done, pending = await asyncio.wait(futs, timeout=wait_ms / 1000)
            for fut in pending:
                fut.cancel()  # NodeCore drops cancelled waiters
            by_id = {f.result()["tx_id"]: f.result() for f in done}
            for i, t in admitted:  # only admitted items: a refused copy of the same tx keeps its code
                loc = by_id.get(t.tx_id_hex)
                if loc is not None:
                    results[i].update(code="committed", height=loc["height"], index=loc["index"], result=loc["result"])
        if many:
            return _json({"results": results})
        only = results[0]
        if only["code"] not in ("accepted", "committed"):
            code = Code(only["code"])
            return error_response(code, only.get("message", code.value))
        return _json(only)

    async def get_tx(self, request: web.Request) -> web.Response:
        core = self.core
        tx_id = _hex_param(request, "tx_id", 32)
        loc = core.tx_location(tx_id)
        if loc is not None:
            block = core.ledger.store.get_block(loc["height"])
            assert block is not None
            return _json({**tx_view(block.txs[loc["index"]]), **loc, "status": "committed"})
        pending = core.mempool.get(tx_id)
        if pending is not None:
            return _json({**tx_view(pending), "status": "pending"})
        raise GodownError(Code.NOT_FOUND, "no such transaction")

    async def get_block(self, request: web.Request) -> web.Response:
        store = self.core.ledger.store
        raw = request.match_info["height"]
        if raw == "latest":
            height = store.head_height
        elif raw.isascii() and raw.isdigit():
            height = int(raw)
        else:
            raise GodownError(Code.MALFORMED, "height must be a number or 'latest'")
        block = store.get_block(height) if 0 < height <= store.head_height else None
        if block is None and 0 < height <= store.base_height:
            raise GodownError(
                Code.HISTORY_UNAVAILABLE,
                f"block {height} is not kept here: this node's history starts after height {store.base_height}"
                " (restored from a snapshot, or pruned); ask a node that keeps every block",
            )
        if block is None:
            raise GodownError(Code.NOT_FOUND, f"no block at height {height}")
        return _json(_block_view(block, store.get_commit(height)))

    async def get_state(self, request: web.Request) -> web.Response:
        store = self.core.ledger.store
        raw = request.match_info["key"]
        if raw.startswith("0x"):
            try:
                key = bytes.fromhex(raw[2:])
            except ValueError:
                raise GodownError(Code.MALFORMED, "key after 0x must be hex") from None
        else:
            key = raw.encode()
        if len(key) > 512:
            raise GodownError(Code.OVERSIZE, "key too long")
        entry = store.prove(key)
        asked = request.query.get("height")
        if asked is not None:  # only the latest state is kept: say so rather than answer another height
            if not (asked.isascii() and asked.isdigit()):
                raise GodownError(Code.MALFORMED, "height must be a number")
            if int(asked) != entry.height:
                raise GodownError(
                    Code.NOT_FOUND,
                    f"the state at height {asked} is not kept here; only the latest (height {entry.height})",
                )
        value = entry.value
        decoded: Any = None
        if value is not None:
            try:
                decoded = jsonable(codec.decode(value))
            except GodownError:
                decoded = None
        return _json(
            {
                "key": key.hex(),
                "exists": value is not None,
                "value": decoded,
                "value_raw": value.hex() if value is not None else None,
                "height": entry.height,
                "state_root": entry.root.hex(),
                "certified_by_height": entry.height + 1,
                "proof": entry.proof.to_json(),
            }
        )

    def _view(self, fn: Callable[[contracts.StateReader, str], dict[str, Any] | None], what: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            ident = request.match_info["id"]
            if len(ident) > 256:
                raise GodownError(Code.MALFORMED, "id too long")
            found = fn(self.core.ledger.state, ident)
            if found is None:
                raise GodownError(Code.NOT_FOUND, f"no {what} {ident}")
            return _json(found)

        return handler

    async def account(self, request: web.Request) -> web.Response:
        ident = request.match_info["id"]
        if len(ident) > 256:
            raise GodownError(Code.MALFORMED, "id too long")
        state = self.core.ledger.state
        return _json(
            {
                "id": ident,
                "committed_nonce": contracts.next_nonce(state, ident),
                "next_nonce": self.core.mempool.next_nonce(ident),
            }
        )

    async def genesis(self, request: web.Request) -> web.Response:
        return web.json_response(self.core.genesis.to_json())

    async def members(self, request: web.Request) -> web.Response:
        return _json({"members": contracts.view_members(self.core.ledger.state)})

    async def proposals(self, request: web.Request) -> web.Response:
        only = request.query.get("state")
        if only is not None and only not in PROPOSAL_STATES:
            raise GodownError(Code.MALFORMED, f"state must be one of {', '.join(PROPOSAL_STATES)}")
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            raise GodownError(Code.MALFORMED, "limit must be an integer") from None
        if not 1 <= limit <= 1000:
            raise GodownError(Code.MALFORMED, "limit must be 1..1000")
        return _json({"proposals": contracts.list_proposals(self.core.ledger.state, only, limit)})

    async def validators(self, request: web.Request) -> web.Response:
        current, pending = contracts.validator_schedule(self.core.ledger.state)
        doc: dict[str, Any] = {"validators": [v.to_json() for v in current], "pending": None}
        if pending is not None:
            doc["pending"] = {"effective_height": pending[0], "validators": [v.to_json() for v in pending[1]]}
        return _json(doc)

    async def validator_changes(self, request: web.Request) -> web.Response:
        """Each validator-set change with the proof a light client checks it by: the
        scheduled set's state entry at its approving height h, whose root the header of
        h+1 carries (certified by the set in force). `complete` is false on a node that
        joined by state sync after some change: ask a node that executed them."""
        ledger = self.core.ledger
        kept = ledger.validator_changes()
        changes = []
        for entry in kept:
            scheduled = contracts.ScheduledSet.decode(entry.value or b"")
            changes.append(
                {
                    "approved_height": scheduled.approved_height,
                    "effective_height": scheduled.effective_height,
                    "validators": [v.to_json() for v in scheduled.validators],
                    "entry": entry.to_json(),
                    "certified_by_height": entry.height + 1,
                }
            )
        total = len(contracts.validator_history(ledger.state))
        return _json({"changes": changes, "complete": len(kept) == total})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.core.metrics.render(), content_type="text/plain", charset="utf-8")

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    async def tx_docs(self, request: web.Request) -> web.Response:
        return web.Response(text=tx_types_page(), content_type="text/html")

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Live events; with `from_height=H`, first the events of committed heights >= H
        replayed from the store, then live ones with no gap and no duplicate at the seam:
        the subscription starts (buffering live events) before the replay reads the head,
        and live events of heights already replayed are dropped."""
        kinds = frozenset(k for k in request.query.get("kinds", "").split(",") if k)
        match = {k: v for k, v in request.query.items() if k not in ("kinds", "from_height")}
        store = self.core.ledger.store
        resume = _from_height(request)
        if resume is not None:
            check_resume(store, resume)
        ws = web.WebSocketResponse(heartbeat=20, protocols=ws_token_protocols(request))
        await ws.prepare(request)
        sub = self.core.events.subscribe(kinds, match)
        reader = asyncio.ensure_future(self._drain(ws))
        try:
            replayed = 0 if resume is None else await self._replay(ws, sub, resume)
            while not ws.closed:
                get = asyncio.ensure_future(sub.queue.get())
                done, _ = await asyncio.wait({get, reader}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    break
                event = get.result()
                if event is None:
                    break
                if event["height"] <= replayed:
                    continue  # already sent by the replay
                await ws.send_str(json.dumps(event, separators=(",", ":")))
                if sub.lagged and sub.queue.empty():
                    await ws.send_str(json.dumps({"kind": "lagged", "message": "subscriber too slow; reconnect"}))
                    break
        except GodownError as exc:  # a height pruned while replaying: say so, then close
            await ws.send_str(json.dumps({"kind": "error", "error": {"code": exc.code.value, "message": exc.message}}))
        finally:
            self.core.events.unsubscribe(sub)
            reader.cancel()
            await ws.close()
        return ws

    async def _replay(self, ws: web.WebSocketResponse, sub: Subscription, height: int) -> int:
        """Send the stored events of heights `height`.. up to the head (read again after each
        height, as blocks keep committing); returns the last height replayed."""
        store = self.core.ledger.store
        with_txs = sub.takes_kind("tx")
        while height <= store.head_height and not ws.closed:
            for event in stored_events(store, height, with_txs):
                if sub.wants(event):
                    await ws.send_str(json.dumps(event, separators=(",", ":")))
            height += 1
            await asyncio.sleep(0)  # a long replay must not hold up the node's event loop
        return height - 1

    @staticmethod
    async def _drain(ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break


def make_app(core: NodeCore, token: str | None = None, report_key: ReportKey | None = None) -> web.Application:
    """The RPC app; `report_key` (the node's member's, from `report_key_file`) lets
    `/v1/reports` open the reports sealed to that member."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[errors_middleware, auth_middleware(token)])
    app[CORE] = core
    add_list_routes(app, ListRoutes(core, token_required=bool(token), opens_reports=report_key is not None))
    add_history_routes(app, HistoryRoutes(core, report_key))
    add_audit_routes(app, AuditRoutes(core, token))
    r = Routes(core)
    app.router.add_get("/v1/health", r.health)
    app.router.add_get("/v1/ready", r.ready)
    app.router.add_get("/v1/status", r.status)
    app.router.add_post("/v1/txs", r.submit)
    app.router.add_get("/v1/txs/{tx_id}", r.get_tx)
    app.router.add_get("/v1/blocks/{height}", r.get_block)
    app.router.add_get("/v1/state/{key:.+}", r.get_state)
    app.router.add_get("/v1/cases/{id}", r._view(contracts.view_case, "case"))
    app.router.add_get("/v1/lots/{id}", r._view(contracts.view_lot, "lot"))
    app.router.add_get("/v1/devices/{id}", r._view(contracts.view_device, "device"))
    app.router.add_get("/v1/alarms/{id}", r._view(contracts.view_alarm, "alarm"))
    app.router.add_get("/v1/members", r.members)
    app.router.add_get("/v1/validators", r.validators)
    app.router.add_get("/v1/validators/changes", r.validator_changes)
    app.router.add_get("/v1/proposals", r.proposals)
    app.router.add_get("/v1/proposals/{id}", r._view(contracts.view_proposal, "proposal"))
    app.router.add_get("/v1/genesis", r.genesis)
    app.router.add_get("/v1/accounts/{id}", r.account)
    app.router.add_get("/v1/events", r.events)
    app.router.add_get("/metrics", r.metrics)
    app.router.add_get("/openapi.json", r.openapi)
    app.router.add_get("/docs/transactions", r.tx_docs)
    node.web.routes.add_ui_routes(app)
    return app
