"""Financing cases and plain supervisions: every rule of DESIGN §5 with its code."""

from __future__ import annotations

from primitives.genesis import Policy
from tests.contracts.chain import World


def test_apply_rules_and_no_double_pledge_across_banks() -> None:
    w = World()
    w.devices()
    w.lot()
    base = {"case": "C1", "lot": "L1", "bank": w.B.id, "amount": 100, "maturity_ms": w.now + 10**6}
    assert w.run(
        w.tx(w.R, "case.apply", **{**base, "lot": "nope"}),
        w.tx(w.R, "case.apply", **{**base, "bank": w.I.id}),
        w.tx(w.R, "case.apply", **{**base, "bank": "nobody"}),
        w.tx(w.R, "case.apply", **{**base, "insurer": w.G.id}),
        w.tx(w.R, "case.apply", **{**base, "amount": 0}),
        w.tx(w.R2, "case.apply", **base),
        w.tx(w.B, "case.apply", **base),
        w.tx(w.R, "case.apply", **base),
        w.tx(w.R, "case.apply", **base),
        w.tx(w.R, "case.apply", **{**base, "case": "C2", "bank": w.B2.id}),
        w.tx(w.B2, "supervision.open", supervision="S1", party=w.R.id, lot="L1", end_ms=w.now + 10**6),
    ) == [
        "unknown_lot",
        "bad_body",
        "unknown_member",
        "bad_body",
        "bad_body",
        "not_a_party",
        "forbidden_role",
        "ok",
        "case_exists",
        "lot_already_pledged",
        "lot_already_pledged",
    ]
    # once withdrawn (closed before disbursement) the lot can back another case
    assert w.run(
        w.tx(w.W, "case.close", case="C1"), w.tx(w.R, "case.apply", **{**base, "case": "C2", "bank": w.B2.id})
    ) == ["ok", "ok"]


def test_pledge_and_disburse_rules() -> None:
    w = World()
    w.devices(idx=(0, 1), accept=False)
    w.ok(w.tx(w.B, "device.accept", device=w.d[0].id))
    w.lot()
    w.ok(w.apply())
    assert w.run(
        w.tx(w.B, "case.disburse", case="C1"),
        w.tx(w.B, "case.pledge", case="C1"),
        w.tx(w.W, "case.pledge", case="nope"),
        w.tx(w.W, "case.pledge", case="C1"),
        w.tx(w.W, "case.pledge", case="C1"),
        w.tx(w.B2, "case.disburse", case="C1"),
        w.tx(w.B, "case.disburse", case="C1"),
    ) == [
        "lot_not_pledged",
        "forbidden_role",
        "unknown_case",
        "ok",
        "case_wrong_state",
        "not_a_party",
        "rating_missing",
    ]
    far = w.now + 10**9
    w.ok(w.tx(w.B, "rating.issue", subject=w.R.id, grade="BB", valid_until_ms=far, report_hash=bytes(32)))
    assert w.one(w.tx(w.B, "case.disburse", case="C1")) == "rating_too_low"
    w.ok(w.tx(w.I, "rating.issue", subject=w.R.id, grade="BBB", valid_until_ms=far, report_hash=bytes(32)))
    assert w.one(w.tx(w.B, "case.disburse", case="C1")) == "rating_missing"  # the warehouse is not rated
    w.ok(w.tx(w.B, "rating.issue", subject=w.W.id, grade="AAA", valid_until_ms=w.now + 5000, report_hash=bytes(32)))
    assert w.one(w.tx(w.B, "case.disburse", case="C1")) == "devices_not_accepted"  # device 1 registered only
    w.ok(w.tx(w.B, "device.accept", device=w.d[1].id))
    assert w.one(w.tx(w.B, "case.disburse", case="C1"), advance_ms=10_000) == "rating_missing"  # expired
    w.ok(w.tx(w.B, "rating.issue", subject=w.W.id, grade="AAA", valid_until_ms=far, report_hash=bytes(32)))
    assert w.run(w.tx(w.B, "case.disburse", case="C1"), w.tx(w.B, "case.disburse", case="C1")) == [
        "ok",
        "case_wrong_state",
    ]


def test_disburse_needs_an_intact_lot() -> None:
    w = World()
    w.rate()
    w.devices()
    w.lot()
    w.ok(w.apply(), w.tx(w.W, "case.pledge", case="C1"))
    w.ok(w.report(w.d[0], "L1", "outbound", 1))  # no release order: alarm, lot spoiled
    assert w.one(w.tx(w.B, "case.disburse", case="C1")) == "lot_not_intact"


def test_repayment_frees_a_share_and_release_is_bounded() -> None:
    w = World()
    w.disbursed(amount=1000)
    assert w.run(
        w.tx(w.B, "case.release_order", case="C1", quantity=1),
        w.tx(w.B2, "case.repay", case="C1", amount=250),
        w.tx(w.B, "case.repay", case="C1", amount=0),
        w.tx(w.B, "case.repay", case="C1", amount=1001),
        w.tx(w.B, "case.repay", case="C1", amount=250),
        w.tx(w.B, "case.release_order", case="C1", quantity=251),
        w.tx(w.B, "case.release_order", case="C1", quantity=200),
        w.tx(w.B, "case.release_order", case="C1", quantity=51),
        w.tx(w.B, "case.release_order", case="C1", quantity=50),
    ) == [
        "release_exceeds_repaid",
        "not_a_party",
        "bad_body",
        "overpayment",
        "ok",
        "release_exceeds_repaid",
        "ok",
        "release_exceeds_repaid",
        "ok",
    ]
    assert w.one(w.tx(w.W, "lot.release", lot="L1", quantity=100)) == "no_outbound_report"
    w.ok(w.report(w.d[0], "L1", "outbound", 250))
    assert not [e for e in w.chain.outcomes[-1].events if e["kind"] == "alarm_raised"]
    assert w.run(
        w.tx(w.W, "lot.release", lot="L1", quantity=251),
        w.tx(w.W, "lot.release", lot="L1", quantity=250),
        w.tx(w.W, "lot.release", lot="L1", quantity=1),
    ) == ["no_outbound_report", "ok", "no_outbound_report"]
    # more goods going out than ordered: alarm, not a rejection (the goods did leave)
    w.ok(w.report(w.d[0], "L1", "outbound", 1))
    assert [e["alarm_kind"] for e in w.chain.outcomes[-1].events if e["kind"] == "alarm_raised"] == [
        "unauthorized_outbound"
    ]
    assert w.one(w.tx(w.W, "lot.release", lot="L1", quantity=1)) == "no_release_order"
    assert w.one(w.tx(w.B, "case.close", case="C1")) == "case_wrong_state"
    w.ok(w.tx(w.B, "case.repay", case="C1", amount=750))
    assert w.chain.case("C1")["state"] == "repaid"
    assert w.run(
        w.tx(w.B, "case.repay", case="C1", amount=1),
        w.tx(w.B, "case.release_order", case="C1", quantity=751),
        w.tx(w.B, "case.release_order", case="C1", quantity=750),
        w.tx(w.R, "case.close", case="C1"),
        w.tx(w.B2, "case.close", case="C1"),
        w.tx(w.W, "case.close", case="C1"),
    ) == ["case_wrong_state", "release_exceeds_repaid", "ok", "forbidden_role", "not_a_party", "ok"]
    assert w.chain.lot("L1")["case"] is None


def test_pro_rata_rounds_down() -> None:
    w = World()
    w.disbursed(amount=3)
    w.ok(w.tx(w.B, "case.repay", case="C1", amount=1))  # frees 1000 * 1 // 3 = 333
    assert w.run(
        w.tx(w.B, "case.release_order", case="C1", quantity=334),
        w.tx(w.B, "case.release_order", case="C1", quantity=333),
    ) == ["release_exceeds_repaid", "ok"]


def test_overdue_by_block_time_then_default_and_liquidation() -> None:
    w = World()
    w.disbursed(maturity_in=10_000)
    maturity = w.chain.case("C1")["maturity_ms"]
    assert w.run(w.tx(w.B, "case.default", case="C1"), w.tx(w.B, "case.liquidate", case="C1")) == [
        "not_overdue",
        "case_wrong_state",
    ]
    w.run(time_ms=maturity - 1)
    assert w.chain.case("C1")["state"] == "disbursed"
    w.run(time_ms=maturity)
    assert w.chain.case("C1")["state"] == "overdue"
    assert w.run(
        w.tx(w.R, "case.extend_request", case="C1", new_maturity_ms=maturity + 1000),
        w.tx(w.B2, "case.default", case="C1"),
        w.tx(w.B, "case.default", case="C1"),
        w.tx(w.B, "case.default", case="C1"),
        w.tx(w.B, "case.repay", case="C1", amount=1),
        w.tx(w.B, "case.liquidate", case="C1"),
    ) == ["case_wrong_state", "not_a_party", "ok", "case_wrong_state", "case_wrong_state", "ok"]
    lot = w.chain.lot("L1")
    assert lot["owner"] == w.B.id and lot["case"] is None


def test_overdue_case_can_still_be_repaid() -> None:
    w = World()
    w.disbursed(maturity_in=5_000)
    w.run(advance_ms=6_000)
    assert w.chain.case("C1")["state"] == "overdue"
    w.ok(w.tx(w.B, "case.repay", case="C1", amount=1000))
    assert w.chain.case("C1")["state"] == "repaid"


def test_extension_rules() -> None:
    w = World(policy=Policy(max_extension_ms=100_000))
    w.disbursed(maturity_in=50_000)
    end = w.chain.case("C1")["maturity_ms"]
    assert w.run(
        w.tx(w.B, "case.extend_decide", case="C1", approve=1),
        w.tx(w.I, "case.extend_consent", case="C1"),
        w.tx(w.R2, "case.extend_request", case="C1", new_maturity_ms=end + 1),
        w.tx(w.R, "case.extend_request", case="C1", new_maturity_ms=end),
        w.tx(w.R, "case.extend_request", case="C1", new_maturity_ms=end + 100_001),
        w.tx(w.R, "case.extend_request", case="C1", new_maturity_ms=end + 100_000),
        w.tx(w.R, "case.extend_request", case="C1", new_maturity_ms=end + 5),
        w.tx(w.B2, "case.extend_consent", case="C1"),
        w.tx(w.B, "case.extend_decide", case="C1", approve=1),
        w.tx(w.G, "case.extend_consent", case="C1"),
        w.tx(w.G, "case.extend_consent", case="C1"),
        w.tx(w.B, "case.extend_decide", case="C1", approve=1),
        w.tx(w.I, "case.extend_consent", case="C1"),
        w.tx(w.B2, "case.extend_decide", case="C1", approve=1),
        w.tx(w.B, "case.extend_decide", case="C1", approve=1),
    ) == [
        "case_wrong_state",
        "case_wrong_state",
        "not_a_party",
        "bad_body",
        "bad_body",
        "ok",
        "case_wrong_state",
        "forbidden_role",
        "consent_missing",
        "ok",
        "ok",
        "consent_missing",
        "ok",
        "not_a_party",
        "ok",
    ]
    case = w.chain.case("C1")
    assert case["maturity_ms"] == end + 100_000 and case["extensions"] == 1 and case["extension"] is None
    # the extended maturity is what the time hook uses
    w.run(time_ms=end + 1)
    assert w.chain.case("C1")["state"] == "disbursed"
    w.run(time_ms=end + 100_000)
    assert w.chain.case("C1")["state"] == "overdue"


def test_refused_extension_leaves_maturity() -> None:
    w = World()
    w.disbursed(maturity_in=50_000)
    end = w.chain.case("C1")["maturity_ms"]
    w.ok(w.tx(w.R, "case.extend_request", case="C1", new_maturity_ms=end + 10))
    w.ok(w.tx(w.B, "case.extend_decide", case="C1", approve=0))
    assert w.chain.case("C1")["maturity_ms"] == end and w.chain.case("C1")["extension"] is None


def test_case_without_guarantor_cannot_get_the_policy_consents() -> None:
    w = World()
    w.rate()
    w.devices()
    w.lot()
    w.ok(
        w.tx(w.R, "case.apply", case="C1", lot="L1", bank=w.B.id, insurer=w.I.id, amount=10, maturity_ms=w.now + 10**6)
    )
    w.ok(w.tx(w.W, "case.pledge", case="C1"), w.tx(w.B, "case.disburse", case="C1"))
    w.ok(
        w.tx(w.R, "case.extend_request", case="C1", new_maturity_ms=w.now + 10**6 + 5),
        w.tx(w.I, "case.extend_consent", case="C1"),
    )
    assert w.run(
        w.tx(w.G, "case.extend_consent", case="C1"), w.tx(w.B, "case.extend_decide", case="C1", approve=1)
    ) == ["not_a_party", "consent_missing"]
    # a policy naming no consents needs none
    w2 = World(policy=Policy(extension_consents=()))
    w2.disbursed()
    w2.ok(
        w2.tx(w2.R, "case.extend_request", case="C1", new_maturity_ms=w2.chain.case("C1")["maturity_ms"] + 1),
        w2.tx(w2.B, "case.extend_decide", case="C1", approve=1),
    )


def test_plain_supervision_shares_the_machinery() -> None:
    w = World()
    w.devices()
    w.lot(owner=w.R2)
    end = w.now + 100_000
    assert w.run(
        w.tx(w.R2, "supervision.open", supervision="S1", party=w.R2.id, lot="L1", end_ms=end),
        w.tx(w.B, "supervision.open", supervision="S1", party=w.R.id, lot="L1", end_ms=end),
        w.tx(w.B, "supervision.open", supervision="S1", party=w.R2.id, lot="L1", end_ms=1),
        w.tx(w.I, "supervision.open", supervision="S1", party=w.R2.id, lot="L1", end_ms=end),
        w.tx(w.B, "supervision.open", supervision="S2", party=w.R2.id, lot="L1", end_ms=end),
        w.tx(w.R2, "case.apply", case="C9", lot="L1", bank=w.B.id, amount=5, maturity_ms=end),
        w.tx(w.B, "case.pledge", case="S1"),
        w.tx(w.R2, "supervision.extend_request", supervision="nope", new_end_ms=end + 1),
        w.tx(w.R2, "supervision.extend_request", supervision="S1", new_end_ms=end + 1),
        w.tx(w.B, "supervision.extend_decide", supervision="S1", approve=1),
        w.tx(w.I, "supervision.extend_decide", supervision="S1", approve=1),
    ) == [
        "forbidden_role",
        "not_a_party",
        "bad_body",
        "ok",
        "lot_already_pledged",
        "lot_already_pledged",
        "forbidden_role",
        "unknown_supervision",
        "ok",
        "not_a_party",
        "ok",
    ]
    # reports on the lot must now be readable by the supervisor
    no_insurer = {k: v for k, v in w.p.watchers().items() if k != w.I.id}
    assert w.one(w.report(w.d[0], "L1", "reading", recipients=no_insurer)) == "missing_recipient"
    # goods that leave before the end notice raise an alarm; no extension then
    leak = w.report(w.d[0], "L1", "outbound", 1)
    w.ok(leak)
    w.ok(w.tx(w.R2, "supervision.extend_request", supervision="S1", new_end_ms=end + 2))
    assert w.one(w.tx(w.I, "supervision.extend_decide", supervision="S1", approve=1)) == "lot_not_intact"
    from contracts import alarm_id_for_tx

    assert w.one(w.tx(w.B, "alarm.resolve", alarm=alarm_id_for_tx(leak))) == "not_a_party"  # not the supervisor
    w.ok(w.tx(w.W, "alarm.resolve", alarm=alarm_id_for_tx(leak)))
    w.ok(w.tx(w.I, "supervision.extend_decide", supervision="S1", approve=1))
    assert w.run(
        w.tx(w.B, "supervision.end", supervision="S1"),
        w.tx(w.I, "supervision.end", supervision="S1"),
        w.tx(w.I, "supervision.end", supervision="S1"),
        w.tx(w.R2, "supervision.extend_request", supervision="S1", new_end_ms=end + 3),
    ) == ["not_a_party", "ok", "supervision_wrong_state", "supervision_wrong_state"]
    assert w.chain.case("S1")["state"] == "ending"
    w.ok(w.report(w.d[0], "L1", "outbound", 999))
    w.ok(w.tx(w.W, "lot.release", lot="L1", quantity=1000))
    assert w.chain.case("S1")["state"] == "ended"
    # the site is free for the next round
    w.ok(w.report(w.d[0], "L2", "inbound", 5))
    w.ok(w.tx(w.W, "lot.receive", lot="L2", zone="zone-a", owner=w.R.id, commodity="x", unit="kg", quantity=5))
