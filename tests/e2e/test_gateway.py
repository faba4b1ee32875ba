"""Manifest 6: the device gateway path — `godown gateway run` as a subprocess
reports on a lot created by the first demo steps; and `godown demo` end to end."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from node.tools.demo import run_step
from node.tools.demo_steps import demo_steps
from node.tools.participants import participants_of
from tests.e2e.manifests import MakeNet, Manifest, emit

pytestmark = [pytest.mark.e2e]


@pytest.mark.timeout(120)
def test_gateway_reports_commit_on_every_node(make_net: MakeNet) -> None:
    net = make_net(Manifest("gateway"))
    net.start()
    steps = demo_steps(participants_of(net.testnet), net.testnet.chain_id, int(time.time() * 1000))
    upto = next(i for i, s in enumerate(steps) if "issues receipts" in s.label)
    for i, step in enumerate(steps[: upto + 1]):
        c = net.client(net.names[i % len(net.names)])
        try:
            got, _ = run_step(c, step)
        finally:
            c.close()
        assert got == step.expected, (step.label, got)

    device = net.testnet.key("device-1-scale")
    via = net.names[2]
    c = net.client(via)
    nonce = c.next_nonce(device.id)
    c.close()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "gateway",
            "run",
            "--device-key",
            str(net.testnet.dir / "keys" / "device-1-scale.json"),
            "--lot",
            "L1",
            "--count",
            "2",
            "--interval",
            "0.2",
            "--rpc",
            net.node(via)["rpc_url"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("report seq")]
    assert len(lines) == 2 and all("→ committed ok" in ln for ln in lines), proc.stdout
    print(proc.stdout.strip())
    heights = net.heights()
    head = max(heights.values())
    net.wait_heights(head, net.names, timeout=30)
    net.assert_agreement(net.names, head)
    for n in net.names:
        c = net.client(n)
        try:
            assert c.next_nonce(device.id) == nonce + 2, n
        finally:
            c.close()


@pytest.mark.timeout(240)
def test_demo_subprocess_passes() -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--nodes", "4"], capture_output=True, text=True, timeout=220
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "demo passed" in proc.stdout, proc.stdout[-2000:]
    emit("demo_subprocess", seconds=round(elapsed, 1))
