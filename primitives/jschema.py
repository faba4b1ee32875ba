"""Small builders of JSON Schema (2020-12, the dialect of OpenAPI 3.1) for the JSON forms
of godown's records: bytes as lowercase hex, integers only, ids as the contracts check them.

The schemas of the views live beside the code that builds the views (contracts.view_schemas,
node.server.openapi.schemas); these builders keep them short and alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Schema = dict[str, Any]

HEX: Schema = {"type": "string", "pattern": "^([0-9a-f]{2})*$", "description": "bytes as lowercase hex"}
INT: Schema = {"type": "integer", "minimum": 0}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
ID: Schema = {"type": "string", "pattern": "^[A-Za-z0-9._:\\-]{1,64}$"}
MAP: Schema = {"type": "object"}
ANY: Schema = {}


def hex_bytes(size: int) -> Schema:
    """Exactly `size` bytes as lowercase hex."""
    return {"type": "string", "pattern": f"^[0-9a-f]{{{2 * size}}}$"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def enum(values: Sequence[str | int], base: Schema = STR) -> Schema:
    return {**base, "enum": list(values)}


def described(schema: Schema, description: str) -> Schema:
    return {**schema, "description": description}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None, description: str = "") -> Schema:
    """An object with these fields, `required` always present; further fields may come in later
    versions (a client ignores what it does not know)."""
    out: Schema = {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }
    if description:
        out["description"] = description
    return out


def extend(
    base: Schema, required: dict[str, Schema], optional: dict[str, Schema] | None = None, **extra: Any
) -> Schema:
    """`base` (an `obj`) with more fields: merged in place of an allOf, so that a strict
    validator (unevaluatedProperties) sees every field of the answer in one object."""
    out = obj(
        {k: v for k, v in base["properties"].items() if k in base["required"]} | required,
        {k: v for k, v in base["properties"].items() if k not in base["required"]} | (optional or {}),
    )
    return {**{k: v for k, v in base.items() if k not in out}, **out, **extra}
