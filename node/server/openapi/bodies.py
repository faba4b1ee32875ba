"""Schemas of transactions and their bodies, generated from `contracts.registry.TX_TYPES`
and the governance actions, so they check exactly what admission checks.

The JSON form is shown (bytes as lowercase hex, as `/v1/txs/{id}` answers); in the signed
msgpack a `bytes` field is msgpack bin, every other field is the same."""

from __future__ import annotations

from contracts.actions import ACTIONS
from contracts.registry import TX_TYPES, Field
from primitives.envelope import MAX_CIPHERTEXT, MAX_RECIPIENTS, NONCE_BYTES, WRAPPED_KEY_BYTES
from primitives.jschema import ANY, BOOL, HEX, ID, MAP, Schema, described, hex_bytes, nullable, obj, ref
from primitives.tx import MAX_TX_BYTES

_BASE: dict[str, Schema] = {
    "id": ID,
    "str": {"type": "string", "maxLength": 256},
    "int": {"type": "integer"},
    "bytes": {"type": "string", "pattern": "^([0-9a-f]{2}){0,1024}$"},
    "bool": BOOL,
    "map": MAP,
    "envelope": ref("Envelope"),
    "any": ANY,
}


def field_schema(f: Field) -> Schema:
    """The JSON Schema of one body field: its type and every constraint `check_fields` applies."""
    out: Schema = dict(_BASE[f.type])
    if f.type == "int":
        out.update(minimum=f.minimum, maximum=f.maximum)
    if f.type == "bytes" and f.size is not None:
        out = hex_bytes(f.size)
    if f.choices:
        out["enum"] = list(f.choices)
    return described(out, f.description)


def _fields_schema(fields: tuple[Field, ...], description: str) -> Schema:
    required = {f.name: field_schema(f) for f in fields if f.required}
    optional = {f.name: field_schema(f) for f in fields if not f.required}
    return {**obj(required, optional, description), "additionalProperties": False}


def body_name(tx_type: str) -> str:
    return f"Body.{tx_type}"


def args_name(action: str) -> str:
    return f"Args.{action}"


def _by_const(discriminant: str, target: str, names: dict[str, str]) -> list[Schema]:
    """`if discriminant is X then target is names[X]`, one clause per X (JSON Schema 2020-12)."""
    return [
        {
            "if": {"properties": {discriminant: {"const": x}}, "required": [discriminant]},
            "then": {"properties": {target: ref(n)}},
        }
        for x, n in sorted(names.items())
    ]


def body_schemas() -> dict[str, Schema]:
    """A component per transaction body and per governance action's arguments."""
    out: dict[str, Schema] = {}
    for name, spec in sorted(TX_TYPES.items()):
        doc = f"{spec.doc} Who may send: {', '.join(spec.roles)}."
        out[body_name(name)] = _fields_schema(spec.fields, doc)
    for name, action in sorted(ACTIONS.items()):
        out[args_name(name)] = _fields_schema(action.fields, action.doc)
    propose = out[body_name("gov.propose")]
    propose["properties"]["action"]["enum"] = sorted(ACTIONS)
    propose["allOf"] = _by_const("action", "args", {a: args_name(a) for a in ACTIONS})
    return out


TX = obj(
    {
        "chain_id": described({"type": "string"}, "the chain's id (genesis)"),
        "type": {"type": "string", "enum": sorted(TX_TYPES)},
        "sender": described(ID, "member or device id; its registered key signs"),
        "nonce": described({"type": "integer", "minimum": 0}, "the sender's next nonce (GET /v1/accounts/{id})"),
        "body": described(MAP, "fields by type: the Body.<type> schemas"),
    },
    {"valid_until_ms": described(nullable({"type": "integer"}), "refused in blocks after this block time")},
    "A transaction. Its canonical msgpack bytes (maps with sorted str keys, integers only, bytes as bin) "
    f"are what the sender signs and what tx_id hashes (SHA-256); at most {MAX_TX_BYTES} bytes.",
)
TX["allOf"] = _by_const("type", "body", {t: body_name(t) for t in TX_TYPES})

SIGNED_TX = {
    **obj(
        {
            "tx": described({"type": "string", "pattern": "^([0-9a-f]{2})+$"}, "hex of the canonical msgpack Tx"),
            "sig": described(hex_bytes(64), "hex of the sender's Ed25519 signature over the tx bytes"),
        },
        description="A signed transaction as JSON. As application/msgpack: the map {tx: bin, sig: bin}.",
    ),
    "additionalProperties": False,
}

ENVELOPE = {
    **obj(
        {
            "nonce": hex_bytes(NONCE_BYTES),
            "ciphertext": described(HEX, f"the sealed payload, at most {MAX_CIPHERTEXT} bytes"),
            "recipients": {
                "type": "array",
                "items": {
                    "type": "array",
                    "prefixItems": [{"type": "string"}, hex_bytes(WRAPPED_KEY_BYTES)],
                    "minItems": 2,
                    "maxItems": 2,
                },
                "minItems": 1,
                "maxItems": MAX_RECIPIENTS,
                "description": "[member id, the data key wrapped for its X25519 key] pairs, in clear",
            },
        },
        description="A sealed envelope (docs/protocol.md): the payload encrypted once, its key wrapped per recipient.",
    ),
    "additionalProperties": False,
}
