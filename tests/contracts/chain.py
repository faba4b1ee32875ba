"""A tiny in-memory chain over the contracts for tests: genesis → blocks → views."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import contracts
from contracts import BlockContext, BlockOutcome, DictState
from primitives.genesis import Genesis, Policy
from primitives.tx import SignedTx

from node.workload import Participants


def verify_real(stx: SignedTx, pub: bytes) -> bool:
    return stx.verify(pub)


@dataclass
class Chain:
    genesis: Genesis
    state: DictState
    height: int = 0
    time_ms: int = 0
    outcomes: list[BlockOutcome] = field(default_factory=list)

    @staticmethod
    def new(p: Participants, chain_id: str = "test-chain", time_ms: int = 1_000_000,
            policy: Policy | None = None) -> Chain:
        g = p.genesis(chain_id, time_ms, policy)
        return Chain(g, DictState(contracts.genesis_state(g)), 0, time_ms)

    def run(self, txs: Sequence[SignedTx], advance_ms: int = 1000, time_ms: int | None = None) -> list[str]:
        self.height += 1
        self.time_ms = time_ms if time_ms is not None else self.time_ms + advance_ms
        ctx = BlockContext(self.genesis.chain_id, self.height, self.time_ms, self.genesis.validators[0])
        out = contracts.execute_block(self.state, ctx, list(txs), verify_real)
        self.state.apply(out.changes)
        self.outcomes.append(out)
        return list(out.results)

    def case(self, ident: str) -> dict[str, Any]:
        v = contracts.view_case(self.state, ident)
        assert v is not None
        return v

    def lot(self, ident: str) -> dict[str, Any]:
        v = contracts.view_lot(self.state, ident)
        assert v is not None
        return v
