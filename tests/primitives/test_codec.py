"""Canonical encoding: round trip, one encoding per value, non-canonical bytes refused."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives import codec
from primitives.errors import Code, GodownError

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.text(max_size=20),
    st.binary(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=25,
)


@given(values)
def test_round_trip(value: object) -> None:
    assert codec.decode(codec.encode(value)) == value


@given(st.dictionaries(st.text(max_size=8), scalars, min_size=2, max_size=8), st.randoms())
def test_key_order_does_not_change_the_bytes(doc: dict[str, object], rnd: object) -> None:
    items = list(doc.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    assert codec.encode(dict(items)) == codec.encode(doc)


@given(st.dictionaries(st.text(min_size=1, max_size=8), scalars, min_size=2, max_size=8))
def test_unsorted_map_bytes_are_refused(doc: dict[str, object]) -> None:
    unsorted = dict(sorted(doc.items(), reverse=True))
    raw = msgpack.packb(unsorted, use_bin_type=True)
    if raw != codec.encode(doc):
        with pytest.raises(GodownError) as err:
            codec.decode(raw)
        assert err.value.code is Code.MALFORMED


@pytest.mark.parametrize(
    "raw",
    [
        b"\x82\xa1a\x01\xa1a\x02",  # duplicate key
        b"\xcc\x01",  # non-minimal integer
        b"\xcd\x00\x05",  # non-minimal uint16
        b"\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00",  # float
        b"\xd4\x01\x00",  # extension type
        b"\x81\x01\x02",  # int map key
        b"\xa1",  # truncated
        b"\x01\x02",  # trailing bytes
    ],
)
def test_non_canonical_or_bad_bytes_refused(raw: bytes) -> None:
    with pytest.raises(GodownError) as err:
        codec.decode(raw)
    assert err.value.code is Code.MALFORMED


def test_str_packed_without_bin_type_is_not_bytes() -> None:
    raw = msgpack.packb(b"abc", use_bin_type=False)  # old-style raw decodes as str: bytes must use bin type
    assert codec.decode(raw) == "abc"
    assert codec.encode(b"abc") != raw


def test_oversize_refused() -> None:
    raw = codec.encode(b"x" * 2000)
    with pytest.raises(GodownError):
        codec.decode(raw, max_bytes=1000)


def test_floats_and_objects_have_no_encoding() -> None:
    for bad in (1.5, {1: 2}, object(), {"a": {1.0}}):
        with pytest.raises(GodownError):
            codec.encode(bad)


def test_jsonable_hexes_bytes() -> None:
    assert codec.jsonable({"a": b"\x01\xff", "b": [b"", 3]}) == {"a": "01ff", "b": ["", 3]}


@settings(max_examples=200)
@given(st.binary(max_size=64))
def test_decode_never_raises_anything_but_godown_errors(raw: bytes) -> None:
    try:
        value = codec.decode(raw)
    except GodownError as exc:
        assert exc.code is Code.MALFORMED
    else:
        assert codec.encode(value) == raw
