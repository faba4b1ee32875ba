"""The web platform's figures, measured in Debian's Chromium (Playwright) against a local
4-node consortium after the demo's financing round:

- `web_page_weight`: bytes transferred to open the overview in a fresh browser context
  (every HTTP response's headers and encoded body; the event stream's frames not counted);
- `web_first_render`: navigation start → the overview rendered with its data (the page's
  `godown-ready` mark), and → first contentful paint; median of `--loads`;
- `web_update_delay`: a block committed → its height on screen: from the node publishing
  the block on `/v1/events` (a Python subscriber on the same node) to the page's DOM
  showing it (a MutationObserver), and from the block's header time; over `--blocks`.

Prints one JSON line per figure.

    python bench/web_bench.py [--loads 5] [--blocks 15]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import Browser, sync_playwright  # noqa: E402

from node.client.reports import device_report  # noqa: E402
from node.client.rpc import RpcClient  # noqa: E402
from node.client.sync import Client  # noqa: E402
from node.tools.demo import open_member_reports, run_step  # noqa: E402
from node.tools.demo_steps import demo_steps  # noqa: E402
from node.tools.launcher import Consortium  # noqa: E402
from node.tools.participants import Participants, participants_of  # noqa: E402
from node.tools.testnet import Testnet, init_testnet  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
OBSERVE = """() => {
  window.__shown = {};
  const el = document.getElementById('chain-height');
  new MutationObserver(() => { window.__shown[el.textContent.replace(/,/g, '')] = Date.now(); })
    .observe(el, {childList: true, characterData: true, subtree: true});
}"""


def emit(figure: str, **values: Any) -> None:
    print(json.dumps({"bench": figure, **values}, sort_keys=True), flush=True)


def financing_round(net: Testnet) -> None:
    clients = [RpcClient(n["rpc_url"]) for n in net.nodes]
    top = 0
    for i, step in enumerate(demo_steps(participants_of(net), net.chain_id, int(time.time() * 1000))):
        _, heights = run_step(clients[i % len(clients)], step)
        top = max([top, *heights])
        clients[(i + 1) % len(clients)].wait_height(top, timeout=30)
    for c in clients:
        c.wait_height(top, timeout=30)
        c.close()


def page_weight(browser: Browser, url: str) -> None:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    requests: list[Any] = []
    page.on("requestfinished", lambda r: requests.append(r))
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_load_state("networkidle")
    sizes = [r.sizes() for r in requests]
    body = sum(s["responseBodySize"] for s in sizes)
    headers = sum(s["responseHeadersSize"] for s in sizes)
    emit("web_page_weight", page="overview", requests=len(sizes), bytes=body + headers, body_bytes=body)
    context.close()


def first_render(browser: Browser, url: str, loads: int) -> None:
    ready, paint = [], []
    for _ in range(loads):
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']")
        ready.append(page.evaluate("performance.getEntriesByName('godown-ready')[0].startTime"))
        fcp = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime")
        if fcp is not None:
            paint.append(fcp)
        context.close()
    emit(
        "web_first_render",
        page="overview",
        loads=loads,
        rendered_ms=round(statistics.median(ready), 1),
        first_paint_ms=round(statistics.median(paint), 1) if paint else None,
    )


def update_delay(browser: Browser, net: Testnet, p: Participants, blocks: int) -> None:
    node = net.nodes[1]
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"{node['rpc_url']}/ui/#/overview")
    page.wait_for_selector("body[data-live='1'][data-ready='1']")
    page.evaluate(OBSERVE)
    published: dict[int, float] = {}
    header_ms: dict[int, int] = {}
    stream = Client(node["rpc_url"]).subscribe(kinds=("block",))

    def listen() -> None:
        for ev in stream:
            published[int(ev["height"])] = time.time() * 1000
            header_ms[int(ev["height"])] = int(ev["time_ms"])

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(1.0)
    device = p.devices[1]  # zone-a, where L4 lies
    via = RpcClient(net.nodes[2]["rpc_url"])
    committed = []
    for _ in range(blocks):  # one heartbeat a block, submitted to another node
        seq = int(via.get(f"/v1/devices/{device.id}")["seq"]) + 1
        data = {"seq": seq, "kind": "heartbeat"}
        stx = device_report(device, net.chain_id, via.next_nonce(device.id), seq, "L4", "heartbeat", data, p.watchers())
        committed.append(int(via.submit(stx, wait_ms=20_000)["height"]))
        time.sleep(0.3)
    time.sleep(1.0)
    shown = {int(k): v for k, v in page.evaluate("window.__shown").items() if k.isdigit()}
    stream.close()
    via.close()
    context.close()
    seen = [h for h in committed if h in shown and h in published]
    from_event = [shown[h] - published[h] for h in seen]
    from_header = [shown[h] - header_ms[h] for h in seen]
    emit(
        "web_update_delay",
        blocks=len(seen),
        from_publish_median_ms=round(statistics.median(from_event), 1),
        from_publish_max_ms=round(max(from_event), 1),
        from_block_time_median_ms=round(statistics.median(from_header), 1),
        from_block_time_max_ms=round(max(from_header), 1),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description="the web platform's page weight, first render and update delay")
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--blocks", type=int, default=15)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="godown-web-"))
    try:
        net = init_testnet(work, nodes=4, chain_id="godown-web-bench")
        open_member_reports(net)
        with Consortium(net) as cons:
            cons.start_all()
            cons.wait_ready(timeout=90)
            financing_round(net)
            url = f"{net.nodes[1]['rpc_url']}/ui/#/overview"
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                try:
                    page_weight(browser, url)
                    first_render(browser, url, args.loads)
                    update_delay(browser, net, participants_of(net), args.blocks)
                finally:
                    browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
