"""Write-ahead records: what a replica must remember across a crash.

A replica persists, before sending, every vote it signs (PREPARE with the
payload it prepared, COMMIT), every VIEW-CHANGE it starts and every view it
enters, plus the prepared/committed proofs and stable checkpoints it learns.
`Replica(..., records=...)` rebuilds from them, so it never signs two different
blocks for one (view, height) and its VIEW-CHANGEs still carry its proofs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import msgpack

from consensus.messages import Proof, Votes
from primitives import codec
from primitives.errors import Code, GodownError


@dataclass(frozen=True)
class VoteRecord:
    kind: str  # "prepare" or "commit"
    view: int
    height: int
    digest: bytes


@dataclass(frozen=True)
class ProofRecord:
    proof: Proof


@dataclass(frozen=True)
class ViewChangeRecord:
    new_view: int


@dataclass(frozen=True)
class ViewRecord:
    view: int
    floor: int


@dataclass(frozen=True)
class StableRecord:
    height: int
    state_root: bytes
    votes: Votes


Record = Union[VoteRecord, ProofRecord, ViewChangeRecord, ViewRecord, StableRecord]


def encode_record(rec: Record) -> bytes:
    """Canonical bytes of one record."""
    if isinstance(rec, VoteRecord):
        doc: dict[str, Any] = {
            "r": "vote",
            "kind": rec.kind,
            "view": rec.view,
            "height": rec.height,
            "digest": rec.digest,
        }
    elif isinstance(rec, ProofRecord):
        p = rec.proof
        doc = {
            "r": "proof",
            "kind": p.kind,
            "view": p.view,
            "height": p.height,
            "digest": p.digest,
            "payload": p.payload,
            "votes": [[s, g] for s, g in p.votes],
        }
    elif isinstance(rec, ViewChangeRecord):
        doc = {"r": "vc", "new_view": rec.new_view}
    elif isinstance(rec, ViewRecord):
        doc = {"r": "view", "view": rec.view, "floor": rec.floor}
    else:
        doc = {
            "r": "stable",
            "height": rec.height,
            "state_root": rec.state_root,
            "votes": [[s, g] for s, g in rec.votes],
        }
    return codec.encode(doc)


def decode_record(data: bytes, *, checked: bool = True) -> Record:
    """Inverse of `encode_record`; a damaged record is `store_damaged`. `checked=False`
    skips the canonical-form check (re-packing the record to compare it), for records
    already checked: a proof's record holds its whole block, and the log's compaction
    reads every one again."""
    try:
        d = codec.decode(data) if checked else _unchecked(data)
        kind = d["r"]
        if kind == "vote":
            return VoteRecord(str(d["kind"]), int(d["view"]), int(d["height"]), bytes(d["digest"]))
        if kind == "proof":
            votes = tuple((str(s), bytes(g)) for s, g in d["votes"])
            return ProofRecord(
                Proof(str(d["kind"]), int(d["view"]), int(d["height"]), bytes(d["digest"]), bytes(d["payload"]), votes)
            )
        if kind == "vc":
            return ViewChangeRecord(int(d["new_view"]))
        if kind == "view":
            return ViewRecord(int(d["view"]), int(d["floor"]))
        if kind == "stable":
            return StableRecord(
                int(d["height"]), bytes(d["state_root"]), tuple((str(s), bytes(g)) for s, g in d["votes"])
            )
    except (GodownError, KeyError, TypeError, ValueError) as exc:
        raise GodownError(Code.STORE_DAMAGED, f"bad consensus record: {exc}") from None
    raise GodownError(Code.STORE_DAMAGED, f"unknown consensus record kind {kind!r}")


def _unchecked(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises many unrelated types for bad input
        raise GodownError(Code.STORE_DAMAGED, f"bad consensus record ({exc.__class__.__name__})") from None


def compact(records: list[bytes]) -> list[bytes]:
    """The records a restart still needs: the latest stable checkpoint, the latest view
    entered and view-change started, and the votes and proofs above that checkpoint.
    The node may rewrite its write-ahead log with this after a checkpoint is stable;
    the records are its own, written by `encode_record` or checked when it started."""
    decoded = [(raw, decode_record(raw, checked=False)) for raw in records]
    latest: dict[str, tuple[int, bytes]] = {}
    for raw, rec in decoded:
        if isinstance(rec, StableRecord):
            key, rank = "stable", rec.height
        elif isinstance(rec, ViewRecord):
            key, rank = "view", rec.view
        elif isinstance(rec, ViewChangeRecord):
            key, rank = "vc", rec.new_view
        else:
            continue
        if key not in latest or rank >= latest[key][0]:
            latest[key] = (rank, raw)
    stable = latest["stable"][0] if "stable" in latest else 0
    out = [latest[k][1] for k in ("stable", "view", "vc") if k in latest]
    for raw, rec in decoded:
        if isinstance(rec, VoteRecord) and rec.height > stable:
            out.append(raw)
        elif isinstance(rec, ProofRecord) and rec.proof.height >= stable:  # the stable block's proof too
            out.append(raw)
    return out
