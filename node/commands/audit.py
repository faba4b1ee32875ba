"""`godown audit replay`: replay the chain from genesis and verify everything."""

from __future__ import annotations

import os
import sys

import click

from node.commands.common import friendly, token_option
from primitives.errors import Code, GodownError


@click.group()
def audit() -> None:
    """Auditor tools."""


@audit.command("replay")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False, exists=True), help="a stopped node's data")
@click.option(
    "--genesis",
    "genesis_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="genesis file (default: found beside the data dir)",
)
@click.option("--rpc", "rpc_url", default=None, help="a running node's RPC URL")
@token_option
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--workers", default=2, show_default=True, type=int, help="processes for signature checks")
@friendly
def audit_replay(
    data_dir: str | None, genesis_path: str | None, rpc_url: str | None, token: str | None, as_json: bool, workers: int
) -> None:
    """Replay the chain from genesis and verify everything; exit 1 on any mismatch."""
    from node.tools.audit import print_report, replay_from_data_dir, replay_from_rpc

    if bool(data_dir) == bool(rpc_url):
        raise click.UsageError("give exactly one of --data-dir and --rpc")
    if data_dir and not os.path.isdir(os.path.join(data_dir, "chain")):  # never create a store while auditing
        raise GodownError(Code.BAD_CONFIG, f"{data_dir} holds no chain store (no {os.path.join(data_dir, 'chain')})")
    report = (
        replay_from_data_dir(data_dir, genesis_path, workers)
        if data_dir
        else replay_from_rpc(str(rpc_url), token, genesis_path, workers)
    )
    print_report(report, as_json)
    sys.exit(0 if report.ok else 1)
