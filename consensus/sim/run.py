"""One simulated run: build the consortium, inject the scenario's faults, check invariants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consensus.config import ReplicaConfig
from consensus.membership import ValidatorChange, after_height_for
from consensus.signing import Ed25519Signer, Ed25519Verifier, FakeSigner, FakeVerifier, Signer, Verifier
from consensus.sim.invariants import Checker, Violation
from consensus.sim.network import Network
from consensus.sim.node import ByzantineNode, SimNode
from primitives.block import max_faulty
from primitives.hashing import sha256
from primitives.keys import KeyPair
from primitives.seeded import seeded

BYZANTINE_MODES = ("equivocate", "conflict", "garbage", "replay", "silent")
TRACE_KEEP = 400
Step = tuple[int, tuple[str, ...]]
"""A membership change: (height of the block that approves it, the new validators in order)."""


@dataclass(frozen=True)
class Scenario:
    """What to simulate. Faults (drop, duplicate, partitions, crashes) happen during the
    first `fault_ms` virtual milliseconds; after that the network heals, crashed nodes
    restart, and every correct replica must commit every batch within `liveness_ms`.
    Byzantine replicas stay Byzantine for the whole run.

    `membership` changes the validator set: each step (h, ids) is approved by block h,
    identically on every node, and governs the heights after
    `consensus.membership.after_height_for(h)`. The run holds every id that appears
    (the initial `v0..v{nodes-1}` and any new one); a node outside the current set runs
    as an observer. Agreement and linkage hold across every switch, for observers too,
    and every correct node of the run must reach `blocks` — which must lie above the
    last switch, so the final set commits. Byzantine nodes are drawn from the initial set.
    `reconfigurable` runs the replicas in that mode without changes."""

    nodes: int = 4
    byzantine: int = 0
    crash: int = 0
    drop: float = 0.0
    duplicate: float = 0.0
    partition: bool = False
    seed: int = 0
    blocks: int = 10
    byzantine_modes: tuple[str, ...] = BYZANTINE_MODES
    max_delay_ms: int = 20
    tick_ms: int = 10
    fault_ms: int = 3_000
    liveness_ms: int = 60_000
    window: int = 4
    checkpoint_interval: int = 4
    request_timeout: int = 30
    view_change_timeout: int = 30
    quorum_override: int | None = None
    forget_wal: bool = False
    real_keys: bool = False
    membership: tuple[Step, ...] = ()
    reconfigurable: bool = False
    change_lead: int = 0


@dataclass
class SimResult:
    scenario: Scenario
    committed_blocks: int = 0
    agreement: bool = True
    liveness: bool = True
    violation: str | None = None
    view_changes: int = 0
    messages: int = 0
    virtual_ms: int = 0
    wall_ms: int = 0
    byzantine_nodes: tuple[str, ...] = ()
    crashed_nodes: tuple[str, ...] = ()
    trace: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.violation is None

    def summary(self) -> dict[str, Any]:
        s = self.scenario
        blocks = max(self.committed_blocks, 1)
        return {
            "nodes": s.nodes,
            "f": max_faulty(s.nodes),
            "seed": s.seed,
            "byzantine": s.byzantine,
            "crashed": s.crash,
            "committed_blocks": self.committed_blocks,
            "agreement": self.agreement,
            "liveness": self.liveness,
            "view_changes": self.view_changes,
            "messages": self.messages,
            "messages_per_block": round(self.messages / blocks, 1),
            "virtual_ms": self.virtual_ms,
            "wall_ms": self.wall_ms,
        } | ({"membership": [s.nodes] + [len(ids) for _, ids in s.membership]} if s.membership else {})


def _pairs(s: Scenario, ids: list[str]) -> dict[str, KeyPair]:
    return {
        i: KeyPair(
            i, "bank", sha256(b"sim-sign:%d:%s" % (s.seed, i.encode())), sha256(b"sim-enc:" + i.encode()), alias=i
        )
        for i in ids
    }


def _keys(s: Scenario, ids: list[str]) -> tuple[dict[str, Signer], Verifier]:
    if not s.real_keys:
        return {i: FakeSigner(i) for i in ids}, FakeVerifier(ids)
    pairs = _pairs(s, ids)
    return {i: Ed25519Signer(p) for i, p in pairs.items()}, Ed25519Verifier({i: p.sign_pub for i, p in pairs.items()})


@dataclass(frozen=True)
class _Plan:
    """The nodes of a run and the application's validator changes."""

    initial: list[str]
    pool: list[str]
    changes: tuple[tuple[int, ValidatorChange], ...]
    signers: dict[str, Signer]
    verifier: Callable[[], Verifier]

    @property
    def epochs(self) -> tuple[tuple[int, tuple[str, ...]], ...]:
        return tuple((c.after_height + 1, c.validators) for _, c in self.changes)


def replica_config(s: Scenario, initial: list[str], me: str) -> ReplicaConfig:
    """The replica parameters of node `me` in a run of `s` (`initial` is the first set)."""
    return ReplicaConfig(
        chain_id="sim",
        validators=tuple(initial),
        node_id=me,
        window=s.window,
        checkpoint_interval=s.checkpoint_interval,
        request_timeout=s.request_timeout,
        view_change_timeout=s.view_change_timeout,
        quorum_override=s.quorum_override,
        reconfigurable=s.reconfigurable or bool(s.membership),
        change_lead=s.change_lead,
    )


def _plan(s: Scenario) -> _Plan:
    """Every id of the run, and each change with its `after_height` (the formula the node uses)."""
    initial = [f"v{i}" for i in range(s.nodes)]
    pool = list(initial)
    for _, ids in s.membership:
        pool += [i for i in ids if i not in pool]
    if not s.membership:
        fixed, shared = _keys(s, initial)
        return _Plan(initial, pool, (), fixed, lambda: shared)
    template = replica_config(s, initial, initial[0])
    approvals = [h for h, _ in s.membership]
    if approvals != sorted(set(approvals)) or approvals[0] < 1:
        raise ValueError("membership steps must be approved at increasing heights ≥ 1")
    if s.real_keys:
        pairs = _pairs(s, pool)
        pubs = {i: p.sign_pub for i, p in pairs.items()}
        signers: dict[str, Signer] = {i: Ed25519Signer(p) for i, p in pairs.items()}
        verifier: Callable[[], Verifier] = lambda: Ed25519Verifier({i: pubs[i] for i in initial})  # noqa: E731
    else:
        pubs = {i: b"" for i in pool}
        signers = {i: FakeSigner(i) for i in pool}
        verifier = lambda: FakeVerifier(initial)  # noqa: E731
    changes = tuple(
        (h, ValidatorChange(after_height_for(template, h), ids, {i: pubs[i] for i in ids})) for h, ids in s.membership
    )
    if changes[-1][1].after_height >= s.blocks:
        raise ValueError(f"blocks must exceed the last switch height {changes[-1][1].after_height}")
    return _Plan(initial, pool, changes, signers, verifier)


def byzantine_nodes(s: Scenario) -> tuple[str, ...]:
    """The ids a scenario's seed makes Byzantine (drawn from the initial set, as `run_scenario` does)."""
    return _Run(s).result.byzantine_nodes


def run_scenario(s: Scenario, clock: Callable[[], float] | None = None) -> SimResult:
    """Run one seeded scenario to the end (or to the first violation). `clock` (seconds,
    e.g. `time.perf_counter`) only fills `wall_ms`; the package itself reads no clock."""
    started = clock() if clock else 0.0
    run = _Run(s)
    result = run.loop()
    result.wall_ms = int((clock() - started) * 1000) if clock else 0
    return result


class _Run:
    """One run's nodes, network, fault schedule and invariant checker."""

    def __init__(self, s: Scenario) -> None:
        self.s = s
        plan = _plan(s)
        self.rng = rng = seeded(s.seed)
        self.ids = ids = plan.pool
        self.net = Network(ids, seeded(rng.random()), s.max_delay_ms)
        self.checker = Checker(epochs=plan.epochs, first_set=tuple(plan.initial))
        byz = sorted(rng.sample(plan.initial, s.byzantine), key=ids.index)
        self.correct = [i for i in ids if i not in byz]
        crashed = sorted(rng.sample(self.correct, min(s.crash, len(self.correct))), key=ids.index)
        self.nodes = {i: self._node(plan, i, byz) for i in ids}
        self.trace: list[str] = []
        self.result = SimResult(s, byzantine_nodes=tuple(byz), crashed_nodes=tuple(crashed))
        self.batches = [b"batch:%d:%d" % (s.seed, b) for b in range(s.blocks)]
        self.submitted = 0
        self._schedule(crashed)

    def _node(self, plan: _Plan, i: str, byz: list[str]) -> SimNode:
        s, rng = self.s, self.rng
        cfg = replica_config(s, plan.initial, i)
        node_rng = seeded(rng.random())
        extra: dict[str, Any] = {"peers": tuple(plan.pool), "changes": plan.changes} if s.membership else {}
        if i in byz:
            k = rng.randint(1, 2)
            modes = tuple(rng.sample(list(s.byzantine_modes), min(k, len(s.byzantine_modes))))
            return ByzantineNode(
                cfg, plan.signers[i], plan.verifier(), self.net, self.checker, node_rng, modes=modes, **extra
            )
        return SimNode(
            cfg, plan.signers[i], plan.verifier(), self.net, self.checker, node_rng, forget_wal=s.forget_wal, **extra
        )

    def _schedule(self, crashed: list[str]) -> None:
        """Batches arrive over the fault period; crashes, restarts and partitions fall inside it."""
        s, net, rng = self.s, self.net, self.rng
        net.drop, net.duplicate = s.drop, s.duplicate
        interval = max(1, s.fault_ms // max(1, s.blocks))
        for b in range(s.blocks):
            net.schedule(b * interval + rng.randint(0, interval), "submit", b)
        for i in crashed:
            at = rng.randint(0, max(1, s.fault_ms * 2 // 3))
            net.schedule(at, "crash", i)
            net.schedule(rng.randint(at + 1, max(at + 2, s.fault_ms)), "restart", i)
        if s.partition:
            t = 0
            while t < s.fault_ms:
                t += rng.randint(s.fault_ms // 6 + 1, s.fault_ms // 3 + 2)
                net.schedule(t, "partition")
                t += rng.randint(s.fault_ms // 10 + 1, s.fault_ms // 4 + 2)
                net.schedule(t, "heal")
        net.schedule(s.fault_ms, "calm")
        net.schedule(0, "tick")

    def done(self) -> bool:
        s, nodes = self.s, self.nodes
        return (
            self.net.now >= s.fault_ms
            and self.submitted == s.blocks
            and all(len(nodes[i].chain) >= s.blocks and not nodes[i].mempool for i in self.correct)
        )

    def loop(self) -> SimResult:
        """Deliver events until every batch is in, the deadline passes or an invariant breaks."""
        s, net, trace, result = self.s, self.net, self.trace, self.result
        deadline = s.fault_ms + s.liveness_ms
        try:
            while True:
                ev = net.pop()
                if ev is None or ev.at > deadline:
                    break
                if len(trace) >= 2 * TRACE_KEEP:
                    del trace[:TRACE_KEEP]
                if ev.kind == "tick":
                    if self._tick():
                        break
                    continue
                self._event(ev.kind, ev.data, ev.at)
        except Violation as v:
            result.violation = str(v)
            result.agreement = v.what != "agreement"
            trace.append(f"VIOLATION {v}")
        return self._finish(deadline)

    def _tick(self) -> bool:
        for i in self.ids:
            if self.nodes[i].up:
                self.nodes[i].on_tick()
        if self.done():
            return True
        self.net.schedule(self.s.tick_ms, "tick")
        return False

    def _event(self, kind: str, data: tuple[Any, ...], at: int) -> None:
        nodes, net, ids = self.nodes, self.net, self.ids
        self.trace.append(f"{at}ms {kind} {data[:2] if kind in ('msg', 'fetch_req', 'fetch_resp') else data}")
        if kind in ("msg", "fetch_req", "fetch_resp"):
            dst = data[1]
            if nodes[dst].up:
                self._deliver(kind, data)
        elif kind == "submit":
            self.submitted += 1
            for i in ids:
                nodes[i].mempool[self.batches[data[0]]] = None
        elif kind == "crash":
            nodes[data[0]].crash()
        elif kind == "restart":
            nodes[data[0]].restart()
        elif kind == "partition" and net.now < self.s.fault_ms:
            side = set(self.rng.sample(ids, self.rng.randint(1, len(ids) - 1)))
            net.groups = {i: int(i in side) for i in ids}
            self.trace.append(f"  partition {sorted(side)} | rest")
        elif kind == "heal":
            net.groups = None
        elif kind == "calm":
            net.drop = net.duplicate = 0.0
            net.groups = None
            for i in ids:
                if not nodes[i].up:
                    nodes[i].restart()

    def _deliver(self, kind: str, data: tuple[Any, ...]) -> None:
        node = self.nodes[data[1]]
        if kind == "msg":
            node.on_message(data[0], data[2])
        elif kind == "fetch_req":
            node.on_fetch_request(data[0], data[2], data[3])
        else:
            node.on_fetch_response(data[2])

    def _finish(self, deadline: int) -> SimResult:
        result, nodes, correct = self.result, self.nodes, self.correct
        result.trace = self.trace[-TRACE_KEEP:]
        result.virtual_ms = self.net.now
        result.messages = self.net.sent
        result.committed_blocks = min(len(nodes[i].chain) for i in correct) if correct else 0
        result.view_changes = max(nodes[i].replica.view for i in correct) if correct else 0
        if result.violation is None and not self.done():
            result.liveness = False
            lag = {i: len(nodes[i].chain) for i in correct}
            result.violation = f"liveness: not every batch committed by {deadline} ms (heights {lag})"
        return result
