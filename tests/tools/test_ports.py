"""`godown testnet init` chooses listening ports outside the kernel's ephemeral range
(where an outgoing connection could take one before the node binds it), free now,
and distinct."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from node.tools.testnet import (
    LINUX_EPHEMERAL,
    LOWEST_PORT,
    ephemeral_port_range,
    free_port_block,
    init_testnet,
    listening_window,
)
from primitives.errors import Code, GodownError


def _ports(first: int, stop: int, count: int) -> range:
    """Every port some block of `count` starting in [first, stop) may use."""
    return range(first, stop + count - 1)


def test_the_window_lies_below_the_kernels_ephemeral_range() -> None:
    low, high = ephemeral_port_range()
    first, stop = listening_window(8, (low, high))
    used = _ports(first, stop, 8)
    assert used[0] >= LOWEST_PORT
    assert used[-1] < low or used[0] > high


@pytest.mark.parametrize(
    ("ephemeral", "count", "expected"),
    [
        ((32768, 60999), 8, (20000, 32761)),  # Linux's default: everything below 32768
        ((25000, 65535), 2, (20000, 24999)),
        ((10000, 60999), 8, (61000, 65529)),  # no room below: above the range
    ],
)
def test_the_window_follows_the_range(ephemeral: tuple[int, int], count: int, expected: tuple[int, int]) -> None:
    first, stop = listening_window(count, ephemeral)
    assert (first, stop) == expected
    used = _ports(first, stop, count)
    assert all(not ephemeral[0] <= p <= ephemeral[1] for p in (used[0], used[-1]))
    assert used[-1] <= 65535


def test_no_room_outside_the_range_is_a_stable_error() -> None:
    with pytest.raises(GodownError) as err:
        listening_window(8, (1024, 65535))
    assert err.value.code is Code.UNAVAILABLE


def test_the_range_is_read_from_the_kernel_file(tmp_path: Path) -> None:
    f = tmp_path / "ip_local_port_range"
    f.write_text("40000\t50000\n")
    assert ephemeral_port_range(f) == (40000, 50000)
    f.write_text("garbage")
    assert ephemeral_port_range(f) == LINUX_EPHEMERAL
    assert ephemeral_port_range(tmp_path / "absent") == LINUX_EPHEMERAL


def test_a_port_in_use_is_skipped() -> None:
    ephemeral = ephemeral_port_range()
    first, _ = listening_window(4, ephemeral)
    with socket.socket() as held:
        base = free_port_block(4, ephemeral=ephemeral)
        held.bind(("127.0.0.1", base + 2))  # taken after the search found it free
        again = free_port_block(4, start=base, ephemeral=ephemeral)
        assert base + 2 not in range(again, again + 4)
        assert again >= first


def test_testnet_ports_are_distinct_bindable_and_outside_the_range(tmp_path: Path) -> None:
    net = init_testnet(tmp_path / "net", nodes=4)
    low, high = ephemeral_port_range()
    rpc = [urlsplit(n["rpc_url"]).port for n in net.nodes]
    p2p = [int(n["p2p_addr"].split("/tcp/")[1].split("/")[0]) for n in net.nodes]
    ports = [p for p in (*rpc, *p2p) if p is not None]
    assert len(ports) == len(set(ports)) == 8
    assert all(LOWEST_PORT <= p and not low <= p <= high for p in ports), ports
    sockets = [socket.socket() for _ in ports]
    try:
        for s, p in zip(sockets, ports):
            s.bind(("127.0.0.1", p))  # every one free right after init: a node can listen there
    finally:
        for s in sockets:
            s.close()
