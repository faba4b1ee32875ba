"""`godown testnet init`: a local consortium on loopback, made by the same steps
independent organisations take on their own hosts (keys → cards → genesis →
node init, see `ceremony` and `node_init`), only all on one machine.

Layout written under DIR:
    genesis.json, testnet.json
    cards/<member>.card.json    every member's signed card (what organisations exchange)
    <node>/config.json, <node>/genesis.json, <node>/node_key.json, <node>/data/
    keys/<participant>.json     every member's and device's key (a local testnet only)
The first `nodes` organisations run validating nodes; the others are members without one.
A node's key is its own, apart from its organisation's member key.
"""

from __future__ import annotations

import json
import random
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.tools.ceremony import add_card, new_genesis
from node.tools.node_init import init_node
from p2p.identity import full_multiaddr
from primitives.card import MemberCard
from primitives.errors import Code, GodownError
from primitives.genesis import ConsensusParams, Policy
from primitives.keys import NODE_ROLE, KeyPair

ORGANISATIONS = (("warehouse", "warehouse"), ("bank", "bank"), ("insurer", "insurer"), ("guarantor", "guarantor"))
OTHER_MEMBERS = (("borrower", "borrower"), ("borrower2", "borrower"), ("bank2", "bank"), ("auditor", "auditor"))
DEVICE_KINDS = ("scale", "rfid-gate", "climate", "door")


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_EPHEMERAL = (32768, 60999)
"""Linux's default ephemeral range, assumed where the kernel does not say."""
LOWEST_PORT = 20000
"""Testnet ports stay above this: well clear of the registered services below it."""


def ephemeral_port_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral range (inclusive): outgoing connections take their local
    port from it, so a listening port chosen there can be taken before a node binds it."""
    try:
        low, high = (int(v) for v in path.read_text(encoding="ascii").split())
    except (OSError, ValueError):
        return LINUX_EPHEMERAL
    assert 0 < low <= high <= 65535, (low, high)
    return low, high


def listening_window(count: int, ephemeral: tuple[int, int]) -> tuple[int, int]:
    """Where a block of `count` listening ports may start (`start <= base < stop`): below
    the ephemeral range if there is room (the usual case), else above it."""
    low, high = ephemeral
    if low - LOWEST_PORT >= count:
        window = (LOWEST_PORT, low - count + 1)
    elif 65536 - (high + 1) >= count:
        window = (high + 1, 65536 - count + 1)
    else:
        raise GodownError(Code.UNAVAILABLE, f"no room for {count} ports outside the ephemeral range {low}-{high}")
    assert window[0] < window[1] and (window[1] - 1 + count <= low or window[0] > high)
    return window


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(count: int, start: int | None = None, ephemeral: tuple[int, int] | None = None) -> int:
    """A base port such that base..base+count-1 are free on loopback now and outside the
    kernel's ephemeral range (see `listening_window`). The search starts at a random
    place (or `start`), so testnets created at the same time rarely collide."""
    first, stop = listening_window(count, ephemeral or ephemeral_port_range())
    span = stop - first
    offset = (start - first) % span if start is not None else random.randrange(span)
    for step in range(span):
        base = first + (offset + step) % span
        if all(_bindable(p) for p in range(base, base + count)):
            return base
    raise GodownError(Code.UNAVAILABLE, f"no free block of {count} loopback ports in {first}-{stop + count - 2}")


@dataclass(frozen=True)
class Testnet:
    """What `testnet.json` holds, with paths resolved."""

    dir: Path
    chain_id: str
    nodes: tuple[dict[str, Any], ...]

    @staticmethod
    def load(directory: str | Path) -> Testnet:
        d = Path(directory).resolve()
        try:
            doc = json.loads((d / "testnet.json").read_text(encoding="utf-8"))
            return Testnet(d, str(doc["chain_id"]), tuple(doc["nodes"]))
        except FileNotFoundError:
            raise GodownError(
                Code.BAD_CONFIG, f"{d} has no testnet.json (run `godown testnet init --dir {d}`)"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise GodownError(Code.BAD_CONFIG, f"{d}/testnet.json is damaged ({exc.__class__.__name__})") from None

    def key(self, name: str) -> KeyPair:
        """A member's or device's key (a local testnet keeps them all in keys/)."""
        return KeyPair.load(self.dir / "keys" / f"{name}.json")

    def node_key(self, name: str) -> KeyPair:
        """The key of node `name` (its libp2p identity and vote signer)."""
        return KeyPair.load(self.dir / name / "node_key.json")

    def config_path(self, node: dict[str, Any]) -> Path:
        return self.dir / str(node["config"])

    @property
    def rpc_urls(self) -> list[str]:
        return [n["rpc_url"] for n in self.nodes]


def init_testnet(
    directory: str | Path,
    nodes: int = 4,
    chain_id: str = "godown-local",
    base_port: int | None = None,
    devices: int = 4,
    policy: Policy | None = None,
    consensus: ConsensusParams | None = None,
) -> Testnet:
    """Write a fresh local consortium into `directory` (which must be empty or absent)."""
    d = Path(directory).resolve()
    if d.exists() and any(d.iterdir()):
        raise GodownError(Code.BAD_CONFIG, f"{d} is not empty; choose a new directory")
    if nodes < 1:
        raise GodownError(Code.BAD_CONFIG, "a consortium needs at least one node")
    d.mkdir(parents=True, exist_ok=True)
    orgs = list(ORGANISATIONS)
    for i in range(len(orgs), nodes):
        orgs.append((f"bank{i + 1}", "bank"))
    keys: dict[str, KeyPair] = {}
    for name, role in (*orgs, *OTHER_MEMBERS):
        keys[name] = KeyPair.generate(name, role)
    for i in range(devices):
        name = f"device-{i + 1}-{DEVICE_KINDS[i % len(DEVICE_KINDS)]}"
        keys[name] = KeyPair.generate(name, "device")
    for name, key in keys.items():
        key.save(d / "keys" / f"{name}.json")

    node_names = [name for name, _ in orgs[:nodes]]
    base = base_port if base_port is not None else free_port_block(2 * nodes)
    node_keys = {name: KeyPair.generate(f"{name}-node", NODE_ROLE) for name in node_names}
    listen = {name: f"/ip4/127.0.0.1/tcp/{base + nodes + i}" for i, name in enumerate(node_names)}
    genesis_path = d / "genesis.json"
    new_genesis(genesis_path, chain_id, policy, consensus)
    (d / "cards").mkdir()
    for name, key in keys.items():
        if key.role == "device":
            continue
        node_key = node_keys.get(name)
        if node_key is not None:
            node_key.save(d / name / "node_key.json")
        card = MemberCard.make(key, node_key, listen.get(name))
        card.save(d / "cards" / f"{name}.card.json")
        add_card(genesis_path, d / "cards" / f"{name}.card.json")

    entries = []
    for i, name in enumerate(node_names):
        init_node(genesis_path, d / name / "node_key.json", listen[name], f"127.0.0.1:{base + i}", d / name, name)
        entries.append(
            {
                "name": name,
                "role": keys[name].role,
                "member_id": keys[name].id,
                "node_id": node_keys[name].id,
                "rpc_url": f"http://127.0.0.1:{base + i}",
                "p2p_addr": full_multiaddr(base + nodes + i, node_keys[name].sign_pub),
                "config": f"{name}/config.json",
                "data_dir": f"{name}/data",
            }
        )
    (d / "testnet.json").write_text(
        json.dumps({"chain_id": chain_id, "nodes": entries}, indent=2) + "\n", encoding="utf-8"
    )
    return Testnet(d, chain_id, tuple(entries))
