"""A soak of a real local consortium: paced financing load through every node while
a seeded schedule kills (-9) or pauses (SIGSTOP) one node at a time, a client-side
ledger of every transaction the RPC acknowledged as committed, and a monitor that
reads every node's blocks throughout. At the end it checks DESIGN §9's promises —
no acknowledged transaction lost, no fork, no node left behind — and reports how
long each kind of fault took to recover from, as one JSON object.

Used by `tests/e2e/test_soak.py` and `bench/soak.py`; it talks to the nodes only
over RPC and to their processes only through `Consortium`.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from node.client.rpc import RpcClient
from node.client.txs import NonceBook
from node.load.workload import financing_workload
from node.tools.launcher import Consortium
from node.tools.participants import Participants, participants_of
from node.tools.testnet import Testnet
from primitives.errors import Code, GodownError
from primitives.tx import SignedTx

FAULT_KINDS = ("kill", "stop")
LOOKUP_S = 5.0  # how long a client polls one node for a transaction it holds pending
HTTP_TIMEOUT_S = 2.0  # the soak's own status and look-up requests
MONITOR_TIMEOUT_S = 3.0
REREAD_BLOCKS = 20  # after a fault, the monitor reads the victim's last blocks again
MAX_BLOCKS_PER_PASS = 200
POLL_S = 0.1
START_S = 90.0  # every node started and answering

Log = Callable[[str], None]


@dataclass(frozen=True)
class SoakConfig:
    """How long, how hard and how often; every random choice comes from `seed`."""

    duration_s: float = 120.0
    seed: int = 0
    rate: int = 150  # transactions per second offered, in total over all nodes
    cases: int = 16  # financing cases per round of the workload
    reports_per_case: int = 38
    chunk: int = 20  # transactions per request
    fault_every_s: tuple[float, float] = (8.0, 15.0)
    fault_down_s: tuple[float, float] = (2.0, 5.0)
    bound_s: float = 60.0  # a node not caught up, or a chain not advancing, this long is a failure
    settle_s: float = 30.0
    give_up_s: float = 90.0  # a client stops retransmitting a transaction after this long
    # the load's client: how long a submission waits for the commit, how long a request may
    # go unanswered (above the wait; short, so a paused node does not hold the load up), and
    # how long a node that did not answer gets no new requests
    wait_ms: int = 1_000
    client_timeout_s: float = 2.0
    suspect_s: float = 3.0

    def __post_init__(self) -> None:
        assert self.duration_s > 0 and self.rate > 0 and self.chunk > 0
        assert self.fault_every_s[0] <= self.fault_every_s[1] and self.fault_down_s[0] <= self.fault_down_s[1]
        assert self.client_timeout_s * 1000 > self.wait_ms >= 0

    def time_bound_s(self) -> float:
        """The longest a soak can take, start-up and checks included, if every wait runs
        into its bound: what a caller's timeout should allow."""
        faults_end = self.fault_down_s[1] + 2 * self.bound_s + 30  # `FaultInjector.finish`
        load_end = self.give_up_s + 2 * self.client_timeout_s  # `PacedLoad.finish`
        return START_S + self.duration_s + faults_end + load_end + self.settle_s + self.bound_s + 60


@dataclass(frozen=True)
class Acked:
    """A transaction some node's RPC answered as committed: where, with what result."""

    tx_id: str
    height: int
    index: int
    result: str
    via: str


@dataclass
class Fault:
    """One injected fault; `recovered_s` runs from its end (restart or SIGCONT) until the
    victim's height reached the head the others had then (None: never, within the bound)."""

    kind: str
    node: str
    primary: bool
    at_s: float
    down_s: float
    recovered_s: float | None = None
    in_step_s: float | None = None  # from recovery until every node was in one view and at the head


class Nodes:
    """RPC access to the testnet's nodes by name, one client per thread and node
    (`RpcClient` keeps one connection and is not shared between threads)."""

    def __init__(self, testnet: Testnet, timeout: float) -> None:
        self.urls = {str(n["name"]): (str(n["rpc_url"]), n.get("token")) for n in testnet.nodes}
        self.names = list(self.urls)
        self._timeout = timeout
        self._local = threading.local()
        self._all: list[RpcClient] = []
        self._lock = threading.Lock()

    def client(self, name: str) -> RpcClient:
        mine: dict[str, RpcClient] = self._local.__dict__.setdefault("clients", {})
        if name not in mine:
            url, token = self.urls[name]
            mine[name] = RpcClient(url, token, timeout=self._timeout)
            with self._lock:
                self._all.append(mine[name])
        return mine[name]

    def status(self, name: str) -> dict[str, Any] | None:
        """The node's status, or None while it does not answer."""
        try:
            return self.client(name).status()
        except GodownError:
            return None

    def height(self, name: str) -> int | None:
        status = self.status(name)
        return None if status is None else int(status["height"])

    def heights(self, names: list[str] | None = None) -> dict[str, int | None]:
        return {n: self.height(n) for n in names or self.names}

    def statuses(self) -> dict[str, dict[str, Any] | None]:
        return {n: self.status(n) for n in self.names}

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                c.close()


def wait_for(pred: Callable[[], bool], timeout: float) -> bool:
    """Poll `pred` until it holds or `timeout` passes; its last value."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return pred()
        time.sleep(POLL_S)
    return True


class ClientLedger:
    """What the clients saw: each acknowledged transaction, and those they gave up on."""

    def __init__(self) -> None:
        self.acks: dict[str, Acked] = {}
        self.unacked: dict[str, SignedTx] = {}
        self.conflicts: list[tuple[Acked, Acked]] = []
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def ack(self, tx_id: str, doc: dict[str, Any], via: str) -> None:
        """Note a node's answer that the transaction committed (a submission's or a look-up's)."""
        a = Acked(tx_id, int(doc["height"]), int(doc["index"]), str(doc["result"]), via)
        assert a.height > 0 and a.index >= 0, doc
        with self._lock:
            old = self.acks.setdefault(a.tx_id, a)
            if (old.height, old.index, old.result) != (a.height, a.index, a.result):
                self.conflicts.append((old, a))  # two nodes told different commits of one transaction

    def give_up(self, txs: list[SignedTx]) -> None:
        with self._lock:
            self.unacked.update((t.tx_id_hex, t) for t in txs if t.tx_id_hex not in self.acks)

    def count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] += n


class Monitor:
    """Reads every block of every node as it appears (a thread per node, so a paused
    node holds up only its own reader) and keeps, per node and height, each
    (block hash, digest of its transaction ids and results) it was served."""

    def __init__(self, nodes: Nodes) -> None:
        self.nodes = nodes
        self.served: dict[str, dict[int, set[tuple[str, str]]]] = {n: {} for n in nodes.names}
        self.contents: dict[str, tuple[tuple[str, str], ...]] = {}
        self.cursor = dict.fromkeys(nodes.names, 0)
        self.head = dict.fromkeys(nodes.names, 0)
        self.unreadable: set[tuple[str, int]] = set()
        self.blocks_read = 0
        self.longest_stall_s = 0.0
        self.stall_began = 0.0  # monotonic time the longest stall began
        self.views: list[tuple[float, str, int, bool]] = []  # (monotonic, node, view, in view change) on change
        self._view: dict[str, tuple[int, bool]] = {}
        self.measuring = threading.Event()  # stalls count only while load runs
        self._top = (0, time.monotonic())
        self._advanced = False  # a stall counts from the first block under load (not the first round's signing)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._follow, args=(n,), daemon=True) for n in nodes.names]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2 * MONITOR_TIMEOUT_S + 1)

    def rewind(self, name: str, blocks: int = REREAD_BLOCKS) -> None:
        """Read the node's last blocks again: after a restart they come from its disk."""
        with self._lock:
            self.cursor[name] = max(0, self.cursor[name] - blocks)

    def end_measuring(self) -> None:
        """Count a stall still under way when the load stops."""
        with self._lock:
            if self.measuring.is_set():
                self._stalled(self._top[1], time.monotonic())
            self.measuring.clear()

    def _stalled(self, since: float, now: float) -> None:
        if self._advanced and now - since > self.longest_stall_s:
            self.longest_stall_s, self.stall_began = now - since, since

    def has_read(self, heights: dict[str, int | None]) -> bool:
        """Whether every node's blocks up to the given height were read."""
        return all(self.cursor[n] >= (h or 0) for n, h in heights.items())

    def _follow(self, name: str) -> None:
        client = RpcClient(*self.nodes.urls[name], timeout=MONITOR_TIMEOUT_S)
        try:
            while not self._stop.is_set():
                try:
                    status = client.status()
                    self._note_view(name, int(status.get("view", 0)), bool(status.get("in_view_change")))
                    self._note_head(name, int(status["height"]))
                    if not self._read(client, name):
                        self._stop.wait(POLL_S)
                except GodownError:
                    self._stop.wait(POLL_S)
        finally:
            client.close()

    def _note_view(self, name: str, view: int, changing: bool) -> None:
        if self._view.get(name) != (view, changing):
            self._view[name] = (view, changing)
            with self._lock:
                self.views.append((time.monotonic(), name, view, changing))

    def _note_head(self, name: str, height: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.head[name] = height
            top, since = self._top
            if height > top:
                if self.measuring.is_set():
                    self._stalled(since, now)
                    self._advanced = True
                self._top = (height, now)
            elif not self.measuring.is_set():
                self._top = (top, now)

    def _read(self, client: RpcClient, name: str) -> bool:
        """Read the next blocks the node has; whether there were any."""
        start, head = self.cursor[name] + 1, self.head[name]
        for h in range(start, min(head, start + MAX_BLOCKS_PER_PASS - 1) + 1):
            try:
                doc = client.block(h)
            except GodownError as exc:
                if exc.code is not Code.NOT_FOUND:
                    raise
                self.unreadable.add((name, h))
                doc = None
            with self._lock:
                if doc is not None:
                    self.record(name, h, doc)
                self.cursor[name] = max(self.cursor[name], h)
        return head >= start

    def record(self, name: str, height: int, doc: dict[str, Any]) -> None:
        """Note the block (an RPC block view) the node served at `height`."""
        assert int(doc["height"]) == height, (name, height, doc["height"])
        content = tuple((str(t["tx_id"]), str(t["result"])) for t in doc["txs"])
        digest = hashlib.sha256(json.dumps(content).encode()).hexdigest()
        self.contents.setdefault(digest, content)
        self.served[name].setdefault(height, set()).add((str(doc["hash"]), digest))
        self.unreadable.discard((name, height))
        self.blocks_read += 1

    def forks(self) -> list[dict[str, Any]]:
        """Heights at which two different block hashes were served (by any nodes, or one
        node at two times)."""
        out = []
        for h in sorted({h for per in self.served.values() for h in per}):
            seen = {n: sorted({b for b, _ in per[h]}) for n, per in self.served.items() if h in per}
            if len({b for bs in seen.values() for b in bs}) > 1:
                out.append({"height": h, "hashes": seen})
        return out

    def mismatches(self) -> list[int]:
        """Heights served with one block hash but different transactions or result codes
        (the hash covers the header only; results are certified one block later)."""
        out = []
        for h in sorted({h for per in self.served.values() for h in per}):
            by_hash: dict[str, set[str]] = {}
            for per in self.served.values():
                for block_hash, digest in per.get(h, ()):
                    by_hash.setdefault(block_hash, set()).add(digest)
            if any(len(d) > 1 for d in by_hash.values()):
                out.append(h)
        return out

    def holds(self, name: str, ack: Acked) -> bool | None:
        """Whether every block the node served at the ack's height carries the transaction
        at its index with its result (None: the monitor never read that height there)."""
        served = self.served[name].get(ack.height)
        if not served:
            return None
        return all(
            ack.index < len(self.contents[d]) and self.contents[d][ack.index] == (ack.tx_id, ack.result)
            for _, d in served
        )


class PacedLoad:
    """Financing rounds, one phase after the other (a phase depends on the ones before),
    each phase cut into requests sent to the nodes in turn at `rate` tx/s. A client
    retransmits a transaction it has no commit answer for to the next node (the same
    signed bytes, so it commits at most once) until some node says it committed."""

    def __init__(self, testnet: Testnet, cfg: SoakConfig, ledger: ClientLedger, log: Log) -> None:
        self.testnet, self.cfg, self.ledger, self.log = testnet, cfg, ledger, log
        self.nodes = Nodes(testnet, cfg.client_timeout_s)
        self.participants: Participants = participants_of(testnet)
        self.nonces = NonceBook()
        self.stop = threading.Event()
        self.aborted = threading.Event()  # set: requests under way stop retrying at once
        self._next_at = 0.0
        self._turn = 0
        self._suspect: dict[str, float] = {}  # node -> until when it gets no new requests
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="soak-client")
        self._thread = threading.Thread(target=self._run, name="soak-load", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._next_at = time.monotonic()
        self._thread.start()

    def finish(self) -> None:
        """Stop submitting new requests; wait for those under way (bounded by `give_up_s`)."""
        self.stop.set()
        self._thread.join(timeout=self.cfg.give_up_s + 2 * self.cfg.client_timeout_s)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.nodes.close()

    def _run(self) -> None:
        rounds = 0
        try:
            while not self.stop.is_set():
                rounds += 1
                phases = financing_workload(
                    self.participants,
                    self.testnet.chain_id,
                    self.cfg.cases,
                    self.cfg.reports_per_case,
                    tag=f"soak{self.cfg.seed}-{rounds}",
                    nonces=self.nonces,
                )
                for phase in phases:
                    if self.stop.is_set():
                        break
                    if not self._phase(phase):
                        self.log(f"round {rounds} abandoned: a transaction was never acknowledged")
                        self._resync()
                        break
                self.ledger.count("rounds")
        except BaseException as exc:  # reported by the soak, never swallowed
            self.error = exc
            raise

    def _phase(self, phase: list[SignedTx]) -> bool:
        """Submit one phase, paced; whether every transaction of it was acknowledged."""
        futures = []
        for i in range(0, len(phase), self.cfg.chunk):
            if self.stop.wait(max(0.0, self._next_at - time.monotonic())):
                break
            txs = phase[i : i + self.cfg.chunk]
            self._next_at = max(self._next_at, time.monotonic() - 1.0) + len(txs) / self.cfg.rate
            first = self._pick(self._turn)
            self._turn += 1
            self.ledger.count("submitted", len(txs))
            futures.append(self._pool.submit(self._deliver, txs, first))
        wait(futures)
        return all(f.result() for f in futures)

    def _deliver(self, txs: list[SignedTx], first: str) -> bool:
        """Get a commit answer for each transaction, trying node after node; gives up
        after `give_up_s`. Whether all were acknowledged."""
        pending = {t.tx_id_hex: t for t in txs}
        turn = self.nodes.names.index(first)
        deadline = time.monotonic() + self.cfg.give_up_s
        attempts = 0
        while pending and time.monotonic() < deadline and not self.aborted.is_set():
            if attempts == 1:  # what the first request left without a commit answer
                self.ledger.count("retransmitted_txs", len(pending))
            attempts += 1
            name = self._pick(turn)
            turn = self.nodes.names.index(name) + 1
            client = self.nodes.client(name)
            batch = list(pending.values())
            try:
                answers = client.submit_many(batch, wait_ms=self.cfg.wait_ms)
                for stx, answer in zip(batch, answers, strict=True):
                    if answer.get("code") == "committed":
                        self.ledger.ack(stx.tx_id_hex, answer, name)
                        del pending[stx.tx_id_hex]
                self._look_up(client, name, pending)
            except GodownError:
                self.ledger.count("unanswered_requests")
                self._suspect[name] = time.monotonic() + self.cfg.suspect_s
                time.sleep(0.2)
        self.ledger.give_up(list(pending.values()))
        return not pending

    def _pick(self, turn: int) -> str:
        """The node whose turn it is, or the next one not suspected of being down (a
        client that keeps no node-health state would wait on a paused node each time)."""
        names, now = self.nodes.names, time.monotonic()
        for i in range(len(names)):
            name = names[(turn + i) % len(names)]
            if self._suspect.get(name, 0.0) <= now:
                return name
        return names[turn % len(names)]

    def _look_up(self, client: RpcClient, name: str, pending: dict[str, SignedTx]) -> None:
        """Ask the node about transactions it admitted but did not answer for in time,
        until they commit, it no longer knows one, or `LOOKUP_S` passes."""
        until = time.monotonic() + LOOKUP_S
        while pending:
            for tx_id in list(pending):
                try:
                    doc = client.tx(tx_id)
                except GodownError as exc:
                    if exc.code is Code.NOT_FOUND:
                        return  # not here (refused, or lost with a restart): the next node gets it
                    raise
                if doc.get("status") == "committed":
                    self.ledger.ack(tx_id, doc, name)
                    del pending[tx_id]
            if not pending or time.monotonic() > until:
                return
            time.sleep(0.2)

    def _resync(self) -> None:
        """After a round was abandoned, take the members' next nonces from the nodes
        (the highest any node counts, pending included), as `godown bench` does."""
        book: dict[str, int] = {}
        for key in self.participants.members():
            for name in self.nodes.names:
                try:
                    n = self.nodes.client(name).next_nonce(key.id)
                except GodownError:
                    continue
                book[key.id] = max(book.get(key.id, 0), n)
        self.nonces = NonceBook(book)


class FaultInjector:
    """Every `fault_every_s` (seeded), one fault on a random node: kill -9 and a restart,
    or SIGSTOP and SIGCONT, after `fault_down_s`. Never two at once: a victim counts as
    faulty until it has caught up, and the next fault waits until every node is in one
    view and has reached the head seen when it starts waiting. If that takes longer than
    `bound_s`, faults stop (one more would make two faulty nodes) and the soak says why."""

    def __init__(self, cons: Consortium, nodes: Nodes, monitor: Monitor, cfg: SoakConfig, log: Log) -> None:
        self.cons, self.nodes, self.monitor, self.cfg, self.log = cons, nodes, monitor, cfg, log
        self.rng = random.Random(cfg.seed)
        self.faults: list[Fault] = []
        self.stop = threading.Event()
        self.notes: list[str] = []  # why faults stopped early (a node that never caught up, or never in step)
        self._down: dict[str, str] = {}  # node -> the fault it is under now
        self._down_lock = threading.Lock()
        self._abort = threading.Event()
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._began = time.monotonic()
        self._thread.start()

    def finish(self) -> None:
        """Let the fault under way end and recover (bounded), then undo anything left."""
        self.stop.set()
        self._thread.join(timeout=self.cfg.fault_down_s[1] + 2 * self.cfg.bound_s + 30)  # see `time_bound_s`
        self.restore()

    def restore(self) -> None:
        """Resume a paused node, restart a killed one: no fault outlives the soak."""
        for name, kind in list(self._down.items()):
            self._end(name, kind)

    def abort(self) -> None:
        """Stop at once (the soak is failing and its nodes are about to be stopped):
        resume a paused node, restart none, leave no thread that could start one later."""
        self._abort.set()
        self.stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * MONITOR_TIMEOUT_S + 5)
        self.restore()

    def _run(self) -> None:
        try:
            next_at = time.monotonic() + self.rng.uniform(*self.cfg.fault_every_s)
            while not self.stop.wait(max(0.0, next_at - time.monotonic())):
                victim, kind = self.rng.choice(self.nodes.names), self.rng.choice(FAULT_KINDS)
                down = self.rng.uniform(*self.cfg.fault_down_s)
                next_at = time.monotonic() + self.rng.uniform(*self.cfg.fault_every_s)
                fault = self._inject(victim, kind, down)
                if self._abort.is_set():
                    return
                if fault.recovered_s is None:
                    proc = self.cons.procs.get(victim)
                    state = "running" if proc is not None and proc.poll() is None else "not running"
                    self._give_up(f"{victim} ({state}) never caught up after {kind} at t={fault.at_s} s")
                    return
                recovered = time.monotonic()
                in_step = wait_for(lambda: self._abort.is_set() or self._in_step(), self.cfg.bound_s)
                if self._abort.is_set():
                    return
                if not in_step:
                    self._give_up(f"after {kind} of {victim} at t={fault.at_s} s the nodes never came into step")
                    return
                fault.in_step_s = round(time.monotonic() - recovered, 2)
                if fault.in_step_s > 2.0:
                    self.log(f"every node in one view and at the head {fault.in_step_s} s after that")
        except BaseException as exc:  # reported by the soak, never swallowed
            self.error = exc
            raise

    def _give_up(self, why: str) -> None:
        """No more faults (one more would be a second faulty node): say why, with every
        node's state (view, view change, height, primary) as it answers now."""
        fields = ("height", "view", "in_view_change", "primary", "sync", "mempool")
        states = {n: s and {k: s.get(k) for k in fields} for n, s in self.nodes.statuses().items()}
        note = f"{why} within {self.cfg.bound_s:.0f} s; no more faults. Nodes now: {states}"
        self.notes.append(note)
        self.log(note)

    def _inject(self, victim: str, kind: str, down: float) -> Fault:
        others = [n for n in self.nodes.names if n != victim]
        primary = self._primary(others)
        fault = Fault(kind, victim, primary == victim, round(time.monotonic() - self._began, 2), round(down, 2))
        self.faults.append(fault)
        self._begin(victim, kind)
        self._abort.wait(down)
        self._end(victim, kind)
        ended = time.monotonic()
        target = max((h for h in self.nodes.heights(others).values() if h is not None), default=0)

        def caught_up() -> bool:
            return self._abort.is_set() or (self.nodes.height(victim) or -1) >= target

        if wait_for(caught_up, self.cfg.bound_s) and not self._abort.is_set():
            fault.recovered_s = round(time.monotonic() - ended, 2)
        self.monitor.rewind(victim)
        role = " (primary)" if fault.primary else ""
        self.log(f"t={fault.at_s:.0f}s {kind} {victim}{role} for {down:.1f} s; caught up {fault.recovered_s} s later")
        return fault

    def _begin(self, name: str, kind: str) -> None:
        with self._down_lock:
            self._down[name] = kind
        if kind == "kill":
            self.cons.kill(name, signal.SIGKILL)
        else:
            self.cons.procs[name].send_signal(signal.SIGSTOP)

    def _end(self, name: str, kind: str) -> None:
        with self._down_lock:  # the injector's thread and `restore` may both get here
            if self._down.pop(name, None) is None:
                return
            if kind == "stop":
                self.cons.procs[name].send_signal(signal.SIGCONT)
            elif not self._abort.is_set():
                self.cons.start(name)

    def _primary(self, among: list[str]) -> str | None:
        """The primary most of `among` name (one alone in a view change names another)."""
        named = Counter(str(s["primary"]) for s in map(self.nodes.status, among) if s is not None)
        if not named:
            return None
        node_id = named.most_common(1)[0][0]
        return next((str(n["name"]) for n in self.cons.testnet.nodes if n["node_id"] == node_id), None)

    def _in_step(self) -> bool:
        """Every node answers, in one view and not changing it (a node alone in a view change
        takes no part: it counts as faulty), and reaches the highest height any had a moment ago."""
        first = self.nodes.statuses()
        answers = [s for s in first.values() if s is not None]
        if len(answers) < len(first) or len({(s.get("view"), bool(s.get("in_view_change"))) for s in answers}) > 1:
            return False
        if any(s.get("in_view_change") for s in answers):
            return False
        top = max(int(s["height"]) for s in answers)
        return wait_for(lambda: all((self.nodes.height(n) or -1) >= top for n in self.nodes.names), 5.0)


@dataclass
class SoakResult:
    """The figures (one JSON line), the faults one by one, and what broke a promise."""

    figures: dict[str, Any]
    faults: list[Fault] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    views: list[tuple[float, str, int, bool]] = field(default_factory=list)  # (t, node, view, changing)

    def lines(self, key: str = "figure") -> list[str]:
        """The figures, then the faults and every node's view changes with their times
        (seconds from the start, `started_unix` in the figures; node logs carry Unix times).
        `key` names the line as the tests ("figure") or the benchmarks ("bench") do."""
        events = {"faults": [asdict(f) for f in self.faults], "views": self.views}
        return [
            json.dumps({key: "soak", **self.figures}, sort_keys=True),
            json.dumps({key: "soak_events", "seed": self.figures["seed"], **events}),
        ]


def _say(line: str) -> None:
    print(f"[soak] {line}", flush=True)


@contextmanager
def _nodes_running(cons: Consortium) -> Iterator[None]:
    """Every node started and answering; every one stopped afterwards, whatever happens."""
    try:
        cons.start_all()
        cons.wait_ready(timeout=START_S)
        yield
    finally:
        cons.stop_all()


def run_soak(testnet: Testnet, cons: Consortium, cfg: SoakConfig, log: Log = _say) -> SoakResult:
    """Start the testnet's nodes, soak them for `cfg.duration_s`, check, stop them."""
    ledger = ClientLedger()
    nodes = Nodes(testnet, HTTP_TIMEOUT_S)
    monitor = Monitor(Nodes(testnet, MONITOR_TIMEOUT_S))
    load = PacedLoad(testnet, cfg, ledger, log)
    injector = FaultInjector(cons, Nodes(testnet, MONITOR_TIMEOUT_S), monitor, cfg, log)
    log(f"seed {cfg.seed}: {cfg.duration_s:.0f} s at {cfg.rate} tx/s, testnet {testnet.dir}")
    with _nodes_running(cons):
        try:
            monitor.start()
            monitor.measuring.set()
            began, started_unix = time.monotonic(), time.time()
            load.start()
            injector.start()
            wait_for(lambda: load.error is not None or injector.error is not None, cfg.duration_s)
            elapsed = time.monotonic() - began
            load.stop.set()
            monitor.end_measuring()
            injector.finish()
            load.finish()
            settle_s, heights = _settle(nodes, ledger, cfg.settle_s)
            wait_for(lambda: monitor.has_read(heights), cfg.bound_s)
            fates = {tx_id: _fate(nodes, tx_id) for tx_id in ledger.unacked}
        finally:
            load.aborted.set()
            load.stop.set()
            injector.abort()
            monitor.stop()
            nodes.close()
    result = judge(cfg, ledger, monitor, injector, fates, heights)
    result.figures.update(duration_s=round(elapsed, 1), settle_s=settle_s)
    result.figures["longest_no_commit_at_s"] = round(max(0.0, monitor.stall_began - began), 1)
    result.figures["started_unix"] = round(started_unix, 1)
    result.views = [(round(t - began, 2), n, v, c) for t, n, v, c in monitor.views if t >= began]
    result.figures["ack_tx_s"] = round(len(ledger.acks) / max(elapsed, 1e-3), 1)
    for what, err in (("load", load.error), ("faults", injector.error)):
        if err is not None:
            result.problems.append(f"the {what} thread failed: {err!r}")
    return result


def _settle(nodes: Nodes, ledger: ClientLedger, timeout: float) -> tuple[float | None, dict[str, int | None]]:
    """Wait until every node is at one height, at least every acknowledged one;
    the seconds it took (None: not within `timeout`) and the heights last seen."""
    floor = max((a.height for a in ledger.acks.values()), default=0)
    began = time.monotonic()
    seen: dict[str, int | None] = {}

    def level() -> bool:
        seen.update(nodes.heights())
        values = set(seen.values())
        return len(values) == 1 and None not in values and min(h for h in values if h is not None) >= floor

    done = wait_for(level, timeout)
    return (round(time.monotonic() - began, 2) if done else None), dict(seen)


def _fate(nodes: Nodes, tx_id: str) -> dict[str, str]:
    """What each node says of a transaction no client saw acknowledged."""
    out = {}
    for name in nodes.names:
        try:
            doc = nodes.client(name).tx(tx_id)
            status = str(doc.get("status"))
            out[name] = f"committed@{doc['height']}:{doc['result']}" if status == "committed" else status
        except GodownError as exc:
            out[name] = "absent" if exc.code is Code.NOT_FOUND else "unreachable"
    return out


def _fate_kind(fate: dict[str, str]) -> str:
    """ "everywhere" (one height and result on every node), "nowhere", or "split"."""
    values = set(fate.values())
    if len(values) == 1 and next(iter(values)).startswith("committed@"):
        return "everywhere"
    return "split" if any(v.startswith("committed@") for v in values) else "nowhere"


def _ack_problems(ledger: ClientLedger, monitor: Monitor) -> tuple[int, int, list[str]]:
    """Acknowledged transactions missing from (or different on) some node's chain, and
    those the monitor could not check; with one line each."""
    lost, unverified, problems = 0, 0, []
    for ack in ledger.acks.values():
        held = {n: monitor.holds(n, ack) for n in monitor.nodes.names}
        if any(v is False for v in held.values()):
            lost += 1
            problems.append(f"acknowledged {ack} is not on every chain: {held}")
        elif any(v is None for v in held.values()):
            unverified += 1
            problems.append(f"acknowledged {ack}: the monitor never read its block on {held}")
    return lost, unverified, problems


def judge(
    cfg: SoakConfig,
    ledger: ClientLedger,
    monitor: Monitor,
    injector: FaultInjector,
    fates: dict[str, dict[str, str]],
    heights: dict[str, int | None],
) -> SoakResult:
    """The figures, and every broken promise spelt out."""
    lost, unverified, problems = _ack_problems(ledger, monitor)
    problems += [f"one transaction acknowledged twice, differently: {a} and {b}" for a, b in ledger.conflicts]
    kinds = {t: _fate_kind(f) for t, f in fates.items()}
    problems += [
        f"unacknowledged {t} not committed alike everywhere: {fates[t]}" for t, k in kinds.items() if k == "split"
    ]
    forks, mismatches = monitor.forks(), monitor.mismatches()
    problems += [f"fork at height {f['height']}: {f['hashes']}" for f in forks]
    problems += [f"height {h}: one block hash, different transactions or results" for h in mismatches]
    top = max((h for h in heights.values() if h is not None), default=0)
    behind = sorted(n for n, h in heights.items() if h is None or h < top)
    if behind:
        problems.append(f"nodes left behind after {cfg.settle_s:.0f} s of settling: {heights}")
    unrecovered = [f for f in injector.faults if f.recovered_s is None]
    problems += injector.notes
    if monitor.longest_stall_s > cfg.bound_s:
        problems.append(f"the chain did not advance for {monitor.longest_stall_s:.1f} s under load")
    if not ledger.acks:
        problems.append("no transaction was acknowledged")
    recovery = {
        k: max((f.recovered_s for f in injector.faults if f.kind == k and f.recovered_s is not None), default=None)
        for k in FAULT_KINDS
    }
    fate_counts = Counter(kinds.values())
    figures: dict[str, Any] = {
        "seed": cfg.seed,
        "nodes": len(monitor.nodes.names),
        "rate_tx_s": cfg.rate,
        "client": {"wait_ms": cfg.wait_ms, "timeout_s": cfg.client_timeout_s, "suspect_s": cfg.suspect_s},
        "submitted": ledger.counts["submitted"],
        "acknowledged": len(ledger.acks),
        "rounds": ledger.counts["rounds"],
        "results": dict(Counter(a.result for a in ledger.acks.values())),
        "retransmitted_txs": ledger.counts["retransmitted_txs"],
        "unanswered_requests": ledger.counts["unanswered_requests"],
        "unacknowledged": len(ledger.unacked),
        "unacked_committed_everywhere": fate_counts["everywhere"],
        "unacked_nowhere": fate_counts["nowhere"],
        "unacked_split": fate_counts["split"],
        "lost": lost,
        "unverified": unverified,
        "forks": len(forks),
        "result_mismatches": len(mismatches),
        "behind": behind,
        "height": top,
        "blocks_read": monitor.blocks_read,
        "blocks_unreadable": len(monitor.unreadable),
        "faults": {k: sum(f.kind == k for f in injector.faults) for k in FAULT_KINDS},
        "faults_on_primary": sum(f.primary for f in injector.faults),
        "recovery_max_s": recovery,
        "unrecovered": len(unrecovered),
        "longest_in_step_wait_s": max((f.in_step_s for f in injector.faults if f.in_step_s is not None), default=None),
        "longest_no_commit_s": round(monitor.longest_stall_s, 2),
    }
    return SoakResult(figures, list(injector.faults), problems)
