"""Prometheus metrics of one node (its own registry, so several nodes can share a process in tests).

docs/operations.md says which of them to alert on, and how.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from primitives.errors import Code

if TYPE_CHECKING:  # node.server.health imports the core, which imports this module
    from node.server.health import EngineHealth


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge("godown_height", "Height of the last committed block", registry=r)
        self.view = Gauge("godown_view", "Current consensus view", registry=r)
        self.mempool = Gauge("godown_mempool_txs", "Transactions waiting in the mempool", registry=r)
        self.peers = Gauge("godown_peers", "Connected validator peers", registry=r)
        self.blocks = Counter("godown_blocks_committed", "Blocks committed", registry=r)
        self.txs = Counter("godown_txs_committed", "Transactions committed, by result", ["result"], registry=r)
        self.admitted = Counter("godown_txs_admitted", "Transactions admitted to the mempool", registry=r)
        self.refused = Counter("godown_txs_refused", "Transactions refused at admission, by code", ["code"], registry=r)
        self.alarms = Counter("godown_alarms_raised", "Alarms raised by the contracts", registry=r)
        self.execute_seconds = Histogram(
            "godown_block_execute_seconds",
            "Execution time per block",
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
        )
        self.commit_seconds = Histogram(
            "godown_block_commit_seconds",
            "Synced write time per block",
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
        )
        self.round_seconds = Histogram(
            "godown_consensus_round_seconds",
            "From our proposal to its execution here (primary only)",
            registry=r,
            buckets=(0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0),
        )
        self.view_changes = Counter("godown_view_changes", "View changes seen", registry=r)
        self.frames_dropped = Counter(
            "godown_p2p_frames_dropped", "Frames from peers dropped because the inbox was full", registry=r
        )
        self.requests_overdue = Counter(
            "godown_requests_overdue", "View changes asked for because a client request passed its deadline", registry=r
        )
        self.rpc_errors = Counter("godown_rpc_errors", "RPC errors answered, by code", ["code"], registry=r)
        self.in_view_change = Gauge("godown_in_view_change", "1 while a view change is under way", registry=r)
        self.peers_down = Gauge(
            "godown_peers_down", "Validators of the current set this node holds no connection to", registry=r
        )
        self.blocks_behind = Gauge(
            "godown_blocks_behind", "Blocks between this node's head and the height its peers have shown", registry=r
        )
        self.mempool_fullness = Gauge(
            "godown_mempool_fullness", "Mempool transactions as a share of its capacity (0 to 1)", registry=r
        )
        self.refused.labels(Code.MEMPOOL_FULL.value)  # the series an alert watches exists from the start

    def show_consensus(self, health: EngineHealth) -> None:
        """Publish what the consensus engine found when it refreshed its status."""
        self.in_view_change.set(1 if health.in_view_change else 0)
        self.peers.set(len(health.connected))
        self.peers_down.set(len(health.peers_down))
        self.blocks_behind.set(health.blocks_behind)

    def show_mempool(self, size: int, capacity: int) -> None:
        """The mempool's size and fullness, whichever engine runs (set where it changes)."""
        self.mempool.set(size)
        self.mempool_fullness.set(min(1.0, size / max(1, capacity)))

    def render(self) -> bytes:
        return generate_latest(self.registry)
