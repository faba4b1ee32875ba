"""Small shared names for the consensus package: ids, heights, views, rejections.

`NewType`s keep a height from being passed where a view is expected; `Rejection`
is how the replica reports a refused input without raising (the driver counts
them, tests assert on their stable codes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

from primitives.errors import Code

NodeId = NewType("NodeId", str)
Height = NewType("Height", int)
View = NewType("View", int)


@dataclass(frozen=True)
class Rejection:
    """One refused input: a stable code and a human-readable reason."""

    code: Code
    reason: str
