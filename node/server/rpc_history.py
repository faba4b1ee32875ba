"""What happened, found through the node-local transaction index (node/server/txindex.py):
a member's or an entity's transactions, a lot's quantity over time, and device reports,
opened for this node's own member when its operator configured the member's key.

Walks run newest first from a position (height, index) and read at most MAX_SCAN index
entries per request; a walk cut short answers what it found with a `next` that resumes
where it stopped, so paging still visits every item exactly once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

import contracts
from node.server.core import NodeCore
from node.server.paging import Query, parse_position, parse_query, position_cursor
from node.server.rpc_common import json_answer, tx_view
from node.server.txindex import id_term, named_ids, type_term
from primitives.codec import jsonable
from primitives.envelope import Envelope
from primitives.errors import VOID_RESULTS, Code, GodownError
from primitives.keys import KeyPair
from primitives.report import open_report
from primitives.tx import SignedTx
from storage.chain import MAX_TERM_BYTES, ChainStore, StoredTxs

log = logging.getLogger("godown.rpc")

MAX_SCAN = 20_000
"""Index entries (or transactions, without a filter) one request reads at most."""
MAX_HISTORY = 10_000
"""Transactions of one lot that its history reads at most (the newest ones)."""

Position = tuple[int, int]
Filter = Callable[[SignedTx], bool]


@dataclass(frozen=True)
class ReportKey:
    """The X25519 secret of the node's own member, from `report_key_file`: only that."""

    member: str
    enc_secret: bytes = field(repr=False)

    @staticmethod
    def load(path: Path, member_id: str) -> ReportKey:
        """Refuse (`bad_config`) a key that is not the node's member's."""
        key = KeyPair.load(path)
        if not member_id or key.id != member_id:
            raise GodownError(
                Code.BAD_CONFIG, f"report_key_file {path} is the key of {key.id}, not of this node's member"
            )
        return ReportKey(key.id, key.enc_secret)


class Blocks:
    """The blocks one request reads, each unpacked once (its transactions decoded only
    when read)."""

    def __init__(self, store: ChainStore) -> None:
        self.store = store
        self._last: tuple[int, StoredTxs] | None = None

    def at(self, height: int) -> StoredTxs:
        if self._last is None or self._last[0] != height:
            parts = self.store.block_parts(height)
            if parts is None:
                raise GodownError(Code.STORE_DAMAGED, f"the index names block {height}, which is not stored")
            self._last = (height, parts)
        return self._last[1]


def _all_positions(store: ChainStore, before: Position | None) -> Iterator[Position]:
    """Every committed, non-void transaction's position, newest first (no index needed)."""
    top = store.head_height if before is None else min(store.head_height, before[0])
    for h in range(top, store.base_height, -1):
        block = store.block_parts(h)
        assert block is not None, f"block {h} is above the base and not above the head"
        last = len(block.txs) if before is None or h < before[0] else min(before[1], len(block.txs))
        for i in range(last - 1, -1, -1):
            if block.results[i] not in VOID_RESULTS:
                yield h, i


def _bound(q: Query) -> Position | None:
    """The position a walk starts strictly below: the cursor's, or (before, 0)."""
    pos = None if q.cursor is None else parse_position(q.cursor)
    before = q.height("before")
    if before is not None:
        pos = (before, 0) if pos is None else min(pos, (before, 0))
    return pos


def walk(
    store: ChainStore, term: bytes | None, keep: Filter, q: Query
) -> tuple[list[tuple[SignedTx, Position, str, int]], str | None]:
    """Up to `q.limit` transactions found by `term` (every one if None) that `keep`, each
    with its position, result and block time; and the cursor to continue from."""
    bound = _bound(q)
    if term is not None and len(term) > MAX_TERM_BYTES:
        return [], None  # longer than any id: names nothing
    positions = _all_positions(store, bound) if term is None else store.term_entries(term, bound)
    blocks = Blocks(store)
    out: list[tuple[SignedTx, Position, str, int]] = []
    for scanned, pos in enumerate(positions):
        if scanned == MAX_SCAN:  # bounded work: resume at this position
            return out, position_cursor(*(out[-1][1] if len(out) == q.limit else pos_before(pos)))
        block = blocks.at(pos[0])
        stx = block.tx(pos[1])
        if not keep(stx):
            continue
        if len(out) == q.limit:  # one more match exists: there is a next page
            return out, position_cursor(*out[-1][1])
        out.append((stx, pos, block.results[pos[1]], block.time_ms))
    return out, None


def pos_before(pos: Position) -> Position:
    """The cursor under which `pos` itself is the next position a walk yields."""
    return (pos[0], pos[1] + 1)


def _body(stx: SignedTx, name: str) -> Any:
    return stx.tx.body.get(name)


TX_FILTERS = ("case", "lot", "device", "party", "type")
"""The filters of `/v1/txs`, most selective first: the first one given is walked by its
index entries, the others are checked on each transaction found."""


def _tx_filter(name: str, v: str) -> tuple[bytes, Filter]:
    """The index term of filter `name=v` and the check a transaction must pass."""
    if name == "case":
        return id_term(v), lambda t: v in (_body(t, "case"), _body(t, "supervision"))
    if name == "lot":
        return id_term(v), lambda t: _body(t, "lot") == v
    if name == "device":
        return id_term(v), lambda t: v in (t.tx.sender, _body(t, "device"))
    if name == "party":
        return id_term(v), lambda t: v in named_ids(t)
    assert name == "type", name
    return type_term(v), lambda t: t.tx.type == v


class HistoryRoutes:
    def __init__(self, core: NodeCore, report_key: ReportKey | None) -> None:
        self.core = core
        self.report_key = report_key

    @property
    def store(self) -> ChainStore:
        return self.core.ledger.store

    async def txs(self, request: web.Request) -> web.Response:
        q = parse_query(request.query, (*TX_FILTERS, "before"))
        checks = [_tx_filter(name, v) for name in TX_FILTERS if (v := q.text(name)) is not None]
        term = checks[0][0] if checks else None  # the first given drives the walk
        found, nxt = walk(self.store, term, lambda t: all(keep(t) for _, keep in checks), q)
        items = [
            {**tx_view(stx), "height": h, "index": i, "result": result, "time_ms": time_ms}
            for stx, (h, i), result, time_ms in found
        ]
        return json_answer({"txs": items, "next": nxt})

    async def lot_history(self, request: web.Request) -> web.Response:
        """The quantity held (received less what devices reported leaving) after each
        transaction that changed it, oldest first."""
        parse_query(request.query, (), paged=False)
        lot_id = request.match_info["id"]
        if len(lot_id) > 256:
            raise GodownError(Code.MALFORMED, "id too long")
        lot = contracts.view_lot(self.store.state, lot_id)
        if lot is None:
            raise GodownError(Code.NOT_FOUND, f"no lot {lot_id}")
        changes: list[Change] = []
        blocks = Blocks(self.store)
        for pos in _take(self.store.term_entries(id_term(lot_id)), MAX_HISTORY):
            block = blocks.at(pos[0])
            stx, result = block.tx(pos[1]), block.results[pos[1]]
            body = stx.tx.body
            if result != "ok" or body.get("lot") != lot_id:
                continue
            if stx.tx.type == "lot.receive" or (stx.tx.type == "device.report" and body["kind"] == "outbound"):
                changes.append(Change(stx, pos[0], block.time_ms, int(body.get("quantity", 0))))
        changes.reverse()
        points = _points(changes, lot["quantity"] - lot["outbound"])
        return json_answer({"lot": lot_id, "points": points})

    async def reports(self, request: web.Request) -> web.Response:
        q = parse_query(request.query, ("lot", "device", "before"))
        lot, device = q.text("lot"), q.text("device")
        term = (
            id_term(lot) if lot is not None else id_term(device) if device is not None else type_term("device.report")
        )

        def keep(t: SignedTx) -> bool:
            return (
                t.tx.type == "device.report"
                and (lot is None or _body(t, "lot") == lot)
                and (device is None or t.tx.sender == device)
            )

        found, nxt = walk(self.store, term, keep, q)
        items = [self._report(stx, pos, result, time_ms) for stx, pos, result, time_ms in found]
        return json_answer({"reports": items, "next": nxt})

    def _report(self, stx: SignedTx, pos: Position, result: str, time_ms: int) -> dict[str, Any]:
        body = stx.tx.body
        recipients = Envelope.from_dict(body["envelope"]).recipients
        data: Any = None
        key = self.report_key
        if key is not None and key.member in recipients:
            try:
                data = jsonable(open_report(stx, key.member, key.enc_secret)["data"])
            except GodownError as exc:  # sealed wrongly by its device: shown as not opened
                log.warning("report not opened", extra={"tx_id": stx.tx_id_hex, "code": exc.code.value})
        return {
            "tx_id": stx.tx_id_hex,
            "height": pos[0],
            "index": pos[1],
            "time_ms": time_ms,
            "device": stx.tx.sender,
            "seq": body["seq"],
            "kind": body["kind"],
            "lot": body["lot"],
            "quantity": body.get("quantity", 0),
            "result": result,
            "recipients": list(recipients),
            "opened": data is not None,
            "data": data,
        }


def _take(it: Iterator[Position], n: int) -> Iterator[Position]:
    for k, pos in enumerate(it):
        if k == n:
            return
        yield pos


@dataclass(frozen=True)
class Change:
    """A transaction that changed a lot's held quantity: receipt (`moved` in) or outbound (`moved` out)."""

    stx: SignedTx
    height: int
    time_ms: int
    moved: int


def _points(changes: list[Change], now: int) -> list[dict[str, Any]]:
    """Quantities after each change, oldest first: forward from the receipt; on a node
    that does not hold the receipt (restored from a snapshot after it), back from `now`."""
    held: list[int] = []
    if changes and changes[0].stx.tx.type == "lot.receive":
        q = 0
        for c in changes:
            q = c.moved if c.stx.tx.type == "lot.receive" else max(0, q - c.moved)
            held.append(q)
    else:
        q = now
        for c in reversed(changes):
            held.append(q)
            q += c.moved
        held.reverse()
    assert len(held) == len(changes)
    return [
        {
            "height": c.height,
            "time_ms": c.time_ms,
            "quantity": quantity,
            "tx_id": c.stx.tx_id_hex,
            "type": c.stx.tx.type,
        }
        for c, quantity in zip(changes, held)
    ]


def add_history_routes(app: web.Application, r: HistoryRoutes) -> None:
    app.router.add_get("/v1/txs", r.txs)
    app.router.add_get("/v1/lots/{id}/history", r.lot_history)
    app.router.add_get("/v1/reports", r.reports)
