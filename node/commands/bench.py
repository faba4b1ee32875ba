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
@click.option("--wait", "wait_s", default=None, type=float, help="seconds to wait for the nodes to answer [30]")
@friendly
def bench(testnet_dir: str, duration: float, rate: int, cases: int, wait_s: float | None) -> None:
    """Load a running consortium with the financing workload; print tx/s and latency as
    JSON. Nodes that do not answer are named in "down" and left out, as long as a quorum
    of validators answers; with fewer, it fails with `unavailable`."""
    from node.load.loadgen import WAIT_S, run_bench

    click.echo(json.dumps(run_bench(testnet_dir, duration, rate, cases, WAIT_S if wait_s is None else wait_s)))
