"""statemachine/cli/main.py: settings read from the environment are checked, not guessed at."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from statemachine.core import wire

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "examples" / "codex_session.jsonl"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "statemachine", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.mark.parametrize("value", ["bogus", "simdjson", "jsno"])
def test_an_unknown_decoder_name_is_refused(value: str) -> None:
    proc = run("replay", str(LOG), env={"STATEMACHINE_JSON": value})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"replay: STATEMACHINE_JSON={value!r}: decoder must be one of "
                           f"{list(wire.DECODERS)}, got {value!r}\n")


@pytest.mark.parametrize("value", ["", "auto", "json", " JSON ", "msgspec"])
def test_the_known_names_still_run(value: str) -> None:
    if value == "msgspec" and not wire.fast_available():
        pytest.skip("needs the [fast] extra")
    proc = run("replay", "--json", str(LOG), env={"STATEMACHINE_JSON": value})
    assert proc.returncode == 0 and proc.stderr == ""


def test_the_library_still_imports_and_reports_the_setting() -> None:
    code = "from statemachine.core import wire; print(wire.decoder_name(), wire.setting_error())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "STATEMACHINE_JSON": "bogus"})
    assert proc.returncode == 0
    assert "STATEMACHINE_JSON='bogus'" in proc.stdout
