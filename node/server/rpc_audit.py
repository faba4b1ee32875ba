"""`POST /v1/audit`: replay this node's chain from genesis, over its own RPC, with the
checks of `godown audit replay`, one replay at a time.

The replay is the auditor's own tool (`godown audit replay --rpc`) in a child process:
it checks every block, certificate, signature and root from the bytes the RPC serves,
exactly as an outside auditor would, and runs on its own core instead of the node's
event loop and GIL (the node goes on committing; blocks up to the head when it starts)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from aiohttp import web

from node.server.core import NodeCore
from node.server.paging import parse_query
from node.server.rpc_common import json_answer
from primitives.errors import Code, GodownError

AUDIT_TIMEOUT_S = 600.0
"""The longest a replay may take before it is stopped and reported as unavailable."""


class AuditRoutes:
    def __init__(self, core: NodeCore, token: str | None = None) -> None:
        self.core = core
        self.token = token
        self.running = False  # only the event loop touches it

    async def audit(self, request: web.Request) -> web.Response:
        parse_query(request.query, (), paged=False)
        if self.running:
            raise GodownError(Code.AUDIT_RUNNING, "an audit of this node is already running; ask again when it is done")
        if self.core.ledger.store.base_height > 0:
            raise GodownError(
                Code.BAD_CONFIG,
                f"this node starts at height {self.core.ledger.store.base_height} (restored from a snapshot or "
                "pruned: history.keep_blocks) and holds "
                "no blocks below it: audit a node that keeps the history from genesis",
            )
        host, port = request.transport.get_extra_info("sockname")[:2] if request.transport else ("127.0.0.1", 0)
        self.running = True
        try:
            report = await self._replay(f"http://{host}:{port}")
        finally:
            self.running = False
        return json_answer(report)

    async def _replay(self, url: str) -> dict[str, Any]:
        env = dict(os.environ)
        env.pop("GODOWN_TOKEN", None)
        if self.token:
            env["GODOWN_TOKEN"] = self.token  # not on the command line, where `ps` shows it
        argv = [sys.executable, "-m", "cli", "audit", "replay", "--rpc", url, "--json", "--workers", "1"]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), AUDIT_TIMEOUT_S)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise GodownError(Code.UNAVAILABLE, f"the audit did not finish in {AUDIT_TIMEOUT_S:.0f} s") from None
        try:
            report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise GodownError(Code.UNAVAILABLE, f"the audit tool failed: {tail[0]}") from None
        return report


def add_audit_routes(app: web.Application, r: AuditRoutes) -> None:
    app.router.add_post("/v1/audit", r.audit)
