"""A tiny in-memory cluster for handler and golden tests: FIFO delivery, a filter
to cut links, and a readable log of every action in the order it was emitted."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

from consensus.actions import Broadcast, Execute, FetchBlocks, Persist, Ready, Send
from consensus.config import ReplicaConfig
from consensus.membership import ValidatorChange
from consensus.messages import CommitVote, Message, NewView, Prepare, PrePrepare, ViewChange
from consensus.replica import Replica
from consensus.signing import FakeSigner, FakeVerifier
from primitives.block import Commit
from primitives.hashing import sha256

IDS = ("v0", "v1", "v2", "v3")


def digest(payload: bytes) -> bytes | None:
    return sha256(payload) if payload else None


def config(me: str, ids: tuple[str, ...] = IDS, **kw: int | bool) -> ReplicaConfig:
    return ReplicaConfig("test", ids, me, **kw)  # type: ignore[arg-type]


def replica(
    me: str,
    ids: tuple[str, ...] = IDS,
    records: list[bytes] | None = None,
    last_executed: int = 0,
    changes: tuple[ValidatorChange, ...] = (),
    **kw: int | bool,
) -> Replica:
    return Replica(
        config(me, ids, **kw),
        FakeSigner(me),
        FakeVerifier(ids),
        digest,
        random.Random(7),
        records=records or [],
        last_executed=last_executed,
        changes=changes,
    )


def describe(msg: Message) -> str:
    if isinstance(msg, PrePrepare):
        return f"PrePrepare v={msg.view} h={msg.height} {msg.payload.decode(errors='replace')}"
    if isinstance(msg, (Prepare, CommitVote)):
        return f"{type(msg).__name__} v={msg.view} h={msg.height} d={msg.digest.hex()[:8]}"
    if isinstance(msg, ViewChange):
        return f"ViewChange v={msg.new_view} stable={msg.stable_height} proofs={[p.height for p in msg.proofs]}"
    if isinstance(msg, NewView):
        return f"NewView v={msg.view} reproposals={[p.height for p in msg.pre_prepares]}"
    return f"Checkpoint h={msg.height}"


class Cluster:
    """Replicas wired by a FIFO; `blocked(src, dst, msg)` drops what it returns True for; every action is logged.
    With `validators`, `ids` may hold more nodes (observers, validators to be); `approvals`
    maps a height to the (after_height, validators) its block approves, scheduled on every
    replica after executing it and before `on_executed`, as the node does."""

    def __init__(self, ids: tuple[str, ...] = IDS, validators: tuple[str, ...] | None = None, **kw: int | bool) -> None:
        self.ids = ids
        first = validators or ids
        self.reps = {i: replica(i, first, **kw) for i in ids}
        self.approvals: dict[int, tuple[int, tuple[str, ...]]] = {}
        self.records: dict[str, list[bytes]] = {i: [] for i in ids}
        self.stable_flags: dict[str, list[bool]] = {i: [] for i in ids}  # Persist.stable of each record
        self.chains: dict[str, list[tuple[bytes, Commit]]] = {i: [] for i in ids}
        self.queue: deque[tuple[str, str, Message]] = deque()
        self.blocked: Callable[[str, str, Message | None], bool] = lambda a, b, m: False
        self.log: list[str] = []

    def handle(self, me: str, ready: Ready) -> None:
        for a in ready.actions:
            if isinstance(a, Persist):
                self.records[me].append(a.record)
                self.stable_flags[me].append(a.stable)
            elif isinstance(a, Broadcast):
                self.log.append(f"{me} -> * {describe(a.message)}")
                for t in self.ids:
                    if t != me:
                        self.queue.append((me, t, a.message))
            elif isinstance(a, Send):
                self.log.append(f"{me} -> {a.to} {describe(a.message)}")
                self.queue.append((me, a.to, a.message))
            elif isinstance(a, Execute):
                self.log.append(
                    f"{me} execute h={a.height} {a.payload.decode(errors='replace')} "
                    f"(cert view {a.certificate.view}, {len(a.certificate.votes)} votes)"
                )
                self.chains[me].append((a.payload, a.certificate))
                if a.height in self.approvals:
                    after, vals = self.approvals[a.height]
                    self.handle(me, self.reps[me].schedule_validators(after, vals, {v: b"" for v in vals}))
                self.handle(me, self.reps[me].on_executed(a.height, sha256(b"root%d" % a.height)))
            elif isinstance(a, FetchBlocks):
                self.log.append(f"{me} fetch {a.from_height}..{a.to_height}")
                for peer in a.peers:
                    if not self.blocked(peer, me, None):
                        for p, c in self.chains[peer][a.from_height - 1 : a.to_height]:
                            self.handle(me, self.reps[me].on_fetched(p, c))
                        break

    def deliver_all(self, limit: int = 100_000) -> None:
        while self.queue and limit:
            limit -= 1
            src, dst, msg = self.queue.popleft()
            if not self.blocked(src, dst, msg):
                self.handle(dst, self.reps[dst].step(msg))

    def propose(self, payload: bytes, primary: str = "v0") -> None:
        self.log.append(f"{primary} propose {payload.decode()}")
        self.handle(primary, self.reps[primary].propose(payload))

    def tick(self, times: int = 1, who: tuple[str, ...] | None = None) -> None:
        for _ in range(times):
            for i in who or self.ids:
                self.handle(i, self.reps[i].tick())
            self.deliver_all()
