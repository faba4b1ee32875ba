"""Signing transactions for any type, and building their bodies from loose
field values: the part of the client library that turns a member's intent into
the canonical signed bytes nodes accept.

`build_body` takes `--body` JSON and `--set field=value` pairs; each value is
converted to the type the contract registry declares for that field (hex for
bytes, integers for amounts and times), so users never hand-craft msgpack.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from node.client.builders import Body
from node.client.rpc import RpcClient
from primitives.errors import Code, GodownError
from primitives.keys import KeyPair
from primitives.tx import SignedTx, Tx


@dataclass
class NonceBook:
    """Next nonce per signer (a rejected transaction consumes its nonce too); safe to
    share between threads that sign for the same members."""

    next: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def take(self, signer: KeyPair) -> int:
        with self._lock:
            n = self.next.get(signer.id, 0)
            self.next[signer.id] = n + 1
            return n

    def set(self, signer_id: str, next_nonce: int) -> None:
        """Start (or restart, e.g. after `bad_nonce`) a signer's count at `next_nonce`."""
        with self._lock:
            self.next[signer_id] = next_nonce


def sign_tx(
    signer: KeyPair, chain_id: str, nonce: int, tx_type: str, body: Mapping[str, Any], valid_until_ms: int | None = None
) -> SignedTx:
    """A transaction of any type, signed by its sender."""
    return Tx(chain_id, tx_type, signer.id, nonce, dict(body), valid_until_ms).sign(signer)


@dataclass(frozen=True)
class Signer:
    """A member's (or a device's) key on one chain, with the nonce book that numbers its
    transactions: `sign` turns a built `Body` (`node.client.builders`) into the signed
    bytes nodes accept. The envelope's own expiry is `valid_until_ms` here, apart from
    any body field of that name."""

    key: KeyPair
    chain_id: str
    nonces: NonceBook = field(default_factory=NonceBook)

    @staticmethod
    def for_node(client: NonceSource, key: KeyPair, nonces: NonceBook | None = None) -> Signer:
        """A signer whose chain id and next nonce are the node's."""
        book = nonces or NonceBook()
        book.set(key.id, client.next_nonce(key.id))
        return Signer(key, client.status().chain_id, book)

    def sign(self, body: Body, valid_until_ms: int | None = None, nonce: int | None = None) -> SignedTx:
        """Sign with the next nonce from the book (or `nonce`, which the book then follows)."""
        if nonce is None:
            nonce = self.nonces.take(self.key)
        else:
            self.nonces.set(self.key.id, nonce + 1)
        return sign_tx(self.key, self.chain_id, nonce, body.type, body.fields, valid_until_ms)

    def resync(self, client: NonceSource) -> None:
        """Take the node's next nonce again (after `bad_nonce`, or transactions signed elsewhere)."""
        self.nonces.set(self.key.id, client.next_nonce(self.key.id))


class _HasChainId(Protocol):
    @property
    def chain_id(self) -> str: ...


class NonceSource(Protocol):
    """What `Signer` asks of a client (`node.client.sync.Client` has both)."""

    def next_nonce(self, member_id: str) -> int: ...

    def status(self) -> _HasChainId: ...


def _type_name(t: object) -> str:
    return t.__name__ if isinstance(t, type) else str(t)


def convert_field(tx_type: str, name: str, value: Any) -> Any:
    """Coerce a CLI/JSON value to the declared field type of `tx_type`."""
    from contracts.registry import TX_TYPES

    spec = TX_TYPES.get(tx_type)
    if spec is None:
        raise GodownError(Code.UNKNOWN_TX_TYPE, f"unknown transaction type {tx_type!r}; see /docs/transactions")
    declared = {f.name: _type_name(f.type) for f in spec.fields}
    if name not in declared:
        raise GodownError(Code.BAD_BODY, f"{tx_type} has no field {name!r}; fields: {', '.join(declared)}")
    want = declared[name]
    try:
        if want == "int":
            return value if isinstance(value, int) else int(str(value), 0)
        if want == "bytes":
            return value if isinstance(value, bytes) else bytes.fromhex(str(value))
        if want == "bool":
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if want in ("list", "dict", "map"):
            return value if isinstance(value, (list, dict)) else json.loads(str(value))
        return value if isinstance(value, str) else str(value)
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to parse
        raise GodownError(Code.BAD_BODY, f"field {name} must be {want}") from None


def build_body(tx_type: str, body_json: str | None, fields: Iterable[str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if body_json:
        try:
            doc = json.loads(body_json)
        except (ValueError, RecursionError):
            raise GodownError(Code.BAD_BODY, "--body is not JSON") from None
        if not isinstance(doc, dict):
            raise GodownError(Code.BAD_BODY, "--body must be a JSON object")
        raw.update(doc)
    for item in fields:
        if "=" not in item:
            raise GodownError(Code.BAD_BODY, f"--set takes FIELD=VALUE, not {item!r}")
        k, v = item.split("=", 1)
        raw[k.strip()] = v
    return {k: convert_field(tx_type, k, v) for k, v in raw.items()}


def sign_and_submit(
    client: RpcClient,
    key: KeyPair,
    tx_type: str,
    body: Mapping[str, Any],
    wait: bool = True,
    nonce: int | None = None,
    chain_id: str | None = None,
) -> dict[str, Any]:
    """Sign `body` as `key` (chain id and next nonce asked of the node unless given) and
    submit it; with `wait`, the answer says how it was committed."""
    chain = chain_id or client.status()["chain_id"]
    n = nonce if nonce is not None else client.next_nonce(key.id)
    return client.submit(sign_tx(key, chain, n, tx_type, body), wait_ms=30_000 if wait else 0)


def require_ok(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer of a committed transaction, or its rejection code raised (a refusal
    inside the block is an error too, not only one at admission)."""
    result = answer.get("result")
    if result is not None and result != "ok":
        try:
            code = Code(result)
        except ValueError:
            code = Code.BAD_BODY
        raise GodownError(code, f"{answer.get('tx_id', 'transaction')} was committed as refused: {result}")
    return answer


def submit_from_cli(
    key_file: str,
    tx_type: str,
    body_json: str | None,
    fields: Iterable[str],
    nonce: int | None,
    chain_id: str | None,
    wait: bool,
    rpc_url: str,
    token: str | None,
) -> dict[str, Any]:
    key = KeyPair.load(key_file)
    body = build_body(tx_type, body_json, fields)
    return sign_and_submit(RpcClient(rpc_url, token), key, tx_type, body, wait, nonce, chain_id)
