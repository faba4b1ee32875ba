"""Small CometBFT-style manifests for end-to-end tests of a real local consortium.

A manifest names the testnet (nodes, consensus timing); `Net` runs it as real
`godown node start` processes and offers the few verbs a scenario needs —
load, perturb (kill/restart), wait, check — all over RPC, never inside a node.
Figures are printed as one JSON line each so `pytest -s` output can be grepped.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.client.rpc import RpcClient
from node.client.txs import NonceBook
from node.load.workload import financing_workload
from node.tools.launcher import Consortium
from node.tools.participants import Participants, participants_of
from node.tools.testnet import Testnet, init_testnet
from primitives.errors import GodownError
from primitives.genesis import ConsensusParams
from primitives.tx import SignedTx


@dataclass(frozen=True)
class Manifest:
    """What a scenario runs on: node count and consensus timing."""

    name: str
    nodes: int = 4
    view_change_timeout_ms: int = 1000

    def consensus(self) -> ConsensusParams:
        return ConsensusParams(view_change_timeout_ms=self.view_change_timeout_ms)


@dataclass(frozen=True)
class Ack:
    """What a node answered for one committed transaction."""

    tx_id: str
    height: int
    index: int
    result: str


def emit(figure: str, **values: Any) -> None:
    """Print one measured figure as a JSON line (visible with `pytest -s`)."""
    print(json.dumps({"figure": figure, **values}, sort_keys=True), flush=True)


@dataclass
class Load:
    """Financing-workload phases for a chain in use: fresh tags, one nonce book."""

    participants: Participants
    chain_id: str
    nonces: NonceBook = field(default_factory=NonceBook)
    rounds: int = 0

    def next_round(self, cases: int = 2, reports_per_case: int = 4) -> list[list[SignedTx]]:
        self.rounds += 1
        return financing_workload(
            self.participants, self.chain_id, cases, reports_per_case, tag=f"r{self.rounds}", nonces=self.nonces
        )


class Net:
    """A running testnet: processes via `Consortium`, everything else via RPC."""

    def __init__(
        self,
        directory: Path,
        manifest: Manifest,
        formed: tuple[Testnet, Consortium, Participants] | None = None,
    ) -> None:
        """A local testnet for the manifest, or (`formed`) one a scenario formed itself,
        e.g. by the genesis ceremony across network namespaces."""
        self.manifest = manifest
        if formed is None:
            testnet = init_testnet(
                directory, nodes=manifest.nodes, chain_id=f"e2e-{manifest.name}", consensus=manifest.consensus()
            )
            formed = (testnet, Consortium(testnet), participants_of(testnet))
        self.testnet, self.cons, participants = formed
        self.names = [n["name"] for n in self.testnet.nodes]
        self.load = Load(participants, self.testnet.chain_id)

    def add_node(self, entry: dict[str, Any], wrap: list[str] | None = None) -> None:
        """Another organisation's node joins the description (testnet.json) the test drives."""
        doc = json.loads((self.testnet.dir / "testnet.json").read_text())
        doc["nodes"].append(entry)
        (self.testnet.dir / "testnet.json").write_text(json.dumps(doc, indent=2))
        self.testnet = self.cons.testnet = Testnet.load(self.testnet.dir)
        if wrap:
            self.cons.wrap[str(entry["name"])] = wrap
        self.names.append(str(entry["name"]))

    # ---- processes ---------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> None:
        self.cons.start_all()
        self.cons.wait_ready(timeout=timeout)

    def start_node(self, name: str, timeout: float = 60.0) -> None:
        self.cons.start(name)
        self.client(name).wait_ready(timeout=timeout)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.cons.kill(name, sig)

    def stop_all(self) -> None:
        self.cons.stop_all()

    # ---- RPC ---------------------------------------------------------------------------
    def client(self, name: str) -> RpcClient:
        node = self.node(name)
        return RpcClient(node["rpc_url"], node.get("token"), timeout=60.0)

    def node(self, name: str) -> dict[str, Any]:
        return next(n for n in self.testnet.nodes if n["name"] == name)

    def name_of(self, node_id: str) -> str:
        return next(n["name"] for n in self.testnet.nodes if n["node_id"] == node_id)

    def status(self, name: str) -> dict[str, Any]:
        c = self.client(name)
        try:
            return c.status()
        finally:
            c.close()

    def heights(self, names: list[str] | None = None) -> dict[str, int]:
        return {n: int(self.status(n)["height"]) for n in (names or self.names)}

    def primary(self, among: list[str] | None = None) -> str:
        return self.name_of(self.status((among or self.names)[0])["primary"])

    def log(self, name: str) -> str:
        return (self.testnet.dir / name / "node.log").read_text(errors="replace")

    # ---- load --------------------------------------------------------------------------
    def submit_phases(self, phases: list[list[SignedTx]], via: list[str], wait_ms: int = 30_000) -> list[Ack]:
        """Submit each phase (after the previous committed) to nodes in turn; every tx must commit ok."""
        acks: list[Ack] = []
        clients = [self.client(n) for n in via]
        try:
            for i, phase in enumerate(phases):
                c = clients[i % len(clients)]
                answers = c.submit_many(phase, wait_ms=wait_ms)
                for stx, ans in zip(phase, answers):
                    if ans.get("code") == "accepted":
                        ans = _wait_committed(c, stx.tx_id_hex, wait_ms / 1000)
                    assert ans.get("code") == "committed" or ans.get("status") == "committed", (
                        f"phase {i} via {c.url}: {stx.tx.type} answered {ans}"
                    )
                    assert ans["result"] == "ok", f"phase {i} via {c.url}: {stx.tx.type} result {ans['result']}"
                    acks.append(Ack(stx.tx_id_hex, int(ans["height"]), int(ans.get("index", -1)), str(ans["result"])))
                top = max(a.height for a in acks[-len(phase) :])
                for other in clients:  # the next phase may go to another node: it must have executed this one
                    other.wait_height(top, timeout=wait_ms / 1000)
        finally:
            for c in clients:
                c.close()
        return acks

    def run_round(self, via: list[str], cases: int = 2, reports_per_case: int = 4) -> list[Ack]:
        return self.submit_phases(self.load.next_round(cases, reports_per_case), via)

    # ---- checks ------------------------------------------------------------------------
    def wait_heights(self, height: int, names: list[str], timeout: float = 60.0) -> None:
        for n in names:
            c = self.client(n)
            try:
                c.wait_height(height, timeout=timeout)
            finally:
                c.close()

    def wait_settled(self, names: list[str], timeout: float = 30.0) -> int:
        """Wait until the chain is quiet on `names`: each reports its latest state certified
        (the empty certifying block is in) at one head; returns that height."""
        deadline = time.monotonic() + timeout
        while True:
            docs = [self.status(n) for n in names]
            if all(d["state_certified"] for d in docs) and len({d["head_hash"] for d in docs}) == 1:
                return int(docs[0]["height"])
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not settled after {timeout} s: {[(d['height'], d['state_certified']) for d in docs]}"
                )
            time.sleep(0.1)

    def assert_agreement(self, names: list[str], upto: int) -> None:
        """Every node in `names` has the same block hash and header at every height 1..upto."""
        clients = {n: self.client(n) for n in names}
        try:
            for h in range(1, upto + 1):
                blocks = {n: c.block(h) for n, c in clients.items()}
                ref_name, ref = next(iter(blocks.items()))
                for n, b in blocks.items():
                    assert b["hash"] == ref["hash"], f"height {h}: {n} has {b['hash']}, {ref_name} has {ref['hash']}"
                    assert b["header"] == ref["header"], f"height {h}: headers of {n} and {ref_name} differ"
                    assert b["header"]["height"] == h
            if upto:
                heads = {n: clients[n].block(upto)["hash"] for n in names}
                assert len(set(heads.values())) == 1, heads
        finally:
            for c in clients.values():
                c.close()

    def txs_in(self, name: str, low: int, high: int) -> int:
        """Transactions in blocks low+1..high, read from `name`."""
        c = self.client(name)
        try:
            return sum(len(c.block(h)["txs"]) for h in range(low + 1, high + 1))
        finally:
            c.close()


MakeNet = Callable[[Manifest], Net]
"""The `make_net` fixture: builds (not starts) a testnet for a manifest, stopped at teardown."""


def _wait_committed(client: RpcClient, tx_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = client.tx(tx_id)
        if doc.get("status") == "committed" or time.monotonic() > deadline:
            return doc
        time.sleep(0.05)


class BackgroundLoad:
    """Financing rounds submitted from a thread until stopped; keeps every ack and the first error."""

    def __init__(self, net: Net, via: list[str], cases: int = 2, reports_per_case: int = 4) -> None:
        self.net, self.via, self.cases, self.reports = net, list(via), cases, reports_per_case
        self.acks: list[Ack] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="e2e-load", daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.acks += self.net.run_round(self.via, self.cases, self.reports)
        except (GodownError, AssertionError) as exc:
            self.error = exc

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=90)

    def wait_acks(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acks) < count and self.error is None and time.monotonic() < deadline:
            time.sleep(0.1)


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll `pred` until it holds or `timeout` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())
