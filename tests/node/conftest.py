"""Real nodes for the node tests: a single-validator testnet in tmp_path, run either
in-process (`start_node` on its own event loop in a thread) or as a `godown node
start` subprocess. Every wait is bounded and every node is stopped in a finally.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client as httpclient
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from node.client.rpc import RpcClient
from node.server.config import NodeConfig
from node.server.core import NodeCore
from node.server.serve import RunningNode, start_node
from node.tools.participants import Participants, participants_of
from node.tools.testnet import Testnet, init_testnet
from tests.waiting import free_port, wait_until  # noqa: F401 (re-exported to the tests)

REPO = Path(__file__).resolve().parents[2]
WAIT = 30.0
T = TypeVar("T")


def make_testnet(directory: Path) -> Testnet:
    """A one-validator testnet (solo engine) on a free RPC port."""
    return init_testnet(directory, nodes=1, chain_id="godown-test", base_port=free_port())


def node_config(net: Testnet) -> NodeConfig:
    return NodeConfig.load(net.config_path(net.nodes[0]))


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, raw body, and the JSON document (None if not JSON)."""

    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def doc(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def code(self) -> str | None:
        doc = self.doc
        return doc.get("error", {}).get("code") if isinstance(doc, dict) else None


def http(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    ctype: str | None = "application/json",
    headers: dict[str, str] | None = None,
    timeout: float = WAIT,
) -> Reply:
    """One raw HTTP request (no client-side checks, so tests can send anything)."""
    host, port = url.removeprefix("http://").split(":")
    conn = httpclient.HTTPConnection(host, int(port), timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None and ctype is not None:
            hdrs["Content-Type"] = ctype
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return Reply(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


class NodeThread:
    """A real node (`start_node`) on its own asyncio loop in a daemon thread."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="node-loop", daemon=True)
        self.node: RunningNode | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> RunningNode:
        self.thread.start()
        self.node = self.run(start_node(self.config))
        return self.node

    def stop(self) -> None:
        try:
            if self.node is not None:
                self.run(self.node.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(WAIT)
            if not self.thread.is_alive():
                self.loop.close()

    @property
    def url(self) -> str:
        return self.config.rpc_url

    @property
    def core(self) -> NodeCore:
        assert self.node is not None, "node not started"
        return self.node.core


class NodeProcess:
    """`godown node start` as a real subprocess, with stdout/stderr in files."""

    def __init__(self, config_path: Path, logs: Path) -> None:
        self.config_path = config_path
        self.logs = logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        self.stderr_path = self.logs / f"node-{self.runs}.err"
        with open(self.logs / f"node-{self.runs}.out", "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "node", "start", "--config", str(self.config_path)],
                cwd=REPO,
                stdout=out,
                stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, url: str, timeout: float = WAIT) -> dict[str, Any]:
        client = RpcClient(url, timeout=5)
        deadline = time.monotonic() + timeout
        try:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"node exited with {self.proc.returncode}: {self.stderr()[-2000:]}")
                try:
                    return client.status()
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        finally:
            client.close()

    def wait_exit(self, timeout: float = WAIT) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def terminate(self, timeout: float = WAIT) -> int:
        """SIGTERM and wait; SIGKILL if it does not stop in time."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT)
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)


@contextlib.contextmanager
def token_guarded(node: NodeThread, core: NodeCore, token: str = "s3cret-token") -> Iterator[str]:
    """A second RPC app on the same node core behind a bearer token, on its own port;
    yields its URL and stops it afterwards."""
    from aiohttp import web

    from node.server.rpc import make_app

    port = free_port()

    async def serve() -> web.AppRunner:
        runner = web.AppRunner(make_app(core, token), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    runner = node.run(serve())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        node.run(runner.cleanup())


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """`godown ARGS` in a subprocess; returns exit status, stdout and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def testnet(tmp_path: Path) -> Testnet:
    return make_testnet(tmp_path / "net")


@pytest.fixture
def node_process(testnet: Testnet, tmp_path: Path) -> Iterator[NodeProcess]:
    """A started subprocess node (ready), killed at the end whatever happens."""
    proc = NodeProcess(testnet.config_path(testnet.nodes[0]), tmp_path)
    try:
        proc.start()
        proc.wait_ready(testnet.rpc_urls[0])
        yield proc
    finally:
        try:
            proc.terminate()
        finally:
            proc.kill()


@pytest.fixture
def participants(testnet: Testnet) -> Participants:
    return participants_of(testnet)
