"""The `godown` command. Thin: parses arguments, calls into `node/`, prints.

Every error godown raises on purpose carries a stable code; here it becomes one
line `error [code]: message` on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from node.commands.simulate import simulate
from primitives.errors import Code, GodownError

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn GodownError into a one-line message with its code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GodownError as exc:
            click.echo(f"error [{exc.code.value}]: {exc.message}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


rpc_option = click.option(
    "--rpc",
    "rpc_url",
    default="http://127.0.0.1:26650",
    show_default=True,
    envvar="GODOWN_RPC",
    help="a node's RPC URL",
)
token_option = click.option("--token", default=None, envvar="GODOWN_TOKEN", help="bearer token, if the node needs one")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """godown: a permissioned consortium blockchain for warehouse-receipt financing."""


@main.command()
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


@main.group()
def testnet() -> None:
    """A local consortium on this machine."""


@testnet.command("init")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False))
@click.option("--nodes", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--chain-id", default="godown-local", show_default=True)
@click.option("--base-port", default=None, type=int, help="first RPC port (default: a free block)")
@friendly
def testnet_init(directory: str, nodes: int, chain_id: str, base_port: int | None) -> None:
    """Write genesis, keys and node configs for a local consortium."""
    from node.tools.testnet import init_testnet

    net = init_testnet(directory, nodes=nodes, chain_id=chain_id, base_port=base_port)
    for n in net.nodes:
        click.echo(f"{n['name']:<10} {n['role']:<10} rpc {n['rpc_url']}  config {net.dir / n['config']}")
    click.echo(f"wrote {net.dir / 'testnet.json'}")


@testnet.command("up")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, exists=True))
@friendly
def testnet_up(directory: str) -> None:
    """Start every node of DIR; Ctrl-C or SIGTERM stops them all."""
    from node.tools.launcher import run_until_signal

    run_until_signal(directory, echo=click.echo)


@main.group()
def node() -> None:
    """Run one node."""


@node.command("start")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False))
@click.option("--log-level", default="info", show_default=True)
@friendly
def node_start(config_path: str, log_level: str) -> None:
    """Run one node in the foreground until SIGINT/SIGTERM."""
    import asyncio

    from node.server.config import NodeConfig
    from node.server.logs import setup_logging
    from node.server.serve import serve_forever

    config = NodeConfig.load(config_path)
    setup_logging(log_level, node=config.name)
    asyncio.run(serve_forever(config))


@main.command()
@rpc_option
@token_option
@friendly
def status(rpc_url: str, token: str | None) -> None:
    """A node's chain id, height, head, view, validators and peers."""
    from node.client.rpc import RpcClient

    echo_json(RpcClient(rpc_url, token).status())


@main.command()
@click.argument(
    "what", type=click.Choice(["case", "lot", "device", "alarm", "block", "tx", "state", "members", "account"])
)
@click.argument("ident", required=False, default="latest")
@rpc_option
@token_option
@friendly
def query(what: str, ident: str, rpc_url: str, token: str | None) -> None:
    """Look up a case, lot, device, alarm, block (height|latest), tx (id), state key, members or account."""
    from urllib.parse import quote

    from node.client.rpc import RpcClient

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


@main.command("tx")
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
    from node.client.txs import submit_from_cli

    echo_json(submit_from_cli(key_file, tx_type, body_json, fields, nonce, chain_id, wait, rpc_url, token))


@main.group()
def gateway() -> None:
    """Device gateways."""


@gateway.command("run")
@click.option("--device-key", required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--lot", "lot_id", required=True, help="the lot the device watches")
@click.option(
    "--kind",
    default="reading",
    show_default=True,
    type=click.Choice(["reading", "heartbeat"]),
    help="what to report each interval",
)
@click.option("--interval", default=2.0, show_default=True, type=float, help="seconds between reports")
@click.option("--count", default=0, type=int, help="stop after N reports (0: run until Ctrl-C)")
@rpc_option
@token_option
@friendly
def gateway_run(
    device_key: str, lot_id: str, kind: str, interval: float, count: int, rpc_url: str, token: str | None
) -> None:
    """Simulate a device's gateway: signed reports, sealed to the lot's parties."""
    from node.gateway.device import run_gateway

    run_gateway(device_key, lot_id, kind, interval, count, rpc_url, token, echo=click.echo)


@main.command()
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, exists=True))
@click.argument("tx_id")
@rpc_option
@token_option
@friendly
def decrypt(key_file: str, tx_id: str, rpc_url: str, token: str | None) -> None:
    """Open a device report's sealed payload as one of its recipients."""
    from node.client.reports import decrypt_report

    echo_json(decrypt_report(key_file, tx_id, rpc_url, token))


@main.group()
def audit() -> None:
    """Auditor tools."""


@audit.command("replay")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False, exists=True), help="a stopped node's data")
@click.option(
    "--genesis",
    "genesis_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="genesis file (default: found beside the data dir)",
)
@click.option("--rpc", "rpc_url", default=None, help="a running node's RPC URL")
@token_option
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--workers", default=2, show_default=True, type=int, help="processes for signature checks")
@friendly
def audit_replay(
    data_dir: str | None, genesis_path: str | None, rpc_url: str | None, token: str | None, as_json: bool, workers: int
) -> None:
    """Replay the chain from genesis and verify everything; exit 1 on any mismatch."""
    from node.tools.audit import print_report, replay_from_data_dir, replay_from_rpc

    if bool(data_dir) == bool(rpc_url):
        raise click.UsageError("give exactly one of --data-dir and --rpc")
    if data_dir and not os.path.isdir(os.path.join(data_dir, "chain")):  # never create a store while auditing
        raise GodownError(Code.BAD_CONFIG, f"{data_dir} holds no chain store (no {os.path.join(data_dir, 'chain')})")
    report = (
        replay_from_data_dir(data_dir, genesis_path, workers)
        if data_dir
        else replay_from_rpc(str(rpc_url), token, genesis_path, workers)
    )
    print_report(report, as_json)
    sys.exit(0 if report.ok else 1)


@main.command()
@click.option("--dir", "directory", default=None, type=click.Path(file_okay=False), help="keep the data here")
@click.option("--nodes", default=None, type=int, help="validators (default: 4)")
@friendly
def demo(directory: str | None, nodes: int | None) -> None:
    """The main job: a local consortium and a full financing round, with progress."""
    from node.tools.demo import run_demo

    sys.exit(0 if run_demo(directory, nodes) else 1)


@main.command()
@click.option("--testnet", "testnet_dir", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--duration", default=20.0, show_default=True, type=float)
@click.option("--rate", default=0, type=int, help="target tx/s (0: as fast as it goes)")
@click.option("--cases", default=0, type=int, help="financing cases (default: enough for the duration)")
@friendly
def bench(testnet_dir: str, duration: float, rate: int, cases: int) -> None:
    """Load a running consortium with the financing workload; print tx/s and latency as JSON."""
    from node.load.loadgen import run_bench

    click.echo(json.dumps(run_bench(testnet_dir, duration, rate, cases)))


main.add_command(simulate)


if __name__ == "__main__":
    main()
