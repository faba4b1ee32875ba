"""The node's RPC as typed calls and answers, shared by the sync `Client` and the
`AsyncClient`: each method is a `Call` (HTTP method, path, body, and how to read the
answer), so the two clients differ only in how they send it.

Domain views (cases, lots, devices, alarms, proposals, members) are returned as the
node's JSON documents (see `GET /openapi.json`): their fields belong to the contracts'
views and are documented there, not copied here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

from primitives import codec
from primitives.block import Block, Commit
from primitives.errors import Code, GodownError
from primitives.state_proof import StateProof
from primitives.tx import SignedTx

T = TypeVar("T")
VIEWS = ("case", "lot", "device", "alarm", "proposal")
LISTS = ("cases", "lots", "devices", "alarms", "blocks", "txs", "reports")
"""The paged list endpoints (`GET /v1/<name>`): each takes its filters, `limit` and `cursor`."""


@dataclass(frozen=True)
class Status:
    chain_id: str
    node_id: str
    height: int
    head_hash: str
    state_certified: bool
    validators: tuple[str, ...]
    doc: Mapping[str, Any]
    """The whole answer: engine, peers, storage and mempool figures too."""


@dataclass(frozen=True)
class Submitted:
    """What the node said of one submitted transaction: `code` is `accepted` or
    `committed` (then with height, index and the result code), or the refusal's code."""

    tx_id: str | None
    code: str
    height: int | None = None
    index: int | None = None
    result: str | None = None
    message: str | None = None

    @property
    def committed(self) -> bool:
        return self.code == "committed"


@dataclass(frozen=True)
class TxInfo:
    """A transaction the node knows: `status` is `committed` (with height, index, result) or `pending`."""

    tx_id: str
    status: str
    signed: SignedTx
    height: int | None
    index: int | None
    result: str | None

    @property
    def type(self) -> str:
        return self.signed.tx.type

    @property
    def body(self) -> Mapping[str, Any]:
        return self.signed.tx.body


@dataclass(frozen=True)
class BlockInfo:
    """A committed block (with its transactions' result codes) and its commit certificate."""

    height: int
    hash: str
    block: Block
    commit: Commit | None


@dataclass(frozen=True)
class StateEntry:
    """A state entry with its Merkle proof against `state_root`, the root after `height`
    (certified by the header of `height + 1`)."""

    key: bytes
    value: Any
    value_raw: bytes | None
    height: int
    state_root: bytes
    proof: StateProof

    @property
    def exists(self) -> bool:
        return self.value_raw is not None


@dataclass(frozen=True)
class Account:
    id: str
    committed_nonce: int
    next_nonce: int
    """The committed nonce plus this node's pending transactions of the sender."""


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint: its items (the node's JSON documents) and the cursor
    of the next page (None when there is no more)."""

    items: list[dict[str, Any]]
    next: str | None


@dataclass(frozen=True)
class Call(Generic[T]):
    """One RPC request and the reader of its answer."""

    method: str
    path: str
    read: Callable[[Any], T]
    body: bytes | None = None
    ctype: str = "application/json"


def error_from(status: int, data: bytes) -> GodownError:
    """The node's error answer as a `GodownError` with the node's code."""
    try:
        doc = json.loads(data) if data else None
    except ValueError:
        doc = None
    err = doc.get("error", {}) if isinstance(doc, dict) else {}
    err = err if isinstance(err, dict) else {}
    try:
        code = Code(err.get("code", "internal"))
    except ValueError:
        code = Code.INTERNAL
    return GodownError(code, str(err.get("message", f"HTTP {status}")))


def _segment(value: str) -> str:
    return quote(value, safe="")


def _status(doc: Any) -> Status:
    return Status(
        doc["chain_id"],
        doc["node_id"],
        int(doc["height"]),
        doc["head_hash"],
        bool(doc.get("state_certified")),
        tuple(doc.get("validators", ())),
        doc,
    )


def _submitted(doc: Any) -> Submitted:
    return Submitted(
        doc.get("tx_id"), doc["code"], doc.get("height"), doc.get("index"), doc.get("result"), doc.get("message")
    )


def _tx(doc: Any) -> TxInfo:
    signed = SignedTx.decode(bytes.fromhex(doc["raw"]))
    return TxInfo(doc["tx_id"], doc["status"], signed, doc.get("height"), doc.get("index"), doc.get("result"))


def _block(doc: Any) -> BlockInfo:
    commit = Commit.decode(bytes.fromhex(doc["commit_raw"])) if doc.get("commit_raw") else None
    return BlockInfo(int(doc["height"]), doc["hash"], Block.decode(bytes.fromhex(doc["raw"])), commit)


def _state(doc: Any) -> StateEntry:
    raw = doc.get("value_raw")
    return StateEntry(
        bytes.fromhex(doc["key"]),
        doc.get("value"),
        bytes.fromhex(raw) if raw is not None else None,
        int(doc["height"]),
        bytes.fromhex(doc["state_root"]),
        StateProof.from_json(doc["proof"]),
    )


def _account(doc: Any) -> Account:
    return Account(doc["id"], int(doc["committed_nonce"]), int(doc["next_nonce"]))


def _doc(doc: Any) -> dict[str, Any]:
    return dict(doc)


def status() -> Call[Status]:
    return Call("GET", "/v1/status", _status)


def tx(tx_id: str) -> Call[TxInfo]:
    return Call("GET", f"/v1/txs/{_segment(tx_id)}", _tx)


def block(height: int | str = "latest") -> Call[BlockInfo]:
    return Call("GET", f"/v1/blocks/{_segment(str(height))}", _block)


def state(key: bytes | str) -> Call[StateEntry]:
    """A state key as bytes (sent as 0x-hex) or as text."""
    path = "0x" + key.hex() if isinstance(key, bytes) else _segment(key)
    return Call("GET", f"/v1/state/{path}", _state)


def view(kind: str, ident: str) -> Call[dict[str, Any]]:
    """A domain view: `kind` is one of `VIEWS`."""
    if kind not in VIEWS:
        raise GodownError(Code.MALFORMED, f"no view {kind!r}; one of {', '.join(VIEWS)}")
    return Call("GET", f"/v1/{kind}s/{_segment(ident)}", _doc)


def members() -> Call[list[dict[str, Any]]]:
    return Call("GET", "/v1/members", lambda doc: list(doc["members"]))


def validators() -> Call[dict[str, Any]]:
    """The current validators and a scheduled change (`pending`, or None)."""
    return Call("GET", "/v1/validators", _doc)


def proposals(state: str | None = None, limit: int = 100) -> Call[list[dict[str, Any]]]:
    query = urlencode({"limit": limit, **({"state": state} if state else {})})
    return Call("GET", f"/v1/proposals?{query}", lambda doc: list(doc["proposals"]))


def listing(
    name: str, filters: Mapping[str, str | int] | None = None, limit: int = 50, cursor: str | None = None
) -> Call[Page]:
    """A page of list `name` (one of `LISTS`) with these filters, e.g. `listing("cases", {"party": bank})`."""
    if name not in LISTS:
        raise GodownError(Code.MALFORMED, f"no list {name!r}; one of {', '.join(LISTS)}")
    query = urlencode({**(filters or {}), "limit": limit, **({"cursor": cursor} if cursor else {})})
    return Call("GET", f"/v1/{name}?{query}", lambda doc: Page(list(doc[name]), doc["next"]))


def whoami() -> Call[dict[str, Any]]:
    """The member this node belongs to and what it serves (opens_reports, token_required)."""
    return Call("GET", "/v1/whoami", _doc)


def lot_history(lot_id: str) -> Call[list[dict[str, Any]]]:
    """The lot's quantity held after each transaction that changed it, oldest first."""
    return Call("GET", f"/v1/lots/{_segment(lot_id)}/history", lambda doc: list(doc["points"]))


def validators_health() -> Call[list[dict[str, Any]]]:
    return Call("GET", "/v1/validators/health", lambda doc: list(doc["validators"]))


def audit() -> Call[dict[str, Any]]:
    """Replay the node's chain from genesis on the node (`409 audit_running` while one runs)."""
    return Call("POST", "/v1/audit", _doc, b"")


def account(member_id: str) -> Call[Account]:
    return Call("GET", f"/v1/accounts/{_segment(member_id)}", _account)


def submit(signed: SignedTx, wait_ms: int = 0) -> Call[Submitted]:
    """One transaction; a refusal at admission comes back as the node's error."""
    body = json.dumps({"tx": signed.tx_bytes.hex(), "sig": signed.sig.hex()}).encode()
    return Call("POST", f"/v1/txs?wait_ms={int(wait_ms)}", _submitted, body)


def submit_many(txs: Sequence[SignedTx], wait_ms: int = 0) -> Call[list[Submitted]]:
    """Several transactions in one request (msgpack); each answer carries its own code."""
    body = codec.encode([t.to_dict() for t in txs])
    return Call(
        "POST",
        f"/v1/txs?wait_ms={int(wait_ms)}",
        lambda doc: [_submitted(r) for r in doc["results"]],
        body,
        "application/msgpack",
    )


def events_path(from_height: int, kinds: Sequence[str] = (), match: Mapping[str, str] | None = None) -> str:
    """The `/v1/events` path resuming at `from_height`, with kind and field filters."""
    query: dict[str, str] = {**(match or {}), "from_height": str(from_height)}
    if kinds:
        query["kinds"] = ",".join(kinds)
    return f"/v1/events?{urlencode(query)}"
