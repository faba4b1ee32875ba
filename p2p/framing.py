"""Length-prefixed frames on a byte stream: 4-byte big-endian length, then payload.

libp2p streams carry bytes, not messages, and py-libp2p's costs are per read
and per write, so many queued frames are packed into one write and a reader
cuts frames out of large reads. A declared length above the limit is refused
before any payload is buffered, so a peer cannot make us hold a huge frame.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from primitives.errors import Code, GodownError

HEADER = struct.Struct(">I")
MAX_FRAME_DEFAULT = 16 * 1024 * 1024


def encode_frames(frames: Iterable[bytes]) -> bytes:
    """Concatenate frames, each preceded by its 4-byte big-endian length."""
    parts: list[bytes] = []
    for frame in frames:
        parts.append(HEADER.pack(len(frame)))
        parts.append(frame)
    return b"".join(parts)


class FrameDecoder:
    """Incremental decoder: `feed` bytes as they arrive, get back the complete frames."""

    def __init__(self, max_frame: int = MAX_FRAME_DEFAULT) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet form a complete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Append `data`; return every frame now complete, in order.

        Raises `GodownError(Code.OVERSIZE)` as soon as a header declares a frame
        longer than `max_frame`; the decoder is then unusable (reset the stream).
        """
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (length,) = HEADER.unpack_from(buf, pos)
            if length > self.max_frame:
                raise GodownError(Code.OVERSIZE, f"frame of {length} bytes exceeds limit {self.max_frame}")
            if end - pos - 4 < length:
                break
            frames.append(bytes(buf[pos + 4 : pos + 4 + length]))
            pos += 4 + length
        if pos:
            del buf[:pos]
        return frames
