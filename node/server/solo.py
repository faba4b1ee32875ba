"""The single-validator engine: cut a block at `max_block_txs` or after
`batch_timeout_ms` with a non-empty mempool, sign its certificate alone, commit.

With one validator, f = 0 and the quorum is 1, so the certificate structure is
the same as the consortium's, with one vote.
"""

from __future__ import annotations

import asyncio
import logging

from node.server.core import NodeCore, now_ms
from primitives.block import Commit, commit_vote_bytes

log = logging.getLogger("godown.solo")


class SoloEngine:
    def __init__(self, core: NodeCore) -> None:
        self.core = core
        params = core.genesis.consensus
        self.max_txs = params.max_block_txs
        self.timeout_s = params.batch_timeout_ms / 1000
        core.engine_status = {"view": 0, "primary": core.node_id, "peers": [], "sync": "solo"}

    async def run(self) -> None:
        core = self.core
        while True:
            if not core.mempool.ready():
                core.tx_arrived.clear()
                await core.tx_arrived.wait()
            if len(core.mempool) < self.max_txs:
                await asyncio.sleep(self.timeout_s)
            self.produce_one()
            await asyncio.sleep(0)

    def produce_one(self) -> int:
        """Build, execute, certify and commit one block; returns its tx count."""
        core = self.core
        txs = core.mempool.take(self.max_txs)
        if not txs:
            return 0
        ledger = core.ledger
        block = ledger.build_block(txs, now_ms(), view=0, proposer=core.node_id)
        h = block.header
        sig = core.key.sign(commit_vote_bytes(h.chain_id, h.height, h.view, block.hash()))
        commit = Commit(h.chain_id, h.height, h.view, block.hash(), ((core.node_id, sig),))
        core.apply(block, commit)
        return len(txs)
