"""Blocks, headers and commit certificates (DESIGN §3).

`state_root` and `results_root` in the header of height h are those after
executing h-1, so a primary proposes before executing and a block's hash covers
only what was agreed. A block's own result codes travel beside its header and
are certified by the next header's `results_root`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from primitives import codec
from primitives.errors import Code, GodownError
from primitives.hashing import EMPTY_ROOT, merkle_root, sha256
from primitives.tx import SignedTx

ZERO_HASH = bytes(32)
MAX_BLOCK_BYTES = 16 * 1024 * 1024


def _bad(message: str) -> GodownError:
    return GodownError(Code.BAD_BLOCK, message)


def _int(doc: Mapping[str, Any], name: str) -> int:
    v = doc.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise _bad(f"header field {name} must be a non-negative integer")
    return v


def _hash(doc: Mapping[str, Any], name: str) -> bytes:
    v = doc.get(name)
    if not isinstance(v, bytes) or len(v) != 32:
        raise _bad(f"header field {name} must be 32 bytes")
    return v


@dataclass(frozen=True)
class Header:
    chain_id: str
    height: int
    prev_hash: bytes
    time_ms: int
    view: int
    proposer: str
    txs_root: bytes
    state_root: bytes
    results_root: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "prev_hash": self.prev_hash,
            "time_ms": self.time_ms,
            "view": self.view,
            "proposer": self.proposer,
            "txs_root": self.txs_root,
            "state_root": self.state_root,
            "results_root": self.results_root,
        }

    def hash(self) -> bytes:
        """The block hash: SHA-256 of the canonical header."""
        return sha256(codec.encode(self.to_dict()))

    @staticmethod
    def from_dict(doc: Any) -> Header:
        if not isinstance(doc, dict) or set(doc) != set(Header.__dataclass_fields__):
            raise _bad("header has missing or unknown fields")
        if not isinstance(doc["chain_id"], str) or not isinstance(doc["proposer"], str):
            raise _bad("chain_id and proposer must be strings")
        return Header(
            chain_id=doc["chain_id"],
            height=_int(doc, "height"),
            prev_hash=_hash(doc, "prev_hash"),
            time_ms=_int(doc, "time_ms"),
            view=_int(doc, "view"),
            proposer=doc["proposer"],
            txs_root=_hash(doc, "txs_root"),
            state_root=_hash(doc, "state_root"),
            results_root=_hash(doc, "results_root"),
        )


def txs_root(txs: Sequence[SignedTx]) -> bytes:
    """Merkle root over the signed transactions' canonical bytes."""
    return merkle_root([t.encode() for t in txs])


def results_root(results: Sequence[str]) -> bytes:
    """Merkle root over the result codes (utf-8) of one block's transactions, in order."""
    return merkle_root([r.encode() for r in results])


@dataclass(frozen=True)
class Block:
    """A header, its transactions, and (once executed) their result codes."""

    header: Header
    txs: tuple[SignedTx, ...]
    results: tuple[str, ...] = ()

    @property
    def height(self) -> int:
        return self.header.height

    def hash(self) -> bytes:
        return self.header.hash()

    def with_results(self, results: Sequence[str]) -> Block:
        return Block(self.header, self.txs, tuple(results))

    def to_dict(self) -> dict[str, Any]:
        return {
            "header": self.header.to_dict(),
            "txs": [t.encode() for t in self.txs],
            "results": list(self.results),
        }

    def encode(self) -> bytes:
        return codec.encode(self.to_dict())

    def check_txs_root(self) -> None:
        if txs_root(self.txs) != self.header.txs_root:
            raise _bad(f"txs_root does not match the transactions of height {self.height}")

    @staticmethod
    def from_dict(doc: Any) -> Block:
        header, encoded, results = Block.parts_of(doc)
        return Block(header, tuple([SignedTx.decode(raw) for raw in encoded]), results)

    @staticmethod
    def parts_of(doc: Any) -> tuple[Header, list[bytes], tuple[str, ...]]:
        """The header, the transactions' encodings and the result codes of a decoded block
        document, shape-checked, without decoding each transaction: what a store's
        integrity check needs (txs_root is over the encodings) at a fraction of the cost."""
        if not isinstance(doc, dict) or set(doc) != {"header", "txs", "results"}:
            raise _bad("block must have exactly header, txs and results")
        if not isinstance(doc["txs"], list) or not isinstance(doc["results"], list):
            raise _bad("txs and results must be lists")
        if not all(isinstance(r, str) for r in doc["results"]):
            raise _bad("results must be strings")
        if not all(isinstance(raw, bytes) for raw in doc["txs"]):
            raise _bad("each transaction must be bytes")
        return Header.from_dict(doc["header"]), doc["txs"], tuple(doc["results"])

    @staticmethod
    def decode(data: bytes) -> Block:
        return Block.from_dict(codec.decode(data, max_bytes=MAX_BLOCK_BYTES))

    @staticmethod
    def hash_of(data: bytes) -> bytes:
        """The block hash of encoded block bytes, decoding only the header.

        The hash covers the header alone (the transactions through `txs_root`), so
        consensus can name a proposal cheaply; whoever executes it decodes it strictly
        and checks `txs_root`."""
        return Block.header_of(data).hash()

    @staticmethod
    def header_of(data: bytes) -> Header:
        """The header of encoded block bytes, without decoding the transactions."""
        if len(data) > MAX_BLOCK_BYTES:
            raise GodownError(Code.OVERSIZE, "block too large")
        try:
            doc = msgpack.unpackb(data, raw=False, strict_map_key=True, max_ext_len=0)
        except Exception as exc:  # msgpack raises many unrelated types for bad input
            raise _bad(f"not a block ({exc.__class__.__name__})") from None
        if not isinstance(doc, dict) or set(doc) != {"header", "txs", "results"}:
            raise _bad("block must have exactly header, txs and results")
        return Header.from_dict(doc["header"])


@dataclass(frozen=True)
class Head:
    """What a block must extend: the executed head's height, hash and time, and the
    state and results roots after executing it (height 0: genesis)."""

    chain_id: str
    height: int
    hash: bytes
    time_ms: int
    state_root: bytes
    results_root: bytes
    settled: bool
    """Whether the head's own header already certifies everything after it: the head holds
    no transaction and left the state as its header says. Only an unsettled head may be
    followed by an empty block."""


def head_settled(header: Header | None, state_root_after: bytes) -> bool:
    """`Head.settled` of a head with this header (None: genesis or a restored base) and the
    state root after executing it."""
    return header is None or (header.txs_root == EMPTY_ROOT and header.state_root == state_root_after)


def check_successor(block: Block, head: Head, empty_block_after_ms: int) -> None:
    """Raise `bad_block` unless `block` is a valid next block on `head`: chain, height,
    link, both roots, txs_root, time after the head's, and transactions in it unless it is
    the one empty block that certifies an unsettled head after the quiet interval. What a
    validator checks before voting and what an auditor checks when replaying."""
    h = block.header
    if h.height != head.height + 1:
        raise _bad(f"expected height {head.height + 1}, found {h.height}")
    expect = (head.chain_id, head.hash, head.state_root, head.results_root)
    got = (h.chain_id, h.prev_hash, h.state_root, h.results_root)
    for name, want, have in zip(("chain_id", "prev_hash", "state_root", "results_root"), expect, got):
        if want != have:
            raise _bad(f"block {h.height}: {name} does not extend height {head.height}")
    block.check_txs_root()
    if h.time_ms <= head.time_ms:
        raise _bad(f"block {h.height}: time is not after the previous block's")
    if not block.txs:
        if head.settled or empty_block_after_ms <= 0:
            raise _bad(f"block {h.height} is empty, and height {head.height} needs no certifying block")
        if h.time_ms < head.time_ms + empty_block_after_ms:
            raise _bad(f"block {h.height} is empty before the quiet interval of {empty_block_after_ms} ms")


def commit_vote_bytes(chain_id: str, height: int, view: int, block_hash: bytes) -> bytes:
    """What a validator signs to commit a block; consensus COMMIT messages sign exactly
    these bytes, so 2f+1 of them form the certificate stored beside the block."""
    return codec.encode(
        {"kind": "commit", "chain_id": chain_id, "height": height, "view": view, "block_hash": block_hash}
    )


@dataclass(frozen=True)
class Commit:
    """A commit certificate: validator signatures over `commit_vote_bytes(...)`."""

    chain_id: str
    height: int
    view: int
    block_hash: bytes
    votes: tuple[tuple[str, bytes], ...]  # (validator id, signature), sorted by id

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "view": self.view,
            "block_hash": self.block_hash,
            "votes": [[v, s] for v, s in self.votes],
        }

    def encode(self) -> bytes:
        return codec.encode(self.to_dict())

    @staticmethod
    def from_dict(doc: Any) -> Commit:
        if not isinstance(doc, dict) or set(doc) != {"chain_id", "height", "view", "block_hash", "votes"}:
            raise GodownError(Code.BAD_CERTIFICATE, "commit certificate has missing or unknown fields")
        votes = doc["votes"]
        if not isinstance(votes, list) or not all(
            isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], bytes) for v in votes
        ):
            raise GodownError(Code.BAD_CERTIFICATE, "votes must be [validator, signature] pairs")
        try:
            return Commit(
                chain_id=str(doc["chain_id"]),
                height=_int(doc, "height"),
                view=_int(doc, "view"),
                block_hash=_hash(doc, "block_hash"),
                votes=tuple((v[0], v[1]) for v in votes),
            )
        except GodownError as exc:
            raise GodownError(Code.BAD_CERTIFICATE, exc.message) from None

    @staticmethod
    def decode(data: bytes) -> Commit:
        return Commit.from_dict(codec.decode(data))

    def verify(self, validators: Mapping[str, bytes], header: Header) -> int:
        """Raise `bad_certificate` unless 2f+1 distinct validators signed this header's hash;
        returns how many did."""
        from primitives.keys import verify_signature

        if (self.chain_id, self.height, self.block_hash) != (header.chain_id, header.height, header.hash()):
            raise GodownError(Code.BAD_CERTIFICATE, f"certificate does not match block {header.height}")
        quorum = quorum_size(len(validators))
        message = commit_vote_bytes(self.chain_id, self.height, self.view, self.block_hash)
        good = set()
        for validator, sig in self.votes:
            pub = validators.get(validator)
            if pub is not None and validator not in good and verify_signature(pub, message, sig):
                good.add(validator)
        if len(good) < quorum:
            raise GodownError(
                Code.BAD_CERTIFICATE,
                f"height {self.height}: {len(good)} valid validator signatures, {quorum} needed",
            )
        return len(good)


def max_faulty(n: int) -> int:
    """f: how many of n validators may be faulty."""
    return (n - 1) // 3


def quorum_size(n: int) -> int:
    """n - f: equals 2f+1 when n = 3f+1, and keeps any two quorums overlapping in
    f+1 validators for other n too."""
    return n - max_faulty(n)
