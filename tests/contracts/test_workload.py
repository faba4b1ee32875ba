"""node.load.workload: sealed device reports open only for their recipients and only with
their own clear-text fields; the benchmark workload executes cleanly."""

from __future__ import annotations

import pytest

from node.client.reports import device_report, open_report
from node.load.workload import financing_workload, workload_device
from node.tools.participants import Participants
from primitives.errors import GodownError
from primitives.tx import SignedTx
from tests.contracts.chain import Chain


def test_report_opens_for_recipients_only() -> None:
    p = Participants.generate(seed=b"wl")
    d = p.devices[0]
    stx = device_report(d, "c", 0, 7, "L1", "reading", {"temp": 2150}, p.watchers(), pad_to=240)
    assert len(stx.tx.body["envelope"]["ciphertext"]) == 256
    opened = open_report(SignedTx.decode(stx.encode()), p.bank.id, p.bank.enc_secret)
    assert opened["data"] == {"temp": 2150} and opened["seq"] == 7 and opened["device"] == d.id
    with pytest.raises(GodownError) as info:
        open_report(stx, p.borrower.id, p.borrower.enc_secret)
    assert info.value.code.value == "not_recipient"
    with pytest.raises(GodownError) as info:
        open_report(stx, p.bank.id, p.insurer.enc_secret)
    assert info.value.code.value == "not_recipient"


def test_payload_cannot_move_to_another_report() -> None:
    p = Participants.generate(seed=b"wl")
    d = p.devices[0]
    stx = device_report(d, "c", 0, 7, "L1", "reading", {"temp": 1}, p.watchers())
    moved = device_report(d, "c", 1, 8, "L1", "reading", {}, p.watchers())
    body = {**moved.tx.body, "envelope": stx.tx.body["envelope"]}
    from node.client.txs import sign_tx

    forged = sign_tx(d, "c", 1, "device.report", body)
    with pytest.raises(GodownError) as info:
        open_report(forged, p.bank.id, p.bank.enc_secret)
    assert info.value.code.value == "tampered"


def test_financing_workload_executes_cleanly_with_80_percent_reports() -> None:
    p = Participants.generate(seed=b"wl")
    chain = Chain.new(p, chain_id="wl")
    phases = financing_workload(p, "wl", cases=3, reports_per_case=38)
    txs = [t for ph in phases for t in ph]
    share = sum(t.tx.type == "device.report" for t in txs) / len(txs)
    assert 0.75 <= share <= 0.85
    for phase in phases:
        assert set(chain.run(phase)) == {"ok"}
    assert chain.case("wl-case-2")["state"] == "closed"
    assert workload_device("wl", 2).id == phases[1][2].tx.body["device"]


def test_generated_participants_make_a_valid_genesis() -> None:
    p = Participants.generate()
    g = p.genesis("x", 1)
    assert len(g.validators) == 4 and {m.role for m in g.members} >= {
        "warehouse",
        "bank",
        "insurer",
        "guarantor",
        "borrower",
        "auditor",
    }
    assert len({k.id for k in p.devices}) == 4
