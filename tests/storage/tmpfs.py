"""A small tmpfs for disk-full tests: mounted on a directory, grown on demand, always
unmounted by the context manager — even when the test fails."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30)


def remount(path: Path, size: str) -> None:
    """Give the tmpfs at `path` a new size (e.g. "64m"): space returns."""
    proc = _run("mount", "-o", f"remount,size={size}", str(path))
    assert proc.returncode == 0, proc.stderr


def fill(path: Path, leave: int, name: str = "filler") -> Path:
    """Grow (or create) a filler file in `path` so that about `leave` bytes stay free."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    filler = path / name
    current = filler.stat().st_size if filler.exists() else 0
    want = max(0, current + free - leave)
    with open(filler, "ab") as f:
        chunk = b"\0" * (1024 * 1024)
        while current < want:
            n = min(len(chunk), want - current)
            f.write(chunk[:n])  # tmpfs allocates on write (a truncate would leave a hole)
            current += n
    return filler


@contextmanager
def tmpfs(path: Path, size: str = "8m") -> Iterator[Path]:
    """Mount a tmpfs of `size` on `path` (created empty if missing) for the block; skip
    the test where mounting is not allowed (not root)."""
    path.mkdir(parents=True, exist_ok=True)
    assert not any(path.iterdir()), f"{path} must be empty before a tmpfs hides it"
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        done = _run("umount", str(path))
        if done.returncode != 0:  # a process still holds a file: lazy unmount, so nothing is left mounted
            _run("umount", "-l", str(path))
