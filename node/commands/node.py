"""`godown node init|start`: one node on its own host (the operator's path)."""

from __future__ import annotations

import click

from node.commands.common import echo_json, friendly


@click.group()
def node() -> None:
    """Run one node."""


@node.command("init")
@click.option("--genesis", "genesis_file", required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--node-key", "node_key_file", required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--member-key", "member_key_file", default=None, type=click.Path(dir_okay=False, exists=True))
@click.option("--listen", default="/ip4/0.0.0.0/tcp/26656", show_default=True, help="p2p listen address")
@click.option("--rpc", default="127.0.0.1:26650", show_default=True, help="RPC HOST:PORT")
@click.option("--name", default=None, help="a name for logs (default: the member's)")
@click.option(
    "--state-sync",
    default=None,
    metavar="HEIGHT:HASH",
    help="join by state sync from this trusted block (see a peer's `godown status`: snapshot.trust_*)",
)
@click.option(
    "--snapshot-every", default=1000, show_default=True, type=click.IntRange(0), help="blocks between snapshots served"
)
@click.option(
    "--open-reports",
    is_flag=True,
    help="open the device reports sealed to the member (--member-key) for its web platform and /v1/reports",
)
@click.option("--out", required=True, type=click.Path(file_okay=False))
@friendly
def node_init(
    genesis_file: str,
    node_key_file: str,
    member_key_file: str | None,
    listen: str,
    rpc: str,
    name: str | None,
    state_sync: str | None,
    snapshot_every: int,
    open_reports: bool,
    out: str,
) -> None:
    """Write one node's config (peers come from genesis); prints it."""
    from node.tools.node_init import init_node

    cfg = init_node(
        genesis_file, node_key_file, listen, rpc, out, name, member_key_file,
        state_sync=state_sync, snapshot_every=snapshot_every, open_reports=open_reports,
    )  # fmt: skip
    echo_json(cfg)
    click.echo(f"start it with: godown node start --config {out}/config.json", err=True)


@node.command("start")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False))
@click.option("--log-level", default="info", show_default=True)
@click.option("--misbehave", default=None, hidden=True, help="fault tests only; needs GODOWN_TEST_SWITCHES=1")
@friendly
def node_start(config_path: str, log_level: str, misbehave: str | None) -> None:
    """Run one node in the foreground until SIGINT/SIGTERM."""
    import asyncio

    from node.server.config import NodeConfig
    from node.server.logs import setup_logging
    from node.server.pbft.misbehaviour import Misbehaviour
    from node.server.serve import serve_forever

    what = Misbehaviour.parse(misbehave) if misbehave is not None else None
    config = NodeConfig.load(config_path)
    setup_logging(log_level, node=config.name)
    asyncio.run(serve_forever(config, what))
