"""A tiny in-memory chain over the contracts for tests: genesis → blocks → views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import contracts
from contracts import BlockContext, BlockOutcome, DictState, Verify
from node.tools.participants import Participants
from primitives.genesis import ConsensusParams, Genesis, Policy
from primitives.tx import SignedTx


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
    def new(
        p: Participants,
        chain_id: str = "test-chain",
        time_ms: int = 1_000_000,
        policy: Policy | None = None,
        consensus: ConsensusParams | None = None,
        validating: int = 4,
    ) -> Chain:
        g = p.genesis(chain_id, time_ms, policy, validating)
        if consensus is not None:
            g = replace(g, consensus=consensus)
        return Chain(g, DictState(contracts.genesis_state(g)), 0, time_ms)

    def run(
        self, txs: Sequence[SignedTx], advance_ms: int = 1000, time_ms: int | None = None, verify: Verify = verify_real
    ) -> list[str]:
        self.height += 1
        self.time_ms = time_ms if time_ms is not None else self.time_ms + advance_ms
        ctx = BlockContext(self.genesis.chain_id, self.height, self.time_ms, self.genesis.validator_ids[0])
        out = contracts.execute_block(self.state, ctx, list(txs), verify)
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


class World:
    """A chain plus a transaction builder, with shortcuts to reach a given stage."""

    def __init__(
        self,
        policy: Policy | None = None,
        seed: bytes = b"world",
        consensus: ConsensusParams | None = None,
        validating: int = 4,
    ) -> None:
        from node.tools.participants import Round

        self.p = Participants.generate(seed=seed)
        self.chain = Chain.new(self.p, policy=policy, consensus=consensus, validating=validating)
        self.r = Round(self.p, self.chain.genesis.chain_id)
        p = self.p
        self.W, self.B, self.I, self.G, self.R = p.warehouse, p.bank, p.insurer, p.guarantor, p.borrower
        self.B2, self.R2, self.A = p.bank2, p.borrower2, p.auditor
        self.d = list(p.devices)

    def tx(self, signer: Any, tx_type: str, **body: Any) -> SignedTx:
        return self.r.tx(signer, tx_type, **body)

    def report(self, device: Any, lot: str, kind: str, quantity: int = 0, **kw: Any) -> SignedTx:
        return self.r.report(device, lot, kind, quantity, **kw)

    def run(self, *txs: SignedTx, advance_ms: int = 1000, time_ms: int | None = None) -> list[str]:
        return self.chain.run(txs, advance_ms, time_ms)

    def one(self, tx: SignedTx, **kw: Any) -> str:
        return self.run(tx, **kw)[0]

    def ok(self, *txs: SignedTx, **kw: Any) -> None:
        res = self.run(*txs, **kw)
        assert res == ["ok"] * len(txs), res

    @property
    def now(self) -> int:
        return self.chain.time_ms

    def rate(self, grade: str = "A") -> None:
        far = self.now + 10**9
        self.ok(
            self.tx(self.B, "rating.issue", subject=self.R.id, grade=grade, valid_until_ms=far, report_hash=bytes(32)),
            self.tx(self.B, "rating.issue", subject=self.W.id, grade=grade, valid_until_ms=far, report_hash=bytes(32)),
        )

    def devices(self, zone: str = "zone-a", idx: tuple[int, ...] = (0,), accept: bool = True) -> None:
        self.ok(
            *[
                self.tx(
                    self.W, "device.register", device=self.d[i].id, sign_pub=self.d[i].sign_pub, zone=zone, kind="scale"
                )
                for i in idx
            ]
        )
        if accept:
            self.ok(*[self.tx(self.B, "device.accept", device=self.d[i].id) for i in idx])

    def lot(self, lot: str = "L1", zone: str = "zone-a", device: int = 0, qty: int = 1000, owner: Any = None) -> None:
        self.ok(self.report(self.d[device], lot, "inbound", qty))
        self.ok(
            self.tx(
                self.W,
                "lot.receive",
                lot=lot,
                zone=zone,
                owner=(owner or self.R).id,
                commodity="wheat",
                unit="kg",
                quantity=qty,
            )
        )

    def apply(self, case: str = "C1", lot: str = "L1", amount: int = 1000, maturity_in: int = 3_600_000) -> SignedTx:
        return self.tx(
            self.R,
            "case.apply",
            case=case,
            lot=lot,
            bank=self.B.id,
            insurer=self.I.id,
            guarantor=self.G.id,
            amount=amount,
            maturity_ms=self.now + maturity_in,
        )

    def disbursed(self, case: str = "C1", amount: int = 1000, maturity_in: int = 3_600_000) -> None:
        """Ratings, device on zone-a, lot L1 of 1000, case applied, pledged, disbursed."""
        self.rate()
        self.devices()
        self.lot()
        self.ok(self.apply(case, amount=amount, maturity_in=maturity_in))
        self.ok(self.tx(self.W, "case.pledge", case=case))
        self.ok(self.tx(self.B, "case.disburse", case=case))
