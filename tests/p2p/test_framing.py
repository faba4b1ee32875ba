"""Frame encoding and incremental decoding, however the byte stream is cut."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2p.framing import FrameDecoder, encode_frames
from primitives.errors import Code, GodownError


@settings(max_examples=200, deadline=None)
@given(
    frames=st.lists(st.binary(max_size=300), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_any_split_of_the_stream_yields_the_same_frames(frames: list[bytes], cuts: list[int]) -> None:
    data = encode_frames(frames)
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    decoder = FrameDecoder(max_frame=1000)
    out: list[bytes] = []
    for lo, hi in zip(points, points[1:]):
        out.extend(decoder.feed(data[lo:hi]))
    assert out == frames
    assert decoder.buffered == 0


def test_header_is_four_bytes_big_endian() -> None:
    assert encode_frames([b"abc", b""]) == b"\x00\x00\x00\x03abc\x00\x00\x00\x00"


def test_oversize_header_is_refused_before_the_payload_arrives() -> None:
    decoder = FrameDecoder(max_frame=10)
    assert decoder.feed(encode_frames([b"x" * 10])) == [b"x" * 10]
    with pytest.raises(GodownError) as err:
        decoder.feed(b"\x00\x00\x00\x0b")  # declares 11 bytes, sends none
    assert err.value.code is Code.OVERSIZE


def test_partial_frame_waits_for_the_rest() -> None:
    decoder = FrameDecoder()
    data = encode_frames([b"hello"])
    assert decoder.feed(data[:6]) == []
    assert decoder.buffered == 6
    assert decoder.feed(data[6:]) == [b"hello"]
