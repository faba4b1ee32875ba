"""`godown bench`: load a running consortium; tx/s and latency as JSON."""

from __future__ import annotations

import json

import click

from node.commands.common import friendly


@click.command()
@click.option("--testnet", "testnet_dir", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--duration", default=20.0, show_default=True, type=float)
@click.option("--rate", default=0, type=int, help="target tx/s (0: as fast as it goes)")
@click.option("--cases", default=0, type=int, help="financing cases (default: enough for the duration)")
@friendly
def bench(testnet_dir: str, duration: float, rate: int, cases: int) -> None:
    """Load a running consortium with the financing workload; print tx/s and latency as JSON."""
    from node.load.loadgen import run_bench

    click.echo(json.dumps(run_bench(testnet_dir, duration, rate, cases)))
