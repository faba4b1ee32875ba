"""`godown keygen`: a member's or a node's key file, made on its owner's host."""

from __future__ import annotations

import click

from node.commands.common import echo_json, friendly


@click.command()
@click.option(
    "--role",
    required=True,
    type=click.Choice(["warehouse", "bank", "insurer", "guarantor", "borrower", "auditor", "device", "node"]),
    help="a member's role, device, or node (a node's own key: libp2p identity and consensus votes)",
)
@click.option("--name", required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--alias", default=None, help="a readable id instead of the key-derived one")
@friendly
def keygen(role: str, name: str, out: str, alias: str | None) -> None:
    """Create signing (Ed25519) and encryption (X25519) keys in a 0600 key file.

    A member key signs its organisation's transactions; a node key (--role node)
    is a node's identity. They are different keys; neither leaves its host."""
    import os

    from primitives.errors import Code, GodownError
    from primitives.keys import KeyPair

    if os.path.exists(out):
        raise GodownError(Code.BAD_KEY_FILE, f"{out} exists; a key file is never overwritten")
    key = KeyPair.generate(name, role, alias)
    key.save(out)
    echo_json(key.public_record())
