"""The `godown` command as users run it (a subprocess each time) against a real node
subprocess: keys, transactions, queries, the device gateway, decryption, the
auditor's replay (and its verdict on a tampered store), and errors as one line
`error [code]: message` with exit status 1, never a traceback.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import plyvel
import pytest
from click.testing import CliRunner

import cli
from node.client.rpc import RpcClient
from node.tools.demo import run_step
from node.tools.demo_steps import demo_steps
from node.tools.participants import Participants, participants_of
from node.tools.testnet import Testnet as NetDir
from primitives import codec
from primitives.block import results_root
from primitives.hashing import sha256
from primitives.keys import KeyPair
from primitives.tx import SignedTx
from storage.chain import Roots
from tests.node.conftest import REPO, NodeProcess, free_port, make_testnet, run_cli

pytestmark = pytest.mark.timeout(300)


def assert_clean_error(proc: subprocess.CompletedProcess[str], code: str) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith(f"error [{code}]: "), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def run_inproc(*args: str) -> subprocess.CompletedProcess[str]:
    """`godown ARGS` through click's runner in this process (fast); an exception that is not
    a clean exit shows up as a traceback in stderr, which `assert_clean_error` refuses."""
    result = CliRunner().invoke(cli.main, list(args))
    err = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        err += "Traceback\n" + "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, err)


def cli_json(*args: str) -> object:
    proc = run_cli(*args)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)


# ---- no node needed -----------------------------------------------------------------------


def test_keygen_writes_a_0600_key_file_and_prints_no_private_material(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "bank.json"
    proc = run_cli("keygen", "--role", "bank", "--name", "bank-x", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    key = KeyPair.load(out)
    printed = json.loads(proc.stdout)
    assert printed == key.public_record()
    for secret in (key.sign_seed.hex(), key.enc_secret.hex()):
        assert secret not in proc.stdout + proc.stderr
    assert "sign_seed" not in proc.stdout and "enc_secret" not in proc.stdout
    # keygen never overwrites a file (it may be a key already): one-line error, file unchanged
    again = run_cli("keygen", "--role", "bank", "--name", "other", "--out", str(out))
    assert again.returncode == 1 and "error [bad_key_file]" in again.stderr and "Traceback" not in again.stderr
    assert KeyPair.load(out) == key
    # saving over an existing world-readable file still leaves it 0600
    loose = tmp_path / "loose.json"
    loose.write_text("{}")
    os.chmod(loose, 0o644)
    KeyPair.generate("d", "device").save(loose)
    assert stat.S_IMODE(os.stat(loose).st_mode) == 0o600
    # a node key is its own kind
    node = run_cli("keygen", "--role", "node", "--name", "bank-node", "--out", str(tmp_path / "node.json"))
    assert node.returncode == 0 and json.loads(node.stdout)["role"] == "node"


def test_bad_key_files_and_unreachable_rpc_are_one_line_errors(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    garbage = tmp_path / "garbage.json"
    garbage.write_text("this is not json")
    wrong_shape = tmp_path / "list.json"
    wrong_shape.write_text("[1, 2]")
    bad_hex = tmp_path / "badhex.json"
    bad_hex.write_text(json.dumps({"name": "x", "role": "bank", "sign_seed": "zz", "enc_secret": "00" * 32}))
    # two as real processes, the rest in-process (same code path, no interpreter start-up)
    assert_clean_error(run_cli("tx", "--key", str(garbage), "--type", "rating.issue", "--rpc", nowhere), "bad_key_file")
    for path in (wrong_shape, bad_hex, tmp_path / "missing.json"):
        assert_clean_error(
            run_inproc("tx", "--key", str(path), "--type", "rating.issue", "--rpc", nowhere), "bad_key_file"
        )
    good = tmp_path / "good.json"
    KeyPair.generate("b", "bank").save(good)
    assert_clean_error(
        run_inproc("tx", "--key", str(good), "--type", "rating.issue", "--set", "grade=A", "--rpc", nowhere),
        "unavailable",
    )
    assert_clean_error(run_cli("status", "--rpc", nowhere), "unavailable")
    assert_clean_error(run_inproc("query", "block", "latest", "--rpc", nowhere), "unavailable")
    assert_clean_error(run_inproc("status", "--rpc", "ftp://example.org"), "bad_config")
    assert_clean_error(
        run_inproc("tx", "--key", str(good), "--type", "no.such", "--set", "a=1", "--rpc", nowhere), "unknown_tx_type"
    )  # checked before any RPC call
    assert_clean_error(
        run_inproc("tx", "--key", str(good), "--type", "rating.issue", "--set", "nofield=1", "--rpc", nowhere),
        "bad_body",
    )
    assert_clean_error(
        run_inproc("tx", "--key", str(good), "--type", "rating.issue", "--body", "{nope", "--rpc", nowhere), "bad_body"
    )
    deep = "[" * 50_000
    assert_clean_error(
        run_inproc("tx", "--key", str(good), "--type", "rating.issue", "--body", deep, "--rpc", nowhere), "bad_body"
    )
    assert_clean_error(
        run_inproc(
            "tx",
            "--key",
            str(good),
            "--type",
            "supervision.open",
            "--body",
            json.dumps({"party": 1.5}),
            "--set",
            "end_ms=soon",
            "--rpc",
            nowhere,
        ),
        "bad_body",
    )
    assert_clean_error(run_inproc("node", "start", "--config", str(tmp_path / "none.json")), "bad_config")


# ---- against a running node ---------------------------------------------------------------


@dataclass
class Live:
    net: NetDir
    url: str
    p: Participants

    def key_path(self, name: str) -> str:
        return str(self.net.dir / "keys" / f"{name}.json")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A node subprocess with the demo round run up to the disbursements (case C1 open on L1)."""
    base = tmp_path_factory.mktemp("cli")
    net = make_testnet(base / "net")
    proc = NodeProcess(net.config_path(net.nodes[0]), base)
    try:
        proc.start()
        proc.wait_ready(net.rpc_urls[0])
        p = participants_of(net)
        client = RpcClient(net.rpc_urls[0])
        steps = demo_steps(p, net.chain_id, time.time_ns() // 1_000_000)
        upto = next(i for i, s in enumerate(steps) if s.label == "the bank disburses")
        for step in steps[: upto + 1]:
            got, _ = run_step(client, step)
            assert got == step.expected, (step.label, got)
        yield Live(net, net.rpc_urls[0], p)
    finally:
        try:
            proc.terminate()
        finally:
            proc.kill()


def test_tx_and_query(live: Live) -> None:
    p = live.p
    doc = cli_json(
        "tx",
        "--key",
        live.key_path("bank"),
        "--type",
        "rating.issue",
        "--set",
        f"subject={p.borrower.id}",
        "--set",
        "grade=AA",
        "--set",
        f"valid_until_ms={2**50}",
        "--set",
        "report_hash=" + "00" * 32,
        "--rpc",
        live.url,
    )
    assert isinstance(doc, dict) and doc["code"] == "committed" and doc["result"] == "ok"
    tx = cli_json("query", "tx", doc["tx_id"], "--rpc", live.url)
    assert isinstance(tx, dict) and tx["type"] == "rating.issue" and tx["height"] == doc["height"]
    assert tx["body"]["grade"] == "AA" and tx["sender"] == p.bank.id
    block = cli_json("query", "block", "latest", "--rpc", live.url)
    assert isinstance(block, dict) and block["height"] == doc["height"] and "raw" not in block
    account = cli_json("query", "account", p.bank.id, "--rpc", live.url)
    assert isinstance(account, dict) and account["next_nonce"] == tx["nonce"] + 1
    case = cli_json("query", "case", "C1", "--rpc", live.url)
    assert isinstance(case, dict) and case["state"] == "disbursed" and case["lot"] == "L1"
    members = cli_json("query", "members", "--rpc", live.url)
    assert isinstance(members, dict) and p.bank.id in {m["id"] for m in members["members"]}
    status = cli_json("status", "--rpc", live.url)
    assert isinstance(status, dict) and status["height"] >= doc["height"] and status["chain_id"] == live.net.chain_id
    # refused inside the block (admitted, committed with a refusal code): printed, and a non-zero exit
    refused = run_cli(
        "tx", "--key", live.key_path("bank"), "--type", "alarm.resolve", "--set", "alarm=no-such-alarm",
        "--set", "note=none", "--rpc", live.url,
    )  # fmt: skip
    assert refused.returncode == 1 and refused.stderr.startswith("error [unknown_alarm]: "), refused
    assert json.loads(refused.stdout)["result"] == "unknown_alarm" and "Traceback" not in refused.stderr
    # refusals from the node come back with the node's code
    assert_clean_error(run_cli("query", "case", "no-such-case", "--rpc", live.url), "not_found")
    assert_clean_error(run_cli("query", "tx", "zz", "--rpc", live.url), "malformed")
    assert_clean_error(
        run_cli(
            "tx",
            "--key",
            live.key_path("borrower"),
            "--type",
            "rating.issue",
            "--set",
            f"subject={p.bank.id}",
            "--set",
            "grade=A",
            "--set",
            "valid_until_ms=1",
            "--set",
            "report_hash=" + "00" * 32,
            "--rpc",
            live.url,
        ),
        "forbidden_role",
    )
    assert_clean_error(
        run_cli("tx", "--key", live.key_path("bank"), "--type", "no.such", "--rpc", live.url), "unknown_tx_type"
    )  # refused by the node
    assert_clean_error(
        run_cli(
            "tx",
            "--key",
            live.key_path("bank"),
            "--type",
            "rating.issue",
            "--set",
            "grade=A",
            "--nonce",
            "0",
            "--rpc",
            live.url,
        ),
        "bad_body",
    )
    assert_clean_error(
        run_cli(
            "tx",
            "--key",
            live.key_path("bank"),
            "--type",
            "rating.issue",
            "--set",
            f"subject={p.borrower.id}",
            "--set",
            "grade=AA",
            "--set",
            f"valid_until_ms={2**50}",
            "--set",
            "report_hash=" + "00" * 32,
            "--nonce",
            "0",
            "--rpc",
            live.url,
        ),
        "bad_nonce",
    )


def _reports_of(client: RpcClient, device: str, since: int) -> list[SignedTx]:
    out = []
    for h in range(since + 1, int(client.status()["height"]) + 1):
        for t in client.block(h)["txs"]:
            if t["sender"] == device and t["type"] == "device.report" and t["result"] == "ok":
                out.append(SignedTx.decode(bytes.fromhex(t["raw"])))
    return out


def test_gateway_reports_commit_and_only_recipients_can_decrypt(live: Live) -> None:
    client = RpcClient(live.url)
    device = live.p.devices[0]  # the scale on zone-a, watching L1 (case C1 is open)
    before = client.get(f"/v1/devices/{device.id}")["seq"]
    height = int(client.status()["height"])
    proc = run_cli(
        "gateway",
        "run",
        "--device-key",
        live.key_path(device.name),
        "--lot",
        "L1",
        "--interval",
        "0.05",
        "--count",
        "2",
        "--rpc",
        live.url,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 and all("committed ok" in line for line in lines), proc.stdout
    assert client.get(f"/v1/devices/{device.id}")["seq"] == before + 2
    reports = _reports_of(client, device.id, height)
    assert [r.tx.body["seq"] for r in reports] == [before + 1, before + 2]
    tx_id = reports[0].tx_id_hex
    recipients = {r for r, _ in reports[0].tx.body["envelope"]["recipients"]}
    assert recipients == {live.p.warehouse.id, live.p.bank.id, live.p.insurer.id, live.p.guarantor.id}
    for who in ("bank", "warehouse", "insurer", "guarantor"):
        opened = cli_json("decrypt", "--key", live.key_path(who), tx_id, "--rpc", live.url)
        assert isinstance(opened, dict) and opened["device"] == device.id and opened["lot"] == "L1"
        assert opened["seq"] == before + 1 and "weight_g" in opened["data"]
    assert_clean_error(
        run_cli("decrypt", "--key", live.key_path("borrower"), tx_id, "--rpc", live.url), "not_recipient"
    )
    rating = next(t for t in client.block(1)["txs"] if t["type"] == "rating.issue")
    assert_clean_error(
        run_cli("decrypt", "--key", live.key_path("bank"), rating["tx_id"], "--rpc", live.url), "bad_body"
    )
    assert_clean_error(
        run_cli(
            "gateway", "run", "--device-key", live.key_path("bank"), "--lot", "L1", "--count", "1", "--rpc", live.url
        ),
        "forbidden_role",
    )


def test_token_protected_node_and_exposed_rpc_without_token(tmp_path: Path) -> None:
    net = make_testnet(tmp_path / "net")
    cfg_path = net.config_path(net.nodes[0])
    cfg = json.loads(cfg_path.read_text())
    exposed = {**cfg, "rpc": {**cfg["rpc"], "host": "0.0.0.0", "token": None}}
    bad_cfg = cfg_path.parent / "exposed.json"
    bad_cfg.write_text(json.dumps(exposed))
    assert_clean_error(run_cli("node", "start", "--config", str(bad_cfg)), "bad_config")
    cfg["rpc"]["token"] = "t0ken-for-tests"
    cfg_path.write_text(json.dumps(cfg))
    url = net.rpc_urls[0]
    proc = NodeProcess(cfg_path, tmp_path)
    try:
        proc.start()
        RpcClient(url, "t0ken-for-tests").wait_ready(30)
        assert_clean_error(run_cli("status", "--rpc", url), "unauthorized")
        assert_clean_error(run_cli("status", "--rpc", url, "--token", "wrong"), "unauthorized")
        status = cli_json("status", "--rpc", url, "--token", "t0ken-for-tests")
        assert isinstance(status, dict) and status["chain_id"] == net.chain_id
        env = run_cli_env({"GODOWN_TOKEN": "t0ken-for-tests", "GODOWN_RPC": url}, "query", "members")
        assert env.returncode == 0 and net.key("bank").id in env.stdout, env.stderr
    finally:
        try:
            proc.terminate()
        finally:
            proc.kill()


def run_cli_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


# ---- the auditor ----------------------------------------------------------------------------


def _rewrite_head_result(chain_dir: Path, height: int) -> str:
    """Change one stored result code of block `height` and re-record its digest and results
    root, so the store's own start-up check passes and only a replay can tell."""
    db = plyvel.DB(str(chain_dir))
    try:
        hb = height.to_bytes(8, "big")
        block = codec.decode(db.get(b"B:" + hb))
        old = block["results"][0]
        block["results"][0] = "bad_nonce" if old == "ok" else "ok"
        body = codec.encode(block)
        roots = Roots.decode(db.get(b"R:" + hb))
        db.put(b"B:" + hb, body)
        db.put(b"R:" + hb, Roots(roots.state_root, results_root(block["results"]), sha256(body)).encode())
        return str(old)
    finally:
        db.close()


def _flip_a_byte(chain_dir: Path, height: int) -> None:
    db = plyvel.DB(str(chain_dir))
    try:
        key = b"B:" + height.to_bytes(8, "big")
        raw = bytearray(db.get(key))
        raw[-3] ^= 0x01  # inside the last result code string
        db.put(key, bytes(raw))
    finally:
        db.close()


def test_audit_replay_passes_then_names_the_tampered_height(tmp_path: Path) -> None:
    net = make_testnet(tmp_path / "net")
    proc = NodeProcess(net.config_path(net.nodes[0]), tmp_path)
    try:
        proc.start()
        proc.wait_ready(net.rpc_urls[0])
        p = participants_of(net)
        client = RpcClient(net.rpc_urls[0])
        for step in demo_steps(p, net.chain_id, time.time_ns() // 1_000_000)[:4]:
            assert run_step(client, step)[0] == step.expected
        head = int(client.status()["height"])
        assert proc.terminate() == 0
    finally:
        proc.kill()
    data = net.dir / net.nodes[0]["data_dir"]
    empty = tmp_path / "not-a-data-dir"
    empty.mkdir()
    assert_clean_error(
        run_cli("audit", "replay", "--data-dir", str(empty), "--genesis", str(net.dir / "genesis.json")), "bad_config"
    )
    assert list(empty.iterdir()) == []  # auditing wrote nothing
    ok = run_cli("audit", "replay", "--data-dir", str(data), "--json", "--workers", "1")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] is True and report["blocks"] == head and report["txs"] >= 14
    assert report["first_bad_height"] is None
    # a head block whose stored result was rewritten consistently: only re-execution can tell
    _rewrite_head_result(data / "chain", head)
    bad = run_cli("audit", "replay", "--data-dir", str(data), "--json", "--workers", "1")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr, bad.stderr
    report = json.loads(bad.stdout)
    assert report["ok"] is False and report["first_bad_height"] == head and report["problem"]
    # raw damage to an earlier block: refused when the store opens (store_damaged) or found by
    # the replay; either way exit 1, no traceback, and the damaged height is named
    _flip_a_byte(data / "chain", 2)
    damaged = run_cli("audit", "replay", "--data-dir", str(data), "--json", "--workers", "1")
    if damaged.stderr:
        assert_clean_error(damaged, "store_damaged")
        assert "height 2" in damaged.stderr
    else:
        assert damaged.returncode == 1, damaged.stdout
        report = json.loads(damaged.stdout)
        assert report["ok"] is False and report["first_bad_height"] == 2, report
