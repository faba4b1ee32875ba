"""`godown snapshot export|restore` (node/commands/snapshot.py) on a real LevelDB data dir
of the financing workload: the round trip, the restored node continuing the chain, and
one-line refusals with codes for a non-empty directory, another chain, a damaged file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from node.commands.snapshot import snapshot
from node.server.ledger import Ledger
from node.tools.audit import replay_from_data_dir
from node.tools.participants import Participants
from primitives.block import Block
from primitives.errors import GodownError
from primitives.genesis import Genesis
from storage.chain import ChainStore
from storage.snapshot import MAGIC, SnapshotFile
from tests.storage.test_snapshot import Built, build_chain

CHAIN_ID = "snapshot-cmd"
STOP = 6  # the exported node stopped at this height; the chain goes on


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    b = build_chain(tmp_path_factory.mktemp("snapshot-cmd"), CHAIN_ID, cases=4, stop_at=STOP)
    assert len(b.chain) > STOP + 2
    return b


@pytest.fixture(scope="module")
def exported(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "node.snap"
    result = run("export", "--data-dir", str(built.data_dir), "--out", str(out))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["chain_id"], doc["height"], doc["state_root"]) == (CHAIN_ID, STOP, built.roots[STOP].hex())
    assert doc["file"] == str(out) and doc["bytes"] == out.stat().st_size and doc["chunks"] >= 1
    return out


def run(*args: str) -> Result:
    return CliRunner().invoke(snapshot, list(args))


def refused(result: Result, code: str) -> str:
    """The one-line error of a refused command, checked for its code."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error [{code}]: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def restore(built: Built, file: Path, target: Path, *extra: str) -> Result:
    genesis = str(built.data_dir.parent / "genesis.json")
    return run("restore", "--file", str(file), "--data-dir", str(target), "--genesis", genesis, *extra)


def test_restore_round_trip_and_the_node_continues(built: Built, exported: Path, tmp_path: Path) -> None:
    target = tmp_path / "new-node" / "data"
    result = restore(built, exported, target, "--state-root", built.roots[STOP].hex())
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["height"] == STOP and doc["state_root"] == built.roots[STOP].hex() and doc["entries"] > 0
    ledger = Ledger.open(target, built.genesis)  # what `godown node start` does with the directory
    try:
        assert (ledger.height, ledger.store.state_root) == (STOP, built.roots[STOP])
        for block, commit in built.chain[STOP:]:  # catch-up by blocks from STOP + 1
            bare = Block(block.header, block.txs)
            ledger.check_proposal(bare)
            ledger.check_commit(bare, commit)
            outcome = ledger.execute(bare)
            assert ledger.commit(bare, commit, outcome) == built.roots[block.height]
    finally:
        ledger.close()


def test_export_is_byte_identical_to_a_second_export(built: Built, exported: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.snap"
    assert run("export", "--data-dir", str(built.data_dir), "--out", str(again)).exit_code == 0
    assert again.read_bytes() == exported.read_bytes()
    assert exported.read_bytes().startswith(MAGIC)


def test_restore_refuses_a_non_empty_directory(built: Built, exported: Path, tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "something").write_text("x")
    line = refused(restore(built, exported, target), "bad_config")
    assert "not empty" in line
    assert sorted(os.listdir(target)) == ["something"]


def test_restore_refuses_another_chain(built: Built, exported: Path, tmp_path: Path) -> None:
    other = Participants.generate(seed=b"other chain").genesis("other-chain", 1_000_000, validating=1)
    other.save(tmp_path / "other.json")
    result = run(
        "restore", "--file", str(exported), "--data-dir", str(tmp_path / "x"), "--genesis", str(tmp_path / "other.json")
    )
    refused(result, "wrong_chain")
    assert not (tmp_path / "x").exists()


def test_restore_refuses_a_damaged_file(built: Built, exported: Path, tmp_path: Path) -> None:
    data = exported.read_bytes()
    with SnapshotFile(exported) as f:
        first_chunk = f._offsets[0][0]
    cases = {
        "chunk byte": (
            data[: first_chunk + 5] + bytes([data[first_chunk + 5] ^ 1]) + data[first_chunk + 6 :],
            "tampered",
        ),
        "manifest byte": (data[:-50] + bytes([data[-50] ^ 1]) + data[-49:], "tampered"),
        "truncated": (data[: len(data) // 2], "malformed"),
        "magic": (b"x" + data[1:], "malformed"),
        "empty": (b"", "malformed"),
    }
    for name, (content, code) in cases.items():
        bad = tmp_path / f"{name}.snap"
        bad.write_bytes(content)
        target = tmp_path / f"restored-{name.replace(' ', '-')}"
        refused(restore(built, bad, target), code)
        assert not target.exists(), name  # nothing left behind
    target = tmp_path / "pinned"
    refused(restore(built, exported, target, "--state-root", "00" * 32), "tampered")
    refused(restore(built, exported, target, "--state-root", "zz"), "bad_config")
    refused(restore(built, tmp_path / "missing.snap", target), "bad_config")
    assert not target.exists()


def test_export_refusals(built: Built, exported: Path, tmp_path: Path) -> None:
    line = refused(run("export", "--data-dir", str(built.data_dir), "--out", str(exported)), "bad_config")
    assert "never overwritten" in line
    refused(run("export", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "o.snap")), "bad_config")
    assert not (tmp_path / "nothing").exists()
    other = Participants.generate(seed=b"other chain").genesis("other-chain", 1_000_000, validating=1)
    other.save(tmp_path / "other.json")
    args = ["--genesis", str(tmp_path / "other.json")]
    refused(run("export", "--data-dir", str(built.data_dir), "--out", str(tmp_path / "o.snap"), *args), "bad_config")
    assert not (tmp_path / "o.snap").exists()


def test_export_of_a_store_at_genesis_needs_its_genesis(built: Built, tmp_path: Path) -> None:
    data = tmp_path / "g" / "data"
    Ledger.open(data, built.genesis).close()
    line = refused(run("export", "--data-dir", str(data), "--out", str(tmp_path / "g.snap")), "bad_config")
    assert "--genesis" in line
    built.genesis.save(tmp_path / "g" / "genesis.json")  # beside data/, as a node folder keeps it
    assert run("export", "--data-dir", str(data), "--out", str(tmp_path / "g.snap")).exit_code == 0
    assert restore(built, tmp_path / "g.snap", tmp_path / "g2").exit_code == 0
    store = ChainStore.open_path(tmp_path / "g2" / "chain")
    try:
        assert store.head_height == 0 and store.base_height == 0
    finally:
        store.close()


def test_audit_of_a_restored_store_says_it_cannot_replay(built: Built, exported: Path, tmp_path: Path) -> None:
    target = tmp_path / "audited"
    assert restore(built, exported, target).exit_code == 0
    store = ChainStore.open_path(target / "chain")
    try:
        with pytest.raises(GodownError) as exc:
            store.require_history_from_genesis()
        assert "cannot be replayed from genesis" in exc.value.message
    finally:
        store.close()
    genesis = Genesis.load(built.data_dir.parent / "genesis.json")
    try:  # the audit tool reports (or, once it asks the store first, refuses) — never crashes
        report = replay_from_data_dir(target, str(built.data_dir.parent / "genesis.json"), workers=1)
    except GodownError as exc2:
        assert "snapshot" in exc2.message
    else:
        assert not report.ok and report.genesis_hash == genesis.hash().hex()


def test_commands_run_as_a_process(built: Built, tmp_path: Path) -> None:
    code = "import sys; from node.commands.snapshot import snapshot; snapshot(sys.argv[1:])"
    out = tmp_path / "p.snap"
    root = Path(__file__).resolve().parents[2]
    args = [sys.executable, "-c", code, "export", "--data-dir", str(built.data_dir), "--out", str(out)]
    done = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["height"] == STOP
    again = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and again.stderr.startswith("error [bad_config]: ") and "Traceback" not in again.stderr
