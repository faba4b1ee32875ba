"""Peer ids from godown keys, checked against an independent derivation of the libp2p spec."""

from __future__ import annotations

import pytest
from libp2p.peer.id import ID

from p2p.identity import full_multiaddr, libp2p_key_pair, peer_id, peer_id_str, tcp_multiaddr, transport_part
from primitives.errors import Code, GodownError
from primitives.keys import KeyPair

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def spec_peer_id(sign_pub: bytes) -> str:
    """libp2p peer-id spec: identity multihash of protobuf PublicKey{Type=Ed25519(1), Data=key}."""
    proto = b"\x08\x01\x12\x20" + sign_pub
    return b58encode(b"\x00" + bytes([len(proto)]) + proto)


def test_peer_id_follows_the_spec_and_matches_the_seed() -> None:
    k = KeyPair.generate("n", "bank")
    text = peer_id_str(k.sign_pub)
    assert text.startswith("12D3KooW")
    assert text == spec_peer_id(k.sign_pub)
    assert ID.from_pubkey(libp2p_key_pair(k.sign_seed).public_key) == peer_id(k.sign_pub)


def test_addresses() -> None:
    k = KeyPair.generate("n", "bank")
    assert tcp_multiaddr(7001) == "/ip4/127.0.0.1/tcp/7001"
    full = full_multiaddr(7001, k.sign_pub)
    assert full.endswith("/p2p/" + peer_id_str(k.sign_pub))
    assert str(transport_part(full, k.sign_pub)) == "/ip4/127.0.0.1/tcp/7001"
    assert str(transport_part("/ip4/127.0.0.1/tcp/7001", k.sign_pub)) == "/ip4/127.0.0.1/tcp/7001"


def test_an_address_naming_another_peer_is_refused() -> None:
    a, b = KeyPair.generate("a", "bank"), KeyPair.generate("b", "bank")
    with pytest.raises(GodownError) as err:
        transport_part(full_multiaddr(7001, a.sign_pub), b.sign_pub)
    assert err.value.code is Code.BAD_CONFIG


def test_bad_key_lengths_are_refused() -> None:
    with pytest.raises(GodownError):
        libp2p_key_pair(b"short")
    with pytest.raises(GodownError):
        peer_id(b"\x01" * 31)
