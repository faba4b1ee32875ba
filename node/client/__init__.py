"""The client library: what a bank's service or a gateway vendor imports to talk
to a node — typed sync and async clients, an event subscription that resumes, a
typed builder for every transaction type and a signer, the device reporter, sealing
and opening device reports, and the light client (`node.client.verify`). It imports
none of the server, LevelDB or libp2p. Guide: docs/client.md."""

from typing import Any

from node.client import builders
from node.client.api import Account, BlockInfo, Page, StateEntry, Status, Submitted, TxInfo
from node.client.builders import BUILDERS, Body
from node.client.reporter import Delivery, DeviceReporter
from node.client.reports import open_report
from node.client.resume import Backoff
from node.client.rpc import RpcClient
from node.client.sync import Client, EventStream
from node.client.txs import NonceBook, Signer, sign_tx
from primitives.errors import Code, GodownError

__all__ = [
    "BUILDERS",
    "Account",
    "AsyncClient",
    "AsyncEventStream",
    "Backoff",
    "BlockInfo",
    "Body",
    "Client",
    "Code",
    "Delivery",
    "DeviceReporter",
    "EventStream",
    "GodownError",
    "NonceBook",
    "Page",
    "RpcClient",
    "Signer",
    "StateEntry",
    "Status",
    "Submitted",
    "TxInfo",
    "builders",
    "open_report",
    "sign_tx",
]


def __getattr__(name: str) -> Any:
    """The asyncio client loads aiohttp, so it is imported only when asked for."""
    if name in ("AsyncClient", "AsyncEventStream"):
        from node.client import aio

        return getattr(aio, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
