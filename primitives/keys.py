"""Signing (Ed25519) and encryption (X25519) keys, ids derived from them, and key files.

PyNaCl (libsodium) is used for every primitive: on this machine Ed25519 verify is
about twice as fast as `cryptography` and six times pycryptodome, and verification
is the largest per-transaction cost a node pays. Private material never appears
in `repr`, logs or printed output; key files are JSON written with mode 0600.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import nacl.exceptions
import nacl.public
import nacl.signing

from primitives.errors import Code, GodownError
from primitives.hashing import sha256

ROLES = ("warehouse", "bank", "insurer", "guarantor", "borrower", "auditor", "device")

NODE_ROLE = "node"
"""The role written in a node key file: a node's identity, never a member's authority."""


def id_from_public_key(sign_pub: bytes) -> str:
    """A member or device id: first 20 bytes of SHA-256 of the signing public key, hex."""
    return sha256(sign_pub)[:20].hex()


def verify_signature(sign_pub: bytes, message: bytes, signature: bytes) -> bool:
    """True if `signature` is a valid Ed25519 signature of `message` by `sign_pub`."""
    if len(sign_pub) != 32 or len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(sign_pub).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class KeyPair:
    """One participant's keys: Ed25519 for signing, X25519 for receiving sealed payloads."""

    name: str
    role: str
    sign_seed: bytes = field(repr=False)
    enc_secret: bytes = field(repr=False)
    alias: str | None = None

    @staticmethod
    def generate(name: str, role: str, alias: str | None = None) -> KeyPair:
        """Fresh random keys (from libsodium's CSPRNG)."""
        if role not in ROLES and role != NODE_ROLE:
            raise GodownError(Code.BAD_BODY, f"unknown role {role!r}; expected one of {', '.join(ROLES)} or node")
        return KeyPair(
            name=name,
            role=role,
            sign_seed=bytes(nacl.signing.SigningKey.generate()),
            enc_secret=bytes(nacl.public.PrivateKey.generate()),
            alias=alias,
        )

    # derived once per key: a node asks for its id and signs on every consensus step,
    # and deriving an Ed25519 key from its seed costs as much as a signature
    @cached_property
    def _signing_key(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.sign_seed)

    @cached_property
    def sign_pub(self) -> bytes:
        return bytes(self._signing_key.verify_key)

    @cached_property
    def enc_pub(self) -> bytes:
        return bytes(nacl.public.PrivateKey(self.enc_secret).public_key)

    @cached_property
    def id(self) -> str:
        """The alias if one was given, else the id derived from the signing key."""
        return self.alias or id_from_public_key(self.sign_pub)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes)."""
        return self._signing_key.sign(message).signature

    def public_record(self) -> dict[str, str]:
        """What others may know: id, name, role and both public keys (hex)."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "sign_pub": self.sign_pub.hex(),
            "enc_pub": self.enc_pub.hex(),
        }

    def to_json(self) -> str:
        doc = self.public_record()
        doc["sign_seed"] = self.sign_seed.hex()
        doc["enc_secret"] = self.enc_secret.hex()
        if self.alias:
            doc["alias"] = self.alias
        return json.dumps(doc, indent=2, sort_keys=True)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key file with mode 0600 (created that way, never world-readable)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self.to_json() + "\n")
        os.chmod(p, 0o600)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> KeyPair:
        """Read a key file; a missing or damaged file is a `bad_key_file` error."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            pair = KeyPair(
                name=str(doc["name"]),
                role=str(doc["role"]),
                sign_seed=bytes.fromhex(doc["sign_seed"]),
                enc_secret=bytes.fromhex(doc["enc_secret"]),
                alias=doc.get("alias"),
            )
            if len(pair.sign_seed) != 32 or len(pair.enc_secret) != 32:
                raise ValueError("key length")
            if doc.get("sign_pub") and bytes.fromhex(doc["sign_pub"]) != pair.sign_pub:
                raise ValueError("public key does not match private key")
        except FileNotFoundError:
            raise GodownError(Code.BAD_KEY_FILE, f"key file {path} not found") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise GodownError(
                Code.BAD_KEY_FILE, f"key file {path} is not a godown key file ({exc.__class__.__name__})"
            ) from None
        return pair
