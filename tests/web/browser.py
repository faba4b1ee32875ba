"""The web platform in a real browser: Debian's Chromium driven by Playwright (never a
browser build of Playwright's own), a consortium running the demo's financing round,
and a page that records every request it makes and every console error."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, WebSocket

from node.client.reports import device_report
from node.client.rpc import RpcClient
from node.client.txs import sign_tx
from node.tools.demo import open_member_reports, run_step
from node.tools.demo_steps import demo_steps
from node.tools.participants import Participants, participants_of
from primitives.keys import KeyPair
from primitives.tx import SignedTx
from tests.e2e.manifests import Manifest, Net

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def launch(pw: Playwright) -> Browser:
    return pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


@dataclass
class Watched:
    """A page with what it did: every request URL (HTTP and WebSocket) and every console
    error or uncaught exception."""

    page: Page
    origin: str
    urls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def goto(self, route: str, ready: bool = True) -> None:
        """Open `/ui/#ROUTE` and (with `ready`) wait until the page has rendered."""
        self.page.goto(f"{self.origin}/ui/#/{route}")
        if ready:
            self.wait_ready()

    def wait_ready(self, timeout_ms: float = 20_000) -> None:
        self.page.wait_for_selector("body[data-ready='1']", timeout=timeout_ms)

    def foreign(self) -> list[str]:
        """Requests that went anywhere but this node."""
        ws = "ws://" + self.origin.removeprefix("http://")
        return [u for u in self.urls if not u.startswith((self.origin + "/", ws + "/", "data:"))]

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def watch(browser: Browser, origin: str, token: str | None = None) -> Watched:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    if token is not None:
        context.add_init_script(f"sessionStorage.setItem('godown.token', {token!r})")
    page = context.new_page()
    w = Watched(page, origin)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            w.errors.append(f"console: {msg.text} @ {msg.location.get('url')}")

    def on_ws(ws: WebSocket) -> None:
        w.urls.append(ws.url)

    def on_request(req: Request) -> None:
        w.urls.append(req.url)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: w.errors.append(f"pageerror: {exc}"))
    page.on("request", on_request)
    page.on("websocket", on_ws)
    return w


@dataclass
class WebNet:
    """A running consortium after the demo's financing round, each node opening its
    member's reports for its page."""

    net: Net
    participants: Participants
    head: int

    def origin(self, name: str) -> str:
        return str(self.net.node(name)["rpc_url"])

    def client(self, name: str) -> RpcClient:
        return self.net.client(name)

    def get(self, name: str, path: str) -> Any:
        c = self.client(name)
        try:
            return c.get(path)
        finally:
            c.close()


def financing_net(directory: Path) -> WebNet:
    net = Net(directory, Manifest("web"))
    open_member_reports(net.testnet)
    net.start()
    p = participants_of(net.testnet)
    clients = [net.client(n) for n in net.names]
    try:
        top = 0
        for i, step in enumerate(demo_steps(p, net.testnet.chain_id, int(time.time() * 1000))):
            got, heights = run_step(clients[i % len(clients)], step)
            assert got == step.expected, f"{step.label}: {got} != {step.expected}"
            top = max([top, *heights])
            clients[(i + 1) % len(clients)].wait_height(top, timeout=30)
    finally:
        for c in clients:
            c.close()
    net.wait_heights(top, net.names, timeout=30)
    return WebNet(net, p, net.wait_settled(net.names))


def submit(web: WebNet, via: str, signer: KeyPair, tx_type: str, **body: Any) -> SignedTx:
    """Sign with the signer's next nonce, submit through `via`, and wait for it to commit ok."""
    c = web.client(via)
    try:
        stx = sign_tx(signer, web.net.testnet.chain_id, c.next_nonce(signer.id), tx_type, body)
        _committed(c, stx)
    finally:
        c.close()
    return stx


def report(web: WebNet, via: str, device: KeyPair, lot: str, kind: str, quantity: int = 0) -> SignedTx:
    """A device's next report (its next sequence number), sealed to the four watchers."""
    c = web.client(via)
    try:
        seq = int(c.get(f"/v1/devices/{device.id}")["seq"]) + 1
        data = {"seq": seq, "kind": kind, "reading": 20_400 + 7 * seq, "unit": "centi-celsius"}
        chain = web.net.testnet.chain_id
        stx = device_report(
            device, chain, c.next_nonce(device.id), seq, lot, kind, data, web.participants.watchers(), quantity
        )
        _committed(c, stx)
    finally:
        c.close()
    return stx


def _committed(c: RpcClient, stx: SignedTx) -> None:
    ans = c.submit(stx, wait_ms=20_000)
    if ans["code"] == "accepted":
        c.wait_height(int(c.status()["height"]) + 1)
        ans = c.tx(stx.tx_id_hex)
    assert ans.get("result") == "ok", f"{stx.tx.type}: {ans}"
