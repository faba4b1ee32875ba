"""The OpenAPI 3.1 document of the RPC, built from the endpoint table and the schemas:
`GET /openapi.json` answers it, and a client can be written from it alone."""

from __future__ import annotations

from typing import Any

from node.server.openapi.endpoints import ENDPOINTS, Endpoint, Param
from node.server.openapi.schemas import codes_of, component_schemas
from primitives.jschema import Schema, ref

_DESCRIPTION = (
    "The RPC of a godown node. Bytes are lowercase hex; integers only (amounts in minor currency units, "
    "times in milliseconds since the epoch). Every error is {error: {code, message}} with a stable code "
    "(the Error schemas list the codes each status carries); bad input never gets a 5xx. The bearer token "
    "is needed when the node's config sets one, except where an operation says otherwise. Transaction "
    "bodies: the Body.<type> schemas, also rendered at /docs/transactions. Field names are those of the "
    "requests: a view shows a field under the name of the transaction field that set it."
)


def _json(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(status: int) -> dict[str, Any]:
    codes = codes_of(status)
    said = ", ".join(codes) if len(codes) <= 4 else "a rule's code (see the schema)"
    return _json(ref(f"Error{status}"), f"error: {said}")


def _param(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "in": p.where, "required": p.where == "path", "schema": p.schema}
    out["description"] = p.description
    if p.schema.get("type") == "object":  # free-form query parameters (field=value filters)
        out.update(style="form", explode=True)
    return out


_SUBMIT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    ref("SignedTx"),
                    {"type": "array", "items": ref("SignedTx"), "minItems": 1, "maxItems": 5000},
                    {
                        "type": "object",
                        "required": ["txs"],
                        "properties": {"txs": {"type": "array", "items": ref("SignedTx"), "maxItems": 5000}},
                    },
                ]
            }
        },
        "application/msgpack": {
            "schema": {
                "type": "string",
                "contentMediaType": "application/msgpack",
                "description": "canonical msgpack of {tx: bin, sig: bin} or a list of them",
            }
        },
    },
}


def _success(ep: Endpoint) -> dict[str, Any]:
    """The 2xx answers of an endpoint."""
    if ep.op_id == "submit":
        one_or_list = {"oneOf": [ref("Submitted"), ref("SubmitResults")]}
        return {"200": _json(one_or_list, "Submitted for one transaction, SubmitResults for a list")}
    if ep.op_id == "events":
        return {
            "101": _json(ref("Event"), "Switching to WebSocket; every text message is one JSON document of this schema")
        }
    if ep.op_id == "metrics":
        return {"200": {"description": "Prometheus text", "content": {"text/plain": {"schema": {"type": "string"}}}}}
    if ep.op_id == "tx_docs":
        return {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}
    if ep.op_id == "openapi":
        return {"200": _json({"type": "object"}, "this OpenAPI 3.1 document")}
    return {"200": _json(ref(ep.ok), "OK")}


def _operation(ep: Endpoint) -> dict[str, Any]:
    responses = _success(ep)
    statuses = set(ep.errors) | (set() if ep.public else {401})
    for status in sorted(statuses):
        responses[str(status)] = _json(ref("Ready"), "not ready") if ep.op_id == "ready" else _error(status)
    op: dict[str, Any] = {"operationId": ep.op_id, "summary": ep.summary, "responses": responses}
    if ep.public:
        op["security"] = []  # overrides the document's bearer requirement
    if ep.params:
        op["parameters"] = [_param(p) for p in ep.params]
    if ep.op_id == "submit":
        op["requestBody"] = _SUBMIT_BODY
    return op


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for ep in ENDPOINTS:
        paths.setdefault(ep.path, {})[ep.method] = _operation(ep)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": "godown node RPC", "version": "1", "description": _DESCRIPTION},
        "externalDocs": {"description": "Transaction types and their bodies", "url": "/docs/transactions"},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": component_schemas(),
        },
    }
