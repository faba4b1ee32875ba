"""`godown demo`: the main job on defaults.

Creates a local consortium (four validators unless told otherwise), starts its
nodes as separate processes, and runs the seed's method A–G for a few financing
cases: ratings, device acceptance, goods in through device gateways, pledge,
disbursement, monitoring, an extension approved and one refused, a double
pledge refused, an unauthorised outbound raising an alarm, partial and full
repayment, release, default, plain supervision, the warehouse freed. Then a
bank decrypts a device report and an auditor replays the chain over RPC. Exit
status 0 only if every step ended with the result it should.
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from node.client.reports import open_report
from node.client.rpc import RpcClient
from node.server.config import write_config
from node.tools.audit import replay_from_rpc
from node.tools.demo_steps import Step, demo_steps
from node.tools.launcher import Consortium
from node.tools.participants import Participants, participants_of
from node.tools.testnet import Testnet, init_testnet
from primitives.errors import Code, GodownError

DEFAULT_NODES = 4


@dataclass
class StepResult:
    step: Step
    node: str
    got: list[str]
    heights: list[int]

    @property
    def ok(self) -> bool:
        return self.got == self.step.expected


def run_step(client: RpcClient, step: Step) -> tuple[list[str], list[int]]:
    """Submit a step's transactions in order, wait for their commits, return result codes."""
    answers = client.submit_many(step.txs, wait_ms=30_000)
    got, heights = [], []
    for stx, ans in zip(step.txs, answers):
        if ans.get("code") == "committed":
            got.append(str(ans["result"]))
            heights.append(int(ans["height"]))
        elif ans.get("code") == "accepted":  # admitted but not committed in time: ask again
            doc = client.tx(stx.tx_id_hex)
            got.append(str(doc.get("result", "timeout")))
            heights.append(int(doc.get("height", 0)))
        else:
            got.append(str(ans.get("code")))  # refused at admission
            heights.append(0)
    return got, heights


def open_member_reports(net: Testnet) -> None:
    """Configure each node to open its own member's sealed device reports for its web page
    (the `report_key_file` of its config: the member's key, from the testnet's keys/)."""
    for node in net.nodes:
        path = net.config_path(node)
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["report_key_file"] = str(net.dir / "keys" / f"{node['name']}.json")
        write_config(path, doc)


def dashboards(net: Testnet) -> list[tuple[str, str, str]]:
    """(node name, its member's role and id, dashboard URL) of each node."""
    return [(n["name"], f"{n['role']} {n['member_id']}", f"{n['rpc_url']}/ui/") for n in net.nodes]


def serve_dashboards(console: Console, net: Testnet) -> None:
    """Print each node's dashboard and wait for Ctrl-C (or SIGTERM); the caller stops the nodes."""
    table = Table(title="dashboards (Ctrl-C stops the consortium)")
    for col in ("node", "member", "dashboard"):
        table.add_column(col)
    for name, member, url in dashboards(net):
        table.add_row(name, member, url)
    console.print(table)
    for name, member, url in dashboards(net):
        print(f"dashboard {name} ({member}): {url}", flush=True)  # one plain line each, for scripts
    # Ctrl-C and SIGTERM both stop it, set here explicitly: a process started in the
    # background by a non-interactive shell inherits SIGINT ignored, and would never stop
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping the consortium…")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(
    directory: str | None = None,
    nodes: int | None = None,
    console: Console | None = None,
    keep_running: bool = False,
) -> bool:
    console = console or Console()
    n = nodes or DEFAULT_NODES
    keep = directory is not None
    base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="godown-demo-"))
    started = time.monotonic()
    net = init_testnet(base, nodes=n, chain_id="godown-demo")
    open_member_reports(net)
    console.print(f"[bold]godown demo[/]: {n}-validator consortium in {base}")
    results: list[StepResult] = []
    audit_ok = decrypt_ok = summarised = False
    try:
        with Consortium(net) as cons:
            with console.status("starting nodes…"):
                cons.start_all()
                cons.wait_ready(timeout=90)
            console.print("nodes up: " + ", ".join(f"{x['name']} ({x['rpc_url']})" for x in net.nodes))
            clients = {x["name"]: RpcClient(x["rpc_url"]) for x in net.nodes}
            names = list(clients)
            p = participants_of(net)
            steps = demo_steps(p, net.chain_id, int(time.time() * 1000))
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("financing round", total=len(steps))
                for i, step in enumerate(steps):
                    name = names[i % len(names)]  # clients may submit to any node
                    progress.update(task, description=escape(f"[{step.section}] {step.label}"))
                    got, heights = run_step(clients[name], step)
                    results.append(StepResult(step, name, got, heights))
                    if any(heights):  # the next step goes to another node: let it execute this one first
                        clients[names[(i + 1) % len(names)]].wait_height(max(heights), timeout=30)
                    mark = "[green]✓[/]" if got == step.expected else "[red]✗[/]"
                    progress.console.print(
                        f"{mark} " + escape(f"[{step.section}] {step.label}") + f" — via {name}, "
                        f"height {max(heights) if heights else '-'}"
                    )
                    progress.advance(task)
            head = max((h for r in results for h in r.heights), default=0)
            for c in clients.values():
                c.wait_height(head, timeout=30)
            decrypt_ok = _show_decrypt(console, clients[names[0]], p, results)
            _show_agreement(console, clients, head)
            report = replay_from_rpc(net.nodes[-1]["rpc_url"], genesis_path=str(net.dir / "genesis.json"))
            audit_ok = report.ok
            console.print(
                f"auditor replay over RPC: {report.blocks} blocks, {report.txs} txs, "
                f"{'[green]everything verifies[/]' if report.ok else '[red]' + str(report.problem) + '[/]'}"
            )
            if keep_running:
                _summary(console, results)
                _verdict(console, results, audit_ok, decrypt_ok, started, None)
                summarised = True
                serve_dashboards(console, net)
    except GodownError as exc:
        console.print(f"[red]demo stopped: {exc.code.value}: {exc.message}[/]")
        return False
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    if summarised:
        return _passed(results, audit_ok, decrypt_ok)
    _summary(console, results)
    return _verdict(console, results, audit_ok, decrypt_ok, started, base if keep else None)


def _passed(results: list[StepResult], audit_ok: bool, decrypt_ok: bool) -> bool:
    return bool(results) and all(r.ok for r in results) and audit_ok and decrypt_ok


def _verdict(
    console: Console, results: list[StepResult], audit_ok: bool, decrypt_ok: bool, started: float, kept: Path | None
) -> bool:
    ok = _passed(results, audit_ok, decrypt_ok)
    console.print(
        f"{'[bold green]demo passed' if ok else '[bold red]demo FAILED'}[/] in "
        f"{time.monotonic() - started:.1f} s" + (f"; data kept in {kept}" if kept else "")
    )
    return ok


def _show_decrypt(console: Console, client: RpcClient, p: Participants, results: list[StepResult]) -> bool:
    """The bank opens one device report; the borrower, not a recipient, cannot."""
    from primitives.tx import SignedTx

    for r in results:
        for stx, code in zip(r.step.txs, r.got):
            if stx.tx.type == "device.report" and stx.tx.body.get("kind") == "reading" and code == "ok":
                doc = client.tx(stx.tx_id_hex)
                fetched = SignedTx.decode(bytes.fromhex(doc["raw"]))
                opened = open_report(fetched, p.bank.id, p.bank.enc_secret)
                try:
                    open_report(fetched, p.borrower.id, p.borrower.enc_secret)
                    return False
                except GodownError as exc:
                    refused = exc.code.value
                console.print(
                    f"bank decrypts report {stx.tx_id_hex[:12]}…: {opened['data']}; borrower: [yellow]{refused}[/]"
                )
                return True
    return False


def _show_agreement(console: Console, clients: dict[str, RpcClient], head: int) -> None:
    hashes = {name: c.block(head)["hash"] for name, c in clients.items()}
    same = len(set(hashes.values())) == 1
    console.print(
        f"height {head}: "
        + ("[green]all nodes hold the same block[/] " if same else "[red]nodes differ[/] ")
        + ", ".join(f"{k} {v[:12]}…" for k, v in hashes.items())
    )
    if not same:
        raise GodownError(Code.BAD_BLOCK, f"nodes disagree at height {head}")


def _summary(console: Console, results: list[StepResult]) -> None:
    table = Table(title="financing round")
    for col in ("step", "", "txs", "via", "heights", "results"):
        table.add_column(col)
    for r in results:
        codes = ", ".join(sorted(set(r.got)))
        table.add_row(
            escape(f"[{r.step.section}] {r.step.label}"),
            "[green]✓[/]" if r.ok else "[red]✗[/]",
            str(len(r.step.txs)),
            r.node,
            f"{min(r.heights)}–{max(r.heights)}" if r.heights else "-",
            codes if r.ok else f"got {r.got}, expected {r.step.expected}",
        )
    console.print(table)
