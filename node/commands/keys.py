"""`godown keygen`: a member's or a node's key file, made on its owner's host."""

from __future__ import annotations

import click

from node.commands.common import echo_json, friendly


@click.command()
@click.option(
    "--role",
    required=True,
    type=click.Choice(["warehouse", "bank", "insurer", "guarantor", "borrower", "auditor", "device"]),
)
@click.option("--name", required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--alias", default=None, help="a readable id instead of the key-derived one")
@friendly
def keygen(role: str, name: str, out: str, alias: str | None) -> None:
    """Create signing (Ed25519) and encryption (X25519) keys in a 0600 key file."""
    from primitives.keys import KeyPair

    key = KeyPair.generate(name, role, alias)
    key.save(out)
    echo_json(key.public_record())
