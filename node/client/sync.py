"""The synchronous client: typed methods over `RpcClient`'s kept-alive connection, and
an event subscription as a plain iterator (the resuming `AsyncEventStream` running on
a thread of its own; aiohttp is loaded only then).

    client = Client("http://127.0.0.1:26650", token)
    print(client.status().height)
    with client.subscribe(from_height=1, kinds=("block",)) as events:
        for event in events:
            ...
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from node.client import api
from node.client.api import Account, BlockInfo, Call, Page, StateEntry, Status, Submitted, TxInfo, error_from
from node.client.resume import Backoff
from node.client.rpc import RpcClient
from primitives.errors import Code, GodownError
from primitives.tx import SignedTx

T = TypeVar("T")
EVENT_BUFFER = 1000
"""Events held between the stream's thread and a consumer; the thread waits when full."""


class Client:
    """One node's RPC. Error answers raise `GodownError` with the node's code. `rpc` is
    the untyped `RpcClient` underneath, for the helpers that take one."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.rpc = RpcClient(url, token, timeout)
        self.url = self.rpc.url
        self.token = token

    def close(self) -> None:
        self.rpc.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def run(self, call: Call[T]) -> T:
        """Send one call and read its answer."""
        status, data = self.rpc.send(call.method, call.path, call.body, call.ctype)
        if status >= 400:
            raise error_from(status, data)
        return call.read(json.loads(data))

    def status(self) -> Status:
        return self.run(api.status())

    def tx(self, tx_id: str) -> TxInfo:
        return self.run(api.tx(tx_id))

    def block(self, height: int | str = "latest") -> BlockInfo:
        return self.run(api.block(height))

    def state(self, key: bytes | str) -> StateEntry:
        return self.run(api.state(key))

    def case(self, ident: str) -> dict[str, Any]:
        return self.run(api.view("case", ident))

    def lot(self, ident: str) -> dict[str, Any]:
        return self.run(api.view("lot", ident))

    def device(self, ident: str) -> dict[str, Any]:
        return self.run(api.view("device", ident))

    def alarm(self, ident: str) -> dict[str, Any]:
        return self.run(api.view("alarm", ident))

    def proposal(self, ident: str) -> dict[str, Any]:
        return self.run(api.view("proposal", ident))

    def proposals(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return self.run(api.proposals(state, limit))

    def page(
        self, name: str, filters: Mapping[str, str | int] | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page:
        """One page of a list (`api.LISTS`): pass the answer's `next` as `cursor` for the next one."""
        return self.run(api.listing(name, filters, limit, cursor))

    def whoami(self) -> dict[str, Any]:
        return self.run(api.whoami())

    def lot_history(self, lot_id: str) -> list[dict[str, Any]]:
        return self.run(api.lot_history(lot_id))

    def validators_health(self) -> list[dict[str, Any]]:
        return self.run(api.validators_health())

    def audit(self) -> dict[str, Any]:
        return self.run(api.audit())

    def members(self) -> list[dict[str, Any]]:
        return self.run(api.members())

    def validators(self) -> dict[str, Any]:
        return self.run(api.validators())

    def account(self, member_id: str) -> Account:
        return self.run(api.account(member_id))

    def next_nonce(self, member_id: str) -> int:
        return self.account(member_id).next_nonce

    def submit(self, signed: SignedTx, wait_ms: int = 0) -> Submitted:
        """Submit one transaction; with `wait_ms`, wait up to that long for its commit."""
        return self.run(api.submit(signed, wait_ms))

    def submit_many(self, txs: Sequence[SignedTx], wait_ms: int = 0) -> list[Submitted]:
        return self.run(api.submit_many(txs, wait_ms))

    def subscribe(
        self,
        from_height: int | None = None,
        kinds: Sequence[str] = (),
        match: Mapping[str, str] | None = None,
        backoff: Backoff = Backoff(),
    ) -> EventStream:
        """Committed-chain events from `from_height` (default: the next block), resumed
        after a dropped connection or a node restart without a gap or a repeat."""
        return EventStream(self.url, self.token, from_height, tuple(kinds), dict(match or {}), backoff)


_END = object()


class EventStream:
    """A blocking iterator over a resuming subscription; `close` (or leaving the `with`
    block) stops its thread. Raises the stream's `GodownError` where the async one would."""

    def __init__(
        self,
        url: str,
        token: str | None,
        from_height: int | None,
        kinds: tuple[str, ...],
        match: dict[str, str],
        backoff: Backoff,
    ) -> None:
        self._args = (url, token, from_height, kinds, match, backoff)
        self._items: queue.Queue[Any] = queue.Queue(EVENT_BUFFER)
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._pump(),), daemon=True)
        self._thread.start()

    async def _pump(self) -> None:
        self._task = asyncio.current_task()
        if self._stop.is_set():  # closed before the thread got here
            return
        from node.client.aio import AsyncClient  # aiohttp only for who subscribes

        url, token, from_height, kinds, match, backoff = self._args
        try:
            async with AsyncClient(url, token) as client:
                stream = client.subscribe(from_height, kinds, match, backoff)
                try:
                    async for event in stream:
                        self.reconnects = stream.reconnects
                        self._put(event)
                finally:
                    await stream.aclose()
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # handed to the consumer, raised by next()
            self._put(exc)
        finally:
            self._put(_END)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        return self.next()

    def next(self, timeout: float | None = None) -> dict[str, Any]:
        """The next event; `TimeoutError` if none comes within `timeout` seconds."""
        try:
            item = self._items.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no event within {timeout} s") from None
        if item is _END:
            self._items.put(_END)  # later calls end too
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return dict(item)

    def close(self) -> None:
        self._stop.set()
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._cancel)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()
        else:
            raise GodownError(Code.INTERNAL, "event stream thread did not stop")

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
