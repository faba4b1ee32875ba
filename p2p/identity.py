"""libp2p identities derived from godown's Ed25519 signing keys.

A node's peer id is the standard libp2p id of its Ed25519 signing key
(`12D3KooW…`), so every node can compute every validator's peer id from the
genesis `sign_pub` alone and the allowlist needs no second key distribution.
"""

from __future__ import annotations

import nacl.signing
from libp2p.crypto.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from libp2p.crypto.keys import KeyPair as Libp2pKeyPair
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from primitives.errors import Code, GodownError


def libp2p_key_pair(sign_seed: bytes) -> Libp2pKeyPair:
    """The libp2p key pair for a 32-byte Ed25519 seed (`primitives.keys.KeyPair.sign_seed`)."""
    if len(sign_seed) != 32:
        raise GodownError(Code.BAD_KEY_FILE, "an Ed25519 seed is 32 bytes")
    private = Ed25519PrivateKey(nacl.signing.SigningKey(sign_seed))
    return Libp2pKeyPair(private, private.get_public_key())


def peer_id(sign_pub: bytes) -> ID:
    """The libp2p peer id of a 32-byte Ed25519 public key."""
    if len(sign_pub) != 32:
        raise GodownError(Code.BAD_KEY_FILE, "an Ed25519 public key is 32 bytes")
    return ID.from_pubkey(Ed25519PublicKey.from_bytes(sign_pub))


def peer_id_str(sign_pub: bytes) -> str:
    """The peer id as text ("12D3KooW…"), as it appears in multiaddrs and logs."""
    return peer_id(sign_pub).to_base58()


def tcp_multiaddr(port: int, host: str = "127.0.0.1") -> str:
    """The listen/dial multiaddr for an IPv4 TCP endpoint, e.g. "/ip4/127.0.0.1/tcp/7001"."""
    if not 0 <= port <= 65535:
        raise GodownError(Code.BAD_CONFIG, f"port {port} out of range")
    return f"/ip4/{host}/tcp/{port}"


def full_multiaddr(port: int, sign_pub: bytes, host: str = "127.0.0.1") -> str:
    """The dialable address including the peer id, ".../tcp/PORT/p2p/12D3KooW…"."""
    return f"{tcp_multiaddr(port, host)}/p2p/{peer_id_str(sign_pub)}"


def transport_part(addr: str, sign_pub: bytes) -> Multiaddr:
    """The transport part of `addr`; a `/p2p/` suffix must name the key's own peer id.

    Raises `bad_config` when the address is not a multiaddr or names another peer.
    """
    try:
        maddr = Multiaddr(addr)
    except Exception as exc:  # multiaddr raises several unrelated types
        raise GodownError(Code.BAD_CONFIG, f"not a multiaddr: {addr!r} ({exc.__class__.__name__})") from None
    try:
        named = maddr.value_for_protocol("p2p")
    except Exception:
        named = None
    if named is None:
        return maddr
    if named != peer_id_str(sign_pub):
        raise GodownError(Code.BAD_CONFIG, f"address {addr} names peer {named}, not the key's peer id")
    return maddr.decapsulate(Multiaddr(f"/p2p/{named}"))
