"""Liveness and readiness, for load balancers and orchestrators (`/v1/health`,
`/v1/ready`), and the consensus health the PBFT engine publishes with its status.

A node is ready when it is caught up with its peers, reaches enough validators for
a quorum (itself included), and is in the validator set or observes the chain
until an approved set that includes it governs. Each reason it is not carries a
stable name, so an orchestrator can tell "still syncing" from "cut off".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import contracts
from node.server.core import NodeCore
from primitives.block import quorum_size

CATCHING_UP = "catching_up"
NO_QUORUM = "no_quorum"
NOT_VALIDATOR = "not_validator"


@dataclass(frozen=True)
class EngineHealth:
    """What the PBFT engine knows of its own health when it refreshes its status."""

    me: str
    validators: tuple[str, ...]
    """The set of the replica's epoch."""
    connected: frozenset[str]
    blocks_behind: int
    in_view_change: bool

    @property
    def validator(self) -> bool:
        return self.me in self.validators

    @property
    def peers_down(self) -> tuple[str, ...]:
        """Validators other than this node that it holds no connection to."""
        return tuple(v for v in self.validators if v != self.me and v not in self.connected)

    @property
    def reachable(self) -> int:
        """Validators this node can hear from now, itself included if it is one."""
        return len(self.validators) - len(self.peers_down)

    @property
    def quorum(self) -> int:
        return quorum_size(len(self.validators))

    def status_fields(self) -> dict[str, Any]:
        """What `/v1/status` shows of it, and what `not_ready_reasons` reads back."""
        assert self.blocks_behind >= 0 and 0 <= self.reachable <= len(self.validators)
        return {
            "validator": self.validator,
            "quorum": self.quorum,
            "validators_reachable": self.reachable,
            "peers_down": list(self.peers_down),
            "blocks_behind": self.blocks_behind,
        }


@dataclass(frozen=True)
class Reason:
    """Why a node is not ready: a stable `reason` and a sentence for people."""

    reason: str
    message: str


def not_ready_reasons(status: Mapping[str, Any], scheduled: bool) -> list[Reason]:
    """Why a node with this engine status (`NodeCore.engine_status`) should get no
    traffic now; empty when it is ready. `scheduled`: the node is in an approved
    validator set that does not govern yet (it observes the chain until then). The
    single-validator engine is always ready: it is the whole quorum."""
    if status.get("sync") == "solo":
        return []
    reasons: list[Reason] = []
    behind = int(status.get("blocks_behind", 0))
    if status.get("sync") != "synced" or behind > 0:
        reasons.append(Reason(CATCHING_UP, f"catching up with its peers ({behind} blocks behind)"))
    reachable, quorum = int(status.get("validators_reachable", 0)), int(status.get("quorum", 1))
    if reachable < quorum:
        reasons.append(Reason(NO_QUORUM, f"{reachable} validators reachable (itself included), a quorum is {quorum}"))
    if not status.get("validator") and not scheduled:
        reasons.append(Reason(NOT_VALIDATOR, "neither in the validator set nor scheduled to join it"))
    return reasons


def readiness(core: NodeCore) -> list[Reason]:
    """`not_ready_reasons` for this node now (its status as the engine last refreshed it)."""
    _, pending = contracts.validator_schedule(core.ledger.state)
    scheduled = pending is not None and any(v.node_id == core.node_id for v in pending[1])
    return not_ready_reasons(core.engine_status, scheduled)
