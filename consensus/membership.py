"""Validator-set changes: which set governs which height, and what a replica may judge.

The application decides a change (a governance action in block h); consensus only
applies it. The node tells its replica with `Replica.schedule_validators(after, ids,
keys)`: heights above `after` are governed by `ids`. `after` is a checkpoint
boundary at least `ReplicaConfig.lead` heights above h (`after_height_for`),
identical on every replica because it is a function of h and the genesis parameters.

Why not simply the first boundary after h: replicas pipeline. Before a replica has
executed h, heights up to h - 1 + window are proposed, and prepared, committed and
certified by the old set — some of them above that boundary. A replica that has
executed h would judge them by the new set and the two sets' quorums need not
share a correct member. So a replica judges a height only once no unexecuted block
can still change its set (rule 1), and the lead decides what that costs: the
default (the high-watermark span) costs nothing to a replica that is up to date;
`change_lead = 1` (the first boundary after h) narrows the pipeline near every
boundary, whether or not a change is coming.

Each height is judged against the set governing it — an `Epoch`: PRE-PREPARE,
PREPARE and COMMIT for h by `epoch(h)` (its primary of view v is
`validators[v mod n]`, its quorum n - f), CHECKPOINT c by `epoch(c)`, a commit
certificate by the epoch of its height. Three rules make that safe:

1. Knowledge. A replica that has executed height k knows every change approved
   at heights ≤ k; any other change is approved at some h' > k and so governs only
   heights above `after_height_for(k + 1)`. Up to that height (`known_through`)
   the sets are certain; above it the replica judges nothing (it refuses, and
   only notes the height a signed COMMIT or CHECKPOINT claims, to catch up). A
   change is refused unless its `after` is at or above `known_through`, so the set
   of a height never changes once the replica has judged anything there. With the
   default lead (the high-watermark span) the rule binds only a replica that lags
   behind what others have made stable: votes it counts lie at most `high_span`
   above its own stable checkpoint anyway.
2. Hand-over. A height above a boundary e (the `after` of a change) is proposed
   and pre-prepares for it are accepted only once checkpoint e is stable at that
   replica. Checkpoint e is signed by the old set (it governs e), so the old set
   certifies the state it hands over, and no height in flight straddles two sets.
   Hence a replica that prepared above e has a stable checkpoint ≥ e from then on
   (stable checkpoints only grow, and are logged).
3. View changes. A replica's *epoch* is the one governing (its stable checkpoint
   + 1). It counts VIEW-CHANGEs only from members of its epoch, against that
   epoch's quorum, and sends one only if it is a member itself. A NEW-VIEW is
   judged by the epoch governing (max(receiver's stable, the NEW-VIEW's
   checkpoint) + 1): its sender must be that epoch's primary of the view and its
   VIEW-CHANGEs a quorum of that epoch's members; it re-proposes only heights of
   that epoch. Why safe: if block B was committed at x > e in view v, a quorum of
   epoch(x) prepared it, each with stable ≥ e (rule 2). Any NEW-VIEW for w > v that
   a replica with stable ≥ e accepts is judged by epoch(x) (or a later one, when
   x is below its checkpoint) and holds a quorum of its VIEW-CHANGEs; two quorums of
   one set share a correct member, whose VIEW-CHANGE (sent after it prepared B)
   carries stable ≥ e and B's proof, so the NEW-VIEW re-proposes B — Castro–Liskov
   within one set. A replica still below e may enter w on an old-set NEW-VIEW, but
   it cannot accept a proposal above e before its checkpoint reaches e, and a
   conflicting block above e needs a quorum of epoch(x) in w, which would contain
   a correct member that prepared B — impossible. Heights ≤ e are settled by the
   old set and certified by checkpoint e.

A replica that is not a member of the set governing a height (an observer, a
validator added later, or one removed) never signs a vote for it, never sends a
VIEW-CHANGE outside its epoch, never proposes; it still accepts proposals and
counts votes, so it follows the chain, and fetches certified blocks when behind.

Liveness across a switch (none of it matters for safety): the old set keeps offering
its CHECKPOINT at the boundary, even during a view change, until a later checkpoint
is stable; a replica adopts a boundary checkpoint from the certificate in a valid
VIEW-CHANGE; on entering an epoch it weighs the VIEW-CHANGEs it holds against the new
quorum and primary; one validly signed claim beyond what it can judge (or a message
from an id it does not know yet) makes a replica fetch up to what it can judge; a
replica outside its set that has work and sees no commit fetches instead of asking
for a view change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from consensus.config import ReplicaConfig
from primitives.block import max_faulty, quorum_size

UNBOUNDED = 1 << 62
"""`known_through` of a replica whose set never changes (`ReplicaConfig.reconfigurable` off)."""
MAX_EPOCHS = 64
"""Epochs kept; heights governed by older ones can no longer be judged (and are refused)."""


def after_height_for(config: ReplicaConfig, approved_at: int) -> int:
    """The height after which a change approved by block `approved_at` governs: the first
    checkpoint boundary at least `change_lead` heights above it. The node and the
    application must use exactly this, so that every replica switches at one height."""
    assert approved_at >= 1, "a change is approved by a block"
    step = config.checkpoint_interval
    return -(-(approved_at + config.lead) // step) * step


@dataclass(frozen=True)
class ValidatorChange:
    """For heights above `after_height` the validators are `validators`, in order; `keys`
    are their Ed25519 public keys (id → key) for the verifier (may omit known ones)."""

    after_height: int
    validators: tuple[str, ...]
    keys: dict[str, bytes] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Epoch:
    """One validator set and the first height it governs."""

    first: int
    validators: tuple[str, ...]
    members: frozenset[str]
    quorum: int
    f: int

    @property
    def n(self) -> int:
        return len(self.validators)

    def primary_of(self, view: int) -> str:
        return self.validators[view % len(self.validators)]


def make_epoch(first: int, validators: tuple[str, ...], quorum_override: int | None = None) -> Epoch:
    """The epoch of `validators` from height `first` (quorum n - f unless a test overrides it)."""
    if not validators or len(set(validators)) != len(validators):
        raise ValueError("validators must be distinct and non-empty")
    n = len(validators)
    quorum = quorum_override if quorum_override is not None else quorum_size(n)
    return Epoch(first, validators, frozenset(validators), quorum, max_faulty(n))


class Membership:
    """The schedule of epochs one replica knows, and how far it knows it (see the module docstring)."""

    def __init__(self, config: ReplicaConfig) -> None:
        self._config = config
        self.epochs: list[Epoch] = [make_epoch(1, config.validators, config.quorum_override)]
        self.peers: tuple[str, ...] = config.validators
        """Every id of every known epoch, in order of first appearance (fetch and broadcast targets)."""
        self.everyone: frozenset[str] = frozenset(config.validators)
        self.known_through = after_height_for(config, 1) if config.reconfigurable else UNBOUNDED

    # ------------------------------------------------------------------ queries

    def at(self, h: int) -> Epoch | None:
        """The epoch governing height h; None if this replica cannot know it yet (or any more)."""
        if h > self.known_through:
            return None
        epochs = self.epochs
        if len(epochs) == 1:
            return epochs[0] if epochs[0].first == 1 or h >= epochs[0].first else None
        for ep in reversed(epochs):
            if h >= ep.first:
                return ep
        return epochs[0] if epochs[0].first == 1 else None

    def latest(self, h: int) -> Epoch:
        """The epoch governing h, or if h is beyond what is known, the last known one."""
        ep = self.at(min(h, self.known_through))
        return ep if ep is not None else self.epochs[0]

    def start_of(self, h: int) -> int:
        """The boundary below h's epoch (0 for the first): checkpoint that must be stable before h."""
        ep = self.latest(h)
        return ep.first - 1

    def end_of(self, h: int) -> int:
        """The last height of h's epoch as far as known (UNBOUNDED if no later epoch is scheduled)."""
        for ep in self.epochs:
            if ep.first > h:
                return ep.first - 1
        return UNBOUNDED

    def is_boundary(self, h: int) -> bool:
        """Height h is the `after_height` of a scheduled change (another set governs h + 1)."""
        return any(ep.first == h + 1 for ep in self.epochs[1:])

    def is_member(self, node: str, h: int) -> bool:
        ep = self.at(h)
        return ep is not None and node in ep.members

    # ------------------------------------------------------------------ changes

    def executed(self, height: int) -> None:
        """Height `height` was executed: every change it approved has been scheduled."""
        if self._config.reconfigurable:
            self.known_through = max(self.known_through, after_height_for(self._config, height + 1))

    def schedule(self, change: ValidatorChange, *, check_known: bool = True) -> bool:
        """Add a change (True) or recognise it as already scheduled or a no-op (False).
        Raises ValueError for a change this replica must not apply (see the module docstring)."""
        cfg, after = self._config, change.after_height
        if not cfg.reconfigurable:
            raise ValueError("this replica's validator set is fixed (ReplicaConfig.reconfigurable)")
        if after < 0 or after % cfg.checkpoint_interval:
            raise ValueError(f"after_height {after} is not a checkpoint boundary")
        new = make_epoch(after + 1, change.validators, cfg.quorum_override)
        last = self.epochs[-1]
        if last.first == after + 1 and last.validators == change.validators:
            return False  # told again (e.g. after a restart)
        if after + 1 < last.first or (after + 1 == last.first == 1):
            raise ValueError(f"changes must be scheduled in order: after_height {after} is below {last.first - 1}")
        if check_known and after < self.known_through:
            raise ValueError(f"after_height {after} is below {self.known_through}: heights up to it may be judged")
        if last.first == after + 1:
            del self.epochs[-1]  # a later decision for the same boundary replaces the earlier one
        elif last.validators == change.validators:
            return False  # the same set in the same order: no boundary needed
        self.epochs.append(new)
        if len(self.epochs) > MAX_EPOCHS:
            del self.epochs[0]
        self._add_peers(change.validators)
        return True

    def _add_peers(self, ids: Iterable[str]) -> None:
        fresh = tuple(i for i in ids if i not in self.everyone)
        self.peers += fresh
        self.everyone |= frozenset(fresh)
