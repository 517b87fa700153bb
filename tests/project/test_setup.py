"""scripts/setup.sh: it asks for every Debian package the checks need, a C compiler included.

Run in a copy of the repository's layout with stand-in commands on PATH, as a user who is not
root: the script then only says what it would install, and its pip step is a stand-in too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _stub(directory: Path, name: str, body: str = "exit 0") -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def run_setup(tmp_path: Path, present: list[str]) -> str:
    tree = tmp_path / "repo"
    (tree / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", tree / "scripts" / "setup.sh")
    (tree / ".venv" / "bin").mkdir(parents=True)
    _stub(tree / ".venv" / "bin", "python")  # pip install and compileall: nothing to do here
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "id", "echo 1000")  # not root: the script asks instead of running apt-get
    _stub(bin_dir, "dirname", f'exec {shutil.which("dirname")} "$@"')
    # The Node packages' step, when npm is present: the lock differs, and npm and cp are stand-ins.
    _stub(bin_dir, "cmp", "exit 1")
    _stub(bin_dir, "cp")
    for name in present:
        _stub(bin_dir, name)
    proc = subprocess.run([shutil.which("bash") or "bash", str(tree / "scripts" / "setup.sh")], capture_output=True,
                          text=True, timeout=60, env={"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_a_machine_without_a_c_compiler_is_asked_for_gcc(tmp_path: Path) -> None:
    said = run_setup(tmp_path, ["spin", "dot", "initdb", "chromium"])
    assert "please install the Debian packages: gcc " in said


@pytest.mark.parametrize("compiler", ["cc", "gcc"])
def test_a_machine_with_a_compiler_is_not(tmp_path: Path, compiler: str) -> None:
    said = run_setup(tmp_path, ["spin", "dot", "initdb", "chromium", "node", "npm", compiler])
    assert "gcc" not in said and "please install" not in said


def test_every_missing_tool_is_named_once(tmp_path: Path) -> None:
    said = run_setup(tmp_path, [])
    asked = said.split("please install the Debian packages: ", 1)[1].split(" (", 1)[0].split()
    # postgresql is found by its installed path too, which this machine may have
    assert [p for p in asked if p != "postgresql"] == ["spin", "graphviz", "gcc", "chromium", "nodejs", "npm"]
