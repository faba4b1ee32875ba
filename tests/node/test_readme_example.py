"""The README's ten-line client example runs as written against a real node: it
submits, subscribes and gets a verified answer (only the node's address is changed)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.node.conftest import NodeThread, make_testnet, node_config

README = Path(__file__).parents[2] / "README.md"


def _example() -> str:
    text = README.read_text()
    marker = text.index("<!-- client-example:")
    block = re.search(r"```python\n(.*?)```", text[marker:], re.S)
    assert block is not None, "the README lost its client example"
    return block.group(1)


def test_the_readme_client_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = _example()
    assert len([line for line in code.splitlines() if line and not line.startswith(("from ", "import "))]) <= 10
    net = make_testnet(tmp_path / "net")
    node = NodeThread(node_config(net))
    node.start()
    try:
        monkeypatch.chdir(tmp_path)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code.replace("http://127.0.0.1:26650", node.url), "README.md", "exec"), {})
    finally:
        node.stop()
    lines = out.getvalue().splitlines()
    assert lines[0] == "ok", lines
    assert "'type': 'rating.issue'" in lines[1] and "'kind': 'tx'" in lines[1], lines
    assert re.fullmatch(r"A certified at height \d+ by 1 of 1 validators \(quorum 1\)", lines[2]), lines
