"""`godown gateway run` and `godown decrypt`: a device's gateway, and opening what it sealed."""

from __future__ import annotations

import click

from node.commands.common import echo_json, friendly, rpc_option, token_option


@click.group()
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


@click.command()
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, exists=True))
@click.argument("tx_id")
@rpc_option
@token_option
@friendly
def decrypt(key_file: str, tx_id: str, rpc_url: str, token: str | None) -> None:
    """Open a device report's sealed payload as one of its recipients."""
    from node.client.reports import decrypt_report

    echo_json(decrypt_report(key_file, tx_id, rpc_url, token))
