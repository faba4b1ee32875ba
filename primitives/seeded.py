"""Seeded random generators, the only randomness the pure packages use.

`consensus/` never imports `random` itself (its purity test forbids it): the
replica and the simulator receive a generator made here from a seed, so a run
replays exactly from its seed.
"""

from __future__ import annotations

import random

Rng = random.Random
"""The type of an injected, seeded generator."""


def seeded(seed: int | float | str | bytes) -> Rng:
    """A generator determined entirely by `seed`."""
    return random.Random(seed)
