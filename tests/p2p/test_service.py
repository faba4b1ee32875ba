"""P2PService over real libp2p on 127.0.0.1: delivery, order, allowlist, reconnection, limits."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from p2p.identity import peer_id
from primitives.errors import Code, GodownError
from tests.p2p.conftest import Cluster, new_member, ordered_pair, wait_until

pytestmark = pytest.mark.timeout(120)


def test_two_services_exchange_large_and_many_small_frames_in_order(cluster: Cluster) -> None:
    a, b = ordered_pair()
    cluster.members = [a, b]
    cluster.start(a)
    cluster.start(b)
    cluster.wait_mesh()
    big = [os.urandom(1_000_000) for _ in range(3)]
    small = [i.to_bytes(4, "big") + b"p" * 196 for i in range(2000)]
    for frame in big + small:
        a.svc.send("b", frame)
        b.svc.send("a", frame)
    assert b.inbox.wait("a", len(big) + len(small)) == big + small
    assert a.inbox.wait("b", len(big) + len(small)) == big + small
    stats = {s.member_id: s for s in a.svc.stats()}
    assert stats["b"].sent_frames == len(big) + len(small)
    assert stats["b"].received_frames == len(big) + len(small)
    assert stats["b"].dropped_frames == 0


def test_four_services_all_to_all(cluster: Cluster) -> None:
    cluster.members = [new_member(f"n{i}") for i in range(4)]
    for m in cluster.members:
        cluster.start(m)
    cluster.wait_mesh()
    n = 300
    for m in cluster.members:
        m.svc.broadcast(b"block-from-" + m.name.encode() + os.urandom(350_000))
        for i in range(n):
            m.svc.broadcast(f"{m.name}:{i}".encode())
    for m in cluster.members:
        for o in cluster.members:
            if o is m:
                continue
            got = m.inbox.wait(o.name, n + 1)
            head = b"block-from-" + o.name.encode()
            assert got[0].startswith(head) and len(got[0]) == len(head) + 350_000
            assert got[1:] == [f"{o.name}:{i}".encode() for i in range(n)]
    time.sleep(0.3)
    assert all(m.inbox.count(m.name) == 0 for m in cluster.members)  # nobody hears itself


def test_peer_not_in_allowlist_is_refused_and_logged(cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="godown.p2p")
    a, b = ordered_pair()
    # A stranger whose peer id sorts lower than a's, so it is the one that dials a.
    stranger = new_member("x")
    while peer_id(stranger.keys.sign_pub).to_bytes() > peer_id(a.keys.sign_pub).to_bytes():
        stranger = new_member("x")
    cluster.members = [a, b, stranger]
    cluster.start(a, cluster.peers(["a", "b"]))
    cluster.start(b, cluster.peers(["a", "b"]))
    cluster.start(stranger, cluster.peers(["a", "x"]))  # the stranger believes it may talk to a
    cluster.wait_mesh(["a", "b"])
    for i in range(20):
        stranger.svc.send("a", b"intruder %d" % i)
        time.sleep(0.05)
    a.svc.send("b", b"marker")
    b.inbox.wait("a", 1)
    time.sleep(1.0)
    assert a.inbox.frames.keys() <= {"b"}
    assert stranger.svc.connected_peers() == []
    assert "a" not in a.svc.connected_peers()  # a's list has no stranger at all
    refused = [r.getMessage() for r in caplog.records if "not in allowlist" in r.getMessage()]
    assert any(stranger_pid in msg for msg in refused for stranger_pid in [peer_id(stranger.keys.sign_pub).to_base58()])
    with pytest.raises(GodownError) as err:
        a.svc.send("x", b"nope")
    assert err.value.code is Code.UNKNOWN_MEMBER


@pytest.mark.parametrize("restart", ["dialer", "listener"])
def test_a_restarted_peer_is_reconnected_and_frames_flow_again(cluster: Cluster, restart: str) -> None:
    a, b = ordered_pair()  # a dials, b listens
    cluster.members = [a, b]
    cluster.start(a)
    cluster.start(b)
    cluster.wait_mesh()
    a.svc.send("b", b"before")
    b.inbox.wait("a", 1)
    gone, stays = (a, b) if restart == "dialer" else (b, a)
    cluster.stop(gone)
    wait_until(lambda: gone.name not in stays.svc.connected_peers(), what="disconnect noticed")
    time.sleep(0.5)
    cluster.start(gone)
    cluster.wait_mesh()
    for i in range(50):
        stays.svc.send(gone.name, b"after %d" % i)
        gone.svc.send(stays.name, b"back %d" % i)
    got = gone.inbox.wait(stays.name, 50 + (1 if gone is b else 0))
    assert got[-50:] == [b"after %d" % i for i in range(50)]
    assert stays.inbox.wait(gone.name, 50 + (1 if stays is b else 0))[-50:] == [b"back %d" % i for i in range(50)]
    assert {s.member_id: s for s in stays.svc.stats()}[gone.name].reconnects >= 1


def test_oversize_frame_resets_the_stream_and_is_not_delivered(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="godown.p2p")
    a, b = ordered_pair()
    cluster.members = [a, b]
    cluster.start(a, max_frame=4 * 1024 * 1024)
    cluster.start(b, max_frame=1024 * 1024)
    cluster.wait_mesh()
    a.svc.send("b", b"first")
    b.inbox.wait("a", 1)
    a.svc.send("b", b"z" * (2 * 1024 * 1024))  # allowed by a, refused by b
    wait_until(lambda: any("oversize" in r.getMessage() for r in caplog.records), what="oversize logged")
    wait_until(lambda: "b" in a.svc.connected_peers(), what="stream reopened")
    for i in range(5):
        a.svc.send("b", b"later %d" % i)
        time.sleep(0.1)
    got = b.inbox.wait("a", 2, timeout=20.0)
    assert all(len(f) < 1024 * 1024 for f in got)
    assert got[0] == b"first" and got[-1] == b"later 4"
    with pytest.raises(GodownError) as err:
        b.svc.send("a", b"z" * (1024 * 1024 + 1))
    assert err.value.code is Code.OVERSIZE


def test_queue_is_bounded_drops_oldest_and_flushes_when_the_peer_arrives(cluster: Cluster) -> None:
    a, b = ordered_pair()
    cluster.members = [a, b]
    cluster.start(a, max_queue_frames=10)
    results = [a.svc.send("b", b"q%d" % i) for i in range(25)]
    assert results[:10] == [True] * 10 and results[10:] == [False] * 15
    assert {s.member_id: s for s in a.svc.stats()}["b"].dropped_frames == 15
    cluster.start(b)
    assert b.inbox.wait("a", 10) == [b"q%d" % i for i in range(15, 25)]


def test_frames_go_to_the_inbox_without_a_callback_and_stop_is_bounded(cluster: Cluster) -> None:
    a, b = ordered_pair()
    cluster.members = [a, b]
    cluster.start(a)
    cluster.start(b)
    b.svc.set_on_frame(None)
    cluster.wait_mesh()
    a.svc.broadcast(b"to everyone")
    assert b.svc.inbox.get(timeout=10) == ("a", b"to everyone")
    t0 = time.monotonic()
    cluster.stop(a)
    cluster.stop(b)
    assert time.monotonic() - t0 < 10


def test_concurrent_senders_on_many_threads_lose_nothing(cluster: Cluster) -> None:
    a, b = ordered_pair()
    cluster.members = [a, b]
    cluster.start(a)
    cluster.start(b)
    cluster.wait_mesh()
    per_thread, threads = 500, 8

    def sender(t: int) -> None:
        for i in range(per_thread):
            a.svc.send("b", b"%d:%d" % (t, i))

    workers = [threading.Thread(target=sender, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    got = b.inbox.wait("a", per_thread * threads)
    for t in range(threads):  # each thread's frames arrive complete and in its order
        mine = [f for f in got if f.startswith(b"%d:" % t)]
        assert mine == [b"%d:%d" % (t, i) for i in range(per_thread)]


def test_set_peers_admits_new_members_and_cuts_off_removed_ones(cluster: Cluster) -> None:
    a, b = ordered_pair()
    c = new_member("c")
    cluster.members = [a, b, c]
    cluster.start(a, cluster.peers(["a", "b"]))
    cluster.start(b, cluster.peers(["a", "b"]))
    cluster.start(c, cluster.peers(["a", "b", "c"]))
    cluster.wait_mesh(["a", "b"])
    time.sleep(0.5)
    assert "a" not in c.svc.connected_peers()  # a does not know c yet
    a.svc.set_peers(cluster.peers(["a", "b", "c"]))
    b.svc.set_peers(cluster.peers(["a", "b", "c"]))
    cluster.wait_mesh()
    c.svc.send("a", b"hello from c")
    assert a.inbox.wait("c", 1) == [b"hello from c"]
    # Now a drops b: the link goes down on both sides and stays down.
    a.svc.set_peers(cluster.peers(["a", "c"]))
    wait_until(lambda: "a" not in b.svc.connected_peers(), what="b cut off")
    for i in range(10):
        b.svc.send("a", b"late %d" % i)
    time.sleep(2.5)  # longer than the back-off cap: b keeps trying and is refused
    assert a.inbox.count("b") == 0
    assert "a" not in b.svc.connected_peers()
    assert a.svc.connected_peers() == ["c"]
    with pytest.raises(GodownError):
        a.svc.send("b", b"gone")


def test_reconnects_within_the_backoff_cap_after_a_long_outage(cluster: Cluster) -> None:
    a, b = ordered_pair()
    cluster.members = [a, b]
    cluster.start(a)
    cluster.start(b)
    cluster.wait_mesh()
    cluster.stop(b)
    time.sleep(5.0)  # a's back-off has reached its cap (0.05 s doubling to 2 s) and failed dials piled up
    t0 = time.monotonic()
    cluster.start(b)
    cluster.wait_mesh()
    assert time.monotonic() - t0 < 5.0
    a.svc.send("b", b"again")
    assert b.inbox.wait("a", 1) == [b"again"]


def test_start_fails_cleanly_when_the_port_is_taken(cluster: Cluster) -> None:
    a, b = ordered_pair()
    cluster.members = [a, b]
    cluster.start(a)
    b.port = a.port
    with pytest.raises(GodownError) as err:
        cluster.start(b)
    assert err.value.code is Code.UNAVAILABLE
