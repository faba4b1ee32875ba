"""An independent verifier written from docs/protocol.md alone, as another team would:
PyNaCl, msgpack and the standard library, no godown import. The test suite runs it on
the spec's test vectors and on a live consortium's answers, so that the specification
is enough to check what a node says."""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack
import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def canonical(value: Any) -> bytes:
    """§1: msgpack, bin for bytes, map keys in ascending order at every level."""

    def sort(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: sort(v[k]) for k in sorted(v)}
        if isinstance(v, (list, tuple)):
            return [sort(x) for x in v]
        return v

    return msgpack.packb(sort(value), use_bin_type=True)


def _plain(v: Any, depth: int = 0) -> bool:
    """§1's value model: nil, bool, int, str, bin, arrays, maps with str keys; 32 levels."""
    if depth > 32:
        return False
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x, depth + 1) for k, x in v.items())
    if isinstance(v, list):
        return all(_plain(x, depth + 1) for x in v)
    return v is None or isinstance(v, (bool, int, str, bytes))


def decode(data: bytes) -> Any:
    """§1: strict, by re-encoding — anything not canonical is refused (ValueError)."""
    value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    if not _plain(value) or canonical(value) != data:
        raise ValueError("not canonical msgpack")
    return value


def merkle_root(leaves: list[bytes]) -> bytes:
    """§3: RFC 6962 shape, an odd last node promoted unchanged, sha256('') when empty."""
    if not leaves:
        return sha256(b"")
    level = [sha256(b"\x00" + leaf) for leaf in leaves]
    while len(level) > 1:
        pairs = [sha256(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def check_block(raw_block: bytes) -> tuple[dict[str, Any], bytes]:
    """§3: the header and the block hash, once `txs_root` matches the transactions."""
    block = decode(raw_block)
    if merkle_root(block["txs"]) != block["header"]["txs_root"]:
        raise ValueError("txs_root does not match the transactions")
    return block["header"], sha256(canonical(block["header"]))


def certified_by(raw_commit: bytes, header: dict[str, Any], block_hash: bytes, validators: dict[str, bytes]) -> int:
    """§4: how many distinct validators signed the commit vote; raises below the quorum."""
    commit = decode(raw_commit)
    names = (commit["chain_id"], commit["height"], commit["block_hash"])
    if names != (header["chain_id"], header["height"], block_hash):
        raise ValueError("the certificate is for another block")
    vote = {k: commit[k] for k in ("block_hash", "chain_id", "height", "view")}
    message = canonical({**vote, "kind": "commit"})
    good = set()
    for validator, sig in commit["votes"]:
        try:
            nacl.signing.VerifyKey(validators[validator]).verify(message, sig)
            good.add(validator)
        except (KeyError, nacl.exceptions.BadSignatureError):
            pass
    n = len(validators)
    if len(good) < n - (n - 1) // 3:
        raise ValueError(f"{len(good)} valid signatures, below the quorum of {n}")
    return len(good)


def proves(root: bytes, key: bytes, value: bytes | None, siblings: list[bytes], bucket: bytes | None) -> bool:
    """The 16-way state tree's proof: walk up from the bucket (or empty slot) where
    sha256(key) ends, splicing the hash into each row of 15 siblings at its nibble."""
    path = sha256(key)
    nibble = lambda p, d: (p[d // 2] >> (4 if d % 2 == 0 else 0)) & 15  # noqa: E731
    if bucket is None:
        h = bytes(32)
        if value is not None:
            return False
    else:
        entries = {bucket[o : o + 32]: bucket[o + 32 : o + 64] for o in range(0, len(bucket), 64)}
        if any(nibble(q, d) != nibble(path, d) for q in entries for d in range(len(siblings))):
            return False
        if entries.get(path) != (None if value is None else sha256(value)):
            return False
        h = sha256(b"\x00" + bucket)
    for d in range(len(siblings) - 1, -1, -1):
        cut = nibble(path, d) * 32
        h = sha256(b"\x01" + siblings[d][:cut] + h + siblings[d][cut:])
    return h == root


def open_report(raw_signed: bytes, sender_pub: bytes, recipient: str, enc_secret: bytes) -> Any:
    """§2 and the envelope: check the sender's signature, then unwrap the content key
    and decrypt with the report's clear-text fields as associated data."""
    signed = decode(raw_signed)
    nacl.signing.VerifyKey(sender_pub).verify(signed["tx"], signed["sig"])
    tx = decode(signed["tx"])
    body = tx["body"]
    envelope = body["envelope"]
    ad = canonical({"device": tx["sender"], "seq": body["seq"], "lot": body["lot"], "kind": body["kind"]})
    wrapped = dict(map(tuple, envelope["recipients"]))[recipient]
    key = nacl.public.SealedBox(nacl.public.PrivateKey(enc_secret)).decrypt(wrapped)
    plain = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(envelope["ciphertext"], ad, envelope["nonce"], key)
    return decode(plain)
