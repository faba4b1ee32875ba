"""What a handler sees: the block (height, time, proposer), the buffered state, the
policy, and an event list — nothing else (no clock, no randomness, no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.state import Overlay
from primitives.errors import Code, Rejected
from primitives.genesis import Policy
from primitives.tx import SignedTx

Event = dict[str, Any]
"""A JSON-able event for the node's stream; `kind` says what it is:
alarm_raised, alarm_resolved, case (state change), extension, proposal (state
change), validators (a set scheduled or switched), key_rotated."""


@dataclass(frozen=True)
class BlockContext:
    """The only outside facts a contract may use."""

    chain_id: str
    height: int
    time_ms: int
    proposer: str


@dataclass(frozen=True)
class BlockOutcome:
    """Result of executing one block: a code per tx, the state changes, the events."""

    results: tuple[str, ...]
    changes: dict[bytes, bytes | None]
    events: tuple[Event, ...]


@dataclass
class Exec:
    """Execution context of one block, shared by the time hook and every handler."""

    block: BlockContext
    state: Overlay
    policy: Policy
    events: list[Event] = field(default_factory=list)

    @property
    def now(self) -> int:
        return self.block.time_ms

    def emit(self, kind: str, **fields: Any) -> None:
        fields["kind"] = kind
        fields["height"] = self.block.height
        self.events.append(fields)


Handler = Callable[[Exec, SignedTx, Mapping[str, Any]], None]
"""A contract: a function of (context, signed tx, checked body) that writes through
`ctx.state` or raises `Rejected`."""


def reject(code: Code, message: str) -> Rejected:
    """Build the one exception type handlers raise (`raise reject(...)`)."""
    return Rejected(code, message)


def ensure(ok: bool, code: Code, message: str) -> None:
    """Raise `Rejected(code)` unless `ok`: one rule, one line."""
    if not ok:
        raise Rejected(code, message)


def alarm_id_for_tx(stx: SignedTx, n: int = 0) -> str:
    """Id of the n-th alarm a transaction raises: known before the transaction
    commits, so a client can prepare the `alarm.resolve`."""
    return f"al-{stx.tx_id_hex[:24]}-{n}"
