"""What the replica asks its driver to do, and in which order.

Every input (`step`, `tick`, `propose`, `on_executed`, `on_fetched`,
`schedule_validators`) returns one `Ready`. The driver performs `Ready.actions` strictly in the order given, which
is always:

1. every `Persist` — write the record to the write-ahead log and sync it;
2. every `Send` / `Broadcast` — only after the records are durable, so a
   restarted replica never contradicts a vote it already sent;
3. every `Execute` — in increasing height, each exactly once; the driver then
   executes the payload and calls `Replica.on_executed(height, state_root)`;
4. every `FetchBlocks` — ask peers for committed blocks and feed each reply to
   `Replica.on_fetched(payload, certificate)`.

Executing a block that approves a validator-set change: apply it, call
`Replica.schedule_validators` for the change, then `Replica.on_executed`.

`rejections` lists inputs that were refused, each with a stable code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from consensus.messages import Message
from consensus.types import Rejection
from primitives.block import Commit


@dataclass(frozen=True)
class Persist:
    """Write `record` (opaque bytes, see `consensus.records`) durably before sending anything.
    `stable`: it is a stable checkpoint, after which the log may be compacted (said here so
    the driver need not decode every record to learn it)."""

    record: bytes
    stable: bool = False


@dataclass(frozen=True)
class Send:
    """Send `message` to one validator."""

    to: str
    message: Message


@dataclass(frozen=True)
class Broadcast:
    """Send `message` to every other node that follows the chain: the validators of every
    set the replica knows (`Replica.peers()`, validators scheduled to join included) and
    any observer — they learn heights and blocks from these messages."""

    message: Message


@dataclass(frozen=True)
class Execute:
    """Height `height` is committed: execute `payload`, store it with `certificate`."""

    height: int
    payload: bytes
    certificate: Commit


@dataclass(frozen=True)
class FetchBlocks:
    """We are behind: fetch committed blocks `from_height`..`to_height` (inclusive) from `peers`."""

    from_height: int
    to_height: int
    peers: tuple[str, ...]


Action = Union[Persist, Send, Broadcast, Execute, FetchBlocks]


@dataclass(frozen=True)
class Ready:
    """The ordered actions of one input (see the module docstring) and what was refused."""

    actions: tuple[Action, ...] = ()
    rejections: tuple[Rejection, ...] = ()

    @property
    def executes(self) -> tuple[Execute, ...]:
        return tuple(a for a in self.actions if isinstance(a, Execute))

    @property
    def persists(self) -> tuple[Persist, ...]:
        return tuple(a for a in self.actions if isinstance(a, Persist))

    @property
    def outbound(self) -> tuple[Send | Broadcast, ...]:
        return tuple(a for a in self.actions if isinstance(a, (Send, Broadcast)))
