"""The safety and liveness properties every simulated run must keep.

Checked on every commit (so a violation is caught at the step that causes it):
agreement (no two correct replicas commit different blocks at one height),
validity (committed payloads were proposed), order (each replica commits
heights 1, 2, 3, … with no gap), linkage (each committed block names the block
committed below it as its parent, as a header's prev_hash does), and — when the validator
set changes — certificates (each commit certificate carries a quorum of the set governing
its height, and no other signer). Checked at the end: liveness (after faults stop and the
network heals, every correct replica has committed every batch).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from primitives.block import Commit, quorum_size


class Violation(Exception):
    """An invariant broke; `what` names it."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"{what}: {detail}")
        self.what = what
        self.detail = detail


@dataclass
class Checker:
    proposed: set[bytes] = field(default_factory=set)
    committed: dict[int, bytes] = field(default_factory=dict)
    heights: dict[str, int] = field(default_factory=dict)
    epochs: tuple[tuple[int, tuple[str, ...]], ...] = ()
    """(first height, validators) of each set after the first, in order; empty: nothing to check."""
    first_set: tuple[str, ...] = ()

    def on_certificate(self, node: str, cert: Commit) -> None:
        if not self.epochs:
            return
        governing = self.first_set
        for first, ids in self.epochs:
            if cert.height >= first:
                governing = ids
        signers = {s for s, _ in cert.votes}
        if not signers <= set(governing) or len(signers) < quorum_size(len(governing)):
            raise Violation(
                "certificate", f"{node} executed height {cert.height} certified by {sorted(signers)}, set {governing}"
            )

    def on_commit(self, node: str, height: int, payload: bytes) -> None:
        expected = self.heights.get(node, 0) + 1
        if height != expected:
            raise Violation("order", f"{node} committed height {height}, expected {expected}")
        self.heights[node] = height
        if payload not in self.proposed:
            raise Violation("validity", f"{node} committed an unproposed payload at height {height}")
        if height > 1 and height - 1 in self.committed:
            parent = hashlib.sha256(self.committed[height - 1]).hexdigest().encode()
            if payload[:64] != parent:
                raise Violation(
                    "linkage", f"{node} committed at height {height} a block whose parent is not block {height - 1}"
                )
        first = self.committed.setdefault(height, payload)
        if first != payload:
            raise Violation(
                "agreement", f"{node} committed {payload[:24]!r} at height {height}, another replica {first[:24]!r}"
            )
