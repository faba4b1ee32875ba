"""The asyncio client (aiohttp): the same typed methods as the sync `Client`, and an
event subscription that survives dropped connections and node restarts.

    async with AsyncClient("http://127.0.0.1:26650", token) as client:
        print((await client.status()).height)
        async for event in client.subscribe(from_height=1, kinds=("block", "alarm")):
            ...
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

from node.client import api
from node.client.api import Account, BlockInfo, Call, Page, StateEntry, Status, Submitted, TxInfo, error_from
from node.client.resume import Backoff, Cursor
from primitives.errors import Code, GodownError
from primitives.tx import SignedTx

T = TypeVar("T")
RETRIED = (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError)


def base_url(url: str) -> str:
    """`http://host:port` from a URL or a bare `host:port`."""
    url = url if "://" in url else f"http://{url}"
    if not url.startswith("http://"):
        raise GodownError(Code.BAD_CONFIG, f"RPC URL must look like http://127.0.0.1:26650, not {url!r}")
    return url.rstrip("/")


class AsyncClient:
    """One node's RPC over an aiohttp session (made here unless one is given; closed by
    `close` only if made here). Error answers raise `GodownError` with the node's code;
    an unreachable node raises `unavailable`."""

    def __init__(
        self, url: str, token: str | None = None, timeout: float = 30.0, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.url = base_url(url)
        self.token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._own_session = session is None
        self._session = session

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.close()

    async def run(self, call: Call[T]) -> T:
        """Send one call and read its answer."""
        headers = {**self.headers, **({"Content-Type": call.ctype} if call.body is not None else {})}
        try:
            async with self.session.request(call.method, self.url + call.path, data=call.body, headers=headers) as r:
                data = await r.read()
                status = r.status
        except RETRIED as exc:
            raise GodownError(Code.UNAVAILABLE, f"cannot reach node at {self.url} ({exc.__class__.__name__})") from None
        if status >= 400:
            raise error_from(status, data)
        return call.read(json.loads(data))

    async def status(self) -> Status:
        return await self.run(api.status())

    async def tx(self, tx_id: str) -> TxInfo:
        return await self.run(api.tx(tx_id))

    async def block(self, height: int | str = "latest") -> BlockInfo:
        return await self.run(api.block(height))

    async def state(self, key: bytes | str) -> StateEntry:
        return await self.run(api.state(key))

    async def case(self, ident: str) -> dict[str, Any]:
        return await self.run(api.view("case", ident))

    async def lot(self, ident: str) -> dict[str, Any]:
        return await self.run(api.view("lot", ident))

    async def device(self, ident: str) -> dict[str, Any]:
        return await self.run(api.view("device", ident))

    async def alarm(self, ident: str) -> dict[str, Any]:
        return await self.run(api.view("alarm", ident))

    async def proposal(self, ident: str) -> dict[str, Any]:
        return await self.run(api.view("proposal", ident))

    async def proposals(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return await self.run(api.proposals(state, limit))

    async def page(
        self, name: str, filters: Mapping[str, str | int] | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page:
        """One page of a list (`api.LISTS`): pass the answer's `next` as `cursor` for the next one."""
        return await self.run(api.listing(name, filters, limit, cursor))

    async def whoami(self) -> dict[str, Any]:
        return await self.run(api.whoami())

    async def lot_history(self, lot_id: str) -> list[dict[str, Any]]:
        return await self.run(api.lot_history(lot_id))

    async def validators_health(self) -> list[dict[str, Any]]:
        return await self.run(api.validators_health())

    async def audit(self) -> dict[str, Any]:
        return await self.run(api.audit())

    async def members(self) -> list[dict[str, Any]]:
        return await self.run(api.members())

    async def validators(self) -> dict[str, Any]:
        return await self.run(api.validators())

    async def account(self, member_id: str) -> Account:
        return await self.run(api.account(member_id))

    async def next_nonce(self, member_id: str) -> int:
        return (await self.account(member_id)).next_nonce

    async def submit(self, signed: SignedTx, wait_ms: int = 0) -> Submitted:
        """Submit one transaction; with `wait_ms`, wait up to that long for its commit."""
        return await self.run(api.submit(signed, wait_ms))

    async def submit_many(self, txs: Sequence[SignedTx], wait_ms: int = 0) -> list[Submitted]:
        return await self.run(api.submit_many(txs, wait_ms))

    def subscribe(
        self,
        from_height: int | None = None,
        kinds: Sequence[str] = (),
        match: Mapping[str, str] | None = None,
        backoff: Backoff = Backoff(),
    ) -> AsyncEventStream:
        """Committed-chain events from `from_height` (default: the next block), resumed
        after a dropped connection or a node restart without a gap or a repeat."""
        return AsyncEventStream(self, from_height, tuple(kinds), dict(match or {}), backoff)


class AsyncEventStream:
    """An async iterator of events that reconnects with bounded back-off and resumes
    (`node.client.resume.Cursor`). Ends only by `aclose`; raises `GodownError` for what
    retrying cannot fix (`history_unavailable` after a long outage, `unauthorized`, …)."""

    def __init__(
        self,
        client: AsyncClient,
        from_height: int | None,
        kinds: tuple[str, ...],
        match: dict[str, str],
        backoff: Backoff,
    ) -> None:
        self.client = client
        self.kinds = kinds
        self.match = match
        self.backoff = backoff
        self.cursor: Cursor | None = None if from_height is None else Cursor(from_height)
        self.reconnects = 0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._failures = 0
        self._closed = False

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self._closed:
            ws = self._ws or await self._connect()
            if ws is None:
                continue
            try:
                msg = await ws.receive()
            except RETRIED:
                await self._drop()
                continue
            if msg.type is not aiohttp.WSMsgType.TEXT:
                await self._drop()
                continue
            event = json.loads(msg.data)
            self._failures = 0
            if event.get("kind") == "lagged":
                await self._drop()
                continue
            if event.get("kind") == "error":  # the node's refusal mid-stream, as an error answer
                raise error_from(400, json.dumps(event).encode())
            assert self.cursor is not None
            if self.cursor.offer(event):
                return dict(event)
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._closed = True
        await self._drop()

    async def _drop(self) -> None:
        if self._ws is not None:
            ws, self._ws = self._ws, None
            await ws.close()

    async def _connect(self) -> aiohttp.ClientWebSocketResponse | None:
        """Open the socket at the cursor; None after a failure worth retrying (having waited)."""
        try:
            if self.cursor is None:
                self.cursor = Cursor((await self.client.status()).height + 1)
            else:
                self.reconnects += 1
            path = api.events_path(self.cursor.reconnecting(), self.kinds, self.match)
            url = self.client.url.replace("http://", "ws://", 1) + path
            self._ws = await self.client.session.ws_connect(url, headers=self.client.headers, heartbeat=30)
            return self._ws
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status < 500:  # the node refused the resume point or the token: ask why
                raise await self._refusal(path) from None
        except GodownError as exc:
            if exc.code is not Code.UNAVAILABLE:
                raise
        except RETRIED:
            pass
        self._failures += 1
        await asyncio.sleep(self.backoff.delay(self._failures))
        return None

    async def _refusal(self, path: str) -> GodownError:
        """The node's error for a refused subscription (a plain GET gets the same checks)."""
        async with self.client.session.get(self.client.url + path, headers=self.client.headers) as r:
            return error_from(r.status, await r.read())
