"""List endpoints over committed state and the chain (issue #12): whoami, cases, lots,
devices, alarms, recent blocks and the validators' health. Views are the single-object
endpoints' (`contracts.views`), so a list item is exactly what `/v1/<kind>/{id}` answers.

State lists walk the kind's state prefix in id order from the cursor (the last id
answered), filtering as they go, and stop one match past `limit` to know whether there
is a `next`; nothing is held between requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

import contracts
from contracts.state import P_ALARM, P_CASE, P_DEVICE, P_LOT, StateReader
from contracts.view_schemas import CASE_STATES, SUPERVISION_STATES
from node.server.core import NodeCore
from node.server.paging import Query, parse_query
from node.server.rpc_common import json_answer
from primitives.errors import Code, GodownError
from storage.chain import StateView

CASE_PARTIES = ("owner", "party", "bank", "supervisor", "warehouse", "insurer", "guarantor")
"""Fields of a case or supervision view that `party=` matches."""
LOT_STATES = ("pledged", "free", "empty")
"""A lot's state for `state=`: held by a case or supervision; not held with goods left; all released."""
DEVICE_STATES = ("registered", "accepted", "suspended", "retired")
ALARM_STATES = ("open", "resolved")
MAX_SCAN = 20_000
"""State entries one list request reads at most (a page cut there is shorter, with a `next`)."""
HEALTH_DEPTH = 256
"""How many of the newest certificates `validators/health` reads for each validator's last signature."""

View = Callable[[StateReader, str], dict[str, Any] | None]
Match = Callable[[dict[str, Any]], bool]


def state_page(state: StateView, prefix: bytes, view: View, match: Match, q: Query) -> tuple[list[Any], str | None]:
    """Up to `q.limit` views of ids after `q.cursor` that `match`, and the next cursor."""
    start = None if q.cursor is None else prefix + q.cursor.encode() + b"\x00"  # the first key after it
    out: list[dict[str, Any]] = []
    last = ""
    for scanned, (key, _) in enumerate(state.scan(prefix, start)):
        if scanned == MAX_SCAN:  # bounded work: resume after the last id read (none after it matched)
            return out, last
        last = ident = key[len(prefix) :].decode()
        found = view(state, ident)
        if found is None or not match(found):
            continue
        if len(out) == q.limit:  # one more match exists: there is a next page
            return out, out[-1]["id"]
        out.append(found)
    return out, None


def lot_state(lot: dict[str, Any]) -> str:
    if lot["case"] is not None:
        return "pledged"
    return "free" if lot["quantity"] > lot["released"] else "empty"


class ListRoutes:
    def __init__(self, core: NodeCore, token_required: bool, opens_reports: bool) -> None:
        self.core = core
        self.token_required = token_required
        self.opens_reports = opens_reports

    @property
    def state(self) -> StateView:
        return self.core.ledger.store.state

    async def whoami(self, request: web.Request) -> web.Response:
        parse_query(request.query, (), paged=False)
        core = self.core
        member = next((m for m in contracts.view_members(self.state) if m["id"] == core.member_id), None)
        return json_answer(
            {
                "chain_id": core.genesis.chain_id,
                "node_id": core.node_id,
                "member": None if member is None else {k: member[k] for k in ("id", "name", "role")},
                "opens_reports": self.opens_reports,
                "token_required": self.token_required,
            }
        )

    async def cases(self, request: web.Request) -> web.Response:
        q = parse_query(request.query, ("party", "state", "kind"))
        party, kind = q.text("party"), q.choice("kind", ("case", "supervision"))
        state = q.choice("state", (*CASE_STATES, *SUPERVISION_STATES))

        def match(c: dict[str, Any]) -> bool:
            return (
                (party is None or any(c.get(f) == party for f in CASE_PARTIES))
                and (state is None or c["state"] == state)
                and (kind is None or c["kind"] == kind)
            )

        items, nxt = state_page(self.state, P_CASE, contracts.view_case, match, q)
        return json_answer({"cases": items, "next": nxt})

    async def lots(self, request: web.Request) -> web.Response:
        q = parse_query(request.query, ("warehouse", "state"))
        warehouse, state = q.text("warehouse"), q.choice("state", LOT_STATES)

        def match(lot: dict[str, Any]) -> bool:
            return (warehouse is None or lot["warehouse"] == warehouse) and (state is None or lot_state(lot) == state)

        items, nxt = state_page(self.state, P_LOT, contracts.view_lot, match, q)
        return json_answer({"lots": items, "next": nxt})

    async def devices(self, request: web.Request) -> web.Response:
        q = parse_query(request.query, ("warehouse", "zone", "lot", "state"))
        warehouse, zone, state = q.text("warehouse"), q.text("zone"), q.choice("state", DEVICE_STATES)
        site: tuple[str, str] | None = None
        lot_id = q.text("lot")
        if lot_id is not None:
            lot = contracts.view_lot(self.state, lot_id)
            site = ("", "") if lot is None else (lot["warehouse"], lot["zone"])  # an unknown lot has no devices

        def match(d: dict[str, Any]) -> bool:
            return (
                (warehouse is None or d["warehouse"] == warehouse)
                and (zone is None or d["zone"] == zone)
                and (site is None or (d["warehouse"], d["zone"]) == site)
                and (state is None or d["state"] == state)
            )

        items, nxt = state_page(self.state, P_DEVICE, contracts.view_device, match, q)
        head_ms = self.core.ledger.head_time_ms()
        for d in items:
            seen = d.get("last_seen_ms") if d.get("seq", -1) >= 0 else None
            d["silent_ms"] = None if seen is None else max(0, head_ms - seen)
        return json_answer({"devices": items, "next": nxt})

    async def alarms(self, request: web.Request) -> web.Response:
        q = parse_query(request.query, ("state", "lot", "case", "device"))
        state = q.choice("state", ALARM_STATES)
        wanted = {f: q.text(f) for f in ("lot", "case", "device") if q.text(f) is not None}

        def match(a: dict[str, Any]) -> bool:
            return (state is None or a["state"] == state) and all(a[f] == v for f, v in wanted.items())

        items, nxt = state_page(self.state, P_ALARM, contracts.view_alarm, match, q)
        return json_answer({"alarms": items, "next": nxt})

    async def blocks(self, request: web.Request) -> web.Response:
        """Newest first from below `before` (or the cursor, the last height answered)."""
        q = parse_query(request.query, ("before",))
        store = self.core.ledger.store
        before = q.height("before")
        if q.cursor is not None:
            if not (q.cursor.isascii() and q.cursor.isdigit() and len(q.cursor) <= 19):
                raise GodownError(Code.MALFORMED, "cursor is not one this node gave")
            before = int(q.cursor) if before is None else min(before, int(q.cursor))
        top = store.head_height if before is None else min(store.head_height, before - 1)
        low = max(store.base_height + 1, top - q.limit + 1)
        out = []
        for h in range(top, low - 1, -1):
            header, parts, commit = store.get_header(h), store.block_parts(h), store.get_commit(h)
            assert header is not None and parts is not None, f"block {h} is below the head and above the base"
            out.append(
                {
                    "height": h,
                    "hash": header.hash().hex(),
                    "time_ms": header.time_ms,
                    "proposer": header.proposer,
                    "view": header.view,
                    "tx_count": len(parts.txs),
                    "signers": 0 if commit is None else len(commit.votes),
                }
            )
        more = bool(out) and low > store.base_height + 1
        return json_answer({"blocks": out, "next": str(low) if more else None})

    async def validators_health(self, request: web.Request) -> web.Response:
        parse_query(request.query, (), paged=False)
        core, store = self.core, self.core.ledger.store
        current, _ = contracts.validator_schedule(self.state)
        connected = set(core.engine_status.get("peers", ()))
        last: dict[str, int] = {}
        want = {v.node_id for v in current}
        for h in range(store.head_height, max(store.base_height, store.head_height - HEALTH_DEPTH), -1):
            commit = store.get_commit(h)
            for node_id, _ in commit.votes if commit is not None else ():
                last.setdefault(node_id, h)
            if want <= set(last):
                break
        return json_answer(
            {
                "validators": [
                    {
                        "node_id": v.node_id,
                        "member": v.member,
                        "connected": v.node_id == core.node_id or v.node_id in connected,
                        "last_signed_height": last.get(v.node_id),
                        "is_self": v.node_id == core.node_id,
                    }
                    for v in current
                ]
            }
        )


def add_list_routes(app: web.Application, r: ListRoutes) -> None:
    app.router.add_get("/v1/whoami", r.whoami)
    app.router.add_get("/v1/cases", r.cases)
    app.router.add_get("/v1/lots", r.lots)
    app.router.add_get("/v1/devices", r.devices)
    app.router.add_get("/v1/alarms", r.alarms)
    app.router.add_get("/v1/blocks", r.blocks)
    app.router.add_get("/v1/validators/health", r.validators_health)
