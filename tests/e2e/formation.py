"""Forming a consortium the way independent organisations do, for the multi-host
tests: each organisation makes its keys in its own folder with the real CLI and
hands over only its signed card; one assembles the genesis from the cards; every
organisation verifies it and compares the hash; each runs `godown node init` for
its own host. Nothing here writes a key into another organisation's folder."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from node.tools.participants import Participants
from node.tools.testnet import Testnet
from primitives.keys import KeyPair
from tests.e2e import netns
from tests.waiting import free_port


def godown(*args: str) -> str:
    """Run the real CLI; fail loudly with its stderr."""
    proc = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"godown {' '.join(args)}: {proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc.stdout


@dataclass(frozen=True)
class Host:
    """Where an organisation's node lives: p2p and RPC addresses."""

    p2p_host: str
    p2p_port: int
    rpc_host: str
    rpc_port: int


def places(stack: contextlib.ExitStack, count: int) -> tuple[list[Host], list[list[str]], netns.Hosts | None]:
    """Where `count` organisations' nodes live, with the command prefix that runs on
    each: a network namespace apiece (removed when `stack` closes), or — where
    namespaces cannot be made, which it says — loopback ports and no prefix."""
    reason = netns.available()
    if reason is not None:
        print(f"network namespaces unavailable ({reason}): running the loopback variant")
        return [Host("127.0.0.1", free_port(), "127.0.0.1", free_port()) for _ in range(count)], [[]] * count, None
    hosts = stack.enter_context(netns.Hosts(count))
    where = [Host(hosts.addr(i), 26656, hosts.addr(i), 26650) for i in range(count)]
    return where, [hosts.wrap(i) for i in range(count)], hosts


def _validating(p: Participants) -> list[tuple[str, KeyPair]]:
    return [("warehouse", p.warehouse), ("bank", p.bank), ("insurer", p.insurer), ("guarantor", p.guarantor)]


def _members_only(p: Participants) -> list[tuple[str, KeyPair]]:
    extra = [("borrower", p.borrower), ("auditor", p.auditor)]
    return extra + [(k.name, k) for k in (p.bank2, p.borrower2) if k is not None]


def make_card(root: Path, name: str, member: KeyPair, host: Host | None) -> Path:
    """An organisation's own step: its member key (given, so the workload can sign with
    it), a fresh node key if it runs a node, and its card in the shared exchange folder."""
    home = root / name
    member.save(home / "member.key.json")
    card = root / "exchange" / f"{name}.card.json"
    card.parent.mkdir(parents=True, exist_ok=True)
    args = ["card", "--key", str(home / "member.key.json"), "--out", str(card)]
    if host is not None:
        godown("keygen", "--role", "node", "--name", f"{name}-node", "--out", str(home / "node.key.json"))
        args += ["--node-key", str(home / "node.key.json"), "--advertise", f"/ip4/{host.p2p_host}/tcp/{host.p2p_port}"]
    godown(*args)
    return card


def node_entry(root: Path, name: str, key: KeyPair, host: Host, cfg: dict[str, object]) -> dict[str, object]:
    """What testnet.json says of one organisation's node."""
    return {
        "name": name,
        "role": key.role,
        "member_id": key.id,
        "node_id": KeyPair.load(root / name / "node.key.json").id,
        "rpc_url": f"http://{host.rpc_host}:{host.rpc_port}",
        "token": cfg["rpc"]["token"],  # type: ignore[index]
        "p2p_addr": f"/ip4/{host.p2p_host}/tcp/{host.p2p_port}",
        "config": f"{name}/node/config.json",
        "data_dir": f"{name}/node/data",
    }


def init_host(root: Path, name: str, genesis: Path, host: Host, *extra: str) -> dict[str, object]:
    """`godown node init` on an organisation's own host; returns its config."""
    return dict(
        json.loads(
            godown(
                "node", "init", "--genesis", str(genesis), "--node-key", str(root / name / "node.key.json"),
                "--listen", f"/ip4/{host.p2p_host}/tcp/{host.p2p_port}",
                "--rpc", f"{host.rpc_host}:{host.rpc_port}", "--name", name, "--out", str(root / name / "node"),
                *extra,
            )
        )
    )  # fmt: skip


def form(
    root: Path,
    chain_id: str,
    p: Participants,
    hosts: list[Host],
    view_change_timeout_ms: int,
    snapshot_every: int = 1000,
) -> Testnet:
    """The whole ceremony for the first len(hosts) validating organisations; returns the
    testnet description (testnet.json) tests drive the nodes by."""
    orgs = _validating(p)[: len(hosts)]
    cards = [make_card(root, name, key, host) for (name, key), host in zip(orgs, hosts)]
    cards += [make_card(root, name, key, None) for name, key in _members_only(p)]
    assembler = root / orgs[0][0] / "genesis.json"
    godown("genesis", "new", "--chain-id", chain_id, "--view-change-timeout-ms", str(view_change_timeout_ms),
           "--out", str(assembler))  # fmt: skip
    for card in cards:
        godown("genesis", "add", "--card", str(card), "--genesis", str(assembler))
    hashes = set()
    nodes = []
    for (name, key), host in zip(orgs, hosts):
        mine = root / name / "genesis.json"
        if mine != assembler:
            mine.write_bytes(assembler.read_bytes())  # what each organisation receives
        hashes.add(json.loads(godown("genesis", "verify", "--genesis", str(mine)))["genesis_hash"])
        cfg = init_host(root, name, mine, host, "--snapshot-every", str(snapshot_every))
        nodes.append(node_entry(root, name, key, host, cfg))
    assert len(hashes) == 1, f"organisations see different genesis hashes: {hashes}"
    (root / "testnet.json").write_text(json.dumps({"chain_id": chain_id, "nodes": nodes}, indent=2))
    return Testnet.load(root)
