"""`godown snapshot export|restore`: an operator's backup of a stopped node's state at its
head, and a new data directory made from one (storage/snapshot.py has the format; state
sync serves and installs the same snapshots).

A restored directory holds the state at the snapshot's height h with the header of h and
no blocks at or below it: the node continues by fetching block h+1 with its certificate.
It cannot be audited by replay from genesis (`ChainStore.require_history_from_genesis`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from primitives.errors import Code, GodownError
from primitives.genesis import Genesis
from storage.chain import ChainStore
from storage.snapshot import (
    CHUNK_TARGET_BYTES,
    Installer,
    SnapshotFile,
    Trusted,
    check_manifest,
    write_snapshot_file,
)


def _chain_dir(data_dir: Path) -> Path:
    chain = data_dir / "chain"
    if not chain.is_dir():  # never create a store while exporting
        raise GodownError(Code.BAD_CONFIG, f"{data_dir} holds no chain store (no {chain})")
    return chain


def _genesis_near(data_dir: Path, genesis_path: str | Path | None) -> Genesis | None:
    """The genesis given, else one found beside the data dir (a node's folder keeps it
    next to `data/`), else None."""
    if genesis_path is not None:
        return Genesis.load(genesis_path)
    for candidate in (data_dir / "genesis.json", data_dir.parent / "genesis.json"):
        if candidate.is_file():
            return Genesis.load(candidate)
    return None


def export_data_dir(
    data_dir: str | Path,
    out: str | Path,
    genesis_path: str | Path | None = None,
    *,
    target_bytes: int = CHUNK_TARGET_BYTES,
) -> dict[str, Any]:
    """Write the snapshot of a stopped node's state at its head to `out` (which must not
    exist); returns the manifest's summary. The store is opened with its integrity check."""
    d, target = Path(data_dir), Path(out)
    chain = _chain_dir(d)
    if target.exists():
        raise GodownError(Code.BAD_CONFIG, f"{target} exists; a snapshot file is never overwritten")
    genesis = _genesis_near(d, genesis_path)
    store = ChainStore.open_path(chain)
    try:
        if not store.is_initialized:
            raise GodownError(Code.BAD_CONFIG, f"the store in {chain} holds no chain yet")
        if genesis is not None and genesis.hash() != store.genesis_hash:
            raise GodownError(Code.BAD_CONFIG, f"data in {d} belongs to another genesis than the one given")
        header = store.get_header(store.head_height)
        if header is not None:
            chain_id = header.chain_id
        elif genesis is not None:
            chain_id = genesis.chain_id
        else:
            raise GodownError(Code.BAD_CONFIG, "the store is at genesis: pass --genesis to name its chain")
        with store.freeze_state() as frozen:
            manifest = write_snapshot_file(target, frozen, chain_id, target_bytes=target_bytes)
    finally:
        store.close()
    return {**manifest.to_json(), "file": str(target), "bytes": target.stat().st_size}


def _parse_root(state_root: str | None) -> bytes | None:
    if state_root is None:
        return None
    try:
        root = bytes.fromhex(state_root)
    except ValueError:
        root = b""
    if len(root) != 32:
        raise GodownError(Code.BAD_CONFIG, "--state-root must be 32 bytes as 64 hex digits")
    return root


def restore_data_dir(
    file: str | Path, data_dir: str | Path, genesis_path: str | Path, state_root: str | None = None
) -> dict[str, Any]:
    """Make a node data directory (`data_dir/chain`) from a snapshot file: refuses a
    non-empty directory, a snapshot of another chain, a damaged file, and (with
    `state_root`, hex) a snapshot of another state. Every chunk is verified against the
    state root before its entries are written; on any refusal nothing is left behind."""
    genesis = Genesis.load(genesis_path)
    d = Path(data_dir)
    if d.exists() and (not d.is_dir() or any(d.iterdir())):
        raise GodownError(Code.BAD_CONFIG, f"{d} is not empty; a snapshot restores only into a new or empty directory")
    pinned = _parse_root(state_root)
    with SnapshotFile(file) as snap:
        manifest = snap.manifest
        trusted = None if pinned is None else Trusted(manifest.height, pinned)
        check_manifest(manifest, genesis.chain_id, genesis.hash(), trusted)
        created = not d.exists()
        d.mkdir(parents=True, exist_ok=True)
        try:
            store = ChainStore.open_path(d / "chain")
            try:
                installer = Installer(store, manifest, manifest.state_root if pinned is None else pinned)
                for index, chunk in snap.chunks():
                    installer.add(index, chunk)
                root = installer.finish()
            finally:
                store.close()
            store = ChainStore.open_path(d / "chain")  # what the node will do: the full start-up check
            try:
                if store.state_root != root or store.head_height != manifest.height:
                    raise GodownError(Code.STORE_DAMAGED, f"the restored store in {d} does not read back as written")
            finally:
                store.close()
        except BaseException:
            shutil.rmtree(d if created else d / "chain", ignore_errors=True)
            raise
    return {**manifest.to_json(), "data_dir": str(d), "entries": installer.entries}
