"""Canonical msgpack: the one encoding for everything godown hashes or signs.

msgpack itself is malleable (duplicate map keys, non-minimal integers, any key
order), so the canonical form is defined here — str keys sorted, bin type for
bytes, no floats, no extension types — and `decode` re-encodes what it read and
refuses input whose bytes differ. That re-encode check is what makes a signed
byte string have exactly one meaning.
"""

from __future__ import annotations

from typing import Any

import msgpack

from primitives.errors import Code, GodownError

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Default cap on any single decoded input; callers pass a tighter one where they can."""


class EncodingError(GodownError):
    """Input that is not canonical godown msgpack (stable code `malformed`)."""

    def __init__(self, message: str, code: Code = Code.MALFORMED) -> None:
        super().__init__(code, message)


_INT_MIN, _INT_MAX = -(2**63), 2**64


def _canonical(value: Any, depth: int = 0) -> Any:
    """The value with every map's keys sorted; refuses what has no canonical encoding.
    One pass that both checks and sorts (this runs for every decode, so it is lean)."""
    t = type(value)
    if t is bytes or t is str or t is bool or value is None:
        return value
    if t is int:
        if not _INT_MIN <= value < _INT_MAX:
            raise EncodingError("integer out of range")
        return value
    if depth > 32:
        raise EncodingError("nesting too deep")
    if t is dict:
        out = {}
        for key in sorted(value):
            if type(key) is not str:
                raise EncodingError("map keys must be strings")
            out[key] = _canonical(value[key], depth + 1)
        return out
    if t is list or t is tuple:
        return [_canonical(v, depth + 1) for v in value]
    if isinstance(value, bool):  # subclasses (e.g. enums) become their plain values
        return bool(value)
    if isinstance(value, int):
        return _canonical(int(value), depth)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes(value)
    raise EncodingError(f"type {t.__name__} has no canonical encoding")


def encode(value: Any) -> bytes:
    """Canonical bytes of a value made of None, bool, int, str, bytes, lists and str-keyed dicts."""
    try:
        canonical = _canonical(value)
    except TypeError:  # sorting keys of mixed types
        raise EncodingError("map keys must be strings") from None
    return msgpack.packb(canonical, use_bin_type=True)  # type: ignore[no-any-return]


def _checked_map(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    """Map hook of `decode`: str keys in strictly increasing order, no float values."""
    prev = None
    for key, value in pairs:
        if type(key) is not str:
            raise EncodingError("map keys must be strings")
        if prev is not None and key <= prev:
            raise EncodingError("map keys are not sorted or not unique")
        if type(value) is float:
            raise EncodingError("floats have no canonical encoding")
        prev = key
    return dict(pairs)


def _checked_list(items: list[Any]) -> list[Any]:
    """List hook of `decode`: no float items."""
    for item in items:
        if type(item) is float:
            raise EncodingError("floats have no canonical encoding")
    return items


def decode(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES, max_items: int | None = None) -> Any:
    """Strict inverse of `encode`: refuses oversize, trailing, non-canonical or float input.
    `max_items` bounds every list and map before it is built (code `oversize`).

    The hooks check key order, uniqueness and types container by container while
    msgpack decodes; re-packing the result (its maps already in sorted order) must
    then give back the very same bytes, which rules out non-minimal integers and
    str/bin confusions. Runs for every transaction a node meets, so it is lean."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodingError("expected bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise EncodingError(f"input of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,
            object_pairs_hook=_checked_map,
            list_hook=_checked_list,
            max_str_len=max_bytes,
            max_bin_len=max_bytes,
            max_array_len=max_items or max_bytes,
            max_map_len=max_items or max_bytes,
            max_ext_len=0,
        )
    except EncodingError:
        raise
    except ValueError as exc:
        bounded = max_items is not None and ("max_array_len" in str(exc) or "max_map_len" in str(exc))
        if bounded:  # msgpack's words for a container over its bound
            raise EncodingError(f"a list or map holds more than {max_items} items", Code.OVERSIZE) from None
        raise EncodingError(f"not valid msgpack: {exc.__class__.__name__}") from None
    except Exception as exc:  # msgpack raises many unrelated types for bad input
        raise EncodingError(f"not valid msgpack: {exc.__class__.__name__}") from None
    if type(value) is float:
        raise EncodingError("floats have no canonical encoding")
    try:
        again = msgpack.packb(value, use_bin_type=True)
    except (ValueError, OverflowError, TypeError):
        raise EncodingError("value cannot be re-encoded (nesting or range)") from None
    if again != data:
        raise EncodingError("bytes are not in canonical form")
    return value


def jsonable(value: Any) -> Any:
    """The JSON view of a decoded value: bytes become lowercase hex, tuples lists."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
