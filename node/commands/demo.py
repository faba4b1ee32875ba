"""`godown demo`: the main job on defaults."""

from __future__ import annotations

import sys

import click

from node.commands.common import friendly


@click.command()
@click.option("--dir", "directory", default=None, type=click.Path(file_okay=False), help="keep the data here")
@click.option("--nodes", default=None, type=int, help="validators (default: 4)")
@click.option(
    "--keep-running",
    is_flag=True,
    help="after the round, leave the consortium up and print each node's dashboard URL (Ctrl-C stops it)",
)
@friendly
def demo(directory: str | None, nodes: int | None, keep_running: bool) -> None:
    """The main job: a local consortium and a full financing round, with progress."""
    from node.tools.demo import run_demo

    sys.exit(0 if run_demo(directory, nodes, keep_running=keep_running) else 1)
