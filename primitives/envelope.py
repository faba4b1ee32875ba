"""Sealed envelopes for device monitoring data (DESIGN §6).

A fresh 32-byte content key encrypts the payload with XChaCha20-Poly1305, the
report's clear-text fields as associated data (so a payload cannot be moved to
another report); the content key is wrapped for each recipient's X25519 key with
a libsodium sealed box. The recipient list is clear text, so nodes check it
without decrypting.

A wrapped key is libsodium's `crypto_box_seal` of the content key: `epk || box`, where
`epk` is a fresh X25519 public key, `box = crypto_box(key, nonce, recipient_pub, esk)`
(XSalsa20-Poly1305, 16-byte tag) and `nonce = BLAKE2b-192(epk || recipient_pub)`:
32 + 32 + 16 = 80 bytes. docs/protocol.md §10 spells it out with a vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.utils

from primitives.errors import Code, GodownError

NONCE_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
KEY_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
MAX_RECIPIENTS = 16
MAX_CIPHERTEXT = 16 * 1024
WRAPPED_KEY_BYTES = KEY_BYTES + nacl.bindings.crypto_box_SEALBYTES
"""A content key sealed for one recipient: 32 + 48 bytes."""


class _BadEnvelope(GodownError):
    def __init__(self) -> None:
        super().__init__(
            Code.BAD_BODY,
            f"envelope must be {{nonce: {NONCE_BYTES} bytes, ciphertext, "
            f"recipients: [[id, {WRAPPED_KEY_BYTES}-byte key]]}}",
        )


@dataclass(frozen=True)
class Envelope:
    """Ciphertext, its nonce, and the content key wrapped for each recipient id."""

    nonce: bytes
    ciphertext: bytes
    wrapped: tuple[tuple[str, bytes], ...]

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(r for r, _ in self.wrapped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "nonce": self.nonce,
            "ciphertext": self.ciphertext,
            "recipients": [[r, k] for r, k in self.wrapped],
        }

    @staticmethod
    def from_dict(doc: Any) -> Envelope:
        """Shape check only (used by contracts without decrypting, twice per device
        report: the error is built only when raised, as building it cost half the check)."""
        bad = _BadEnvelope
        if not isinstance(doc, dict) or set(doc) != {"nonce", "ciphertext", "recipients"}:
            raise bad
        nonce, ct, recips = doc["nonce"], doc["ciphertext"], doc["recipients"]
        if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES or not isinstance(ct, bytes):
            raise bad
        if len(ct) > MAX_CIPHERTEXT:
            raise GodownError(Code.OVERSIZE, f"sealed payload exceeds {MAX_CIPHERTEXT} bytes")
        if not isinstance(recips, list) or not 1 <= len(recips) <= MAX_RECIPIENTS:
            raise bad
        wrapped = []
        for item in recips:
            if not (
                isinstance(item, list)
                and len(item) == 2
                and isinstance(item[0], str)
                and isinstance(item[1], bytes)
                and len(item[1]) == WRAPPED_KEY_BYTES
            ):
                raise bad
            wrapped.append((item[0], item[1]))
        if len({r for r, _ in wrapped}) != len(wrapped):
            raise GodownError(Code.BAD_BODY, "duplicate recipient")
        return Envelope(nonce, ct, tuple(wrapped))


@dataclass(frozen=True)
class SealSecrets:
    """What `seal` otherwise draws at random, given instead: only so that the published
    test vectors (node/tools/vectors.py) show every sealed byte. Never use it to seal
    real data: a content key, nonce or ephemeral key used twice breaks the encryption."""

    content_key: bytes
    nonce: bytes
    ephemeral: tuple[bytes, ...]
    """One X25519 secret key per recipient, in the order of the sorted recipient ids."""


def wrap_key(key: bytes, recipient_pub: bytes, ephemeral_secret: bytes) -> bytes:
    """`crypto_box_seal(key, recipient_pub)` with a given ephemeral secret: what libsodium
    computes with a fresh one (and what `SealedBox` decrypts)."""
    epk = nacl.bindings.crypto_scalarmult_base(ephemeral_secret)
    nonce = nacl.bindings.crypto_generichash_blake2b_salt_personal(epk + recipient_pub, digest_size=24)
    return epk + nacl.bindings.crypto_box(key, nonce, recipient_pub, ephemeral_secret)


def seal(
    plaintext: bytes, recipients: Mapping[str, bytes], associated: bytes, *, secrets: SealSecrets | None = None
) -> Envelope:
    """Encrypt `plaintext` once and wrap its key for every recipient (id → X25519 public key).
    `secrets` is for test vectors only (see `SealSecrets`)."""
    if not recipients:
        raise GodownError(Code.MISSING_RECIPIENT, "an envelope needs at least one recipient")
    ordered = sorted(recipients.items())
    if secrets is None:
        key = nacl.utils.random(KEY_BYTES)
        nonce = nacl.utils.random(NONCE_BYTES)
        wrapped = tuple((rid, nacl.public.SealedBox(nacl.public.PublicKey(pub)).encrypt(key)) for rid, pub in ordered)
    else:
        key, nonce = secrets.content_key, secrets.nonce
        assert len(key) == KEY_BYTES and len(nonce) == NONCE_BYTES, "content key 32 bytes, nonce 24"
        assert len(secrets.ephemeral) == len(ordered), "one ephemeral secret per recipient"
        wrapped = tuple((rid, wrap_key(key, pub, esk)) for (rid, pub), esk in zip(ordered, secrets.ephemeral))
    ct = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associated, nonce, key)
    return Envelope(nonce, ct, wrapped)


def open_envelope(envelope: Envelope, recipient_id: str, enc_secret: bytes, associated: bytes) -> bytes:
    """Decrypt as one recipient. `not_recipient` if the id is not listed or the key
    cannot unwrap; `tampered` if ciphertext or associated data were changed."""
    wrapped = dict(envelope.wrapped).get(recipient_id)
    if wrapped is None:
        raise GodownError(Code.NOT_RECIPIENT, f"{recipient_id} is not a recipient of this payload")
    try:
        key = nacl.public.SealedBox(nacl.public.PrivateKey(enc_secret)).decrypt(wrapped)
    except nacl.exceptions.CryptoError:
        raise GodownError(Code.NOT_RECIPIENT, "this key cannot open the wrapped content key") from None
    try:
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            envelope.ciphertext, associated, envelope.nonce, key
        )
    except nacl.exceptions.CryptoError:
        raise GodownError(Code.TAMPERED, "payload or its report fields were altered") from None
