"""A small RPC client for the CLI, the demo, the gateway and the auditor.

Synchronous on purpose (these tools do one thing at a time) and on the standard
library's http.client with a kept-alive connection. Error answers become
`GodownError` with the server's code, so callers see the same codes as the node.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import quote, urlsplit

from node.client.api import error_from
from primitives.errors import Code, GodownError
from primitives.tx import SignedTx


class RpcClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise GodownError(Code.BAD_CONFIG, f"RPC URL must look like http://127.0.0.1:26650, not {url!r}")
        self.url = f"http://{parts.hostname}:{parts.port or 80}"
        self._host, self._port = parts.hostname, parts.port or 80
        self._token = token
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def send(
        self, method: str, path: str, body: bytes | None = None, ctype: str = "application/json"
    ) -> tuple[int, bytes]:
        """One request on the kept-alive connection (reopened once if the node closed it):
        the HTTP status and the raw answer; `unavailable` if the node cannot be reached."""
        headers = {"Content-Type": ctype} if body is not None else {}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            try:
                self._conn.request(method, path, body=body, headers=headers)
                resp = self._conn.getresponse()
                return resp.status, resp.read()
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                self.close()
                if attempt:
                    raise GodownError(
                        Code.UNAVAILABLE, f"cannot reach node at {self.url} ({exc.__class__.__name__})"
                    ) from None
        raise AssertionError("unreachable")

    def _request(self, method: str, path: str, body: bytes | None = None, ctype: str = "application/json") -> Any:
        status, data = self.send(method, path, body, ctype)
        if status >= 400:
            raise error_from(status, data)
        if method == "GET" and path == "/metrics":
            return data.decode()
        try:
            return json.loads(data) if data else None
        except ValueError:
            return None

    def get(self, path: str) -> Any:
        return self._request("GET", path)

    def status(self) -> dict[str, Any]:
        return self.get("/v1/status")  # type: ignore[no-any-return]

    def next_nonce(self, sender: str) -> int:
        return int(self.get(f"/v1/accounts/{quote(sender, safe='')}")["next_nonce"])

    def submit(self, stx: SignedTx, wait_ms: int = 0) -> dict[str, Any]:
        body = json.dumps({"tx": stx.tx_bytes.hex(), "sig": stx.sig.hex()}).encode()
        return self._request("POST", f"/v1/txs?wait_ms={wait_ms}", body)  # type: ignore[no-any-return]

    def submit_many(self, txs: list[SignedTx], wait_ms: int = 0) -> list[dict[str, Any]]:
        from primitives import codec

        body = codec.encode([t.to_dict() for t in txs])
        doc = self._request("POST", f"/v1/txs?wait_ms={wait_ms}", body, "application/msgpack")
        return doc["results"]  # type: ignore[no-any-return]

    def tx(self, tx_id: str) -> dict[str, Any]:
        return self.get(f"/v1/txs/{tx_id}")  # type: ignore[no-any-return]

    def block(self, height: int | str) -> dict[str, Any]:
        return self.get(f"/v1/blocks/{height}")  # type: ignore[no-any-return]

    def wait_height(self, height: int, timeout: float = 30.0) -> int:
        """Poll until the node's height reaches `height`; returns the height seen."""
        deadline = time.monotonic() + timeout
        while True:
            h = int(self.status()["height"])
            if h >= height:
                return h
            if time.monotonic() > deadline:
                raise GodownError(Code.UNAVAILABLE, f"{self.url} did not reach height {height} in {timeout:.0f} s")
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.status()
            except GodownError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
