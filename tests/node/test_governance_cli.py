"""Changing a running consortium from the command line against a real node: a new
organisation joins by a vote on its card, proposals are listed and shown, a member
rotates its key (the old key is refused from the next block), and refusals inside
the block are one-line errors with their code and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from node.client.rpc import RpcClient
from tests.node.conftest import NodeProcess, run_cli

if TYPE_CHECKING:  # imported for the annotation only: pytest would try to collect the class
    from node.tools.testnet import Testnet


def _ok(*args: str) -> dict:
    proc = run_cli(*args)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def _refused(code: str, *args: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"error [{code}]" in proc.stderr, proc.stderr


def test_a_new_member_joins_by_vote_and_a_member_rotates_its_key(
    testnet: "Testnet", node_process: NodeProcess, tmp_path: Path
) -> None:
    rpc = ["--rpc", testnet.rpc_urls[0]]
    keys = testnet.dir / "keys"
    # the newcomer makes its key and card on its own host
    newbank = tmp_path / "newbank"
    _ok("keygen", "--role", "bank", "--name", "newbank", "--out", str(newbank / "member.key.json"))
    _ok("card", "--key", str(newbank / "member.key.json"), "--out", str(newbank / "card.json"))
    card_id = json.loads((newbank / "card.json").read_text())["card"]["id"]

    _ok("gov", "propose", "--key", str(keys / "warehouse.json"), "--proposal", "join-newbank",
        "--action", "member.add", "--card", str(newbank / "card.json"), *rpc)  # fmt: skip
    _refused("already_voted", "gov", "vote", "--key", str(keys / "warehouse.json"), "--proposal", "join-newbank", *rpc)
    _refused("forbidden_role", "gov", "vote", "--key", str(keys / "borrower.json"), "--proposal", "join-newbank", *rpc)
    for voter in ("bank", "insurer", "guarantor"):
        _ok("gov", "vote", "--key", str(keys / f"{voter}.json"), "--proposal", "join-newbank", *rpc)
    shown = _ok("gov", "show", "join-newbank", *rpc)
    assert shown["state"] == "executed" and shown["action"] == "member.add"
    assert [
        p["proposal"] if "proposal" in p else p.get("id")
        for p in _ok("gov", "list", "--state", "executed", *rpc)["proposals"]
    ]
    members = {m["id"]: m for m in RpcClient(testnet.rpc_urls[0]).get("/v1/members")["members"]}
    assert members[card_id]["role"] == "bank"
    late = ("gov", "vote", "--key", str(keys / "bank2.json"), "--proposal", "join-newbank", *rpc)
    _refused("proposal_closed", *late)
    pirate = json.dumps({"member": card_id, "role": "pirate"})
    bad = ("--proposal", "bad", "--action", "member.set_role", "--args", pirate, *rpc)
    _refused("bad_action", "gov", "propose", "--key", str(keys / "bank.json"), *bad)

    # the newcomer acts under its own key; then rotates it
    borrower = json.loads((keys / "borrower.json").read_text())["id"]
    rating = ["tx", "--type", "rating.issue", "--set", f"subject={borrower}", "--set", "grade=A",
              "--set", "valid_until_ms=9999999999999", "--set", "report_hash=" + "00" * 32, *rpc]  # fmt: skip
    assert _ok(*rating[:1], "--key", str(newbank / "member.key.json"), *rating[1:])["result"] == "ok"
    rotated = newbank / "member.next.json"
    assert _ok("rotate-key", "--key", str(newbank / "member.key.json"), "--out", str(rotated), *rpc)["result"] == "ok"
    assert json.loads(rotated.read_text())["alias"] == card_id  # same member id, new keys
    old = run_cli(*rating[:1], "--key", str(newbank / "member.key.json"), *rating[1:])
    assert old.returncode == 1 and "bad_signature" in old.stderr + old.stdout, (old.stdout, old.stderr)
    assert _ok(*rating[:1], "--key", str(rotated), *rating[1:])["result"] == "ok"
    _refused("bad_key_file", "rotate-key", "--key", str(rotated), "--out", str(rotated), *rpc)

    validators = RpcClient(testnet.rpc_urls[0]).get("/v1/validators")
    assert len(validators["validators"]) == 1 and validators["pending"] is None
