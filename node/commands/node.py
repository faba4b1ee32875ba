"""`godown node start`: run one node in the foreground (the operator's path)."""

from __future__ import annotations

import click

from node.commands.common import friendly


@click.group()
def node() -> None:
    """Run one node."""


@node.command("start")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False))
@click.option("--log-level", default="info", show_default=True)
@friendly
def node_start(config_path: str, log_level: str) -> None:
    """Run one node in the foreground until SIGINT/SIGTERM."""
    import asyncio

    from node.server.config import NodeConfig
    from node.server.logs import setup_logging
    from node.server.serve import serve_forever

    config = NodeConfig.load(config_path)
    setup_logging(log_level, node=config.name)
    asyncio.run(serve_forever(config))
