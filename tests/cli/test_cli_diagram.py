"""statemachine/cli/diagram.py: a binary diagram is never written to a terminal."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")


def run_on_terminal(*args: str) -> tuple[int, bytes, bytes]:
    """The CLI with standard output a pseudo-terminal; returns (exit code, what the terminal got, stderr)."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "statemachine", *args], stdout=follower, stderr=subprocess.PIPE,
                              cwd=ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    return proc.returncode, shown, proc.stderr


def test_png_to_a_terminal_is_refused() -> None:
    code, shown, err = run_on_terminal("diagram", "--format", "png")
    assert code == 2 and shown == b""
    assert err.decode() == ("diagram: PNG is binary and standard output is a terminal: give -o FILE.png, "
                            "or redirect it\n")
    code, shown, _ = run_on_terminal("diagram", "--format", "png", "-o", "-")
    assert code == 2 and shown == b""


def test_text_formats_still_go_to_a_terminal() -> None:
    code, shown, err = run_on_terminal("diagram")
    assert code == 0 and err == b"" and b"stateDiagram-v2" in shown


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
def test_png_to_a_file_or_a_pipe_is_written(tmp_path: Path) -> None:
    out = tmp_path / "d.png"
    code, shown, _ = run_on_terminal("diagram", "--format", "png", "-o", str(out))
    assert code == 0 and shown == b"" and out.read_bytes().startswith(b"\x89PNG")
    piped = subprocess.run([sys.executable, "-m", "statemachine", "diagram", "--format", "png"], capture_output=True,
                           cwd=ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert piped.returncode == 0 and piped.stdout.startswith(b"\x89PNG")
