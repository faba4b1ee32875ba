"""Membership plans for the simulator: take the validator set through a list of sizes.

`godown simulate --membership 4,5,7,4` and the tests describe a run by its set sizes;
`resize_steps` turns them into concrete, seeded changes (which ids join, which
leave) and `with_membership` fits a scenario around them so that its last batches
are committed by the final set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from consensus.membership import after_height_for
from consensus.sim.run import Scenario, Step, replica_config
from primitives.seeded import seeded

TAIL_BLOCKS = 8
"""Blocks the final set must commit after the last switch, at least."""


def resize_steps(sizes: Sequence[int], seed: int, first_at: int = 2, gap: int = 3) -> tuple[Step, ...]:
    """Changes taking `v0..v{sizes[0]-1}` through `sizes`, approved by blocks first_at,
    first_at + gap, ... Growing brings back a removed id or adds a new one; shrinking
    removes members at random — the original ones included, so removed validators
    (possibly Byzantine) keep running as observers."""
    if not sizes or min(sizes) < 1:
        raise ValueError("sizes must be positive")
    rng = seeded(f"resize:{seed}")
    current = [f"v{i}" for i in range(sizes[0])]
    removed: list[str] = []
    fresh = sizes[0]
    steps: list[Step] = []
    for k, size in enumerate(sizes[1:]):
        while len(current) > size:
            removed.append(current.pop(rng.randrange(len(current))))
        while len(current) < size:
            if removed and rng.random() < 0.5:
                current.append(removed.pop(rng.randrange(len(removed))))
            else:
                current.append(f"v{fresh}")
                fresh += 1
        steps.append((first_at + k * gap, tuple(current)))
    return tuple(steps)


def with_membership(s: Scenario, sizes: Sequence[int], gap: int | None = None) -> Scenario:
    """`s` taken through `sizes` (sizes[0] must be `s.nodes`), approvals `gap` blocks apart
    (default: the checkpoint interval, so each change gets its own boundary), with `blocks`
    raised so that the final set commits at least `TAIL_BLOCKS` blocks after the last switch."""
    if sizes[0] != s.nodes:
        raise ValueError(f"the first size must be the initial number of nodes ({s.nodes})")
    steps = resize_steps(sizes, s.seed, gap=gap or s.checkpoint_interval)
    if not steps:
        return s
    template = replica_config(dataclasses.replace(s, membership=steps), [f"v{i}" for i in range(s.nodes)], "v0")
    last = after_height_for(template, steps[-1][0])
    return dataclasses.replace(s, membership=steps, blocks=max(s.blocks, last + TAIL_BLOCKS))
