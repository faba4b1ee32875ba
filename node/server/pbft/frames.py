"""Frames between nodes: canonical msgpack maps, batched so that one frame carries
everything for one peer at a time (py-libp2p's cost is per frame, not per byte):

    {"t": "c", "m": [consensus message bytes, …]}   consensus messages
    {"t": "x", "txs": [signed tx bytes, …]}          client transactions, forwarded to the primary
    {"t": "f", "from": h, "to": h}                   please send committed blocks
    {"t": "b", "blocks": [[block bytes, commit bytes], …]}
    {"t": "sm?" | "sm" | "sc?" | "sc", …}                state sync (see `node.server.pbft.statesync`)

Frames are neither hashed nor signed, so a plain (bounded) decode will do; what
they carry — messages, transactions, blocks — is decoded strictly by its owner.
"""

from __future__ import annotations

from typing import Any

import msgpack

from primitives.errors import Code, GodownError

MAX_FRAME = 48 * 1024 * 1024
"""VIEW-CHANGE and NEW-VIEW carry the prepared blocks above the stable checkpoint."""

CONSENSUS, FORWARDED_TXS, FETCH, BLOCKS = "c", "x", "f", "b"


def encode_frame(doc: dict[str, Any]) -> bytes:
    """A frame's bytes (not hashed: no canonical form needed)."""
    return msgpack.packb(doc, use_bin_type=True)  # type: ignore[no-any-return]


def decode_frame(frame: bytes) -> tuple[str | None, Any]:
    """The frame's kind and document; GodownError `malformed` if it is no msgpack."""
    try:
        doc = msgpack.unpackb(frame, raw=False, max_ext_len=0)
    except Exception as exc:  # msgpack raises many unrelated types for bad input
        raise GodownError(Code.MALFORMED, f"frame is not msgpack ({exc.__class__.__name__})") from None
    return (doc["t"] if isinstance(doc, dict) else None), doc
