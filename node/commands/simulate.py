"""`godown simulate`: run the PBFT replica under the seeded fault simulator.

One JSON line per run, a summary line when several seeds run, exit status 1 if
any run broke an invariant (its seed and trace go to stderr so it replays).
"""

from __future__ import annotations

import json
import sys
import time

import click

from consensus.sim import Scenario, SimResult, run_scenario, with_membership
from primitives.block import max_faulty


def _report_failure(result: SimResult) -> None:
    click.echo(f"seed {result.scenario.seed}: {result.violation}", err=True)
    click.echo(f"  byzantine {list(result.byzantine_nodes)} crashed {list(result.crashed_nodes)}", err=True)
    click.echo(f"  trace up to the violation (last {len(result.trace)} events):", err=True)
    for line in result.trace[-60:]:
        click.echo(f"    {line}", err=True)


@click.command("simulate")
@click.option("--nodes", default=4, show_default=True, type=click.IntRange(1, 200), help="validators (n = 3f+1)")
@click.option("--byzantine", default=0, show_default=True, type=click.IntRange(0), help="Byzantine replicas")
@click.option(
    "--crash", default=0, show_default=True, type=click.IntRange(0), help="correct replicas that crash and restart"
)
@click.option(
    "--drop",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 0.9),
    help="message drop probability while faults last",
)
@click.option(
    "--duplicate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 0.9),
    help="message duplication probability",
)
@click.option("--partition", is_flag=True, help="partitions form and heal while faults last")
@click.option("--seed", default=0, show_default=True, type=int, help="first seed")
@click.option("--blocks", default=20, show_default=True, type=click.IntRange(1), help="batches to order")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(1), help="run seeds S..S+M-1")
@click.option("--real-keys", is_flag=True, help="sign with Ed25519 instead of the simulator's keyed hash")
@click.option(
    "--membership",
    default="",
    metavar="N,N,...",
    help="validator-set sizes to go through by governance, e.g. 4,5,7,4 (the first is --nodes)",
)
def simulate(
    nodes: int,
    byzantine: int,
    crash: int,
    drop: float,
    duplicate: float,
    partition: bool,
    seed: int,
    blocks: int,
    seeds: int,
    real_keys: bool,
    membership: str,
) -> None:
    """PBFT under a seeded fault simulator: agreement and liveness per run, as JSON lines."""
    if byzantine + crash > nodes - 1:
        raise click.BadParameter("byzantine + crash must leave at least one correct, running replica")
    try:
        sizes = tuple(int(x) for x in membership.split(",")) if membership else ()
    except ValueError:
        raise click.BadParameter("sizes separated by commas, e.g. 4,5,7,4", param_hint="--membership") from None
    if sizes and sizes[0] != nodes:
        raise click.BadParameter("the first size is --nodes", param_hint="--membership")
    failed: list[int] = []
    totals = {"committed_blocks": 0, "messages": 0, "view_changes": 0, "wall_ms": 0}
    for s in range(seed, seed + seeds):
        scenario = Scenario(
            nodes=nodes,
            byzantine=byzantine,
            crash=crash,
            drop=drop,
            duplicate=duplicate,
            partition=partition,
            seed=s,
            blocks=blocks,
            real_keys=real_keys,
        )
        if sizes:
            try:
                scenario = with_membership(scenario, sizes)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--membership") from None
        result = run_scenario(scenario, clock=time.perf_counter)
        doc = result.summary()
        click.echo(json.dumps(doc))
        for k in totals:
            totals[k] += doc[k]
        if not result.ok:
            failed.append(s)
            _report_failure(result)
    if seeds > 1:
        click.echo(
            json.dumps(
                {
                    "summary": True,
                    "runs": seeds,
                    "nodes": nodes,
                    "f": max_faulty(nodes),
                    "byzantine": byzantine,
                    "crashed": crash,
                    "passed": seeds - len(failed),
                    "failed_seeds": failed,
                    "messages_per_block": round(totals["messages"] / max(1, totals["committed_blocks"]), 1),
                    "view_changes": totals["view_changes"],
                    "wall_ms": totals["wall_ms"],
                }
            )
        )
    if failed:
        sys.exit(1)
