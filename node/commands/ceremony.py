"""`godown card` and `godown genesis new|add|verify`: forming a consortium from
signed member cards, with no private key leaving its owner's host."""

from __future__ import annotations

import click

from node.commands.common import echo_json, friendly


@click.command()
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False), help="the member's key file")
@click.option("--node-key", "node_key_file", default=None, type=click.Path(dir_okay=False), help="its validator's key")
@click.option("--advertise", default=None, metavar="/ip4/HOST/tcp/PORT", help="the validator's p2p address for peers")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@friendly
def card(key_file: str, node_key_file: str | None, advertise: str | None, out: str) -> None:
    """Write a member card (public keys, and the validator node if it runs one), signed."""
    from primitives.card import MemberCard
    from primitives.keys import KeyPair

    node_key = KeyPair.load(node_key_file) if node_key_file else None
    made = MemberCard.make(KeyPair.load(key_file), node_key, advertise)
    made.save(out)
    echo_json(made.to_json()["card"])


@click.group()
def genesis() -> None:
    """The genesis ceremony."""


@genesis.command("new")
@click.option("--chain-id", required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--min-grade", default=None, help="lowest rating that allows disbursement")
@click.option("--heartbeat-interval-ms", default=None, type=int, help="device silence that raises an alarm")
@click.option("--extension-consents", default=None, help="roles whose consent an extension needs, comma-separated")
@click.option("--gov-approval-pct", default=None, type=int, help="share of governing members that runs an action")
@click.option("--max-block-txs", default=None, type=int)
@click.option("--checkpoint-interval", default=None, type=int)
@click.option("--view-change-timeout-ms", default=None, type=int)
@friendly
def genesis_new(
    chain_id: str,
    out: str,
    min_grade: str | None,
    heartbeat_interval_ms: int | None,
    extension_consents: str | None,
    gov_approval_pct: int | None,
    max_block_txs: int | None,
    checkpoint_interval: int | None,
    view_change_timeout_ms: int | None,
) -> None:
    """Start a draft genesis: chain id and policy, no members yet."""
    from node.tools.ceremony import new_genesis
    from primitives.genesis import ConsensusParams, Policy

    policy_doc: dict[str, object] = {
        k: v
        for k, v in {
            "min_grade": min_grade,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "gov_approval_pct": gov_approval_pct,
            "extension_consents": extension_consents.split(",") if extension_consents is not None else None,
        }.items()
        if v is not None
    }
    params = {
        k: v
        for k, v in {
            "max_block_txs": max_block_txs,
            "checkpoint_interval": checkpoint_interval,
            "view_change_timeout_ms": view_change_timeout_ms,
        }.items()
        if v is not None
    }
    made = new_genesis(out, chain_id, Policy.from_json(policy_doc), ConsensusParams(**params))
    click.echo(f"wrote draft genesis {out} for chain {made.chain_id}; add cards with `godown genesis add`")


@genesis.command("add")
@click.option("--card", "card_file", required=True, type=click.Path(dir_okay=False))
@click.option("--genesis", "genesis_file", required=True, type=click.Path(dir_okay=False))
@friendly
def genesis_add(card_file: str, genesis_file: str) -> None:
    """Add a member card (checked: signatures, duplicates, role, validator fields)."""
    from node.tools.ceremony import add_card

    added = add_card(genesis_file, card_file)
    what = f"member and validator (node {added.node_id})" if added.runs_validator else "member"
    click.echo(f"added {added.name} ({added.role}) as {what}")


@genesis.command("verify")
@click.option("--genesis", "genesis_file", required=True, type=click.Path(dir_okay=False))
@friendly
def genesis_verify(genesis_file: str) -> None:
    """Check a genesis and print its validators, members, policy and hash."""
    from node.tools.ceremony import verify_genesis

    summary = verify_genesis(genesis_file)
    echo_json(summary)
    click.echo(f"genesis hash {summary['genesis_hash']}: compare it with every organisation before starting", err=True)
