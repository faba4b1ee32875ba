"""Helpers for p2p tests: real libp2p hosts on 127.0.0.1, free ports, bounded waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from p2p.identity import peer_id, tcp_multiaddr
from p2p.service import P2PService
from primitives.keys import KeyPair
from tests.waiting import free_port, wait_until  # noqa: F401 (re-exported to the tests)

WAIT = 20.0


class Collector:
    """An `on_frame` callback that records frames per sender and lets a test wait for them."""

    def __init__(self) -> None:
        self.frames: dict[str, list[bytes]] = {}
        self._cond = threading.Condition()

    def __call__(self, member_id: str, frame: bytes) -> None:
        with self._cond:
            self.frames.setdefault(member_id, []).append(frame)
            self._cond.notify_all()

    def count(self, member_id: str) -> int:
        with self._cond:
            return len(self.frames.get(member_id, []))

    def wait(self, member_id: str, n: int, timeout: float = WAIT) -> list[bytes]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.frames.get(member_id, [])) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = len(self.frames.get(member_id, []))
                    raise AssertionError(f"timed out: {got}/{n} frames from {member_id}")
                self._cond.wait(left)
            return list(self.frames[member_id])


@dataclass
class Member:
    name: str
    keys: KeyPair
    port: int
    inbox: Collector = field(default_factory=Collector)
    service: P2PService | None = None

    @property
    def svc(self) -> P2PService:
        assert self.service is not None
        return self.service


@dataclass
class Cluster:
    members: list[Member]
    started: list[P2PService] = field(default_factory=list)

    def peers(self, names: list[str] | None = None) -> dict[str, tuple[bytes, str]]:
        return {
            m.name: (m.keys.sign_pub, tcp_multiaddr(m.port)) for m in self.members if names is None or m.name in names
        }

    def start(self, m: Member, peers: dict[str, tuple[bytes, str]] | None = None, **kw: object) -> P2PService:
        chosen = peers if peers is not None else self.peers()
        svc = P2PService(m.keys.sign_seed, m.port, chosen, on_frame=m.inbox, **kw)  # type: ignore[arg-type]
        svc.start()
        m.service = svc
        self.started.append(svc)
        return svc

    def stop(self, m: Member) -> None:
        m.svc.stop()
        m.service = None

    def wait_mesh(self, names: list[str] | None = None) -> None:
        group = [m for m in self.members if m.service is not None and (names is None or m.name in names)]
        for m in group:
            want = sorted(o.name for o in group if o is not m)
            wait_until(lambda m=m, want=want: all(w in m.svc.connected_peers() for w in want), what=f"{m.name} mesh")


def new_member(name: str) -> Member:
    return Member(name, KeyPair.generate(name, "bank"), free_port())


def ordered_pair() -> tuple[Member, Member]:
    """Two members, the first with the lower peer id (so it is the one that dials)."""
    a, b = new_member("a"), new_member("b")
    if peer_id(a.keys.sign_pub).to_bytes() > peer_id(b.keys.sign_pub).to_bytes():
        a, b = b, a
        a.name, b.name = "a", "b"
    return a, b


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster([])
    yield c
    for svc in c.started:
        svc.stop()
