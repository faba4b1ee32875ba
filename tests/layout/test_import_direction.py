"""Dependencies run one way (DESIGN §1), and inside `node/` by who uses the code:
what a bank or a gateway vendor imports (`node.client`, `node.gateway`) never
drags in the server, LevelDB or libp2p; of the other parts the running node
(`node.server`) imports only the web platform it serves (`node.web`), never the
operator tools, the load generator or the commands; nothing imports upward.
Checked statically over every module, and by importing the client library in a
fresh interpreter and looking at what it loaded."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# top-level layers: who may import whom among our packages (DESIGN §1)
LAYERS: dict[str, set[str]] = {
    "primitives": set(),
    "consensus": {"primitives"},
    "contracts": {"primitives"},
    "p2p": {"primitives"},
    "storage": {"primitives"},
    "node": {"primitives", "consensus", "contracts", "p2p", "storage"},
    "cli": {"primitives", "node"},
}
# inside node/: which of its sub-packages each may import (itself always)
NODE_PARTS: dict[str, set[str]] = {
    "client": set(),
    "gateway": {"client"},
    "web": set(),
    "server": {"web"},
    "tools": {"client", "gateway", "server"},
    "load": {"client", "tools"},
    "commands": {"client", "gateway", "server", "tools", "load"},
}
# outside packages the client library and the gateway must not pull in
HEAVY = {"plyvel", "libp2p", "trio", "aiohttp", "storage", "p2p", "consensus"}
LIGHT_PARTS = {"client", "gateway"}
ASYNC_CLIENT = ("node", "client", "aio.py")
"""The one light module allowed aiohttp: the asyncio client, loaded only by who uses it."""


def _imports(source: str, name: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    out: list[tuple[int, str]] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [(n.lineno, a.name) for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.module:
            assert n.level == 0, f"{name}: relative imports hide the direction; use absolute ones"
            out.append((n.lineno, n.module))
    return out


def _sources() -> list[Path]:
    files = [ROOT / "cli.py"]
    for layer in LAYERS:
        if layer != "cli":
            files += sorted((ROOT / layer).rglob("*.py"))
    return files


def _where(rel: tuple[str, ...]) -> tuple[str, str | None]:
    """(top-level layer, node sub-package or None)."""
    if rel == ("cli.py",):
        return "cli", None
    if rel[0] == "node" and len(rel) > 2:
        return "node", rel[1]
    return rel[0], None


def check_module(rel: tuple[str, ...], source: str) -> list[str]:
    """Every import of one module (path parts relative to the root) that runs the wrong way."""
    layer, part = _where(rel)
    name = "/".join(rel)
    bad = []
    for line, module in _imports(source, name):
        top, *rest = module.split(".")
        where = f"{name}:{line} imports {module}"
        if top in LAYERS and top != layer and top not in LAYERS[layer]:
            bad.append(f"{where} (against DESIGN §1)")
        if layer == "node" and top == "node" and rest:
            target = rest[0]
            if part is None:
                bad.append(f"{where} (node/__init__ stays empty of imports)")
            elif target != part and target not in NODE_PARTS[part]:
                bad.append(f"{where} (node.{part} may not use node.{target})")
        if part in LIGHT_PARTS and top in HEAVY and not (top == "aiohttp" and rel == ASYNC_CLIENT):
            bad.append(f"{where} (the client library must not drag in {top})")
    return bad


def violations() -> list[str]:
    bad = []
    for path in _sources():
        bad += check_module(path.relative_to(ROOT).parts, path.read_text(encoding="utf-8"))
    return bad


def test_every_node_module_is_in_a_part() -> None:
    """A new module lands in one of the rooms, not loose in node/."""
    loose = [p.name for p in (ROOT / "node").glob("*.py") if p.name != "__init__.py"]
    assert loose == []
    parts = {p.name for p in (ROOT / "node").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert parts == set(NODE_PARTS)


def test_imports_run_one_way() -> None:
    assert violations() == []


def test_the_checker_sees_wrong_imports() -> None:
    """The check above can fail: each kind of wrong import is caught."""
    probe = "from node.server.core import NodeCore\nimport plyvel\n"
    assert len(check_module(("node", "client", "probe.py"), probe)) == 2
    assert len(check_module(("node", "server", "probe.py"), "from node.load.workload import x\n")) == 1
    assert len(check_module(("node", "server", "probe.py"), "import node.tools.demo\n")) == 1
    assert len(check_module(("storage", "probe.py"), "from contracts import x\n")) == 1
    assert len(check_module(("primitives", "probe.py"), "import node.server.core\n")) == 1
    assert check_module(("node", "tools", "probe.py"), "from node.server.config import x\n") == []


def test_client_library_loads_no_server() -> None:
    """Importing the client library and the gateway loads none of the server, LevelDB
    or libp2p (what a bank's engineer installs in their own service)."""
    code = (
        "import json, sys\n"
        "import node.client.rpc, node.client.txs, node.client.reports, node.gateway.device\n"
        "from node.client import Client, DeviceReporter, Signer, builders\n"
        "print(json.dumps(sorted(m for m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "node.client.rpc" in loaded
    dragged = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(("node.server", "node.tools")))
    assert dragged == []
