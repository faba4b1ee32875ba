"""The misbehaviour switch is for tests only: it needs the hidden flag *and* the environment
switch, and nothing in a node config can turn it on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from node.server.pbft.misbehaviour import ENV_SWITCH, KINDS, Misbehaviour
from primitives.errors import Code, GodownError


def test_parse_needs_the_environment_switch() -> None:
    with pytest.raises(GodownError) as err:
        Misbehaviour.parse("silent", environ={})
    assert err.value.code is Code.BAD_CONFIG and ENV_SWITCH in err.value.message
    assert Misbehaviour.parse("censor:abc", environ={ENV_SWITCH: "1"}) == Misbehaviour("censor", "abc")
    for bad in ("nonsense", "censor", "censor:"):
        with pytest.raises(GodownError) as err:
            Misbehaviour.parse(bad, environ={ENV_SWITCH: "1"})
        assert err.value.code is Code.BAD_CONFIG
    assert {
        Misbehaviour.parse(k + (":m" if k == "censor" else ""), environ={ENV_SWITCH: "1"}).kind for k in KINDS
    } == set(KINDS)


def test_the_cli_refuses_without_the_switch_and_hides_the_flag(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if k != ENV_SWITCH}
    run = subprocess.run(
        [sys.executable, "-m", "cli", "node", "start", "--config", "/nonexistent.json", "--misbehave", "silent"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode != 0
    assert "error [bad_config]" in run.stderr and ENV_SWITCH in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    helptext = subprocess.run(
        [sys.executable, "-m", "cli", "node", "start", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "--misbehave" not in helptext
