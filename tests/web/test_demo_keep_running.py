"""`godown demo --keep-running`: after the round the consortium stays up, the demo prints
each node's dashboard URL with its member, every dashboard answers, and Ctrl-C (SIGINT)
stops every node and exits 0."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.node.conftest import REPO, http

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

LINE = re.compile(r"^dashboard (\S+) \((\S+) (\S+)\): (http://127\.0\.0\.1:\d+)/ui/$")


def _kill_left_over_nodes(directory: Path) -> None:
    """SIGKILL every process whose command line names `directory` (the demo's nodes run
    in sessions of their own, so they outlive a demo process killed with SIGKILL)."""
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(directory) in cmdline and int(proc_dir.name) != os.getpid():
            with contextlib.suppress(OSError):
                os.kill(int(proc_dir.name), signal.SIGKILL)


def test_keep_running_serves_the_dashboards_until_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "demo", "--keep-running", "--dir", str(tmp_path / "demo")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x.rstrip("\n")) for x in proc.stdout or ()], daemon=True).start()
    found: dict[str, tuple[str, str, str]] = {}
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while len(found) < 4:
            assert proc.poll() is None, "\n".join(seen)
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("no dashboards printed:\n" + "\n".join(seen)) from None
            seen.append(line)
            m = LINE.match(line)
            if m:
                found[m[1]] = (m[2], m[3], m[4])
        assert any("demo passed" in x for x in seen), "\n".join(seen)
        for name, (role, member, origin) in found.items():
            page = http(origin, "GET", "/ui/")
            assert page.status == 200 and b"js/app.js" in page.body
            me = http(origin, "GET", "/v1/whoami").doc
            assert me["member"]["id"] == member and me["member"]["role"] == role == name
            assert me["opens_reports"] is True
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _kill_left_over_nodes(tmp_path / "demo")  # a demo killed before its own cleanup leaves its nodes
    for _, _, origin in found.values():
        with pytest.raises(OSError):
            http(origin, "GET", "/v1/health", timeout=2)
