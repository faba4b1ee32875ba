"""Replica configuration: the validator set and every timeout, in ticks.

Only the driver knows wall time; it turns milliseconds into `tick()` calls, so
the same numbers mean the same thing in production and in the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

from primitives.block import max_faulty, quorum_size


@dataclass(frozen=True)
class ReplicaConfig:
    """Static parameters of one replica.

    `quorum_override` exists only so a test can break the protocol on purpose
    (e.g. quorum f+1) and show the simulator's invariant checker catches it.
    """

    chain_id: str
    validators: tuple[str, ...]
    """The set governing the first heights (genesis); later sets are scheduled on the replica."""
    node_id: str
    window: int = 4
    """How many heights above the last committed one the primary may have in flight."""
    checkpoint_interval: int = 8
    log_size: int = 0
    """Heights accepted above the stable checkpoint (the high watermark); 0 means 2 × interval + window."""
    request_timeout: int = 30
    """Ticks without progress, while work is pending, before asking for a view change."""
    view_change_timeout: int = 30
    """Base ticks to wait for NEW-VIEW once 2f+1 VIEW-CHANGEs are in; doubles per failed view."""
    max_backoff_exponent: int = 6
    resend_interval: int = 15
    """Ticks between re-sends of our VIEW-CHANGE or unstable CHECKPOINT."""
    fetch_after: int = 10
    """Ticks without progress while peers are known to be ahead, before fetching blocks."""
    lone_join_after: int = 0
    """Ticks a validator may keep asking, alone, for the view after ours before we join it;
    0 means 20 × request_timeout (see `ViewChanges.tick`)."""
    quorum_override: int | None = None
    reconfigurable: bool = False
    """The application may change the validator set (`Replica.schedule_validators`); the
    replica then judges a height only once it knows the set governing it (see
    `consensus.membership`), and `node_id` may be outside `validators` (an observer, or
    a validator added later). Off, the set is fixed and the replica behaves as before."""
    change_lead: int = 0
    """Fewest heights between the block approving a change and the boundary after which it
    governs; 0 means the high-watermark span, which keeps the knowledge rule from ever
    slowing a replica that is up to date (see `consensus.membership.after_height_for`)."""

    def __post_init__(self) -> None:
        if self.node_id not in self.validators and not self.reconfigurable:
            raise ValueError("node_id must be one of the validators")
        if len(set(self.validators)) != len(self.validators) or not self.validators:
            raise ValueError("validators must be distinct and non-empty")
        if self.window < 1 or self.checkpoint_interval < 1:
            raise ValueError("window and checkpoint_interval must be positive")
        if self.change_lead < 0:
            raise ValueError("change_lead must not be negative")

    @property
    def n(self) -> int:
        return len(self.validators)

    @property
    def f(self) -> int:
        return max_faulty(self.n)

    @property
    def quorum(self) -> int:
        return self.quorum_override if self.quorum_override is not None else quorum_size(self.n)

    @property
    def high_span(self) -> int:
        """Heights accepted above the stable checkpoint."""
        return self.log_size or 2 * self.checkpoint_interval + self.window

    @property
    def lone_join(self) -> int:
        return self.lone_join_after or 20 * self.request_timeout

    @property
    def lead(self) -> int:
        """Heights from an approving block to the earliest boundary its change may follow."""
        return self.change_lead or self.high_span

    def primary_of(self, view: int) -> str:
        return self.validators[view % self.n]
