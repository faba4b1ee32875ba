"""Devices (register/accept/suspend/retire/report), lots (receive/release), ratings."""

from __future__ import annotations

import contracts
from node.client.reports import device_report
from tests.contracts.chain import World


def test_rating_rules() -> None:
    w = World()
    far = w.now + 10**6
    assert w.run(
        w.tx(w.B, "rating.issue", subject="nobody", grade="A", valid_until_ms=far, report_hash=bytes(32)),
        w.tx(w.B, "rating.issue", subject=w.I.id, grade="A", valid_until_ms=far, report_hash=bytes(32)),
        w.tx(w.B, "rating.issue", subject=w.R.id, grade="Z", valid_until_ms=far, report_hash=bytes(32)),
        w.tx(w.B, "rating.issue", subject=w.R.id, grade="A", valid_until_ms=far, report_hash=bytes(3)),
        w.tx(w.B, "rating.issue", subject=w.R.id, grade="A", valid_until_ms=1, report_hash=bytes(32)),
        w.tx(w.W, "rating.issue", subject=w.R.id, grade="A", valid_until_ms=far, report_hash=bytes(32)),
        w.tx(w.G, "rating.issue", subject=w.R.id, grade="A", valid_until_ms=far, report_hash=bytes(32)),
    ) == ["unknown_member", "bad_body", "bad_body", "bad_body", "bad_body", "forbidden_role", "ok"]
    assert contracts.view_rating(w.chain.state, w.R.id)["issuer"] == w.G.id


def test_device_lifecycle_and_codes() -> None:
    w = World()
    d = w.d[0]
    reg = {"device": d.id, "sign_pub": d.sign_pub, "zone": "zone-a", "kind": "scale"}
    assert w.run(
        w.tx(w.B, "device.register", **reg),
        w.tx(w.W, "device.register", **{**reg, "kind": "toaster"}),
        w.tx(w.W, "device.register", **{**reg, "sign_pub": bytes(5)}),
        w.tx(w.W, "device.register", **{**reg, "device": w.B.id}),
        w.tx(w.W, "device.register", **reg),
        w.tx(w.W, "device.register", **reg),
    ) == ["forbidden_role", "bad_body", "bad_body", "member_exists", "ok", "device_exists"]
    assert w.one(w.report(d, "", "heartbeat")) == "device_not_accepted"
    assert w.run(
        w.tx(w.W, "device.accept", device=d.id),
        w.tx(w.B, "device.accept", device="ghost"),
        w.tx(w.B, "device.suspend", device=d.id),
        w.tx(w.B, "device.accept", device=d.id),
        w.tx(w.B, "device.accept", device=d.id),
    ) == ["forbidden_role", "unknown_device", "device_wrong_state", "ok", "device_wrong_state"]
    assert w.one(w.report(d, "", "heartbeat")) == "ok"
    assert w.one(w.tx(w.W, "device.suspend", device=d.id)) == "ok"
    assert w.one(w.report(d, "", "heartbeat")) == "device_not_accepted"
    assert w.run(
        w.tx(w.B, "device.accept", device=d.id),
        w.tx(w.W, "device.retire", device=d.id),
        w.tx(w.W, "device.retire", device=d.id),
    ) == ["ok", "ok", "device_wrong_state"]
    assert w.one(w.report(d, "", "heartbeat")) == "device_not_accepted"
    assert contracts.view_device(w.chain.state, d.id)["state"] == "retired"


def test_another_warehouse_cannot_suspend_a_device() -> None:
    from node.tools.participants import Participants, Round
    from primitives.keys import KeyPair
    from tests.contracts.chain import Chain

    p = Participants.generate(seed=b"two-w")
    w2 = KeyPair(name="w2", role="warehouse", sign_seed=bytes(32), enc_secret=bytes(range(32)))
    g = p.genesis("c", 1000)
    from primitives.genesis import Genesis, Member

    g = Genesis(
        g.chain_id,
        g.genesis_time_ms,
        g.members + (Member(w2.id, "w2", "warehouse", w2.sign_pub, w2.enc_pub),),
        g.validators,
        g.policy,
    )
    chain = Chain(g, contracts.DictState(contracts.genesis_state(g)), 0, 1000)
    r = Round(p, "c")
    d = p.devices[0]
    assert chain.run(
        [
            r.tx(p.warehouse, "device.register", device=d.id, sign_pub=d.sign_pub, zone="z", kind="door"),
            r.tx(p.bank, "device.accept", device=d.id),
            r.tx(w2, "device.suspend", device=d.id),
        ]
    ) == ["ok", "ok", "device_wrong_warehouse"]


def test_report_sequence_lot_warehouse_and_recipients() -> None:
    w = World()
    w.disbursed()
    d = w.d[0]
    good = w.report(d, "L1", "reading")
    seq = good.tx.body["seq"]
    replayed_seq = device_report(d, "test-chain", w.r.nonces.take(d), seq, "L1", "reading", {}, w.p.watchers())
    assert w.run(good, replayed_seq) == ["ok", "bad_sequence"]
    assert w.one(w.report(d, "nowhere", "reading")) == "unknown_lot"
    assert w.one(w.report(d, "L1", "smoke")) == "bad_body"
    assert w.one(w.report(d, "L1", "outbound", 0)) == "bad_body"
    assert w.one(w.report(d, "L1", "inbound", 5)) == "lot_exists"
    no_guarantor = {k: v for k, v in w.p.watchers().items() if k != w.G.id}
    assert w.one(w.report(d, "L1", "reading", recipients=no_guarantor)) == "missing_recipient"
    bad_env = w.report(d, "L1", "reading")
    body = dict(bad_env.tx.body)
    body["envelope"] = {"nonce": b"short", "ciphertext": b"", "recipients": []}
    from node.client.txs import sign_tx

    forged = sign_tx(d, "test-chain", bad_env.tx.nonce, "device.report", body)
    assert w.one(forged) == "bad_body"
    # sequence numbers may skip but never go back
    skip = device_report(d, "test-chain", w.r.nonces.take(d), seq + 100, "L1", "reading", {}, w.p.watchers())
    assert w.one(skip) == "ok"


def test_device_of_another_warehouse_cannot_report_on_the_lot() -> None:
    from primitives.genesis import Genesis, Member
    from primitives.keys import KeyPair
    from tests.contracts.chain import Chain

    w = World()
    w.disbursed()
    # a second warehouse member added to the same state
    w2 = KeyPair(name="w2", role="warehouse", sign_seed=bytes(32), enc_secret=bytes(range(32)))
    from contracts.members import member_record
    from primitives import codec

    w.chain.state.apply(
        {
            contracts.state_key_for("member", w2.id): codec.encode(
                member_record(w2.id, "w2", "warehouse", w2.sign_pub, w2.enc_pub)
            )
        }
    )
    d = w.d[3]
    from node.client.txs import sign_tx

    w.ok(
        sign_tx(
            w2,
            "test-chain",
            0,
            "device.register",
            {"device": d.id, "sign_pub": d.sign_pub, "zone": "z", "kind": "door"},
        )
    )
    w.ok(w.tx(w.B, "device.accept", device=d.id))
    assert (
        w.one(w.report(d, "L1", "reading", recipients={**w.p.watchers(), w2.id: w2.enc_pub}))
        == "device_wrong_warehouse"
    )
    assert isinstance(Chain, type) and Genesis and Member


def test_lot_receive_rules() -> None:
    w = World()
    w.devices("zone-a", (0,))
    w.devices("zone-b", (1,))
    recv = {"lot": "L1", "zone": "zone-a", "owner": w.R.id, "commodity": "wheat", "unit": "kg", "quantity": 100}
    assert w.one(w.tx(w.W, "lot.receive", **recv)) == "no_inbound_report"
    w.ok(w.report(w.d[0], "L1", "inbound", 100))
    assert w.run(
        w.tx(w.W, "lot.receive", **{**recv, "quantity": 101}),
        w.tx(w.W, "lot.receive", **{**recv, "zone": "zone-b"}),
        w.tx(w.W, "lot.receive", **{**recv, "owner": "nobody"}),
        w.tx(w.B, "lot.receive", **recv),
        w.tx(w.W, "lot.receive", **recv),
        w.tx(w.W, "lot.receive", **recv),
    ) == ["no_inbound_report", "no_inbound_report", "unknown_member", "forbidden_role", "ok", "lot_exists"]
    w.ok(w.report(w.d[0], "L2", "inbound", 50))
    assert w.one(w.tx(w.W, "lot.receive", **{**recv, "lot": "L2", "quantity": 50})) == "site_occupied"
    lot = w.chain.lot("L1")
    assert lot["quantity"] == 100 and lot["owner"] == w.R.id and lot["case"] is None


def test_free_lot_release_needs_outbound_reports_and_frees_the_site() -> None:
    w = World()
    w.devices()
    w.lot(qty=100)
    assert w.one(w.tx(w.W, "lot.release", lot="L1", quantity=10)) == "no_outbound_report"
    w.ok(w.report(w.d[0], "L1", "outbound", 100))
    assert w.run(
        w.tx(w.W, "lot.release", lot="L1", quantity=0),
        w.tx(w.W, "lot.release", lot="L1", quantity=101),
        w.tx(w.B, "lot.release", lot="L1", quantity=10),
        w.tx(w.W, "lot.release", lot="nope", quantity=10),
        w.tx(w.W, "lot.release", lot="L1", quantity=60),
        w.tx(w.W, "lot.release", lot="L1", quantity=40),
    ) == ["bad_body", "bad_body", "forbidden_role", "unknown_lot", "ok", "ok"]
    w.ok(w.report(w.d[0], "L2", "inbound", 10))
    w.ok(w.tx(w.W, "lot.receive", lot="L2", zone="zone-a", owner=w.R.id, commodity="x", unit="kg", quantity=10))


def test_heartbeat_alarm_by_block_time_and_resolution() -> None:
    from primitives.genesis import Policy

    w = World(policy=Policy(heartbeat_interval_ms=10_000))
    w.disbursed()
    d = w.d[0]
    w.ok(w.report(d, "L1", "reading"))
    t = w.now
    assert w.run(time_ms=t + 9_000) == []
    assert not [e for e in w.chain.outcomes[-1].events if e["kind"] == "alarm_raised"]
    w.ok(w.report(d, "", "heartbeat"), time_ms=t + 9_500)  # keeps it alive
    w.run(time_ms=t + 15_000)
    assert not [e for e in w.chain.outcomes[-1].events if e["kind"] == "alarm_raised"]
    w.run(time_ms=t + 19_600)
    raised = [e for e in w.chain.outcomes[-1].events if e["kind"] == "alarm_raised"]
    assert len(raised) == 1 and raised[0]["device"] == d.id and raised[0]["lot"] == "L1"
    alarm_id = raised[0]["alarm"]
    assert contracts.view_alarm(w.chain.state, alarm_id)["state"] == "open"
    assert contracts.view_device(w.chain.state, d.id)["alarm"] == alarm_id
    # no second alarm while silent; an open alarm blocks extensions
    w.run(time_ms=t + 60_000)
    assert not [e for e in w.chain.outcomes[-1].events if e["kind"] == "alarm_raised"]
    w.ok(
        w.tx(w.R, "case.extend_request", case="C1", new_maturity_ms=w.chain.case("C1")["maturity_ms"] + 1000),
        w.tx(w.I, "case.extend_consent", case="C1"),
        w.tx(w.G, "case.extend_consent", case="C1"),
    )
    assert w.one(w.tx(w.B, "case.extend_decide", case="C1", approve=1)) == "open_alarm"
    assert w.run(
        w.tx(w.R, "alarm.resolve", alarm=alarm_id),
        w.tx(w.I, "alarm.resolve", alarm=alarm_id),
        w.tx(w.B, "alarm.resolve", alarm="nope"),
        w.tx(w.W, "alarm.resolve", alarm=alarm_id),
        w.tx(w.B, "alarm.resolve", alarm=alarm_id),
    ) == ["forbidden_role", "forbidden_role", "unknown_alarm", "ok", "alarm_resolved"]
    assert w.one(w.tx(w.B, "case.extend_decide", case="C1", approve=1)) == "ok"
    # reporting again re-arms the heartbeat
    w.ok(w.report(d, "L1", "reading"))
    w.run(advance_ms=10_001)
    assert [e for e in w.chain.outcomes[-1].events if e["kind"] == "alarm_raised"]


def test_suspended_device_raises_no_heartbeat_alarm() -> None:
    from primitives.genesis import Policy

    w = World(policy=Policy(heartbeat_interval_ms=5_000))
    w.devices()
    w.ok(w.tx(w.W, "device.suspend", device=w.d[0].id))
    w.run(advance_ms=50_000)
    assert not [e for o in w.chain.outcomes for e in o.events if e["kind"] == "alarm_raised"]


def test_tamper_report_raises_alarm_and_spoils_the_lot() -> None:
    w = World()
    w.disbursed()
    tamper = w.report(w.d[0], "L1", "tamper")
    w.ok(tamper)
    alarm_id = contracts.alarm_id_for_tx(tamper)
    assert contracts.view_alarm(w.chain.state, alarm_id)["kind"] == "tamper"
    assert w.chain.lot("L1")["intact"] == 0 and w.chain.lot("L1")["alarms"] == [alarm_id]
    w.ok(w.tx(w.B, "alarm.resolve", alarm=alarm_id, note="seal replaced"))
    assert w.chain.lot("L1")["intact"] == 1 and w.chain.lot("L1")["alarms"] == []
