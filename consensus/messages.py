"""PBFT messages: frozen dataclasses with one canonical encoding.

Every message names its sender and carries the sender's signature. What is
signed is chosen so that signatures can be re-used as evidence:

- PRE-PREPARE and PREPARE sign the same `prepare_vote_bytes`, so the primary's
  pre-prepare counts as its prepare vote and a prepared certificate is just
  2f+1 (validator, signature) pairs;
- COMMIT signs exactly `primitives.block.commit_vote_bytes`, so 2f+1 COMMITs
  are a `primitives.block.Commit` certificate the node stores beside the block;
- CHECKPOINT signs (height, state_root);
- VIEW-CHANGE and NEW-VIEW sign their whole canonical body.

`encode_message`/`decode_message` are the wire format; decoding is strict
(exact field sets, exact types, canonical bytes) and raises `GodownError`
with code `malformed`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Union

from primitives import codec
from primitives.block import commit_vote_bytes
from primitives.errors import Code, GodownError

MAX_CONSENSUS_MESSAGE = 32 * 1024 * 1024
Votes = tuple[tuple[str, bytes], ...]


@lru_cache(maxsize=4096)
def prepare_vote_bytes(chain_id: str, view: int, height: int, digest: bytes) -> bytes:
    """What PRE-PREPARE and PREPARE sign (memoised: every replica's vote on one block
    signs the same bytes, and canonical encoding is most of a vote's CPU cost)."""
    return codec.encode({"kind": "prepare", "chain_id": chain_id, "view": view, "height": height, "digest": digest})


@lru_cache(maxsize=4096)
def commit_bytes(chain_id: str, view: int, height: int, digest: bytes) -> bytes:
    """What COMMIT signs: exactly `primitives.block.commit_vote_bytes` (memoised)."""
    return commit_vote_bytes(chain_id, height, view, digest)


def checkpoint_vote_bytes(chain_id: str, height: int, state_root: bytes) -> bytes:
    """What CHECKPOINT signs."""
    return codec.encode({"kind": "checkpoint", "chain_id": chain_id, "height": height, "state_root": state_root})


@dataclass(frozen=True)
class PrePrepare:
    view: int
    height: int
    digest: bytes
    payload: bytes
    sender: str
    sig: bytes

    def signed_bytes(self, chain_id: str) -> bytes:
        return prepare_vote_bytes(chain_id, self.view, self.height, self.digest)


@dataclass(frozen=True)
class Prepare:
    view: int
    height: int
    digest: bytes
    sender: str
    sig: bytes

    def signed_bytes(self, chain_id: str) -> bytes:
        return prepare_vote_bytes(chain_id, self.view, self.height, self.digest)


@dataclass(frozen=True)
class CommitVote:
    view: int
    height: int
    digest: bytes
    sender: str
    sig: bytes

    def signed_bytes(self, chain_id: str) -> bytes:
        return commit_bytes(chain_id, self.view, self.height, self.digest)


@dataclass(frozen=True)
class Checkpoint:
    height: int
    state_root: bytes
    sender: str
    sig: bytes

    def signed_bytes(self, chain_id: str) -> bytes:
        return checkpoint_vote_bytes(chain_id, self.height, self.state_root)


@dataclass(frozen=True)
class Proof:
    """Evidence that `payload` (with `digest`) was prepared or committed at (view, height):
    2f+1 prepare votes (kind "prepare") or 2f+1 commit votes (kind "commit")."""

    kind: str
    view: int
    height: int
    digest: bytes
    payload: bytes
    votes: Votes


@dataclass(frozen=True)
class ViewChange:
    new_view: int
    stable_height: int
    stable_root: bytes
    stable_votes: Votes
    proofs: tuple[Proof, ...]
    sender: str
    sig: bytes

    def signed_bytes(self, chain_id: str) -> bytes:
        body = _to_dict(self)
        del body["sig"]
        body["chain_id"] = chain_id
        return codec.encode(body)


@dataclass(frozen=True)
class NewView:
    view: int
    view_changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]
    sender: str
    sig: bytes

    def signed_bytes(self, chain_id: str) -> bytes:
        body = _to_dict(self)
        del body["sig"]
        body["chain_id"] = chain_id
        return codec.encode(body)


Message = Union[PrePrepare, Prepare, CommitVote, Checkpoint, ViewChange, NewView]

_TYPES: dict[str, type] = {
    "preprepare": PrePrepare,
    "prepare": Prepare,
    "commit": CommitVote,
    "checkpoint": Checkpoint,
    "viewchange": ViewChange,
    "newview": NewView,
}
_NAMES = {cls: name for name, cls in _TYPES.items()}


def _votes_to(v: Votes) -> list[list[Any]]:
    return [[s, g] for s, g in v]


def _to_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Proof):
        return {
            "kind": obj.kind,
            "view": obj.view,
            "height": obj.height,
            "digest": obj.digest,
            "payload": obj.payload,
            "votes": _votes_to(obj.votes),
        }
    out: dict[str, Any] = {"type": _NAMES[type(obj)]}
    for name in obj.__dataclass_fields__:
        value = getattr(obj, name)
        if name in ("stable_votes",):
            value = _votes_to(value)
        elif name == "proofs":
            value = [_to_dict(p) for p in value]
        elif name in ("view_changes", "pre_prepares"):
            value = [_to_dict(m) for m in value]
        out[name] = value
    return out


def encode_message(msg: Message) -> bytes:
    """The canonical wire bytes of a message."""
    return codec.encode(_to_dict(msg))


def _bad(why: str) -> GodownError:
    return GodownError(Code.MALFORMED, why)


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise _bad("expected a non-negative integer")
    return v


def _bytes(limit: int) -> Callable[[Any], bytes]:
    def check(v: Any) -> bytes:
        if not isinstance(v, bytes) or len(v) > limit:
            raise _bad("expected bytes")
        return v

    return check


def _str(v: Any) -> str:
    if not isinstance(v, str) or not 0 < len(v) <= 128:
        raise _bad("expected a short string")
    return v


def _votes(v: Any) -> Votes:
    if not isinstance(v, list) or len(v) > 1024:
        raise _bad("votes must be a list")
    out = []
    for pair in v:
        if not isinstance(pair, list) or len(pair) != 2:
            raise _bad("a vote is [sender, signature]")
        out.append((_str(pair[0]), _bytes(64)(pair[1])))
    return tuple(out)


def _proof(v: Any) -> Proof:
    d = _fields(v, {"kind", "view", "height", "digest", "payload", "votes"})
    if d["kind"] not in ("prepare", "commit"):
        raise _bad("proof kind must be prepare or commit")
    return Proof(
        d["kind"],
        _int(d["view"]),
        _int(d["height"]),
        _bytes(64)(d["digest"]),
        _bytes(MAX_CONSENSUS_MESSAGE)(d["payload"]),
        _votes(d["votes"]),
    )


def _fields(v: Any, names: set[str]) -> dict[str, Any]:
    if not isinstance(v, dict) or set(v) != names:
        raise _bad("missing or unknown fields")
    return v


def _list_of(conv: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, ...]]:
    def check(v: Any) -> tuple[Any, ...]:
        if not isinstance(v, list) or len(v) > 4096:
            raise _bad("expected a list")
        return tuple(conv(x) for x in v)

    return check


_FIELD_CHECK: dict[str, Callable[[Any], Any]] = {
    "view": _int,
    "new_view": _int,
    "height": _int,
    "stable_height": _int,
    "digest": _bytes(64),
    "state_root": _bytes(64),
    "stable_root": _bytes(64),
    "payload": _bytes(MAX_CONSENSUS_MESSAGE),
    "sender": _str,
    "sig": _bytes(64),
    "stable_votes": _votes,
    "proofs": _list_of(_proof),
}


def _from_dict(doc: Any) -> Message:
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str) or doc["type"] not in _TYPES:
        raise _bad("unknown message type")
    cls = _TYPES[doc["type"]]
    names = {f.name for f in dataclasses.fields(cls)}
    body = _fields(doc, names | {"type"})
    kwargs: dict[str, Any] = {}
    for name in names:
        if name == "view_changes":
            kwargs[name] = tuple(_expect(_from_dict(x), ViewChange) for x in _list_of(lambda x: x)(body[name]))
        elif name == "pre_prepares":
            kwargs[name] = tuple(_expect(_from_dict(x), PrePrepare) for x in _list_of(lambda x: x)(body[name]))
        else:
            kwargs[name] = _FIELD_CHECK[name](body[name])
    return cls(**kwargs)  # type: ignore[no-any-return]


def _expect(msg: Message, cls: type) -> Any:
    if not isinstance(msg, cls):
        raise _bad(f"expected a nested {cls.__name__}")
    return msg


def decode_message(data: bytes) -> Message:
    """Strict inverse of `encode_message`; raises GodownError(malformed) on anything else."""
    return _from_dict(codec.decode(data, max_bytes=MAX_CONSENSUS_MESSAGE))
