"""`godown bench`: drive a running consortium with the financing workload of
DESIGN §10 and report committed tx/s and commit latency, like tm-bench or
Hyperledger Caliper.

Transactions are built and signed before the clock starts (the load generator
shares the machine's cores with the nodes). They go in phases — a phase only
depends on earlier ones — as msgpack batches to every node in turn. A batch's
latency runs from its submission until every node has published the highest
block that holds one of its transactions on its WebSocket event stream.

A consortium with nodes down is measured too, as long as a quorum of validators
answers (it can still commit): the load goes to the nodes that answer, latency is
counted on them, and the figures name the nodes left out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgpack

from node.client.rpc import RpcClient
from node.client.txs import NonceBook
from node.load.workload import financing_workload
from node.tools.participants import participants_of
from node.tools.testnet import Testnet
from primitives.block import quorum_size
from primitives.errors import Code, GodownError
from primitives.tx import SignedTx

REPORTS_PER_CASE = 38  # ~80% of a case's transactions are device reports (DESIGN §10)
TXS_PER_CASE = REPORTS_PER_CASE + 12  # plus two ratings per run
BATCH_TXS = 250
MAX_IN_FLIGHT_TXS = 3000
"""Saturating load keeps at most this many transactions submitted and not yet answered
(a few blocks' worth, enough to keep the pipeline full): a client that pushes a whole
phase at once only builds a queue, which measures the queue's length, not the consortium."""
POLL_S = 0.01
WAIT_S = 30.0
"""How long `run_bench` waits by default for every node to answer (a consortium just started)."""
PROBE_TIMEOUT_S = 2.0
PROBE_EVERY_S = 0.2
STRAGGLER_GRACE_S = 5.0
"""Once a quorum answers, how much longer the others get before they count as down."""


@dataclass
class _Heights:
    """First time (monotonic) each node was seen at or above each height."""

    reached: dict[str, dict[int, float]] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)

    def see(self, node: str, height: int, at: float) -> None:
        old = self.current.get(node)
        if old is None or height > old:
            marks = self.reached.setdefault(node, {})
            for h in range(0 if old is None else old + 1, height + 1):
                marks[h] = at
            self.current[node] = height

    def all_reached(self, height: int) -> float | None:
        times = [self.reached.get(n, {}).get(height) for n in self.current]
        if not times or any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)


def _probe(node: dict[str, Any]) -> dict[str, Any] | None:
    """A node's status, or None if it does not answer."""
    client = RpcClient(node["rpc_url"], node.get("token"), timeout=PROBE_TIMEOUT_S)
    try:
        return client.status()
    except GodownError:
        return None
    finally:
        client.close()


def _quorum(net: Testnet, answered: dict[str, dict[str, Any]]) -> tuple[int, int]:
    """(validators that answered, validators a quorum needs), by the validator set an
    answering node reports (the testnet's nodes until one answers)."""
    ids = {str(v) for s in list(answered.values())[:1] for v in s.get("validators", ())}
    if not ids:
        ids = {str(n.get("node_id")) for n in net.nodes}
    have = sum(1 for n in net.nodes if n["name"] in answered and n.get("node_id") in ids)
    return have, quorum_size(len(ids))


def reachable(net: Testnet, wait_s: float = WAIT_S) -> tuple[Testnet, tuple[str, ...]]:
    """The part of `net` that answers, and the names of the nodes that do not. Waits up
    to `wait_s` for every node, but only `STRAGGLER_GRACE_S` more once a quorum of
    validators answers. Fewer than a quorum is an `unavailable` error: such a consortium
    commits nothing, so there is nothing to measure."""
    answered: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + wait_s
    quorum_since: float | None = None
    while True:
        for node in net.nodes:
            if node["name"] not in answered and (status := _probe(node)) is not None:
                answered[node["name"]] = status
        have, need = _quorum(net, answered)
        now = time.monotonic()
        if have >= need and quorum_since is None:
            quorum_since = now
        if len(answered) == len(net.nodes) or now > deadline:
            break
        if quorum_since is not None and now - quorum_since > STRAGGLER_GRACE_S:
            break
        time.sleep(PROBE_EVERY_S)
    down = tuple(n["name"] for n in net.nodes if n["name"] not in answered)
    if have < need:
        raise GodownError(
            Code.UNAVAILABLE,
            f"{have} validators answer, a quorum needs {need} (down: {', '.join(down)}); nothing would commit",
        )
    up = dataclasses.replace(net, nodes=tuple(n for n in net.nodes if n["name"] in answered))
    assert up.nodes and len(up.nodes) + len(down) == len(net.nodes)
    return up, down


def build_load(net: Testnet, cases: int) -> list[list[SignedTx]]:
    """The signed phases, with nonces continuing from the chain's current ones."""
    p = participants_of(net)
    client = RpcClient(net.nodes[0]["rpc_url"])
    book = NonceBook({k.id: client.next_nonce(k.id) for k in p.members()})
    client.close()
    return financing_workload(p, net.chain_id, cases, REPORTS_PER_CASE, tag=secrets.token_hex(3), nonces=book)


async def _watch(session: aiohttp.ClientSession, urls: dict[str, str], heights: _Heights, stop: asyncio.Event) -> None:
    """Follow every node's committed blocks on its WebSocket (block events only): the
    time a height is seen is when the node published it, with no polling load on it."""

    async def one(name: str, url: str) -> None:
        while not stop.is_set():
            try:
                async with session.get(f"{url}/v1/status") as resp:
                    heights.see(name, int((await resp.json())["height"]), time.monotonic())
                async with session.ws_connect(f"{url}/v1/events?kinds=block", heartbeat=20) as ws:
                    stopping = asyncio.ensure_future(stop.wait())
                    try:
                        while not stop.is_set():
                            receiving = asyncio.ensure_future(ws.receive())
                            await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                            if not receiving.done():
                                receiving.cancel()
                                break
                            msg = receiving.result()
                            if msg.type != aiohttp.WSMsgType.TEXT:
                                break
                            heights.see(name, int(json.loads(msg.data)["height"]), time.monotonic())
                    finally:
                        stopping.cancel()
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError):
                await asyncio.sleep(POLL_S)

    await asyncio.gather(*(one(n, u) for n, u in urls.items()))


def _batch_body(txs: list[SignedTx]) -> bytes:
    """The canonical msgpack list of signed transactions, from their kept wire bytes
    (a list's encoding is its header and its items' encodings): cheap for the client,
    which shares the cores with the nodes it measures."""
    header: bytes = msgpack.Packer().pack_array_header(len(txs))
    return header + b"".join(t.encode() for t in txs)


async def _submit(session: aiohttp.ClientSession, url: str, txs: list[SignedTx]) -> list[dict[str, Any]]:
    body = _batch_body(txs)
    try:
        async with session.post(
            f"{url}/v1/txs?wait_ms=60000", data=body, headers={"Content-Type": "application/msgpack"}
        ) as resp:
            doc = await resp.json()
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        raise GodownError(Code.UNAVAILABLE, f"{url} did not answer a batch ({exc.__class__.__name__})") from None
    if resp.status >= 400:
        err = doc.get("error", {})
        raise GodownError(Code.UNAVAILABLE, f"{url} refused a batch: {err.get('code')}: {err.get('message')}")
    return doc["results"]  # type: ignore[no-any-return]


async def drive_load(net: Testnet, phases: list[list[SignedTx]], rate: int, duration: float) -> dict[str, Any]:
    """Submit the phases to `net`'s nodes in turn (paced at `rate` tx/s, or as fast as
    they take them with 0, `MAX_IN_FLIGHT_TXS` at a time), each phase once the previous one committed, until done or
    `duration` seconds passed; returns the figures of `run_bench`."""
    urls = {n["name"]: n["rpc_url"] for n in net.nodes}
    names = list(urls)
    heights = _Heights()
    stop = asyncio.Event()
    latencies: list[float] = []
    counts = {"submitted": 0, "committed": 0, "rejected": 0}
    codes: dict[str, int] = {}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=64)) as session:
        watcher = asyncio.create_task(_watch(session, urls, heights, stop))
        while len(heights.current) < len(urls):  # every node's starting height, before any load
            await asyncio.sleep(POLL_S)
        turn = 0
        started = time.monotonic()
        deadline = started + duration

        window = asyncio.Semaphore(max(1, MAX_IN_FLIGHT_TXS // BATCH_TXS))

        async def batch(url: str, txs: list[SignedTx], sent_at: float) -> None:
            try:
                results = await _submit(session, url, txs)
            finally:
                if not rate:
                    window.release()
            top = 0
            for r in results:
                if r.get("code") == "committed":
                    counts["committed"] += 1
                    top = max(top, int(r["height"]))
                if r.get("code") != "committed" or r.get("result") != "ok":
                    counts["rejected"] += 1
                    code = str(r.get("result") or r.get("code"))
                    codes[code] = codes.get(code, 0) + 1
            if top:
                while (at := heights.all_reached(top)) is None:
                    await asyncio.sleep(POLL_S)
                latencies.append((at - sent_at) * 1000)

        for phase in phases:
            if time.monotonic() > deadline:
                break
            chunk = BATCH_TXS if not rate else max(1, min(BATCH_TXS, rate // 20))
            tasks = []
            phase_start = time.monotonic()  # pacing restarts after waiting for the previous phase: no bursts
            for i in range(0, len(phase), chunk):
                txs = phase[i : i + chunk]
                if rate:  # pace: chunk/rate seconds per batch
                    await asyncio.sleep(max(0.0, phase_start + i / rate - time.monotonic()))
                else:  # saturate, with a bounded window
                    await window.acquire()
                counts["submitted"] += len(txs)
                tasks.append(asyncio.create_task(batch(urls[names[turn % len(names)]], txs, time.monotonic())))
                turn += 1
            await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        stop.set()
        await watcher
    lat = sorted(latencies)
    return {
        "nodes_measured": len(names),
        "submitted": counts["submitted"],
        "committed": counts["committed"],
        "rejected": counts["rejected"],
        "tx_s": round(counts["committed"] / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(statistics.median(lat), 1) if lat else None,
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1) if lat else None,
        "duration_s": round(elapsed, 2),
        "rejections": codes,
    }


def run_bench(
    testnet_dir: str, duration: float = 20.0, rate: int = 0, cases: int = 0, wait_s: float = WAIT_S
) -> dict[str, Any]:
    """Build the load, drive it on the nodes that answer, return the figures (one JSON
    object: `nodes` in the testnet, `nodes_measured`, the names of those `down`)."""
    net = Testnet.load(testnet_dir)
    up, down = reachable(net, wait_s)
    if not cases:
        target = (rate or 3000) * duration
        cases = max(4, int(target // TXS_PER_CASE))
    phases = build_load(up, cases)
    figures = asyncio.run(drive_load(up, phases, rate, duration * 3))
    return {"nodes": len(net.nodes), "down": list(down), **figures}
