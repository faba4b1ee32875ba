"""One simulated run: build the consortium, inject the scenario's faults, check invariants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consensus.config import ReplicaConfig
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


@dataclass(frozen=True)
class Scenario:
    """What to simulate. Faults (drop, duplicate, partitions, crashes) happen during the
    first `fault_ms` virtual milliseconds; after that the network heals, crashed nodes
    restart, and every correct replica must commit every batch within `liveness_ms`.
    Byzantine replicas stay Byzantine for the whole run."""

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
        }


def _keys(s: Scenario, ids: list[str]) -> tuple[dict[str, Signer], Verifier]:
    if not s.real_keys:
        return {i: FakeSigner(i) for i in ids}, FakeVerifier(ids)
    pairs = {
        i: KeyPair(
            i, "bank", sha256(b"sim-sign:%d:%s" % (s.seed, i.encode())), sha256(b"sim-enc:" + i.encode()), alias=i
        )
        for i in ids
    }
    return {i: Ed25519Signer(p) for i, p in pairs.items()}, Ed25519Verifier({i: p.sign_pub for i, p in pairs.items()})


def run_scenario(s: Scenario, clock: Callable[[], float] | None = None) -> SimResult:
    """Run one seeded scenario to the end (or to the first violation). `clock` (seconds,
    e.g. `time.perf_counter`) only fills `wall_ms`; the package itself reads no clock."""
    started = clock() if clock else 0.0
    rng = seeded(s.seed)
    ids = [f"v{i}" for i in range(s.nodes)]
    net = Network(ids, seeded(rng.random()), s.max_delay_ms)
    checker = Checker()
    signers, verifier = _keys(s, ids)
    byz = sorted(rng.sample(ids, s.byzantine), key=ids.index)
    correct = [i for i in ids if i not in byz]
    crashed = sorted(rng.sample(correct, min(s.crash, len(correct))), key=ids.index)
    nodes: dict[str, SimNode] = {}
    for i in ids:
        cfg = ReplicaConfig(
            chain_id="sim",
            validators=tuple(ids),
            node_id=i,
            window=s.window,
            checkpoint_interval=s.checkpoint_interval,
            request_timeout=s.request_timeout,
            view_change_timeout=s.view_change_timeout,
            quorum_override=s.quorum_override,
        )
        node_rng = seeded(rng.random())
        if i in byz:
            k = rng.randint(1, 2)
            modes = tuple(rng.sample(list(s.byzantine_modes), min(k, len(s.byzantine_modes))))
            nodes[i] = ByzantineNode(cfg, signers[i], verifier, net, checker, node_rng, modes=modes)
        else:
            nodes[i] = SimNode(cfg, signers[i], verifier, net, checker, node_rng, forget_wal=s.forget_wal)

    trace: list[str] = []
    result = SimResult(s, byzantine_nodes=tuple(byz), crashed_nodes=tuple(crashed))
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
    deadline = s.fault_ms + s.liveness_ms
    batches = [b"batch:%d:%d" % (s.seed, b) for b in range(s.blocks)]
    submitted = 0

    def done() -> bool:
        return (
            net.now >= s.fault_ms
            and submitted == s.blocks
            and all(len(nodes[i].chain) >= s.blocks and not nodes[i].mempool for i in correct)
        )

    try:
        while True:
            ev = net.pop()
            if ev is None or ev.at > deadline:
                break
            if len(trace) >= 2 * TRACE_KEEP:
                del trace[:TRACE_KEEP]
            kind = ev.kind
            if kind == "tick":
                for i in ids:
                    if nodes[i].up:
                        nodes[i].on_tick()
                if done():
                    break
                net.schedule(s.tick_ms, "tick")
                continue
            trace.append(f"{ev.at}ms {kind} {ev.data[:2] if kind in ('msg', 'fetch_req', 'fetch_resp') else ev.data}")
            if kind == "msg":
                src, dst, data = ev.data
                if nodes[dst].up:
                    nodes[dst].on_message(src, data)
            elif kind == "fetch_req":
                src, dst, lo, hi = ev.data
                if nodes[dst].up:
                    nodes[dst].on_fetch_request(src, lo, hi)
            elif kind == "fetch_resp":
                src, dst, blocks = ev.data
                if nodes[dst].up:
                    nodes[dst].on_fetch_response(blocks)
            elif kind == "submit":
                submitted += 1
                for i in ids:
                    nodes[i].mempool[batches[ev.data[0]]] = None
            elif kind == "crash":
                nodes[ev.data[0]].crash()
            elif kind == "restart":
                nodes[ev.data[0]].restart()
            elif kind == "partition" and net.now < s.fault_ms:
                side = set(rng.sample(ids, rng.randint(1, len(ids) - 1)))
                net.groups = {i: int(i in side) for i in ids}
                trace.append(f"  partition {sorted(side)} | rest")
            elif kind == "heal":
                net.groups = None
            elif kind == "calm":
                net.drop = net.duplicate = 0.0
                net.groups = None
                for i in ids:
                    if not nodes[i].up:
                        nodes[i].restart()
    except Violation as v:
        result.violation = str(v)
        result.agreement = v.what != "agreement"
        trace.append(f"VIOLATION {v}")
    result.trace = trace[-TRACE_KEEP:]
    result.virtual_ms = net.now
    result.messages = net.sent
    result.committed_blocks = min(len(nodes[i].chain) for i in correct) if correct else 0
    result.view_changes = max(nodes[i].replica.view for i in correct) if correct else 0
    if result.violation is None and not done():
        result.liveness = False
        lag = {i: len(nodes[i].chain) for i in correct}
        result.violation = f"liveness: not every batch committed by {deadline} ms (heights {lag})"
    result.wall_ms = int((clock() - started) * 1000) if clock else 0
    return result
