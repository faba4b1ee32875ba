"""Signed transactions for the financing lifecycle, built in one place so that the
demo, the benchmarks and the end-to-end tests do not each reinvent them.

`demo_steps` is the seed's method A–G (plus extensions, a refused double pledge,
an unauthorised outbound alarm, default and liquidation, and a plain
supervision) as ordered steps with the result code each transaction must get;
`financing_workload` is the benchmark load (about 80% device reports with
256-byte sealed payloads, DESIGN §10) in phases that each depend only on
earlier ones. Pure Python over primitives and contracts: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts import alarm_id_for_tx
from primitives import codec
from primitives.envelope import Envelope, open_envelope, seal
from primitives.genesis import Genesis, Member, Policy
from primitives.hashing import sha256
from primitives.keys import KeyPair
from primitives.tx import SignedTx, Tx

FAR_FUTURE_MS = 2**52
"""Expiry used where a workload must not depend on block time."""

PAYLOAD_PLAINTEXT_BYTES = 240
"""Sealed with a 16-byte tag this gives the 256-byte encrypted payloads of DESIGN §10."""


def _derived_key(seed: bytes, name: str, role: str) -> KeyPair:
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
            return KeyPair.generate(name, role) if seed is None else _derived_key(seed, name, role)

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

    def genesis(self, chain_id: str, genesis_time_ms: int, policy: Policy | None = None) -> Genesis:
        """A genesis with these members; warehouse, bank, insurer, guarantor validate."""
        members = tuple(Member(k.id, k.name, k.role, k.sign_pub, k.enc_pub) for k in self.members())
        validators = (self.warehouse.id, self.bank.id, self.insurer.id, self.guarantor.id)
        return Genesis(chain_id, genesis_time_ms, members, validators, policy or Policy())

    def watchers(self) -> dict[str, bytes]:
        """Recipients of every device report: warehouse, bank, insurer, guarantor (id → X25519 key)."""
        return {k.id: k.enc_pub for k in (self.warehouse, self.bank, self.insurer, self.guarantor)}


@dataclass
class NonceBook:
    """Next nonce per signer (a rejected transaction consumes its nonce too)."""

    next: dict[str, int] = field(default_factory=dict)

    def take(self, signer: KeyPair) -> int:
        n = self.next.get(signer.id, 0)
        self.next[signer.id] = n + 1
        return n


def sign_tx(
    signer: KeyPair, chain_id: str, nonce: int, tx_type: str, body: Mapping[str, Any], valid_until_ms: int | None = None
) -> SignedTx:
    return Tx(chain_id, tx_type, signer.id, nonce, dict(body), valid_until_ms).sign(signer)


def report_associated_data(device_id: str, seq: int, lot: str, kind: str) -> bytes:
    """Associated data binding a sealed payload to its report's clear-text fields."""
    return codec.encode({"device": device_id, "seq": seq, "lot": lot, "kind": kind})


def device_report(
    device: KeyPair,
    chain_id: str,
    nonce: int,
    seq: int,
    lot: str,
    kind: str,
    data: Mapping[str, Any],
    recipients: Mapping[str, bytes],
    quantity: int = 0,
    pad_to: int = 0,
) -> SignedTx:
    """A `device.report` signed by the device, its data sealed to `recipients`
    (id → X25519 public key). `pad_to` pads the plaintext to that many bytes."""
    plain = codec.encode(dict(data))
    if pad_to > len(plain):
        doc = {**data, "pad": b""}
        base = len(codec.encode(doc))
        pad = max(0, pad_to - base)
        doc["pad"] = bytes(pad)
        plain = codec.encode(doc)
        if len(plain) > pad_to:  # the bin length prefix grew: trim by the difference
            doc["pad"] = bytes(max(0, pad - (len(plain) - pad_to)))
            plain = codec.encode(doc)
    envelope = seal(plain, recipients, report_associated_data(device.id, seq, lot, kind))
    body: dict[str, Any] = {"lot": lot, "seq": seq, "kind": kind, "envelope": envelope.to_dict()}
    if quantity:
        body["quantity"] = quantity
    return sign_tx(device, chain_id, nonce, "device.report", body)


def open_report(stx: SignedTx, recipient_id: str, enc_secret: bytes) -> dict[str, Any]:
    """Decrypt a device report as one recipient: its clear-text fields plus `data`.
    Raises GodownError `not_recipient` or `tampered`."""
    body = stx.tx.body
    envelope = Envelope.from_dict(body["envelope"])
    ad = report_associated_data(stx.tx.sender, body["seq"], body["lot"], body["kind"])
    data = codec.decode(open_envelope(envelope, recipient_id, enc_secret, ad))
    if isinstance(data, dict):
        data.pop("pad", None)
    return {
        "device": stx.tx.sender,
        "seq": body["seq"],
        "lot": body["lot"],
        "kind": body["kind"],
        "quantity": body.get("quantity", 0),
        "data": data,
    }


@dataclass(frozen=True)
class Step:
    """Transactions submitted together (one after another) once the previous step has
    committed, with the result code each must get."""

    label: str
    section: str
    txs: list[SignedTx]
    expected: list[str]


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


def demo_steps(participants: Participants, chain_id: str, start_time_ms: int) -> list[Step]:
    """The financing round of the demo. Needs 4 devices and `bank2`; works with real
    wall-clock block times (case C2 matures at `start_time_ms`, so it is overdue by
    its default step; the rest mature an hour or more later) and the default policy
    (60 s heartbeats: every device reports at least every ~7 steps, so up to 5 s
    per step raises no heartbeat alarm on a lot whose step needs it alarm-free)."""
    p = participants
    if len(p.devices) < 4 or p.bank2 is None:
        raise ValueError("demo_steps needs at least 4 devices and a second bank")
    r = Round(p, chain_id)
    W, B, I, G, R = p.warehouse, p.bank, p.insurer, p.guarantor, p.borrower  # noqa: E741 (role initials)
    R2 = p.borrower2 or R
    d0, d1, d2, d3 = p.devices[:4]
    hour = 3_600_000
    steps: list[Step] = []

    def step(label: str, section: str, *pairs: tuple[SignedTx, str]) -> None:
        steps.append(Step(label, section, [t for t, _ in pairs], [c for _, c in pairs]))

    ok = "ok"
    day = start_time_ms + 24 * hour
    step(
        "banks rate the borrowers and the warehouse",
        "A",
        (r.tx(B, "rating.issue", subject=R.id, grade="A", valid_until_ms=day, report_hash=sha256(b"audit R")), ok),
        (r.tx(B, "rating.issue", subject=W.id, grade="AA", valid_until_ms=day, report_hash=sha256(b"audit W")), ok),
        (r.tx(I, "rating.issue", subject=R2.id, grade="BBB", valid_until_ms=day, report_hash=sha256(b"audit R2")), ok),
    )
    zones = {d0.id: "zone-a", d1.id: "zone-a", d2.id: "zone-b", d3.id: "zone-c"}
    step(
        "the warehouse installs monitoring devices",
        "B",
        *[
            (r.tx(W, "device.register", device=d.id, sign_pub=d.sign_pub, zone=zones[d.id], kind=kind), ok)
            for d, kind in ((d0, "scale"), (d1, "rfid"), (d2, "scale"), (d3, "camera"))
        ],
    )
    step(
        "the bank audits and accepts the devices",
        "B",
        *[(r.tx(B, "device.accept", device=d.id), ok) for d in (d0, d1, d2, d3)],
    )
    step(
        "devices report goods coming in",
        "C",
        (r.report(d0, "L1", "inbound", 1000), ok),
        (r.report(d2, "L2", "inbound", 500), ok),
        (r.report(d3, "L3", "inbound", 300), ok),
        (r.report(d1, "", "heartbeat"), ok),
    )
    step(
        "the warehouse issues receipts",
        "C",
        *[
            (
                r.tx(
                    W,
                    "lot.receive",
                    lot=lot,
                    zone=zone,
                    owner=owner.id,
                    commodity="copper cathode",
                    unit="kg",
                    quantity=q,
                ),
                ok,
            )
            for lot, zone, owner, q in (("L1", "zone-a", R, 1000), ("L2", "zone-b", R, 500), ("L3", "zone-c", R2, 300))
        ],
    )
    step(
        "the borrower applies for loans against L1 and L2",
        "D",
        (
            r.tx(
                R,
                "case.apply",
                case="C1",
                lot="L1",
                bank=B.id,
                insurer=I.id,
                guarantor=G.id,
                amount=1_000_000,
                maturity_ms=start_time_ms + hour,
            ),
            ok,
        ),
        (
            r.tx(
                R,
                "case.apply",
                case="C2",
                lot="L2",
                bank=B.id,
                insurer=I.id,
                guarantor=G.id,
                amount=200_000,
                maturity_ms=start_time_ms,
            ),
            ok,
        ),
    )
    step(
        "a second bank is refused the same lot (no double pledge)",
        "D",
        (
            r.tx(
                R,
                "case.apply",
                case="C1-b2",
                lot="L1",
                bank=p.bank2.id,
                amount=500_000,
                maturity_ms=start_time_ms + hour,
            ),
            "lot_already_pledged",
        ),
    )
    step(
        "the warehouse confirms the pledges",
        "D",
        *[(r.report(d, "", "heartbeat"), ok) for d in (d0, d1, d2, d3)],
        (r.tx(W, "case.pledge", case="C1"), ok),
        (r.tx(W, "case.pledge", case="C2"), ok),
    )
    step(
        "the bank disburses", "D", (r.tx(B, "case.disburse", case="C1"), ok), (r.tx(B, "case.disburse", case="C2"), ok)
    )
    step(
        "devices monitor the goods during the term",
        "E",
        (r.report(d0, "L1", "reading"), ok),
        (r.report(d1, "L1", "reading"), ok),
        (r.report(d0, "", "heartbeat"), ok),
        (r.report(d2, "L2", "reading"), ok),
        (r.report(d3, "L3", "heartbeat"), ok),
        (r.tx(B, "case.default", case="C1"), "not_overdue"),
    )
    step(
        "extension requested; insurer and guarantor consent",
        "ext",
        (r.tx(R, "case.extend_request", case="C1", new_maturity_ms=start_time_ms + 2 * hour), ok),
        (r.tx(I, "case.extend_consent", case="C1"), ok),
        (r.tx(G, "case.extend_consent", case="C1"), ok),
    )
    step(
        "the bank approves the extension (devices keep reporting)",
        "ext",
        (r.report(d0, "L1", "heartbeat"), ok),
        (r.report(d1, "L1", "heartbeat"), ok),
        (r.tx(B, "case.extend_decide", case="C1", approve=1), ok),
    )
    step(
        "a second extension lacks the guarantor's consent and is refused",
        "ext",
        (r.tx(R, "case.extend_request", case="C1", new_maturity_ms=start_time_ms + 3 * hour), ok),
        (r.tx(I, "case.extend_consent", case="C1"), ok),
        (r.tx(B, "case.extend_decide", case="C1", approve=1), "consent_missing"),
        (r.tx(B, "case.extend_decide", case="C1", approve=0), ok),
    )
    leak = r.report(d1, "L1", "outbound", 10)
    step("goods leave L1 without a release order: alarm", "alarm", (leak, ok))
    step(
        "no extension while the lot is not intact",
        "alarm",
        (r.tx(R, "case.extend_request", case="C1", new_maturity_ms=start_time_ms + 3 * hour), ok),
        (r.tx(I, "case.extend_consent", case="C1"), ok),
        (r.tx(G, "case.extend_consent", case="C1"), ok),
        (r.tx(B, "case.extend_decide", case="C1", approve=1), "lot_not_intact"),
        (r.tx(B, "case.extend_decide", case="C1", approve=0), ok),
    )
    step(
        "the bank resolves the alarm",
        "alarm",
        (r.tx(B, "alarm.resolve", alarm=alarm_id_for_tx(leak), note="counted, returned to stock"), ok),
    )
    step(
        "partial repayment frees part of the lot",
        "F",
        (r.report(d2, "L2", "heartbeat"), ok),
        (r.report(d3, "L3", "heartbeat"), ok),
        (r.tx(B, "case.repay", case="C1", amount=400_000), ok),
        (r.tx(B, "case.release_order", case="C1", quantity=401), "release_exceeds_repaid"),
        (r.tx(B, "case.release_order", case="C1", quantity=400), ok),
    )
    step(
        "the ordered goods leave under the devices' watch",
        "F",
        (r.report(d0, "L1", "outbound", 400), ok),
        (r.tx(W, "lot.release", lot="L1", quantity=400), ok),
        (r.tx(W, "lot.release", lot="L1", quantity=5), "no_release_order"),
    )
    step(
        "full repayment (an overpayment is refused)",
        "F",
        (r.tx(B, "case.repay", case="C1", amount=700_000), "overpayment"),
        (r.tx(B, "case.repay", case="C1", amount=600_000), ok),
    )
    step(
        "the rest of the lot is released",
        "F",
        (r.tx(B, "case.release_order", case="C1", quantity=600), ok),
        (r.report(d0, "L1", "outbound", 590), ok),
        (r.tx(W, "lot.release", lot="L1", quantity=600), ok),
    )
    step(
        "the case closes and the warehouse zone is free again",
        "G",
        (r.report(d1, "L4", "inbound", 800), ok),
        (
            r.tx(
                W,
                "lot.receive",
                lot="L4",
                zone="zone-a",
                owner=R.id,
                commodity="copper cathode",
                unit="kg",
                quantity=800,
            ),
            "site_occupied",
        ),
        (r.tx(B, "case.close", case="C1"), ok),
        (
            r.tx(
                W,
                "lot.receive",
                lot="L4",
                zone="zone-a",
                owner=R.id,
                commodity="copper cathode",
                unit="kg",
                quantity=800,
            ),
            ok,
        ),
    )
    step(
        "C2 is past maturity: default",
        "default",
        (r.report(d3, "L3", "heartbeat"), ok),
        (r.tx(B, "case.default", case="C2"), ok),
    )
    step("the bank liquidates C2 and takes the goods", "default", (r.tx(B, "case.liquidate", case="C2"), ok))
    step(
        "plain supervision of L3, extended with the goods intact",
        "supervision",
        (r.report(d3, "L3", "heartbeat"), ok),
        (r.tx(B, "supervision.open", supervision="S1", party=R2.id, lot="L3", end_ms=start_time_ms + hour), ok),
        (r.tx(R2, "supervision.extend_request", supervision="S1", new_end_ms=start_time_ms + 2 * hour), ok),
        (r.tx(B, "supervision.extend_decide", supervision="S1", approve=1), ok),
    )
    step(
        "end notice; goods leave under watch; the site is free",
        "supervision",
        (r.tx(B, "supervision.end", supervision="S1"), ok),
        (r.report(d3, "L3", "outbound", 300), ok),
        (r.tx(W, "lot.release", lot="L3", quantity=300), ok),
    )
    return steps


def workload_device(chain_id: str, index: int, tag: str = "") -> KeyPair:
    """The monitoring device of case `index` in `financing_workload` (reproducible keys)."""
    return _derived_key(sha256(b"godown-workload/" + chain_id.encode() + tag.encode()), f"wl-device-{index}", "device")


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
