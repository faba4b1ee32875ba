"""Who signed what: a two-method signer/verifier seam.

Production uses Ed25519 through `primitives.keys`; the simulator may use
`FakeSigner`/`FakeVerifier` (a keyed SHA-256, about 1 µs) so that thousands of
seeded runs stay fast. Fakes are still unforgeable inside the simulator: a
Byzantine replica there holds only its own secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from primitives.keys import KeyPair, verify_signature


class Signer(Protocol):
    """Signs bytes as this replica."""

    def sign(self, message: bytes) -> bytes: ...


class Verifier(Protocol):
    """Checks that `node_id` signed `message`."""

    def verify(self, node_id: str, message: bytes, signature: bytes) -> bool: ...


@runtime_checkable
class KeyRing(Protocol):
    """A verifier that can learn the keys of validators scheduled later (membership changes).
    Knowing a key is not membership: the replica still refuses ids outside the set that
    governs a message's height."""

    def add_keys(self, public_keys: Mapping[str, bytes]) -> None: ...


class Ed25519Signer:
    """Signs with the node's Ed25519 key."""

    def __init__(self, keys: KeyPair) -> None:
        self._keys = keys

    def sign(self, message: bytes) -> bytes:
        return self._keys.sign(message)


class Ed25519Verifier:
    """Verifies against the validators' Ed25519 public keys (id → 32-byte key)."""

    def __init__(self, public_keys: Mapping[str, bytes]) -> None:
        self._keys = dict(public_keys)

    def add_keys(self, public_keys: Mapping[str, bytes]) -> None:
        """Learn more validators' keys. A node id names one key for the life of the chain (it is
        derived from it), so a different key for a known id is refused (ValueError)."""
        for node_id, pub in public_keys.items():
            old = self._keys.get(node_id)
            if old is not None and old != pub:
                raise ValueError(f"validator {node_id!r} already has another key")
        self._keys.update(public_keys)

    def verify(self, node_id: str, message: bytes, signature: bytes) -> bool:
        pub = self._keys.get(node_id)
        return pub is not None and verify_signature(pub, message, signature)


def _fake_sig(secret: bytes, message: bytes) -> bytes:
    return hashlib.sha256(secret + message).digest() * 2


def fake_secret(node_id: str) -> bytes:
    """The simulator's per-node secret (derived from the id; fine for a closed simulation)."""
    return hashlib.sha256(b"godown-sim-secret:" + node_id.encode()).digest()


class FakeSigner:
    """Keyed-hash stand-in for Ed25519 (64-byte signatures), for the simulator only."""

    def __init__(self, node_id: str) -> None:
        self._secret = fake_secret(node_id)

    def sign(self, message: bytes) -> bytes:
        return _fake_sig(self._secret, message)


class FakeVerifier:
    """Checks `FakeSigner` signatures of a known set of node ids."""

    def __init__(self, node_ids: list[str] | tuple[str, ...]) -> None:
        self._secrets = {n: fake_secret(n) for n in node_ids}

    def add_keys(self, public_keys: Mapping[str, bytes]) -> None:
        """Learn more ids (a fake key is derived from the id, so the given bytes are ignored)."""
        for n in public_keys:
            self._secrets.setdefault(n, fake_secret(n))

    def verify(self, node_id: str, message: bytes, signature: bytes) -> bool:
        secret = self._secrets.get(node_id)
        return secret is not None and _fake_sig(secret, message) == signature
