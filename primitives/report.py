"""A device report's sealed payload as every recipient opens it: the associated data
that binds a payload to its report's clear-text fields (DESIGN §6, docs/protocol.md §10),
and opening it. Here, not in the client library, because a node opens reports for its
own member's page too, and the node does not import the client library."""

from __future__ import annotations

from typing import Any

from primitives import codec
from primitives.envelope import Envelope, open_envelope
from primitives.tx import SignedTx


def report_associated_data(device_id: str, seq: int, lot: str, kind: str) -> bytes:
    """Associated data binding a sealed payload to its report's clear-text fields."""
    return codec.encode({"device": device_id, "seq": seq, "lot": lot, "kind": kind})


def open_report(stx: SignedTx, recipient_id: str, enc_secret: bytes) -> dict[str, Any]:
    """Decrypt a device report as one recipient: its clear-text fields plus `data`.
    Raises GodownError `not_recipient` or `tampered`."""
    body = stx.tx.body
    envelope = Envelope.from_dict(body["envelope"])
    ad = report_associated_data(stx.tx.sender, body["seq"], body["lot"], body["kind"])
    data = codec.decode(open_envelope(envelope, recipient_id, enc_secret, ad))
    if isinstance(data, dict):
        data.pop("pad", None)
    return {
        "device": stx.tx.sender,
        "seq": body["seq"],
        "lot": body["lot"],
        "kind": body["kind"],
        "quantity": body.get("quantity", 0),
        "data": data,
    }
