"""The benchmark load of DESIGN §10: complete financing rounds with about 80%
device reports carrying 256-byte sealed payloads, in phases that each depend
only on earlier ones. Used by `godown bench`, `bench/` and the end-to-end tests.
Pure Python over the client library: no I/O, no clock."""

from __future__ import annotations

from node.client.txs import NonceBook
from node.tools.participants import FAR_FUTURE_MS, Participants, Round, derived_key
from primitives.hashing import sha256
from primitives.keys import KeyPair
from primitives.tx import SignedTx

PAYLOAD_PLAINTEXT_BYTES = 240
"""Sealed with a 16-byte tag this gives the 256-byte encrypted payloads of DESIGN §10."""


def workload_device(chain_id: str, index: int, tag: str = "") -> KeyPair:
    """The monitoring device of case `index` in `financing_workload` (reproducible keys)."""
    return derived_key(sha256(b"godown-workload/" + chain_id.encode() + tag.encode()), f"wl-device-{index}", "device")


def financing_workload(
    participants: Participants,
    chain_id: str,
    cases: int,
    reports_per_case: int,
    tag: str = "",
    nonces: NonceBook | None = None,
) -> list[list[SignedTx]]:
    """Benchmark load: `cases` complete financing rounds, one lot, zone and device
    each, with `reports_per_case` readings (38 gives ~80% device reports). Returns
    phases; a phase depends only on earlier ones and keeps each signer's order.
    Every transaction is meant to succeed on a fresh chain from `participants.genesis`;
    on a chain already in use, pass the members' next nonces in `nonces` and a `tag`
    not used before (it keeps lot, case, zone and device ids apart)."""
    p = participants
    r = Round(p, chain_id, nonces)
    W, B, I, G, R = p.warehouse, p.bank, p.insurer, p.guarantor, p.borrower  # noqa: E741 (role initials)
    devs = [workload_device(chain_id, i, tag) for i in range(cases)]
    pad = PAYLOAD_PLAINTEXT_BYTES

    def lot(i: int) -> str:
        return f"wl{tag}-lot-{i}"

    def case(i: int) -> str:
        return f"wl{tag}-case-{i}"

    def zone(i: int) -> str:
        return f"wl{tag}-zone-{i}"

    amount, qty = 1_000_000, 1_000
    phases: list[list[SignedTx]] = []
    phases.append(
        [
            r.tx(B, "rating.issue", subject=R.id, grade="A", valid_until_ms=FAR_FUTURE_MS, report_hash=sha256(b"R")),
            r.tx(B, "rating.issue", subject=W.id, grade="AA", valid_until_ms=FAR_FUTURE_MS, report_hash=sha256(b"W")),
        ]
        + [
            r.tx(W, "device.register", device=d.id, sign_pub=d.sign_pub, zone=zone(i), kind="scale")
            for i, d in enumerate(devs)
        ]
    )
    phases.append([r.tx(B, "device.accept", device=d.id) for d in devs])
    phases.append([r.report(d, lot(i), "inbound", qty, pad) for i, d in enumerate(devs)])
    phases.append(
        [
            r.tx(W, "lot.receive", lot=lot(i), zone=zone(i), owner=R.id, commodity="wheat", unit="kg", quantity=qty)
            for i in range(cases)
        ]
    )
    phases.append(
        [
            r.tx(
                R,
                "case.apply",
                case=case(i),
                lot=lot(i),
                bank=B.id,
                insurer=I.id,
                guarantor=G.id,
                amount=amount,
                maturity_ms=FAR_FUTURE_MS,
            )
            for i in range(cases)
        ]
    )
    phases.append([r.tx(W, "case.pledge", case=case(i)) for i in range(cases)])
    phases.append([r.tx(B, "case.disburse", case=case(i)) for i in range(cases)])
    phases.append([r.report(devs[i], lot(i), "reading", 0, pad) for _ in range(reports_per_case) for i in range(cases)])
    phases.append([r.tx(B, "case.repay", case=case(i), amount=amount) for i in range(cases)])
    phases.append([r.tx(B, "case.release_order", case=case(i), quantity=qty) for i in range(cases)])
    phases.append([r.report(d, lot(i), "outbound", qty, pad) for i, d in enumerate(devs)])
    phases.append([r.tx(W, "lot.release", lot=lot(i), quantity=qty) for i in range(cases)])
    phases.append([r.tx(B, "case.close", case=case(i)) for i in range(cases)])
    return phases
