"""Node configuration: one JSON file per node, paths relative to the file.

{"name", "member_id", "key_file", "member_key_file"?, "genesis", "data_dir",
 "rpc": {"host", "port", "token"}, "p2p": {"host", "port"}, "mempool": {"max_txs"}}

"state_sync": {"trust_height", "trust_hash"}? — install the state of trust_height-1
from peers when the data dir is blank (see `node.server.pbft.statesync`);
"snapshots": {"every": N} — freeze the state every N blocks for peers to sync from.
"history": {"keep_blocks": N} — keep only the newest N blocks (0, the default: every
block from genesis); older history is pruned as the chain grows (`Ledger.prune_history`).
"report_key_file": the member's key file, whose X25519 secret this node then uses to
open the device reports sealed to its own member for `/v1/reports` (and nobody else's).

`key_file` is the node's own key (libp2p identity, consensus votes), not its
member's; `member_key_file` optionally names the member's key on the same host.
Peers are not listed: a node finds the validators' keys and addresses in genesis.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from primitives.errors import Code, GodownError

LOOPBACK = ("127.0.0.1", "localhost", "::1")

SNAPSHOTS_KEPT = 2
"""Snapshots a node holds for peers at once (node.server.pbft.statesync)."""
MIN_KEEP_BLOCKS = 100
"""The shortest pruning window: what a restarted peer catches up by blocks; further
behind, it syncs from a snapshot, whose next block must still be kept."""


def _bad(message: str) -> GodownError:
    return GodownError(Code.BAD_CONFIG, message)


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    name: str
    member_id: str
    key_file: Path
    genesis: Path
    data_dir: Path
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 26650
    rpc_token: str | None = None
    p2p_host: str = "127.0.0.1"
    p2p_port: int = 26750
    member_key_file: Path | None = None
    state_sync_trust: str | None = None  # HEIGHT:BLOCK_HASH
    snapshot_every: int = 1000
    keep_blocks: int = 0
    mempool_max_txs: int = 200_000
    report_key_file: Path | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://{self.rpc_host}:{self.rpc_port}"

    @property
    def rpc_exposed(self) -> bool:
        return self.rpc_host not in LOOPBACK

    @staticmethod
    def load(path: str | os.PathLike[str]) -> NodeConfig:
        """Read and check a node config; every problem is a `bad_config` error."""
        p = Path(path).resolve()
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise _bad(f"config file {path} not found") from None
        except (OSError, ValueError) as exc:
            raise _bad(f"config file {path} is not JSON ({exc.__class__.__name__})") from None
        return NodeConfig.from_json(doc, p)

    @staticmethod
    def from_json(doc: Any, path: Path) -> NodeConfig:
        base = path.parent
        try:
            rpc = doc.get("rpc", {})
            p2p = doc.get("p2p", {})
            cfg = NodeConfig(
                path=path,
                name=str(doc["name"]),
                member_id=str(doc.get("member_id") or ""),
                key_file=(base / doc["key_file"]).resolve(),
                genesis=(base / doc["genesis"]).resolve(),
                data_dir=(base / doc["data_dir"]).resolve(),
                rpc_host=str(rpc.get("host", "127.0.0.1")),
                rpc_port=int(rpc.get("port", 26650)),
                rpc_token=rpc.get("token"),
                p2p_host=str(p2p.get("host", "127.0.0.1")),
                p2p_port=int(p2p.get("port", 26750)),
                member_key_file=(base / doc["member_key_file"]).resolve() if doc.get("member_key_file") else None,
                mempool_max_txs=int(doc.get("mempool", {}).get("max_txs", 200_000)),
                state_sync_trust=_trust_of(doc.get("state_sync")),
                snapshot_every=int(doc.get("snapshots", {}).get("every", 1000)),
                keep_blocks=int(doc.get("history", {}).get("keep_blocks", 0)),
                report_key_file=(base / doc["report_key_file"]).resolve() if doc.get("report_key_file") else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _bad(f"config {path}: missing or malformed field ({exc.__class__.__name__}: {exc})") from None
        least = max(MIN_KEEP_BLOCKS, (SNAPSHOTS_KEPT + 1) * max(cfg.snapshot_every, 0))
        if cfg.keep_blocks != 0 and cfg.keep_blocks < least:
            raise _bad(
                f"config {path}: history.keep_blocks is {cfg.keep_blocks}; 0 keeps every block, else at least"
                f" {least} (the snapshots a peer syncs from need the blocks after them)"
            )
        if cfg.rpc_exposed and not cfg.rpc_token:
            raise _bad(f"config {path}: rpc.host {cfg.rpc_host} is not loopback, so rpc.token must be set")
        return cfg


def _trust_of(section: Any) -> str | None:
    if not section:
        return None
    return f"{int(section['trust_height'])}:{str(section['trust_hash'])}"


def write_config(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
