"""The web platform's files served by a real node: public (no token), the right content
types, a CSP that keeps the page on the node, no path outside the static folder; the
data under /v1 still needs the token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from node.web.routes import CONTENT_TYPES, STATIC
from tests.node.conftest import NodeThread, http, make_testnet, node_config

TOKEN = "web-test-token"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeThread]:
    net = make_testnet(tmp_path_factory.mktemp("web") / "net")
    running = NodeThread(replace(node_config(net), rpc_token=TOKEN))
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_root_redirects_to_the_ui(node: NodeThread) -> None:
    for path in ("/", "/ui"):
        reply = http(node.url, "GET", path)
        assert reply.status == 302 and reply.headers["location"] == "/ui/"


def test_the_shell_is_public_with_a_policy_keeping_requests_on_the_node(node: NodeThread) -> None:
    reply = http(node.url, "GET", "/ui/")
    assert reply.status == 200 and reply.headers["content-type"] == "text/html; charset=utf-8"
    assert b'<script type="module" src="js/app.js">' in reply.body
    csp = reply.headers["content-security-policy"]
    host = node.url.removeprefix("http://")
    assert "default-src 'self'" in csp and f"connect-src 'self' ws://{host} wss://{host}" in csp
    assert reply.headers["x-content-type-options"] == "nosniff"
    again = http(node.url, "GET", "/ui/", headers={"If-None-Match": reply.headers["etag"]})
    assert again.status == 304 and again.body == b""


def test_every_shipped_file_is_served_as_its_type(node: NodeThread) -> None:
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert {"index.html", "app.js", "chart.js", "app.css", "overview.js"} <= {p.name for p in files}
    for path in files:
        rel = path.relative_to(STATIC).as_posix()
        reply = http(node.url, "GET", f"/ui/{rel}")
        assert reply.status == 200, rel
        assert reply.body == path.read_bytes(), rel
        assert reply.headers["content-type"].split(";")[0] == CONTENT_TYPES.get(path.suffix, "text/plain"), rel


@pytest.mark.parametrize("path", ["/ui/../routes.py", "/ui/%2e%2e/routes.py", "/ui/js/nothing.js", "/ui/js"])
def test_nothing_outside_the_static_files(node: NodeThread, path: str) -> None:
    reply = http(node.url, "GET", path)
    assert reply.status == 404 and reply.code == "not_found", path
    assert b"import" not in reply.body


def test_data_still_needs_the_token(node: NodeThread) -> None:
    assert http(node.url, "GET", "/v1/status").code == "unauthorized"
    assert http(node.url, "GET", "/v1/status", headers={"Authorization": f"Bearer {TOKEN}"}).status == 200


def test_the_files_are_package_data() -> None:
    """setup.cfg ships every file of the static folder (its globs cover each one)."""
    cfg = (Path(__file__).resolve().parents[2] / "setup.cfg").read_text()
    line = next(x for x in cfg.splitlines() if x.startswith("node.web ="))
    globs = [g.strip() for g in line.split("=", 1)[1].split(",")]
    for path in STATIC.rglob("*"):
        if path.is_file():
            rel = path.relative_to(STATIC.parent)
            assert any(rel.match(g) for g in globs), rel
