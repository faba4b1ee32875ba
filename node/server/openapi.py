"""The OpenAPI 3 document of the RPC and the page documenting every transaction body.

Both are generated: the endpoints from the table below, the transaction bodies
from `contracts.registry.TX_TYPES`, so the documentation cannot drift from the rules.
"""

from __future__ import annotations

import html
from typing import Any

from primitives.errors import Code, http_status

PUBLIC_PATHS = frozenset({"/v1/health", "/v1/ready", "/openapi.json", "/docs/transactions"})
"""Answered without the bearer token: probes carry none, and these reveal nothing sensitive."""

ENDPOINTS: tuple[tuple[str, str, str, str], ...] = (
    ("get", "/v1/health", "health", "Liveness: 200 {alive: true} while the node answers. No bearer token needed."),
    (
        "get",
        "/v1/ready",
        "ready",
        "Readiness: 200 {ready: true, height, reasons: []} when caught up with its peers, reaching a quorum of "
        "validators (itself included), and in the validator set or scheduled to join it; else 503 with error code "
        "not_ready and reasons [{reason: catching_up|no_quorum|not_validator, message}]. No bearer token needed.",
    ),
    ("get", "/v1/status", "status", "Chain id, node id, height, head hash, view, validators, peers, sync state."),
    (
        "post",
        "/v1/txs",
        "submit",
        "Submit one signed transaction {tx: hex, sig: hex}, a list of them, or "
        "canonical msgpack (application/msgpack). Optional ?wait_ms=N waits until committed. "
        "A single transaction answers 200 {tx_id, code} or a 4xx error; a list answers 200 with a result per item.",
    ),
    ("get", "/v1/txs/{tx_id}", "get_tx", "A transaction, its block height, index and result code (or pending)."),
    (
        "get",
        "/v1/blocks/{height}",
        "get_block",
        "A block (height or 'latest') with its commit certificate and raw bytes.",
    ),
    (
        "get",
        "/v1/state/{key}",
        "get_state",
        "A state entry (utf-8 key or 0x-hex) with a Merkle proof against the "
        "state root after the head; the next block's header certifies that root. "
        "Only the latest state is kept: ?height=H answers when H is the head, else 404 not_found.",
    ),
    ("get", "/v1/cases/{id}", "get_case", "A financing case."),
    ("get", "/v1/lots/{id}", "get_lot", "A lot (warehouse receipt)."),
    ("get", "/v1/devices/{id}", "get_device", "A monitoring device."),
    ("get", "/v1/alarms/{id}", "get_alarm", "An alarm raised by the contracts."),
    ("get", "/v1/members", "members", "Members with roles and public keys."),
    (
        "get",
        "/v1/validators",
        "validators",
        "The validator set in force and an approved change with its effective height "
        "(the new set governs heights above it).",
    ),
    (
        "get",
        "/v1/validators/changes",
        "validator_changes",
        "Every validator-set change this node executed, each with the scheduled set's state entry and Merkle "
        "proof at its approving height h, against the state root the header of h+1 carries; complete is false "
        "on a node that joined by state sync after a change. What a light client follows from genesis.",
    ),
    (
        "get",
        "/v1/proposals",
        "proposals",
        "Governance proposals; query: state=open|executed|failed|rejected|expired, limit.",
    ),
    ("get", "/v1/proposals/{id}", "get_proposal", "A governance proposal with its votes, tally and result."),
    ("get", "/v1/genesis", "genesis", "The genesis document (auditors should pin their own copy)."),
    ("get", "/v1/accounts/{id}", "account", "A sender's next nonce (committed, and counting pending transactions)."),
    (
        "get",
        "/v1/events",
        "events",
        "WebSocket of committed blocks, transaction results and alarms. Query: "
        "kinds=block,tx,alarm (comma list; a family name such as alarm takes alarm_raised and alarm_resolved) "
        "and any field=value equality filter (e.g. sender=…).",
    ),
    ("get", "/metrics", "metrics", "Prometheus text format."),
)


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document() -> dict[str, Any]:
    from contracts.registry import TX_TYPES

    error_schema = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "enum": [c.value for c in Code]},
                    "message": {"type": "string"},
                },
            }
        },
    }
    statuses = sorted({http_status(c) for c in Code if http_status(c) < 500})
    paths: dict[str, Any] = {}
    for method, path, op_id, summary in ENDPOINTS:
        responses: dict[str, Any] = {"200": {"description": "OK"}}
        for s in statuses:
            responses[str(s)] = _error_response("client error")
        if op_id == "ready":
            responses[str(http_status(Code.NOT_READY))] = _error_response("not ready: code not_ready, with reasons")
        op: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": responses}
        if path in PUBLIC_PATHS:
            op["security"] = []  # overrides the document's bearer requirement
        params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params
            ]
        if method == "post":
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/SignedTx"}},
                    "application/msgpack": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "godown node RPC",
            "version": "1",
            "description": "Bytes are lowercase hex. Transaction bodies by type: see externalDocs. "
            "The bearer token is needed when the node's config sets one, except where an operation says otherwise.",
        },
        "externalDocs": {"description": "Transaction types and their bodies", "url": "/docs/transactions"},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": error_schema,
                "SignedTx": {
                    "type": "object",
                    "required": ["tx", "sig"],
                    "properties": {
                        "tx": {
                            "type": "string",
                            "description": "hex of canonical msgpack Tx "
                            "{chain_id, type, sender, nonce, body, valid_until_ms?}",
                        },
                        "sig": {"type": "string", "description": "hex Ed25519 signature of the tx bytes"},
                    },
                },
                "TxTypes": {"type": "string", "enum": sorted(TX_TYPES)},
            },
        },
    }


def tx_types_page() -> str:
    """HTML page: every transaction type, who may send it, and its body fields."""
    from contracts.registry import TX_TYPES

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>godown transactions</title></head><body>",
        "<h1>godown transaction types</h1>",
        "<p>A transaction is canonical msgpack <code>{chain_id, type, sender, nonce, body, valid_until_ms?}</code> "
        "(maps with sorted str keys, integers only, bytes as bin); the sender signs its exact bytes with Ed25519 and "
        "submits <code>{tx, sig}</code>. Nonces start at 0 and rise by one per sender. Amounts are minor currency "
        "units, quantities the lot's smallest unit, times milliseconds since the epoch.</p>",
    ]
    for name in sorted(TX_TYPES):
        spec = TX_TYPES[name]
        parts.append(f"<h2 id='{html.escape(name)}'>{html.escape(name)}</h2>")
        parts.append(f"<p>{html.escape(spec.doc)}</p><p>Who may send: {html.escape(', '.join(spec.roles))}</p>")
        parts.append("<table border='1'><tr><th>field</th><th>type</th><th>required</th><th>meaning</th></tr>")
        for f in spec.fields:
            parts.append(
                f"<tr><td>{html.escape(f.name)}</td><td>{html.escape(str(f.type))}</td>"
                f"<td>{'yes' if f.required else 'no'}</td><td>{html.escape(f.description)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
