"""The demo's financing round: the seed's method A–G (plus extensions, a refused
double pledge, an unauthorised outbound alarm, default and liquidation, and a
plain supervision) as ordered steps with the result code each transaction must
get. The demo runs them; the tests run them against one node and a consortium."""

from __future__ import annotations

from dataclasses import dataclass

from contracts import alarm_id_for_tx
from node.tools.participants import Participants, Round
from primitives.hashing import sha256
from primitives.tx import SignedTx


@dataclass(frozen=True)
class Step:
    """Transactions submitted together (one after another) once the previous step has
    committed, with the result code each must get."""

    label: str
    section: str
    txs: list[SignedTx]
    expected: list[str]


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
