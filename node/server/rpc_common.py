"""What every RPC handler module answers with: compact JSON, and the error body."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from primitives.codec import jsonable
from primitives.errors import Code, http_status
from primitives.tx import SignedTx


def error_response(code: Code, message: str, status: int | None = None) -> web.Response:
    return web.json_response({"error": {"code": code.value, "message": message}}, status=status or http_status(code))


def json_answer(data: Any, status: int = 200) -> web.Response:
    return web.json_response(jsonable(data), status=status, dumps=lambda v: json.dumps(v, separators=(",", ":")))


def tx_view(stx: SignedTx) -> dict[str, Any]:
    return {
        "tx_id": stx.tx_id_hex,
        "chain_id": stx.tx.chain_id,
        "type": stx.tx.type,
        "sender": stx.tx.sender,
        "nonce": stx.tx.nonce,
        "body": jsonable(stx.tx.body),
        "valid_until_ms": stx.tx.valid_until_ms,
        "raw": stx.encode().hex(),
    }
