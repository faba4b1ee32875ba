"""Query parameters of the list endpoints: `limit` (1..MAX_LIMIT), `cursor` (the opaque
`next` of the previous answer) and the filters, each checked once so that every bad
parameter is a 400 `malformed` naming it, and an unknown one is refused rather than
silently ignored (a misspelt filter would otherwise answer everything)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from primitives.errors import Code, GodownError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_PARAM_CHARS = 256


def _bad(message: str) -> GodownError:
    return GodownError(Code.MALFORMED, message)


@dataclass(frozen=True)
class Query:
    """The checked query of one list request."""

    params: Mapping[str, str]
    limit: int
    cursor: str | None

    def text(self, name: str) -> str | None:
        """A filter's value (None when absent)."""
        return self.params.get(name)

    def choice(self, name: str, allowed: Collection[str]) -> str | None:
        value = self.params.get(name)
        if value is not None and value not in allowed:
            raise _bad(f"{name} must be one of {', '.join(sorted(allowed))}")
        return value

    def height(self, name: str) -> int | None:
        """A positive height parameter (e.g. `before`)."""
        raw = self.params.get(name)
        if raw is None:
            return None
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or int(raw) < 1:
            raise _bad(f"{name} must be a positive integer")
        return int(raw)


def parse_query(query: Mapping[str, str], filters: Collection[str], paged: bool = True) -> Query:
    """Check `query` against the endpoint's `filters` (plus limit and cursor when `paged`)."""
    known = set(filters) | ({"limit", "cursor"} if paged else set())
    params: dict[str, str] = {}
    for name, value in query.items():
        if name not in known:
            raise _bad(f"unknown parameter {name!r}; this endpoint takes {', '.join(sorted(known)) or 'none'}")
        if name in params:
            raise _bad(f"parameter {name} given twice")
        if not value or len(value) > MAX_PARAM_CHARS:
            raise _bad(f"{name} must be 1..{MAX_PARAM_CHARS} characters")
        params[name] = value
    limit = DEFAULT_LIMIT
    raw = params.get("limit")
    if raw is not None:
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= MAX_LIMIT:
            raise _bad(f"limit must be an integer 1..{MAX_LIMIT}")
        limit = int(raw)
    assert 1 <= limit <= MAX_LIMIT
    return Query(params, limit, params.get("cursor"))


def position_cursor(height: int, index: int) -> str:
    """The cursor after a transaction at (height, index): what a newest-first walk resumes below."""
    return f"{height}.{index}"


def parse_position(cursor: str) -> tuple[int, int]:
    head, _, tail = cursor.partition(".")
    if not (head.isascii() and head.isdigit() and tail.isascii() and tail.isdigit()) or len(cursor) > 32:
        raise _bad("cursor is not one this node gave")
    return int(head), int(tail)
