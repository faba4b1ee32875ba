"""Manifest 8: the consortium changes while it runs, each node on its own host (a
network namespace; loopback where there are none). Formed by the ceremony with four
validators; under financing load a fifth organisation is voted in with its validator
(4→5): its node joins by state sync from a block its operator trusts, follows by
blocks and votes once the new set governs; then one validator is voted out (5→4)
and its node is cut off; a member rotates its key and a warehouse its device's.
At the end every node in the set has the same headers at every height and every
acknowledged transaction."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from contracts import state_key_for
from node.client.governance import proposal_body, rotation_body
from node.client.rpc import RpcClient
from node.client.txs import require_ok, sign_and_submit
from node.client.verify import LightClient
from node.load.workload import workload_device
from node.tools.launcher import Consortium
from node.tools.participants import Participants
from primitives.card import MemberCard
from primitives.errors import Code, GodownError
from primitives.genesis import Genesis
from primitives.keys import KeyPair
from tests.e2e.formation import form as form_consortium
from tests.e2e.formation import init_host, make_card, node_entry, places
from tests.e2e.manifests import BackgroundLoad, Manifest, Net, emit, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

SNAPSHOT_EVERY = 64  # a served snapshot stays available for 2 x 64 blocks
FAR = 2**52


def _gov(
    net: Net, p: Participants, proposal: str, action: str, args: dict[str, Any], more: tuple[KeyPair, ...] = ()
) -> dict[str, Any]:
    """Propose as the warehouse, approve as bank, insurer, guarantor and `more`; the proposal's view."""
    c = net.client(net.names[0])
    book = net.load.nonces  # the load signs for the same members: one nonce book for both
    body = proposal_body(proposal, action, args, int(time.time() * 1000) + 600_000)
    require_ok(sign_and_submit(c, p.warehouse, "gov.propose", body, nonce=book.take(p.warehouse)))
    for voter in (p.bank, p.insurer, p.guarantor, *more):
        vote = {"proposal": proposal, "approve": True}
        require_ok(sign_and_submit(c, voter, "gov.vote", vote, nonce=book.take(voter)))
    view = c.get(f"/v1/proposals/{proposal}")
    assert view["state"] == "executed", view
    return view


def _signers(client: RpcClient, height: int) -> set[str]:
    commit = client.block(height)["commit"]
    return {validator for validator, _ in commit["votes"]}


def _scheduled(client: RpcClient) -> int:
    pending = client.get("/v1/validators")["pending"]
    assert pending is not None
    return int(pending["effective_height"])


def test_four_to_five_to_four_with_state_sync_and_key_rotations(tmp_path: Path) -> None:
    p = Participants.generate(devices=4)
    with contextlib.ExitStack() as stack:
        where, wraps, hosts = places(stack, 5)
        testnet = form_consortium(tmp_path, "e2e-membership", p, where[:4], 1000, snapshot_every=SNAPSHOT_EVERY)
        names = [n["name"] for n in testnet.nodes]
        cons = Consortium(testnet, wrap=dict(zip(names, wraps)))
        net = Net(tmp_path, Manifest("membership"), formed=(testnet, cons, p))
        stack.callback(net.stop_all)
        net.start()
        acks = net.run_round(via=net.names, cases=2, reports_per_case=3)

        with BackgroundLoad(net, via=net.names[:3], cases=2, reports_per_case=3) as load:
            load.wait_acks(30, timeout=60)
            rate_before = _rate(load, 5.0)
            # a fifth organisation: keys and card on its own host, voted in with its validator
            newcomer = KeyPair.generate("bank5", "bank")
            card = make_card(tmp_path, "bank5", newcomer, where[4])
            _gov(net, p, "join-bank5", "member.add", {"card": MemberCard.load(card)})
            approved_at = time.monotonic()
            c0 = net.client(net.names[0])
            effective = _scheduled(c0)
            new_node = KeyPair.load(tmp_path / "bank5" / "node.key.json")
            # its operator trusts a block a member's node shows, and joins by state sync
            assert wait_until(lambda: c0.status()["snapshot"] is not None, timeout=60), c0.status()
            offer = c0.status()["snapshot"]
            (tmp_path / "bank5" / "genesis.json").write_bytes((tmp_path / "warehouse" / "genesis.json").read_bytes())
            trust = f"{offer['trust_height']}:{offer['trust_hash']}"
            cfg = init_host(tmp_path, "bank5", tmp_path / "bank5" / "genesis.json", where[4], "--state-sync", trust)
            net.add_node(node_entry(tmp_path, "bank5", newcomer, where[4], cfg), wraps[4])
            started = time.monotonic()
            net.start_node("bank5", timeout=120)
            synced_s = time.monotonic() - started
            log = net.log("bank5")
            assert "state installed" in log, log[-2000:]
            rate_during = _rate(load, 5.0)
            # the new set governs above `effective`: the new node signs commits there
            c5 = net.client("bank5")
            c5.wait_height(effective + 1, timeout=120)
            in_effect_s = time.monotonic() - approved_at
            # caught up (by fetched blocks), it votes: its own certificates then carry its signature
            assert wait_until(lambda: c5.status()["height"] >= c0.status()["height"] - 2, timeout=60)
            voting_from = max(effective, int(c5.status()["height"])) + 1
            c5.wait_height(voting_from + 20, timeout=120)
            votes_by_new = [h for h in range(voting_from, voting_from + 20) if new_node.id in _signers(c5, h)]
            assert votes_by_new, "the new validator signs no commit once its set governs"
            assert all(new_node.id not in _signers(c0, h) for h in range(max(1, effective - 2), effective + 1))
            assert len(c0.get("/v1/validators")["validators"]) == 5
            rate_after = _rate(load, 5.0)

            # 5→4: the guarantor's node is voted out
            gone = net.node("guarantor")["node_id"]
            # six members now hold a governing role: 67% is five approvals, the newcomer's among them
            _gov(net, p, "drop-guarantor", "validator.remove", {"node_id": gone}, more=(newcomer,))
            removed_after = _scheduled(c0)
            c0.wait_height(removed_after + 3, timeout=120)
            assert len(c0.get("/v1/validators")["validators"]) == 4
            assert all(gone not in _signers(c0, h) for h in range(removed_after + 1, removed_after + 4))

            # key rotations: a member's (new key from the next block), a device's (re-accepted)
            rotating = p.bank2
            assert rotating is not None
            new_key = KeyPair.generate(rotating.name, rotating.role, alias=rotating.id)
            rotation = rotation_body(testnet.chain_id, rotating.id, new_key)
            require_ok(sign_and_submit(c0, rotating, "member.rotate_key", rotation))
            device = workload_device(testnet.chain_id, 0, "r1")
            fresh = KeyPair.generate("device-rotated", "device")
            rekey = {"device": device.id, "sign_pub": fresh.sign_pub}
            book = net.load.nonces
            require_ok(sign_and_submit(c0, p.warehouse, "device.rotate_key", rekey, nonce=book.take(p.warehouse)))
            require_ok(sign_and_submit(c0, p.bank, "device.accept", {"device": device.id}, nonce=book.take(p.bank)))
            with pytest.raises(GodownError) as refused:  # the old key, from the next block on
                sign_and_submit(c0, rotating, "rating.issue", _rating(p))
            assert refused.value.code is Code.BAD_SIGNATURE
            assert require_ok(sign_and_submit(c0, new_key, "rating.issue", _rating(p)))["result"] == "ok"
            load.wait_acks(len(load.acks) + 20, timeout=60)
        assert load.error is None, load.error
        acks += load.acks
        members = [n for n in net.names if n != "guarantor"]
        head = max(a.height for a in acks)
        net.wait_heights(head, members, timeout=60)
        net.assert_agreement([n for n in members if n != "bank5"], head)
        _same_headers_from(net, "bank5", int(offer["trust_height"]), head)
        _light_client_follows_both_changes(net, tmp_path, p, effective, removed_after, gone, int(offer["trust_height"]))
        emit(
            "membership",
            namespaces=hosts is not None,
            effective_height=effective,
            state_sync_s=round(synced_s, 1),
            approval_to_new_set_voting_s=round(in_effect_s, 1),
            tx_per_s_before=rate_before,
            tx_per_s_during=rate_during,
            tx_per_s_after=rate_after,
            acked=len(acks),
            head=head,
        )


def _rating(p: Participants) -> dict[str, Any]:
    return {"subject": p.borrower.id, "grade": "A", "valid_until_ms": FAR, "report_hash": bytes(32)}


def _rate(load: BackgroundLoad, seconds: float) -> float:
    """Acknowledged transactions per second over the next `seconds`."""
    before, t0 = len(load.acks), time.monotonic()
    time.sleep(seconds)
    return round((len(load.acks) - before) / (time.monotonic() - t0), 1)


def _light_client_follows_both_changes(
    net: Net, tmp_path: Path, p: Participants, added_after: int, removed_after: int, gone: str, trust_height: int
) -> None:
    """From the genesis alone, a light client learns 4→5→4 and checks answers certified by
    each set; a node that state-synced past a change cannot prove it, and is refused."""
    genesis = Genesis.load(tmp_path / "warehouse" / "genesis.json")
    light = LightClient(net.client(net.names[0]), genesis)
    assert light.follow_changes() == 2
    _, five = light.block(added_after + 1)
    assert (five.validators, five.quorum) == (5, 4) and five.signers >= 4
    _, four = light.block(removed_after + 1)
    assert four.validators == 4 and gone not in light.validators_at(removed_after + 1)
    answer, cert = light.state(state_key_for("member", p.bank.id))
    assert answer["exists"] and cert.validators == 4
    approved = net.client(net.names[0]).get("/v1/validators/changes")["changes"][0]["approved_height"]
    late = LightClient(net.client("bank5"), genesis)
    if trust_height >= approved:  # its snapshot already held the first change: it never executed the approval
        with pytest.raises(GodownError) as refused:
            late.follow_changes()
        assert refused.value.code is Code.UNVERIFIED
    else:
        assert late.follow_changes() == 2


def _same_headers_from(net: Net, name: str, low: int, high: int) -> None:
    """A state-synced node holds blocks from its trust height on, identical to the others'."""
    mine, ref = net.client(name), net.client(net.names[0])
    for h in range(low, high + 1):
        assert mine.block(h)["hash"] == ref.block(h)["hash"], h
    assert wait_until(lambda: mine.status()["height"] >= high, timeout=30)
