"""Run a local consortium's nodes as child processes (`testnet up`, the demo,
the end-to-end tests and the benchmark all use this)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from node.client.rpc import RpcClient
from node.tools.testnet import Testnet
from primitives.errors import Code, GodownError


@dataclass
class Consortium:
    """The nodes of a testnet as child processes. `wrap` prefixes a node's command
    (e.g. `ip netns exec HOST` to run it inside a network namespace of its own);
    `args` and `env` add to one node's command line and environment (fault tests
    start a misbehaving node so: `--misbehave KIND` with `GODOWN_TEST_SWITCHES=1`)."""

    testnet: Testnet
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    wrap: dict[str, list[str]] = field(default_factory=dict)
    args: dict[str, list[str]] = field(default_factory=dict)
    env: dict[str, dict[str, str]] = field(default_factory=dict)

    def start(self, name: str) -> None:
        node = next((n for n in self.testnet.nodes if n["name"] == name), None)
        if node is None:
            raise GodownError(Code.NOT_FOUND, f"no node {name} in {self.testnet.dir}")
        log_path = self.testnet.dir / node["name"] / "node.log"
        log = open(log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env.get(name, {}))
        self.procs[name] = subprocess.Popen(
            [
                *self.wrap.get(name, []),
                sys.executable,
                "-m",
                "cli",
                "node",
                "start",
                "--config",
                str(self.testnet.config_path(node)),
                *self.args.get(name, []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()

    def start_all(self) -> None:
        for node in self.testnet.nodes:
            self.start(node["name"])

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for node in self.testnet.nodes:
            name = node["name"]
            client = RpcClient(node["rpc_url"], node.get("token"))
            while True:
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    tail = self.log_tail(name)
                    raise GodownError(Code.UNAVAILABLE, f"node {name} exited with {proc.returncode}:\n{tail}")
                try:
                    client.status()
                    break
                except GodownError:
                    if time.monotonic() > deadline:
                        raise GodownError(Code.UNAVAILABLE, f"node {name} did not answer in {timeout:.0f} s") from None
                    time.sleep(0.1)
            client.close()

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.testnet.dir / name / "node.log"
        try:
            return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def stop_all(self, timeout: float = 15.0) -> None:
        """SIGTERM to every node at once, then wait for them together (SIGKILL for any
        still running after `timeout`): stopping n nodes takes one node's stop, not n."""
        procs = [self.procs.pop(name) for name in list(self.procs)]
        running = [p for p in procs if p.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in running:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def __enter__(self) -> Consortium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def run_until_signal(directory: str | Path, echo: object = print) -> None:
    """`testnet up`: start every node, report them, stop them all on SIGINT/SIGTERM."""
    net = Testnet.load(directory)
    stop = {"now": False}

    def handler(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    with Consortium(net) as cons:
        cons.start_all()
        cons.wait_ready()
        for n in net.nodes:
            echo(f"{n['name']:<10} up  rpc {n['rpc_url']}  log {net.dir / n['name'] / 'node.log'}")  # type: ignore[operator]
        echo("all nodes up; Ctrl-C stops them")  # type: ignore[operator]
        while not stop["now"]:
            dead = [n for n in cons.procs if cons.procs[n].poll() is not None]
            for name in dead:
                echo(f"node {name} exited ({cons.procs[name].returncode}); see its node.log")  # type: ignore[operator]
                cons.procs.pop(name)
            time.sleep(0.5)
        echo("stopping all nodes")  # type: ignore[operator]
