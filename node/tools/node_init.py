"""`godown node init`: one node's folder on its own host, from the agreed genesis
and the node's own key. Peers are not listed by hand: a node finds the other
validators' keys and addresses in genesis."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from multiaddr import Multiaddr

from node.server.config import LOOPBACK, write_config
from node.server.pbft.statesync import TrustAnchor
from primitives.errors import Code, GodownError
from primitives.genesis import Genesis
from primitives.keys import KeyPair


def parse_listen(listen: str) -> tuple[str, int]:
    """(host, port) of a `/ip4/HOST/tcp/PORT` listen address."""
    try:
        maddr = Multiaddr(listen)
        host = maddr.value_for_protocol("ip4") or maddr.value_for_protocol("ip6")
        port = int(maddr.value_for_protocol("tcp"))
    except Exception as exc:  # multiaddr raises several unrelated types
        raise GodownError(Code.BAD_CONFIG, f"--listen {listen!r} is not /ip4/HOST/tcp/PORT ({exc})") from None
    return str(host), port


def parse_rpc(rpc: str) -> tuple[str, int]:
    host, sep, port = rpc.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise GodownError(Code.BAD_CONFIG, f"--rpc {rpc!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _relative(target: Path, base: Path) -> str:
    return os.path.relpath(target.resolve(), base.resolve())


def init_node(
    genesis_path: str | Path,
    node_key_path: str | Path,
    listen: str,
    rpc: str,
    out: str | Path,
    name: str | None = None,
    member_key_path: str | Path | None = None,
    token: str | None = None,
    mempool_max_txs: int = 200_000,
    state_sync: str | None = None,
    snapshot_every: int = 1000,
    open_reports: bool = False,
) -> dict[str, Any]:
    """Write `out/config.json` (and `out/genesis.json`, `out/data/`); returns the config.
    The node key stays where it is; the config points at it. `open_reports` names the
    member key as `report_key_file`, so the node opens the device reports sealed to its
    member for `/v1/reports` (the web platform)."""
    if open_reports and member_key_path is None:
        raise GodownError(
            Code.BAD_CONFIG, "--open-reports needs --member-key: it opens the reports sealed to that member"
        )
    genesis = Genesis.load(genesis_path)
    node_key = KeyPair.load(node_key_path)
    d = Path(out)
    if (d / "config.json").exists():
        raise GodownError(Code.BAD_CONFIG, f"{d}/config.json exists already")
    validator = genesis.validator(node_key.id)
    if validator is None and state_sync is None:
        raise GodownError(
            Code.BAD_CONFIG,
            f"node key {node_key_path} (node id {node_key.id}) is not a validator in this genesis; a validator "
            "added later by governance joins with --state-sync HEIGHT:HASH (observer nodes are not supported yet)",
        )
    running_member = validator.member if validator is not None else ""  # else found on the chain at start
    if member_key_path is not None:
        member_key = KeyPair.load(member_key_path)
        if running_member and member_key.id != running_member:
            raise GodownError(
                Code.BAD_CONFIG, f"member key {member_key_path} is not {running_member}, who runs this node"
            )
        running_member = member_key.id
    p2p_host, p2p_port = parse_listen(listen)
    rpc_host, rpc_port = parse_rpc(rpc)
    if rpc_host not in LOOPBACK and not token:
        token = secrets.token_urlsafe(24)  # exposed RPC needs a bearer token (DESIGN §7)
    member = genesis.member(running_member)
    d.mkdir(parents=True, exist_ok=True)
    if Path(genesis_path).resolve() != (d / "genesis.json").resolve():
        shutil.copyfile(genesis_path, d / "genesis.json")
    (d / "data").mkdir(exist_ok=True)
    cfg: dict[str, Any] = {
        "name": name or (member.name if member else node_key.name),
        "member_id": running_member,
        "key_file": _relative(Path(node_key_path), d),
        "genesis": "genesis.json",
        "data_dir": "data",
        "rpc": {"host": rpc_host, "port": rpc_port, "token": token},
        "p2p": {"host": p2p_host, "port": p2p_port},
        "mempool": {"max_txs": mempool_max_txs},
        "snapshots": {"every": snapshot_every},
    }
    if state_sync is not None:
        anchor = TrustAnchor.parse(state_sync)
        cfg["state_sync"] = {"trust_height": anchor.height, "trust_hash": anchor.block_hash.hex()}
    if member_key_path is not None:
        cfg["member_key_file"] = _relative(Path(member_key_path), d)
        if open_reports:
            cfg["report_key_file"] = cfg["member_key_file"]
    write_config(d / "config.json", cfg)
    return cfg
