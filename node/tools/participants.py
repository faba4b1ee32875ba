"""The keys of everyone in a financing round, and a builder of their signed
transactions: shared by the demo, the load generator and the tests, so that none
of them reinvents either. Pure Python over primitives: no I/O but reading a
testnet's key folder in `participants_of`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from node.client.reports import device_report
from node.client.txs import NonceBook, sign_tx
from node.tools.testnet import Testnet
from primitives.genesis import Genesis, Member, Policy, Validator
from primitives.hashing import sha256
from primitives.keys import NODE_ROLE, KeyPair
from primitives.tx import SignedTx

FAR_FUTURE_MS = 2**52
"""Expiry used where a workload must not depend on block time."""


def derived_key(seed: bytes, name: str, role: str) -> KeyPair:
    return KeyPair(
        name=name,
        role=role,
        sign_seed=sha256(seed + b"/sign/" + name.encode()),
        enc_secret=sha256(seed + b"/enc/" + name.encode()),
    )


@dataclass(frozen=True)
class Participants:
    """The keys of everyone taking part in a financing round."""

    warehouse: KeyPair
    bank: KeyPair
    insurer: KeyPair
    guarantor: KeyPair
    borrower: KeyPair
    auditor: KeyPair
    devices: tuple[KeyPair, ...]
    bank2: KeyPair | None = None
    borrower2: KeyPair | None = None

    @staticmethod
    def generate(devices: int = 4, seed: bytes | None = None) -> Participants:
        """Fresh keys (random), or keys derived from `seed` (reproducible, for tests)."""

        def key(name: str, role: str) -> KeyPair:
            return KeyPair.generate(name, role) if seed is None else derived_key(seed, name, role)

        return Participants(
            warehouse=key("warehouse", "warehouse"),
            bank=key("bank", "bank"),
            insurer=key("insurer", "insurer"),
            guarantor=key("guarantor", "guarantor"),
            borrower=key("borrower", "borrower"),
            auditor=key("auditor", "auditor"),
            devices=tuple(key(f"device-{i}", "device") for i in range(devices)),
            bank2=key("bank2", "bank"),
            borrower2=key("borrower2", "borrower"),
        )

    def members(self) -> list[KeyPair]:
        """Every member key (devices are not members: they are registered on chain)."""
        out = [self.warehouse, self.bank, self.insurer, self.guarantor, self.borrower, self.auditor]
        return out + [k for k in (self.bank2, self.borrower2) if k is not None]

    def node_key(self, member: KeyPair) -> KeyPair:
        """The key of the node `member` runs: its own, derived from the member's seed so
        that a seeded round stays reproducible."""
        return derived_key(member.sign_seed, f"{member.name}-node", NODE_ROLE)

    def genesis(
        self, chain_id: str, genesis_time_ms: int, policy: Policy | None = None, validating: int = 4
    ) -> Genesis:
        """A genesis with these members; the first `validating` of warehouse, bank,
        insurer and guarantor run a validator (with `node_key`; addresses on loopback)."""
        members = tuple(Member(k.id, k.name, k.role, k.sign_pub, k.enc_pub) for k in self.members())
        orgs = (self.warehouse, self.bank, self.insurer, self.guarantor)[:validating]
        validators = tuple(
            Validator(self.node_key(k).id, k.id, self.node_key(k).sign_pub, f"/ip4/127.0.0.1/tcp/{26656 + i}")
            for i, k in enumerate(orgs)
        )
        return Genesis(chain_id, genesis_time_ms, members, validators, policy or Policy())

    def watchers(self) -> dict[str, bytes]:
        """Recipients of every device report: warehouse, bank, insurer, guarantor (id → X25519 key)."""
        return {k.id: k.enc_pub for k in (self.warehouse, self.bank, self.insurer, self.guarantor)}


def participants_of(net: Testnet) -> Participants:
    """The financing round's keys, from a testnet's key folder."""
    devices = tuple(net.key(p.stem) for p in sorted((net.dir / "keys").glob("device-*.json")))
    return Participants(
        warehouse=net.key("warehouse"),
        bank=net.key("bank"),
        insurer=net.key("insurer"),
        guarantor=net.key("guarantor"),
        borrower=net.key("borrower"),
        auditor=net.key("auditor"),
        devices=devices,
        bank2=net.key("bank2"),
        borrower2=net.key("borrower2"),
    )


class Round:
    """Builds signed transactions for one chain, tracking nonces and device sequences."""

    def __init__(self, p: Participants, chain_id: str, nonces: NonceBook | None = None) -> None:
        self.p = p
        self.chain_id = chain_id
        self.nonces = nonces or NonceBook()
        self.seqs: dict[str, int] = {}

    def tx(self, signer: KeyPair, tx_type: str, **body: Any) -> SignedTx:
        return sign_tx(signer, self.chain_id, self.nonces.take(signer), tx_type, body)

    def report(
        self,
        device: KeyPair,
        lot: str,
        kind: str,
        quantity: int = 0,
        pad_to: int = 0,
        recipients: Mapping[str, bytes] | None = None,
    ) -> SignedTx:
        seq = self.seqs.get(device.id, 0)
        self.seqs[device.id] = seq + 1
        data = {"seq": seq, "kind": kind, "reading": 20_000 + seq % 500, "unit": "centi-celsius"}
        return device_report(
            device,
            self.chain_id,
            self.nonces.take(device),
            seq,
            lot,
            kind,
            data,
            recipients if recipients is not None else self.p.watchers(),
            quantity,
            pad_to,
        )
