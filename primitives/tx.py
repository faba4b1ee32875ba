"""Transactions: the canonical Tx, its signed wrapper, and their strict decoding.

    Tx     = {chain_id, type, sender, nonce, body, valid_until_ms?}
    Signed = {tx: <canonical Tx bytes>, sig: <64 bytes>}
    tx_id  = sha256(canonical Tx bytes)

The signature covers the exact Tx bytes, and those bytes decode only if they
are canonical, so no signed transaction has two encodings.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import msgpack

from primitives import codec
from primitives.errors import Code, GodownError
from primitives.hashing import sha256
from primitives.keys import KeyPair, verify_signature

MAX_TX_BYTES = 64 * 1024
"""Largest signed transaction a node accepts (device reports with sealed payloads fit easily)."""

_TX_FIELDS = {"chain_id", "type", "sender", "nonce", "body"}
_TX_OPTIONAL = {"valid_until_ms"}


def _malformed(message: str) -> GodownError:
    return GodownError(Code.MALFORMED, message)


@dataclass(frozen=True)
class Tx:
    """An unsigned transaction; `body` is a str-keyed map checked by its contract."""

    chain_id: str
    type: str
    sender: str
    nonce: int
    body: dict[str, Any]
    valid_until_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "chain_id": self.chain_id,
            "type": self.type,
            "sender": self.sender,
            "nonce": self.nonce,
            "body": self.body,
        }
        if self.valid_until_ms is not None:
            doc["valid_until_ms"] = self.valid_until_ms
        return doc

    def encode(self) -> bytes:
        return codec.encode(self.to_dict())

    @staticmethod
    def from_dict(doc: Any) -> Tx:
        """Check fields and types strictly: unknown or missing fields are `malformed`."""
        if not isinstance(doc, dict):
            raise _malformed("transaction must be a map")
        keys = set(doc)
        if not _TX_FIELDS <= keys or keys - _TX_FIELDS - _TX_OPTIONAL:
            raise _malformed(f"transaction fields must be {sorted(_TX_FIELDS)} (+ valid_until_ms)")
        for name, typ in (("chain_id", str), ("type", str), ("sender", str), ("body", dict)):
            if not isinstance(doc[name], typ):
                raise _malformed(f"field {name} must be {typ.__name__}")
        nonce = doc["nonce"]
        if not isinstance(nonce, int) or isinstance(nonce, bool) or nonce < 0:
            raise _malformed("nonce must be a non-negative integer")
        until = doc.get("valid_until_ms")
        if until is not None and (not isinstance(until, int) or isinstance(until, bool)):
            raise _malformed("valid_until_ms must be an integer")
        return Tx(doc["chain_id"], doc["type"], doc["sender"], nonce, doc["body"], until)

    def sign(self, key: KeyPair) -> SignedTx:
        raw = self.encode()
        return SignedTx(tx=self, tx_bytes=raw, sig=key.sign(raw))


@dataclass(frozen=True)
class SignedTx:
    """A transaction with its sender's Ed25519 signature over the canonical Tx bytes."""

    tx: Tx
    tx_bytes: bytes = field(repr=False)
    sig: bytes = field(repr=False)
    tx_id: bytes = field(init=False, repr=False, compare=False)
    _wire: bytes | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tx_id", sha256(self.tx_bytes))

    @property
    def tx_id_hex(self) -> str:
        return self.tx_id.hex()

    def to_dict(self) -> dict[str, bytes]:
        return {"tx": self.tx_bytes, "sig": self.sig}

    def encode(self) -> bytes:
        """The canonical wire bytes (kept from decoding, or computed once)."""
        if self._wire is None:
            object.__setattr__(self, "_wire", codec.encode(self.to_dict()))
        return self._wire  # type: ignore[return-value]

    def verify(self, sign_pub: bytes) -> bool:
        return verify_signature(sign_pub, self.tx_bytes, self.sig)

    @staticmethod
    def from_dict(doc: Any, wire: bytes | None = None) -> SignedTx:
        if not isinstance(doc, dict) or set(doc) != {"tx", "sig"}:
            raise _malformed("signed transaction must be a map with exactly tx and sig")
        raw, sig = doc["tx"], doc["sig"]
        if not isinstance(raw, bytes) or not isinstance(sig, bytes):
            raise _malformed("tx and sig must be bytes")
        if len(sig) != 64:
            raise GodownError(Code.BAD_SIGNATURE, "signature must be 64 bytes")
        if len(raw) > MAX_TX_BYTES:
            raise GodownError(Code.OVERSIZE, f"transaction exceeds {MAX_TX_BYTES} bytes")
        tx = Tx.from_dict(codec.decode(raw, max_bytes=MAX_TX_BYTES))
        return SignedTx(tx=tx, tx_bytes=raw, sig=sig, _wire=wire)

    @staticmethod
    def decode_stored(data: bytes) -> SignedTx:
        """Decode wire bytes that were decoded strictly before they were stored (a block in
        this node's own store), without the canonical-form checks again: for reading much
        history at once (pruning), where those checks are two thirds of the cost."""
        try:
            doc = msgpack.unpackb(data, raw=False)
            raw, sig = doc["tx"], doc["sig"]
            tx = Tx.from_dict(msgpack.unpackb(raw, raw=False))
        except (msgpack.UnpackException, ValueError, TypeError, KeyError) as exc:
            raise _malformed(f"stored transaction unreadable ({exc.__class__.__name__})") from None
        return SignedTx(tx=tx, tx_bytes=raw, sig=sig, _wire=data)

    @staticmethod
    def decode(data: bytes) -> SignedTx:
        """Strictly decode a signed transaction from its canonical wire bytes.

        A node meets each transaction several times (from a client or a peer, then
        inside a proposal, then at execution), so recent decodings are remembered
        by their exact bytes; a SignedTx is immutable, so sharing it is safe."""
        if len(data) > MAX_TX_BYTES + 128:
            raise GodownError(Code.OVERSIZE, f"transaction exceeds {MAX_TX_BYTES} bytes")
        data = bytes(data)
        hit = _DECODED.get(data)
        if hit is not None:
            return hit
        stx = SignedTx.from_dict(codec.decode(data, max_bytes=MAX_TX_BYTES + 128), wire=data)
        _remember(data, stx)
        return stx

    def remember(self) -> SignedTx:
        """Let a later `decode` of this transaction's wire bytes (in a proposal, say)
        reuse this decoding; for one decoded another way (a client's JSON or batch)."""
        _remember(self.encode(), self)
        return self


def _remember(data: bytes, stx: SignedTx) -> None:
    _DECODED[data] = stx
    if len(_DECODED) > DECODE_CACHE_SIZE:
        _DECODED.popitem(last=False)


DECODE_CACHE_SIZE = 50_000
_DECODED: OrderedDict[bytes, SignedTx] = OrderedDict()
