"""Sealing and opening device reports: what a gateway vendor and every recipient
reproduce. The report's clear-text fields are the envelope's associated data, so a
sealed payload cannot be moved to another report (DESIGN §6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from node.client.rpc import RpcClient
from node.client.txs import sign_tx
from primitives import codec
from primitives.envelope import seal
from primitives.errors import Code, GodownError
from primitives.keys import KeyPair
from primitives.report import open_report, report_associated_data
from primitives.tx import SignedTx

__all__ = ["device_report", "open_report", "report_associated_data", "decrypt_report"]


def device_report(
    device: KeyPair,
    chain_id: str,
    nonce: int,
    seq: int,
    lot: str,
    kind: str,
    data: Mapping[str, Any],
    recipients: Mapping[str, bytes],
    quantity: int = 0,
    pad_to: int = 0,
) -> SignedTx:
    """A `device.report` signed by the device, its data sealed to `recipients`
    (id → X25519 public key). `pad_to` pads the plaintext to that many bytes."""
    plain = codec.encode(dict(data))
    if pad_to > len(plain):
        doc = {**data, "pad": b""}
        base = len(codec.encode(doc))
        pad = max(0, pad_to - base)
        doc["pad"] = bytes(pad)
        plain = codec.encode(doc)
        if len(plain) > pad_to:  # the bin length prefix grew: trim by the difference
            doc["pad"] = bytes(max(0, pad - (len(plain) - pad_to)))
            plain = codec.encode(doc)
    envelope = seal(plain, recipients, report_associated_data(device.id, seq, lot, kind))
    body: dict[str, Any] = {"lot": lot, "seq": seq, "kind": kind, "envelope": envelope.to_dict()}
    if quantity:
        body["quantity"] = quantity
    return sign_tx(device, chain_id, nonce, "device.report", body)


def decrypt_report(key_file: str, tx_id: str, rpc_url: str, token: str | None) -> dict[str, Any]:
    """Fetch a device report and open its payload as the key's owner."""
    key = KeyPair.load(key_file)
    doc = RpcClient(rpc_url, token).tx(tx_id)
    stx = SignedTx.decode(bytes.fromhex(doc["raw"]))
    if stx.tx.type != "device.report":
        raise GodownError(Code.BAD_BODY, f"transaction {tx_id} is a {stx.tx.type}, not a device report")
    return open_report(stx, key.id, key.enc_secret)
