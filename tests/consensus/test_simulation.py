"""The seeded simulator over the real replica: many seeds mixing every fault kind
for n=4 and n=7 with f Byzantine replicas must stay safe and live; broken
configurations must be caught; runs replay exactly from their seed."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consensus.sim import Scenario, run_scenario
from consensus.sim.run import BYZANTINE_MODES
from primitives.block import max_faulty

MODE_MIXES = [(m,) for m in BYZANTINE_MODES] + [
    ("equivocate", "conflict"),
    ("garbage", "replay"),
    ("equivocate", "silent"),
    BYZANTINE_MODES,
]


def mixed(n: int, seed: int, blocks: int = 20) -> Scenario:
    """Seed → a fault mix; over consecutive seeds every kind appears many times."""
    r = random.Random(seed * 1_000_003 + n)
    f = max_faulty(n)
    return Scenario(
        nodes=n,
        byzantine=f,
        crash=r.randint(0, f + 1),
        drop=r.choice([0.0, 0.05, 0.1, 0.2]),
        duplicate=r.choice([0.0, 0.05, 0.1]),
        partition=r.random() < 0.5,
        byzantine_modes=MODE_MIXES[seed % len(MODE_MIXES)],
        seed=seed,
        blocks=blocks,
    )


def assert_ok(s: Scenario) -> None:
    result = run_scenario(s)
    detail = "\n".join(result.trace[-30:])
    assert result.ok, f"seed {s.seed}: {result.violation}\n{s}\n{detail}"
    assert result.agreement and result.liveness
    assert result.committed_blocks >= s.blocks


@pytest.mark.parametrize("chunk", range(14))
def test_n4_mixed_faults(chunk: int) -> None:
    for seed in range(chunk * 10, chunk * 10 + 10):  # 140 seeds
        assert_ok(mixed(4, seed))


@pytest.mark.parametrize("chunk", range(7))
def test_n7_mixed_faults(chunk: int) -> None:
    for seed in range(chunk * 10, chunk * 10 + 10):  # 70 seeds
        assert_ok(mixed(7, seed))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.sampled_from([4, 7]),
    seed=st.integers(min_value=0, max_value=2**32),
    drop=st.sampled_from([0.0, 0.02, 0.1, 0.25]),
    duplicate=st.sampled_from([0.0, 0.1, 0.3]),
    partition=st.booleans(),
    crash=st.integers(min_value=0, max_value=3),
    modes=st.sets(st.sampled_from(BYZANTINE_MODES), min_size=1),
    max_delay=st.sampled_from([1, 20, 80]),
    window=st.sampled_from([1, 2, 4, 8]),
    interval=st.sampled_from([1, 2, 4, 8]),
)
def test_hypothesis_fault_mixes(
    n: int,
    seed: int,
    drop: float,
    duplicate: float,
    partition: bool,
    crash: int,
    modes: set[str],
    max_delay: int,
    window: int,
    interval: int,
) -> None:
    assert_ok(
        Scenario(
            nodes=n,
            byzantine=max_faulty(n),
            crash=min(crash, max_faulty(n) + 1),
            drop=drop,
            duplicate=duplicate,
            partition=partition,
            byzantine_modes=tuple(sorted(modes)),
            seed=seed,
            blocks=12,
            max_delay_ms=max_delay,
            window=window,
            checkpoint_interval=interval,
        )
    )


def test_real_ed25519_keys() -> None:
    assert_ok(Scenario(nodes=4, byzantine=1, crash=1, drop=0.05, partition=True, seed=11, blocks=10, real_keys=True))


def test_runs_replay_exactly_from_the_seed() -> None:
    s = mixed(4, 3)
    a, b = run_scenario(s), run_scenario(s)
    assert a.summary() == b.summary() and a.trace == b.trace


def test_quorum_of_f_plus_one_is_caught() -> None:
    """A protocol broken on purpose (quorum f+1) must violate agreement on some seed,
    and the report carries the seed and the trace up to the violation."""
    caught = None
    for seed in range(40):
        s = Scenario(nodes=4, byzantine=1, seed=seed, blocks=10, byzantine_modes=("equivocate",), quorum_override=2)
        result = run_scenario(s)
        if not result.ok:
            caught = result
            break
    assert caught is not None, "the invariant checker never noticed quorum f+1"
    assert not caught.agreement and caught.violation and caught.violation.startswith("agreement")
    assert caught.trace and caught.trace[-1].startswith("VIOLATION")


def test_too_many_faults_is_reported_as_not_live() -> None:
    """f+1 silent replicas leave no quorum: the liveness check must say so."""
    result = run_scenario(
        Scenario(nodes=4, byzantine=2, byzantine_modes=("silent",), seed=1, blocks=3, liveness_ms=5_000)
    )
    assert not result.liveness and result.violation and result.violation.startswith("liveness")
    assert result.agreement


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_n16_mixed_faults(seed: int) -> None:
    assert_ok(mixed(16, seed, blocks=12))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_n31_mixed_faults(seed: int) -> None:
    assert_ok(mixed(31, seed, blocks=10))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_n31_ten_byzantine(seed: int) -> None:
    assert_ok(Scenario(nodes=31, byzantine=10, seed=seed, blocks=10))
