"""Field schemas: the typed fields of a transaction body or of a governance action's
arguments, and the one strict check both go through."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.context import reject
from primitives.envelope import Envelope
from primitives.errors import Code, GodownError

FIELD_TYPES = ("id", "str", "int", "bytes", "bool", "map", "envelope")
"""id: 1–64 chars of [A-Za-z0-9._:-]; str: up to 256 chars; int: 0..2^53-1 (exact in
JSON clients, and sums of them stay far inside msgpack's 64 bits);
bytes: up to 1024; bool: true or false; map: a str-keyed map (its contents are
checked by the handler); envelope: a sealed envelope map (primitives.envelope).
Governance action arguments may also be `any` (checked by the action)."""

ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")
MAX_INT = 2**53 - 1


@dataclass(frozen=True)
class Field:
    """A typed field and what can be judged of it from the transaction alone: an exact
    byte length, a set of allowed values, an integer range. Everything here is checked
    at admission, so a malformed body is refused with a message and keeps its nonce."""

    name: str
    type: str
    required: bool
    description: str
    size: int | None = None
    choices: tuple[str | int, ...] = ()
    minimum: int = 0
    maximum: int = MAX_INT


def field(
    name: str,
    type_: str,
    description: str,
    required: bool = True,
    *,
    size: int | None = None,
    choices: tuple[str | int, ...] = (),
    minimum: int = 0,
    maximum: int = MAX_INT,
) -> Field:
    return Field(name, type_, required, description, size, choices, minimum, maximum)


def _fits(t: str, value: Any) -> bool:
    if t == "id":
        return type(value) is str and ID.fullmatch(value) is not None
    if t == "int":
        return type(value) is int and 0 <= value <= MAX_INT
    if t == "str":
        return type(value) is str and len(value) <= 256
    if t == "bytes":
        return type(value) is bytes and len(value) <= 1024
    if t == "bool":
        return type(value) is bool
    if t == "any":
        return True
    return type(value) is dict


def check_fields(what: str, fields: Sequence[Field], doc: Mapping[str, Any], code: Code) -> None:
    """`code` unless `doc` has exactly the known fields, each of its declared type."""
    known = 0
    for f in fields:
        value = doc.get(f.name)
        if value is None:
            if f.required:
                raise reject(code, f"{what}: field {f.name} is required")
            continue
        known += 1
        if not _fits(f.type, value):
            raise reject(code, f"{what}: field {f.name} must be {f.type}")
        problem = _constraint_broken(f, value)
        if problem:
            raise reject(code, f"{what}: field {f.name} {problem}")
        if f.type == "envelope":
            _check_envelope(what, f, value)
    if known != len(doc):
        extra = sorted(set(doc) - {f.name for f in fields})
        raise reject(code, f"{what}: unknown or null fields {extra}")


def _constraint_broken(f: Field, value: Any) -> str | None:
    if f.size is not None and len(value) != f.size:
        return f"must be exactly {f.size} bytes, not {len(value)}"
    if f.choices and value not in f.choices:
        return f"must be one of {', '.join(map(str, f.choices))}"
    if f.type == "int" and not f.minimum <= value <= f.maximum:
        return f"must be in {f.minimum}..{f.maximum}"
    return None


def _check_envelope(what: str, f: Field, value: Any) -> None:
    """A sealed envelope's shape, with the envelope's own code (`oversize` for a payload
    past its limit); its recipients are judged by the handler against the case."""
    try:
        Envelope.from_dict(value)
    except GodownError as exc:
        raise reject(exc.code, f"{what}: field {f.name}: {exc.message}") from None
