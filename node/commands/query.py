"""`godown status|query|tx`: the bank's and operator's tools over a node's RPC."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from node.commands.common import echo_json, friendly, rpc_option, token_option
from primitives.errors import Code, GodownError

if TYPE_CHECKING:
    from node.client.rpc import RpcClient


@click.command()
@rpc_option
@token_option
@friendly
def status(rpc_url: str, token: str | None) -> None:
    """A node's chain id, height, head, view, validators and peers."""
    from node.client.rpc import RpcClient

    echo_json(RpcClient(rpc_url, token).status())


@click.command()
@click.argument(
    "what", type=click.Choice(["case", "lot", "device", "alarm", "block", "tx", "state", "members", "account"])
)
@click.argument("ident", required=False, default="latest")
@click.option(
    "--verify", is_flag=True, help="check a block, tx or state answer against a header certified by 2f+1 validators"
)
@click.option(
    "--genesis",
    "genesis_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="the genesis you trust, whose validators --verify checks against",
)
@rpc_option
@token_option
@friendly
def query(what: str, ident: str, rpc_url: str, token: str | None, verify: bool, genesis_file: str | None) -> None:
    """Look up a case, lot, device, alarm, block (height|latest), tx (id), state key, members or account."""
    from urllib.parse import quote

    from node.client.rpc import RpcClient

    if verify:
        if genesis_file is None:
            raise GodownError(Code.BAD_CONFIG, "--verify needs --genesis FILE: the genesis you trust, not the node's")
        _verified(what, ident, RpcClient(rpc_url, token), genesis_file)
        return

    path = {
        "case": "/v1/cases/{}",
        "lot": "/v1/lots/{}",
        "device": "/v1/devices/{}",
        "alarm": "/v1/alarms/{}",
        "block": "/v1/blocks/{}",
        "tx": "/v1/txs/{}",
        "state": "/v1/state/{}",
        "members": "/v1/members",
        "account": "/v1/accounts/{}",
    }[what]
    doc = RpcClient(rpc_url, token).get(path.format(quote(ident, safe="")))
    if what == "block" and isinstance(doc, dict):
        doc.pop("raw", None)
        doc.pop("commit_raw", None)
        for t in doc.get("txs", []):
            t.pop("raw", None)
    echo_json(doc)


def _verified(what: str, ident: str, client: RpcClient, genesis_file: str) -> None:
    """Print the answer and how it was certified; `unverified` (exit 1) if it cannot be."""
    from node.client.verify import LightClient
    from primitives.genesis import Genesis

    light = LightClient(client, Genesis.load(genesis_file))
    if what == "state":
        key = bytes.fromhex(ident[2:]) if ident.startswith("0x") else ident.encode()
        doc, cert = light.state(key)
    elif what == "tx":
        doc, cert = light.tx(ident)
    elif what == "block":
        height = int(client.status()["height"]) if ident == "latest" else int(ident)
        block, cert = light.block(height)
        doc = {"height": block.height, "hash": block.hash().hex(), "txs": len(block.txs)}
    else:
        raise GodownError(Code.MALFORMED, "--verify checks block, tx and state answers")
    echo_json({**doc, "verified": cert.describe()})


@click.command("tx")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False), help="the sender's key file")
@click.option("--type", "tx_type", required=True, help="transaction type, e.g. case.apply")
@click.option("--body", "body_json", default=None, help="the body as JSON (bytes fields as hex)")
@click.option("--set", "fields", multiple=True, metavar="FIELD=VALUE", help="one body field (repeatable)")
@click.option("--nonce", type=int, default=None, help="default: ask the node")
@click.option("--chain-id", default=None, help="default: ask the node")
@click.option("--wait/--no-wait", default=True, show_default=True, help="wait until committed")
@rpc_option
@token_option
@friendly
def tx_cmd(
    key_file: str,
    tx_type: str,
    body_json: str | None,
    fields: tuple[str, ...],
    nonce: int | None,
    chain_id: str | None,
    wait: bool,
    rpc_url: str,
    token: str | None,
) -> None:
    """Build, sign and submit any transaction type (see /docs/transactions on a node)."""
    from node.client.txs import require_ok, submit_from_cli

    answer = submit_from_cli(key_file, tx_type, body_json, fields, nonce, chain_id, wait, rpc_url, token)
    echo_json(answer)
    require_ok(answer)  # refused inside the block is an error too: non-zero exit with its code
