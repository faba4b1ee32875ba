"""`godown testnet init|up`: a local consortium on one machine."""

from __future__ import annotations

import click

from node.commands.common import friendly


@click.group()
def testnet() -> None:
    """A local consortium on this machine."""


@testnet.command("init")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False))
@click.option("--nodes", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--chain-id", default="godown-local", show_default=True)
@click.option("--base-port", default=None, type=int, help="first RPC port (default: a free block)")
@friendly
def testnet_init(directory: str, nodes: int, chain_id: str, base_port: int | None) -> None:
    """Write genesis, keys and node configs for a local consortium."""
    from node.tools.testnet import init_testnet

    net = init_testnet(directory, nodes=nodes, chain_id=chain_id, base_port=base_port)
    for n in net.nodes:
        click.echo(f"{n['name']:<10} {n['role']:<10} rpc {n['rpc_url']}  config {net.dir / n['config']}")
    click.echo(f"wrote {net.dir / 'testnet.json'}")


@testnet.command("up")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, exists=True))
@friendly
def testnet_up(directory: str) -> None:
    """Start every node of DIR; Ctrl-C or SIGTERM stops them all."""
    from node.tools.launcher import run_until_signal

    run_until_signal(directory, echo=click.echo)
