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
                if await self._quiet():
                    self.produce_one(empty=True)
                    continue
            if len(core.mempool) < self.max_txs:
                await asyncio.sleep(self.timeout_s)
            self.produce_one()
            await asyncio.sleep(0)

    async def _quiet(self) -> bool:
        """Wait for a transaction; True if the chain stayed quiet long enough that the
        head wants its certifying empty block."""
        ledger, after_ms = self.core.ledger, self.core.genesis.consensus.empty_block_after_ms
        while True:
            head = ledger.head()
            if head.settled or after_ms <= 0:
                await self.core.tx_arrived.wait()
                return False
            wait_s = max(0.0, (head.time_ms + after_ms - now_ms()) / 1000)
            try:
                await asyncio.wait_for(self.core.tx_arrived.wait(), wait_s)
                return False
            except TimeoutError:
                if ledger.wants_empty_block(now_ms()):
                    return True

    def produce_one(self, empty: bool = False) -> int:
        """Build, execute, certify and commit one block (or the empty one that certifies
        the head); returns its tx count."""
        core = self.core
        txs = [] if empty else core.mempool.take(self.max_txs)
        if not txs and not empty:
            return 0
        ledger = core.ledger
        block = ledger.build_block(txs, now_ms(), view=0, proposer=core.node_id)
        h = block.header
        sig = core.key.sign(commit_vote_bytes(h.chain_id, h.height, h.view, block.hash()))
        commit = Commit(h.chain_id, h.height, h.view, block.hash(), ((core.node_id, sig),))
        core.apply(block, commit)
        return len(txs)
