"""Read-only, JSON-able views of committed state for the RPC (bytes as lowercase hex)."""

from __future__ import annotations

from typing import Any

from contracts.state import (
    P_ALARM,
    P_CASE,
    P_DEVICE,
    P_DEVICE_LIVE,
    P_LOT,
    P_MEMBER,
    P_PROPOSAL,
    P_RATING,
    StateReader,
    decode_value,
)
from primitives.codec import jsonable


def _view(state: StateReader, key: bytes) -> dict[str, Any] | None:
    raw = state.get(key)
    return None if raw is None else jsonable(decode_value(raw))


RECORD_NAMES: dict[str, dict[str, str]] = {
    "case": {"supervisor": "bank", "end_ms": "maturity_ms"},
    "supervision": {"owner": "party"},
}
"""Record fields shown under the name of the request field that set them (`case.apply`,
`supervision.open`): one name per field across requests and views. The record keeps one
shape for both kinds, so the contracts share their machinery."""

EXTENSION_NAMES: dict[str, dict[str, str]] = {"case": {"new_end_ms": "new_maturity_ms"}, "supervision": {}}
"""A pending extension's fields under the names of `case.extend_request` / `supervision.extend_request`."""


def _renamed(doc: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names.get(k, k): v for k, v in doc.items()}


def view_case(state: StateReader, ident: str) -> dict[str, Any] | None:
    """A financing case or a plain supervision (field `kind`), under its request's field
    names: a case's `bank` and `maturity_ms`, a supervision's `party`, `supervisor`, `end_ms`."""
    view = _view(state, P_CASE + ident.encode())
    if view is None:
        return None
    kind = view["kind"]
    out = _renamed(view, RECORD_NAMES[kind])
    if out["extension"] is not None:
        out["extension"] = _renamed(out["extension"], EXTENSION_NAMES[kind])
    return out


def view_lot(state: StateReader, ident: str) -> dict[str, Any] | None:
    return _view(state, P_LOT + ident.encode())


def view_device(state: StateReader, ident: str) -> dict[str, Any] | None:
    """A device with its last sequence number (`seq`) and report time (`last_seen_ms`)."""
    view = _view(state, P_DEVICE + ident.encode())
    live = state.get(P_DEVICE_LIVE + ident.encode())
    if view is not None and live is not None:
        view["seq"], view["last_seen_ms"] = decode_value(live)
    return view


def view_alarm(state: StateReader, ident: str) -> dict[str, Any] | None:
    return _view(state, P_ALARM + ident.encode())


def view_rating(state: StateReader, ident: str) -> dict[str, Any] | None:
    return _view(state, P_RATING + ident.encode())


def view_members(state: StateReader) -> list[dict[str, Any]]:
    """Every member (id, name, role, keys) with its current rating if any."""
    out = []
    for _, raw in state.scan(P_MEMBER):
        m = jsonable(decode_value(raw))
        m["rating"] = view_rating(state, m["id"])
        out.append(m)
    return out


_PROPOSAL_FIELDS = (
    "id",
    "proposer",
    "action",
    "args",
    "state",
    "approvals",
    "rejections",
    "expires_ms",
    "result",
    "created_height",
    "closed_height",
    "effective_height",
    "tally",
)


def view_proposal(state: StateReader, ident: str) -> dict[str, Any] | None:
    """A governance proposal: state (open, executed, failed, rejected, expired), action,
    args, approvals, rejections, expires_ms, result (the action's code once run) and
    the tally as of its last vote."""
    view = _view(state, P_PROPOSAL + ident.encode())
    return None if view is None else {k: view[k] for k in _PROPOSAL_FIELDS}


def list_proposals(state: StateReader, only: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Proposals in id order, those in state `only` if given, at most `limit`."""
    out = []
    for _, raw in state.scan(P_PROPOSAL):
        view = jsonable(decode_value(raw))
        if only is None or view["state"] == only:
            out.append({k: view[k] for k in _PROPOSAL_FIELDS})
            if len(out) >= limit:
                break
    return out
