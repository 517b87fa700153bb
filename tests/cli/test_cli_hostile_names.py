"""The command line on hostile file names: no traceback, whatever the bytes of the name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")
def test_export_promela_of_a_spec_whose_name_is_not_utf8(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/sp\xff\xfeec.yaml"
    shutil.copyfile(ROOT / "specs" / "session_lifecycle.yaml", name)
    result = subprocess.run(
        [sys.executable, "-m", "statemachine", "export", "promela", "--spec", name],
        capture_output=True, cwd=ROOT, timeout=120, check=False,
    )
    assert b"Traceback" not in result.stderr, result.stderr.decode(errors="replace")
    assert result.returncode == 0
    assert b"proctype" in result.stdout or b"active" in result.stdout
