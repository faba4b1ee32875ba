"""`godown gov propose|vote|show|list` and `godown rotate-key`: changing a running
consortium — members, roles, validators, policy, keys — by on-chain votes."""

from __future__ import annotations

import json
import time

import click

from node.commands.common import echo_json, friendly, rpc_option, token_option


@click.group()
def gov() -> None:
    """Governance: propose an action, vote on it, look at proposals."""


@gov.command("propose")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--proposal", required=True, help="an id for the proposal, unique on the chain")
@click.option("--action", required=True, help="member.add|member.remove|member.set_role|validator.add|...")
@click.option("--card", "card_file", default=None, type=click.Path(dir_okay=False, exists=True), help="for *.add")
@click.option("--args", "args_json", default=None, help="the action's other arguments as JSON")
@click.option("--expires-in", default=86_400, show_default=True, type=click.IntRange(1), help="seconds")
@rpc_option
@token_option
@friendly
def gov_propose(
    key_file: str,
    proposal: str,
    action: str,
    card_file: str | None,
    args_json: str | None,
    expires_in: int,
    rpc_url: str,
    token: str | None,
) -> None:
    """Propose a governance action (your approval counts)."""
    from node.client.governance import proposal_body
    from node.client.rpc import RpcClient
    from node.client.txs import require_ok, sign_and_submit
    from primitives.card import MemberCard
    from primitives.errors import Code, GodownError
    from primitives.keys import KeyPair

    try:
        args = json.loads(args_json) if args_json else {}
    except ValueError:
        raise GodownError(Code.BAD_BODY, "--args is not JSON") from None
    if not isinstance(args, dict):
        raise GodownError(Code.BAD_BODY, "--args must be a JSON object")
    if card_file:
        args["card"] = MemberCard.load(card_file)
    body = proposal_body(proposal, action, args, int(time.time() * 1000) + expires_in * 1000)
    echo_json(require_ok(sign_and_submit(RpcClient(rpc_url, token), KeyPair.load(key_file), "gov.propose", body)))


@gov.command("vote")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--proposal", required=True)
@click.option("--reject", is_flag=True, help="vote against (default: approve)")
@rpc_option
@token_option
@friendly
def gov_vote(key_file: str, proposal: str, reject: bool, rpc_url: str, token: str | None) -> None:
    """Vote on an open proposal; the vote that reaches the threshold runs the action."""
    from node.client.rpc import RpcClient
    from node.client.txs import require_ok, sign_and_submit
    from primitives.keys import KeyPair

    body = {"proposal": proposal, "approve": not reject}
    echo_json(require_ok(sign_and_submit(RpcClient(rpc_url, token), KeyPair.load(key_file), "gov.vote", body)))


@gov.command("show")
@click.argument("proposal")
@rpc_option
@token_option
@friendly
def gov_show(proposal: str, rpc_url: str, token: str | None) -> None:
    """A proposal: its state, votes, tally and result."""
    from urllib.parse import quote

    from node.client.rpc import RpcClient

    echo_json(RpcClient(rpc_url, token).get(f"/v1/proposals/{quote(proposal, safe='')}"))


@gov.command("list")
@click.option("--state", "only", default=None, type=click.Choice(["open", "executed", "failed", "rejected", "expired"]))
@rpc_option
@token_option
@friendly
def gov_list(only: str | None, rpc_url: str, token: str | None) -> None:
    """Proposals, optionally only those in one state."""
    from node.client.rpc import RpcClient

    echo_json(RpcClient(rpc_url, token).get("/v1/proposals" + (f"?state={only}" if only else "")))


@click.command("rotate-key")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, exists=True), help="current key")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="where to write the new key")
@rpc_option
@token_option
@friendly
def rotate_key(key_file: str, out: str, rpc_url: str, token: str | None) -> None:
    """Rotate a member's keys: the new key (same member id) signs from the next block."""
    import os

    from node.client.governance import rotate_member_key
    from node.client.rpc import RpcClient
    from node.client.txs import require_ok
    from primitives.errors import Code, GodownError
    from primitives.keys import KeyPair

    if os.path.exists(out):
        raise GodownError(Code.BAD_KEY_FILE, f"{out} exists; a key file is never overwritten")
    echo_json(require_ok(rotate_member_key(RpcClient(rpc_url, token), KeyPair.load(key_file), out)))
