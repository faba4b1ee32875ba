"""The consensus package stays a pure state machine: no event loop, socket, clock,
disk, module-level randomness or other godown package (only primitives)."""

from __future__ import annotations

import ast
from pathlib import Path

import consensus

BANNED = {
    "asyncio",
    "trio",
    "socket",
    "time",
    "datetime",
    "threading",
    "selectors",
    "plyvel",
    "os",
    "pathlib",
    "secrets",
    "random",
    "subprocess",
    "aiohttp",
    "libp2p",
    "storage",
    "p2p",
    "node",
    "contracts",
    "cli",
}
PACKAGE = Path(consensus.__file__).parent


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_banned_imports() -> None:
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module.split(".")[0]]
            offenders += [f"{path.name}:{node.lineno} imports {n}" for n in names if n in BANNED]
    assert offenders == []


def test_no_module_level_randomness() -> None:
    """`random` may only be used through an injected `random.Random` instance."""
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "random":
                offenders.append(f"{path.name}:{node.lineno} from random import ...")
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "random"
                and node.attr != "Random"
            ):
                offenders.append(f"{path.name}:{node.lineno} random.{node.attr}")
    assert offenders == []


def test_the_checker_sees_a_violation() -> None:
    """The ban test itself can fail: a planted import is found."""
    tree = ast.parse("import time\nfrom asyncio import run\n")
    found = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert found & BANNED == {"time"}
