"""Hosts for multi-host tests: Linux network namespaces on one bridge, each with
its own address, as DESIGN §9 allows. Traffic goes only to addresses of the
namespaces made here; everything made is removed on exit, even after a failure.
Where namespaces cannot be made (not root, no `ip`), `available()` says why and
the scenario runs on loopback instead."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def available() -> str | None:
    """None if namespaces work here, else the reason they do not."""
    if shutil.which("ip") is None:
        return "no `ip` command"
    if os.geteuid() != 0:
        return "not root"
    probe = f"gdp{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Hosts:
    """`count` namespaces `gd<tag>-<i>` with addresses 10.<a>.<b>.<i+1>/24 on bridge
    `gd<tag>br`; the root namespace is 10.<a>.<b>.254 on the same bridge."""

    count: int
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    subnet: str = field(default_factory=lambda: f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}")
    made: list[str] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"gd{self.tag}br"

    def ns(self, i: int) -> str:
        return f"gd{self.tag}-{i}"

    def addr(self, i: int) -> str:
        return f"{self.subnet}.{i + 1}"

    def _veth(self, i: int) -> str:
        return f"gd{self.tag}v{i}"

    def create(self) -> Hosts:
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            self.made.append(f"link:{self.bridge}")
            _ip("addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i in range(self.count):
                ns, veth = self.ns(i), self._veth(i)
                _ip("netns", "add", ns)
                self.made.append(f"netns:{ns}")
                _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
                _ip("link", "set", f"{veth}p", "netns", ns)
                _ip("link", "set", veth, "master", self.bridge)
                _ip("link", "set", veth, "up")
                _ip("-n", ns, "addr", "add", f"{self.addr(i)}/24", "dev", f"{veth}p")
                _ip("-n", ns, "link", "set", f"{veth}p", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.destroy()
            raise
        return self

    def wrap(self, i: int) -> list[str]:
        """The prefix that runs a command on host i."""
        return ["ip", "netns", "exec", self.ns(i)]

    def isolate(self, i: int) -> None:
        """Cut host i's link (its processes keep running)."""
        _ip("link", "set", self._veth(i), "down")

    def heal(self, i: int) -> None:
        _ip("link", "set", self._veth(i), "up")

    def deafen(self, i: int) -> None:
        """A one-way cut: host i still sends, but nothing the other hosts send reaches it (a
        blackhole route to its address on each of them; the root namespace, where the test
        reads every node's RPC, still reaches it). Over TCP its streams soon stall too."""
        for j in range(self.count):
            if j != i:
                _ip("-n", self.ns(j), "route", "add", "blackhole", f"{self.addr(i)}/32")

    def undeafen(self, i: int) -> None:
        for j in range(self.count):
            if j != i:
                _ip("-n", self.ns(j), "route", "del", "blackhole", f"{self.addr(i)}/32", check=False)

    def destroy(self) -> None:
        for item in reversed(self.made):
            kind, name = item.split(":", 1)
            if kind == "netns":
                _ip("netns", "del", name, check=False)  # its veth end goes with it
            else:
                _ip("link", "del", name, check=False)
        self.made.clear()

    def __enter__(self) -> Hosts:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.destroy()
