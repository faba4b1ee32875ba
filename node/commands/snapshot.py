"""`godown snapshot export|restore`: operators' backups of the state; state sync uses the
same format (storage/snapshot.py, docs/snapshot.md)."""

from __future__ import annotations

import click

from node.commands.common import echo_json, friendly


@click.group()
def snapshot() -> None:
    """Snapshots of the state at a committed height (backups; state sync uses the same format)."""


@snapshot.command("export")
@click.option("--data-dir", required=True, type=click.Path(file_okay=False), help="a stopped node's data directory")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), help="the snapshot file to write (must not exist)"
)
@click.option(
    "--genesis",
    "genesis_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="genesis file to check the store against (default: found beside the data dir)",
)
@friendly
def snapshot_export(data_dir: str, out: str, genesis_path: str | None) -> None:
    """Write the state at the node's head (manifest and chunks) to one file."""
    from node.tools.snapshot import export_data_dir

    echo_json(export_data_dir(data_dir, out, genesis_path))


@snapshot.command("restore")
@click.option("--file", "file", required=True, type=click.Path(dir_okay=False), help="a snapshot file")
@click.option("--data-dir", required=True, type=click.Path(file_okay=False), help="a new or empty data directory")
@click.option("--genesis", "genesis_path", required=True, type=click.Path(dir_okay=False), help="the chain's genesis")
@click.option("--state-root", default=None, help="refuse unless the snapshot has this state root (hex, e.g. certified)")
@friendly
def snapshot_restore(file: str, data_dir: str, genesis_path: str, state_root: str | None) -> None:
    """Make a data directory at the snapshot's height; the node continues by blocks after it."""
    from node.tools.snapshot import restore_data_dir

    echo_json(restore_data_dir(file, data_dir, genesis_path, state_root))
