"""`POST /v1/audit`: replay this node's own chain from genesis with the checks of
`godown audit replay` (node/tools/audit.py), one replay at a time.

The replay reads the store from a worker thread while the node goes on committing
(blocks up to the head when it starts); signatures are checked in that thread too, as
worker processes forked from a running node (threads, sockets, LevelDB) are not safe."""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from aiohttp import web

from node.server.core import NodeCore
from node.server.paging import parse_query
from node.server.rpc_common import json_answer
from node.tools.audit import replay_from_store
from primitives.errors import Code, GodownError


class AuditRoutes:
    def __init__(self, core: NodeCore) -> None:
        self.core = core
        self.running = False  # only the event loop touches it

    async def audit(self, request: web.Request) -> web.Response:
        parse_query(request.query, (), paged=False)
        if self.running:
            raise GodownError(Code.AUDIT_RUNNING, "an audit of this node is already running; ask again when it is done")
        self.running = True
        try:
            core = self.core
            report = await asyncio.to_thread(replay_from_store, core.ledger.store, core.genesis, core.name, 1)
        finally:
            self.running = False
        return json_answer(asdict(report))


def add_audit_routes(app: web.Application, r: AuditRoutes) -> None:
    app.router.add_post("/v1/audit", r.audit)
