"""What every `godown` command shares: one-line errors with their code (never a
traceback), JSON output, and the RPC options."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from primitives.errors import GodownError

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn GodownError into a one-line message with its code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GodownError as exc:
            click.echo(f"error [{exc.code.value}]: {exc.message}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def echo_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


rpc_option = click.option(
    "--rpc",
    "rpc_url",
    default="http://127.0.0.1:26650",
    show_default=True,
    envvar="GODOWN_RPC",
    help="a node's RPC URL",
)
token_option = click.option("--token", default=None, envvar="GODOWN_TOKEN", help="bearer token, if the node needs one")
