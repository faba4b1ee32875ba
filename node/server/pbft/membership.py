"""The node's side of validator-set changes (DESIGN §4): the contracts decide a
change and schedule it in state; this module tells the replica
(`Replica.schedule_validators`), keeps the p2p allowlist to the validators in force
and scheduled (a removed validator's connections close once its set no longer
governs), and rebuilds the replica's schedule from committed state on restart."""

from __future__ import annotations

import logging

import contracts
from consensus.actions import Ready
from consensus.membership import ValidatorChange, after_height_for
from consensus.replica import Replica
from node.server.core import NodeCore
from p2p.service import P2PService
from primitives.genesis import Validator

log = logging.getLogger("godown.pbft")


Sets = tuple[tuple[Validator, ...], tuple[int, tuple[Validator, ...]] | None]
"""(validators in force, (effective height, scheduled validators) or None)."""


def validator_sets(core: NodeCore) -> Sets:
    """(set in force, scheduled change) in committed state."""
    return contracts.validator_schedule(core.ledger.state)


def initial_changes(core: NodeCore) -> tuple[tuple[str, ...], dict[str, bytes], list[ValidatorChange]]:
    """What a replica starts with: the genesis set and keys, and every change scheduled
    since (committed state keeps their history), in order."""
    ids = core.genesis.validator_ids
    keys = core.genesis.validator_keys()
    changes = [
        ValidatorChange(after, tuple(v.node_id for v in vs), {v.node_id: v.node_pub for v in vs})
        for after, vs in contracts.validator_history(core.ledger.state)
    ]
    return ids, keys, changes


def allowlist(core: NodeCore, sets: Sets | None = None) -> dict[str, tuple[bytes, str]]:
    """Peers a node talks to: every validator in force or scheduled, but itself."""
    current, pending = sets if sets is not None else validator_sets(core)
    known = [*current, *(pending[1] if pending else ())]
    return {v.node_id: (v.node_pub, v.p2p_addr) for v in known if v.node_id != core.node_id}


class MembershipFollower:
    """After each executed block: a newly scheduled change goes to the replica, and the
    allowlist follows the sets (new validators dialed, removed ones cut off)."""

    def __init__(self, core: NodeCore, replica: Replica, p2p: P2PService) -> None:
        self.core = core
        self.replica = replica
        self.p2p = p2p
        history = contracts.validator_history(core.ledger.state)
        self._told = history[-1][0] if history else -1
        self._peers = allowlist(core)

    def after_execute(self, height: int) -> Ready | None:
        """Call after applying block `height`, before the replica's `on_executed(height)`;
        the driver performs what the replica answers."""
        ready = None
        sets = validator_sets(self.core)  # read once per block
        pending = sets[1]
        if pending is not None and pending[0] != self._told:
            after, nxt = pending
            expected = after_height_for(self.replica.config, height)
            assert after == expected, f"contracts schedule after {after}, consensus expects {expected}"
            ids = tuple(v.node_id for v in nxt)
            ready = self.replica.schedule_validators(after, ids, {v.node_id: v.node_pub for v in nxt})
            self._told = after
            log.info("validator set change scheduled", extra={"after_height": after, "validators": list(ids)})
        peers = allowlist(self.core, sets)
        if peers != self._peers:
            self._peers = peers
            self.p2p.set_peers(peers)
            log.info("peers follow the validator sets", extra={"peers": len(peers), "height": height})
        return ready
