"""The validator set in state, and how a change to it is scheduled and switched.

A change approved in block h does not apply at once: it is written to
`K_VALIDATORS_NEXT` with the first checkpoint boundary at least the replica's
high-watermark span after h as its effective height e, and the new set governs
heights > e. The time hook of the first block above e moves it into
`K_VALIDATORS` (DESIGN §4: every replica switches at the same height). Only one change may be pending at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.context import Exec
from contracts.state import (
    K_CONSENSUS,
    K_VALIDATOR_HISTORY,
    K_VALIDATORS,
    K_VALIDATORS_NEXT,
    Overlay,
    StateReader,
    decode_value,
)
from primitives.errors import Code, GodownError
from primitives.genesis import ConsensusParams, Validator

SCHEDULED_SET_KEY = K_VALIDATORS_NEXT
"""State key of a scheduled validator set. Nodes keep its proof at the approving height,
so a light client can learn each new set from a root the old set certified."""

ValidatorRecord = dict[str, Any]
"""{"node_id", "member", "node_pub" (bytes), "p2p_addr"}, as `members.validator_record` writes it."""


def current_validators(state: Overlay) -> list[ValidatorRecord]:
    """The validators governing the block being executed, in order."""
    return list(state.get(K_VALIDATORS))


def pending_change(state: Overlay) -> dict[str, Any] | None:
    """The scheduled set {validators, effective_height, approved_height}, or None."""
    return state.get(K_VALIDATORS_NEXT)  # type: ignore[no-any-return]


def known_validators(state: Overlay) -> list[ValidatorRecord]:
    """The current validators followed by the scheduled ones (a node may be in both)."""
    nxt = pending_change(state)
    return [*current_validators(state), *(nxt["validators"] if nxt else [])]


def effective_height(state: Overlay, approved_height: int) -> int:
    """The first checkpoint boundary at least `2 * checkpoint_interval + window` heights
    (the replica's high-watermark span) after `approved_height`: every height a replica
    may have judged when it executes the approving block is then at or below it, so no
    height straddles two validator sets. `consensus.membership.after_height_for` is the
    same rule; the node checks they agree."""
    params = state.get(K_CONSENSUS) or {}
    defaults = ConsensusParams()
    interval = int(params.get("checkpoint_interval", defaults.checkpoint_interval))
    window = int(params.get("window", defaults.window))
    assert interval > 0 and window > 0, "checkpoint_interval and window must be positive"
    return -(-(approved_height + 2 * interval + window) // interval) * interval


def schedule(ctx: Exec, validators: list[ValidatorRecord]) -> int:
    """Write the next validator set; return the height after which it governs."""
    assert validators and pending_change(ctx.state) is None, "checked by the action"
    h = ctx.block.height
    e = effective_height(ctx.state, h)
    ctx.state.put(K_VALIDATORS_NEXT, {"validators": validators, "effective_height": e, "approved_height": h})
    history = list(ctx.state.get(K_VALIDATOR_HISTORY) or [])
    ctx.state.put(K_VALIDATOR_HISTORY, [*history, {"after_height": e, "validators": validators}])
    ctx.emit("validators", state="scheduled", effective_height=e, validators=[v["node_id"] for v in validators])
    return e


def switch_if_due(ctx: Exec) -> None:
    """Time hook: in the first block above the effective height, the scheduled set becomes current."""
    nxt = pending_change(ctx.state)
    if nxt is None or ctx.block.height <= nxt["effective_height"]:
        return
    assert nxt["validators"], "a scheduled set is never empty"
    ctx.state.put(K_VALIDATORS, nxt["validators"])
    ctx.state.delete(K_VALIDATORS_NEXT)
    ctx.emit("validators", state="switched", effective_height=nxt["effective_height"])


def _typed(records: list[ValidatorRecord]) -> tuple[Validator, ...]:
    return tuple(Validator(r["node_id"], r["member"], r["node_pub"], r["p2p_addr"]) for r in records)


def governing_validators(state: StateReader, height: int) -> dict[str, bytes]:
    """Node id → node key of the set that certifies block `height`, from the committed
    state after height-1: the scheduled set once `height` is above its effective height."""
    current, pending = validator_schedule(state)
    chosen = pending[1] if pending is not None and height > pending[0] else current
    return {v.node_id: v.node_pub for v in chosen}


def validator_history(state: StateReader) -> list[tuple[int, tuple[Validator, ...]]]:
    """Every change ever scheduled, in order: (height after which it governs, the set).
    A replica restarting (or installed from a snapshot) needs them all, so that each
    height it may still judge is judged by the set that governs it."""
    raw = state.get(K_VALIDATOR_HISTORY)
    return [] if raw is None else [(int(c["after_height"]), _typed(c["validators"])) for c in decode_value(raw)]


@dataclass(frozen=True)
class ScheduledSet:
    """A validator set approved by block `approved_height`, governing heights above
    `effective_height`: the value under `SCHEDULED_SET_KEY`."""

    approved_height: int
    effective_height: int
    validators: tuple[Validator, ...]

    @staticmethod
    def decode(raw: bytes) -> ScheduledSet:
        """Strict: `malformed` unless `raw` is a scheduled set as `schedule` writes it."""
        try:
            doc = decode_value(raw)
            if not isinstance(doc, dict) or set(doc) != {"validators", "effective_height", "approved_height"}:
                raise ValueError("unexpected fields")
            validators = _typed(doc["validators"])
            approved, effective = int(doc["approved_height"]), int(doc["effective_height"])
        except (GodownError, KeyError, TypeError, ValueError) as exc:
            raise GodownError(Code.MALFORMED, f"not a scheduled validator set ({exc})") from None
        if not all(isinstance(v.node_pub, bytes) and len(v.node_pub) == 32 for v in validators):
            raise GodownError(Code.MALFORMED, "a scheduled validator's node_pub must be 32 bytes")
        if not validators or not 0 < approved < effective:
            raise GodownError(Code.MALFORMED, "a scheduled validator set is non-empty and governs after its approval")
        return ScheduledSet(approved, effective, validators)


def validator_schedule(state: StateReader) -> tuple[tuple[Validator, ...], tuple[int, tuple[Validator, ...]] | None]:
    """(current validators, pending (effective height, validators) or None) in committed
    state: what the node reads after executing each block. Heights up to the effective
    height are governed by the current set, heights above it by the pending one."""
    raw = state.get(K_VALIDATORS)
    assert raw is not None, "genesis writes the validators"
    current = _typed(decode_value(raw))
    raw_next = state.get(K_VALIDATORS_NEXT)
    if raw_next is None:
        return current, None
    nxt = decode_value(raw_next)
    return current, (int(nxt["effective_height"]), _typed(nxt["validators"]))
