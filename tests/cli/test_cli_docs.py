"""statemachine/cli/docs.py: nothing is created unless everything can be generated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HIDE_GRAPHVIZ = "import sys; sys.modules['graphviz'] = None  # any `import graphviz` now fails"


def run(*args: str, prelude: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    code = f"{prelude}\nimport sys\nfrom statemachine.cli.main import main\nsys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_without_the_graphviz_package_no_directory_is_left(tmp_path: Path) -> None:
    out = tmp_path / "new" / "docs"
    proc = run("docs", "--out", str(out), prelude=HIDE_GRAPHVIZ)
    assert proc.returncode == 2 and "pip install graphviz" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_without_the_dot_program_no_directory_is_left(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    out = tmp_path / "docs"
    proc = run("docs", "--out", str(out), env={"PATH": str(empty)})
    assert proc.returncode == 2 and "graphviz" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]
