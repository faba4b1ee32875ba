"""A seeded, deterministic simulator that drives the real `Replica` under faults.

As TigerBeetle's VOPR and etcd's raft test network do, it runs the production
state machine over a virtual network and clock: per-link delay, drop,
duplicate and reorder; partitions that form and heal; crashes and restarts
with the write-ahead records; Byzantine replicas; validator-set changes
(`Scenario.membership`, `with_membership`). Invariants are checked after every
step; a violation reports the seed and the trace up to it.
"""

from consensus.sim.resize import resize_steps, with_membership
from consensus.sim.run import Scenario, SimResult, byzantine_nodes, run_scenario

__all__ = ["Scenario", "SimResult", "byzantine_nodes", "resize_steps", "run_scenario", "with_membership"]
