"""The web platform's files served by the node itself at `/ui/` (`/` redirects there).

The files are public: they hold no data, and the login page must load without the
token. Every data request goes to `/v1/*` with the token like any other client. A
Content-Security-Policy keeps every request the page makes on this node: no CDN, no
third-party script, no connection elsewhere.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from aiohttp import web

from primitives.errors import Code, GodownError

STATIC = (Path(__file__).parent / "static").resolve()
UI_PREFIX = "/ui/"

CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".md": "text/plain",
}
"""What each shipped file is served as; anything else is plain text (the vendored licences)."""

_TEXT = ("text/", "application/json", "image/svg+xml")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def is_ui_path(path: str) -> bool:
    """Paths answered without the bearer token: the UI's files and the redirect to them."""
    return path in ("/", "/ui") or path.startswith(UI_PREFIX)


def content_security_policy(host: str) -> str:
    """Scripts, styles, images and connections from this node only; the event stream's
    WebSocket is named by the host the page was loaded from (when it is a plain host)."""
    sockets = f" ws://{host} wss://{host}" if _HOST.match(host) else ""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'{sockets}; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


def _file_of(rel: str) -> Path:
    target = (STATIC / (rel or "index.html")).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        raise GodownError(Code.NOT_FOUND, f"no file {rel} in the web platform")
    return target


async def ui_file(request: web.Request) -> web.Response:
    target = _file_of(request.match_info["path"])
    body = target.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "Content-Security-Policy": content_security_policy(request.host),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
        "ETag": etag,
    }
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    ctype = CONTENT_TYPES.get(target.suffix, "text/plain")
    text = ctype.startswith(_TEXT)
    resp = web.Response(body=body, headers=headers, content_type=ctype, charset="utf-8" if text else None)
    if text:
        resp.enable_compression()
    return resp


async def to_ui(request: web.Request) -> web.Response:
    raise web.HTTPFound(UI_PREFIX)


def add_ui_routes(app: web.Application) -> None:
    """Route `/ui/…` to the shipped files and `/` (and `/ui`) to the UI."""
    app.router.add_get("/", to_ui)
    app.router.add_get("/ui", to_ui)
    app.router.add_get(UI_PREFIX + "{path:.*}", ui_file)
