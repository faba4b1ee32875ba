"""What every part of a replica shares, so that each part can live in its own module.

A `Context` holds the replica's identity, keys and the node's payload checks; the
validator schedule (`consensus.membership`: which set judges which height); the
few facts that every part reads but exactly one part writes (the view, the stable
checkpoint, the last committed height); and the outbox in which one input
collects its actions and rejections until `flush` hands them to the driver in the
order `consensus.actions` promises (persist, send, execute, fetch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from consensus.actions import Action, Broadcast, Execute, FetchBlocks, Persist, Ready, Send
from consensus.config import ReplicaConfig
from consensus.membership import Epoch, Membership
from consensus.messages import Message, Votes, commit_bytes, prepare_vote_bytes
from consensus.records import Record, StableRecord, encode_record
from consensus.signing import Signer, Verifier
from consensus.types import Rejection
from primitives.block import Commit
from primitives.errors import Code
from primitives.seeded import Rng

DigestFn = Callable[[bytes], "bytes | None"]
ParentFn = Callable[[bytes], "bytes | None"]
"""The digest of the block a payload extends (a header's prev_hash); pure."""
ValidateFn = Callable[[int, bytes, "bytes | None"], bool]
"""(height, payload, digest of the block this replica holds at height-1 or None) -> acceptable?"""


@dataclass(eq=False)
class Context:
    """Identity, keys, shared position and outbox of one replica (see the module docstring)."""

    config: ReplicaConfig
    signer: Signer
    verifier: Verifier
    digest_of: DigestFn
    rng: Rng
    validate: ValidateFn | None = None
    parent_of: ParentFn | None = None

    view: int = 0
    """The current view; written only by the view change (and the restart)."""
    in_view_change: bool = False
    """True between starting a view change and entering the new view."""
    stable_height: int = 0
    """The low watermark: height of the last stable checkpoint; written only by checkpoints."""
    last_committed: int = 0
    """Highest height handed to the driver with `Execute`; written only by the normal case."""
    ticks: int = 0

    me: str = field(init=False)
    membership: Membership = field(init=False)
    """Which validator set governs which height, and how far this replica knows it."""

    _persist: list[Action] = field(default_factory=list, init=False)
    _send: list[Action] = field(default_factory=list, init=False)
    _exec: list[Action] = field(default_factory=list, init=False)
    _fetch: list[Action] = field(default_factory=list, init=False)
    _rej: list[Rejection] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.me = self.config.node_id
        self.membership = Membership(self.config)

    # ------------------------------------------------------------------ who governs

    def epoch(self, h: int) -> Epoch | None:
        """The validator set governing height h; None while this replica cannot know it."""
        return self.membership.at(h)

    @property
    def current(self) -> Epoch:
        """This replica's epoch: the set governing the height after its stable checkpoint
        (it runs view changes and counts their quorums)."""
        return self.membership.latest(self.stable_height + 1)

    @property
    def is_member(self) -> bool:
        """A member of its epoch: it may start and join view changes."""
        return self.me in self.current.members

    def member_at(self, h: int) -> bool:
        """This replica may sign votes for height h."""
        return self.membership.is_member(self.me, h)

    @property
    def primary(self) -> str:
        """The primary of the current view for the next height to commit."""
        return self.membership.latest(self.last_committed + 1).primary_of(self.view)

    @property
    def is_primary(self) -> bool:
        return self.primary == self.me

    def started(self, h: int) -> bool:
        """The stable checkpoint has reached the boundary below h's epoch (hand-over rule)."""
        return self.stable_height >= self.membership.start_of(h)

    def in_window(self, h: int) -> bool:
        """Between the stable checkpoint (exclusive) and the high watermark (inclusive)."""
        return self.stable_height < h <= self.stable_height + self.config.high_span

    # ------------------------------------------------------------------ signatures

    def vote_bytes(self, kind: str, view: int, h: int, digest: bytes) -> bytes:
        """What a PREPARE (kind "prepare") or COMMIT (kind "commit") vote signs."""
        if kind == "prepare":
            return prepare_vote_bytes(self.config.chain_id, view, h, digest)
        return commit_bytes(self.config.chain_id, view, h, digest)

    def signed_by_sender(self, m: Message) -> bool:
        return self.verifier.verify(m.sender, m.signed_bytes(self.config.chain_id), m.sig)

    def quorum_signed(self, votes: Votes, message: bytes, height: int) -> bool:
        """At least a quorum of distinct validators of the set governing `height` validly
        signed `message` (False while that set is unknown here)."""
        ep = self.epoch(height)
        if ep is None:
            return False
        good: set[str] = set()
        for sender, sig in votes:
            if sender in ep.members and sender not in good and self.verifier.verify(sender, message, sig):
                good.add(sender)
                if len(good) >= ep.quorum:
                    return True
        return False

    # ------------------------------------------------------------------ outbox

    def persist(self, record: Record) -> None:
        self._persist.append(Persist(encode_record(record), stable=isinstance(record, StableRecord)))

    def broadcast(self, message: Message) -> None:
        self._send.append(Broadcast(message))

    def send(self, to: str, message: Message) -> None:
        self._send.append(Send(to, message))

    def execute(self, height: int, payload: bytes, certificate: Commit) -> None:
        self._exec.append(Execute(height, payload, certificate))

    def fetch(self, from_height: int, to_height: int, peers: tuple[str, ...]) -> None:
        self._fetch.append(FetchBlocks(from_height, to_height, peers))

    def reject(self, code: Code, reason: str) -> None:
        self._rej.append(Rejection(code, reason))

    def flush(self) -> Ready:
        """Everything this input produced, in driver order; the outbox starts empty again."""
        ready = Ready(tuple(self._persist + self._send + self._exec + self._fetch), tuple(self._rej))
        self._persist, self._send, self._exec, self._fetch, self._rej = [], [], [], [], []
        return ready
