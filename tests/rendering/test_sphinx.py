"""The `session-lifecycle` Sphinx directive, in real Sphinx builds of a small project in a tmp dir."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import require_graphviz

from statemachine import builtin_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "session_lifecycle.yaml"


@pytest.fixture(scope="module", autouse=True)
def graphviz_available() -> None:
    require_graphviz()


def _project(tmp_path: Path, page: str) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text('project = "demo"\nextensions = ["statemachine.rendering.sphinx"]\n')
    (src / "index.rst").write_text(page)
    return src


def _build(src: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    out = src.parent / "out"
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", *flags, str(src), str(out)],
        capture_output=True, text=True, timeout=300, cwd=src.parent,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _texts(page: str) -> set[str]:
    """The text nodes of the page's inline SVGs."""
    svgs = re.findall(r"<svg\b.*?</svg>", page, re.S)
    return {html.unescape(t) for svg in svgs for t in re.findall(r"<text\b[^>]*>([^<]*)</text>", svg)}


def test_the_directive_draws_the_diagram_with_every_status(tmp_path: Path) -> None:
    src = _project(tmp_path, "Lifecycle\n=========\n\n.. session-lifecycle::\n\nafter\n")
    proc = _build(src, "-W")
    assert proc.returncode == 0, proc.stderr
    page = (src.parent / "out" / "index.html").read_text()
    assert page.count("<svg") == 1
    assert '<div class="session-lifecycle" data-edges="all"' in page
    texts = _texts(page)
    assert set(builtin_spec().status_names) <= texts
    assert "<script" not in page.split('class="session-lifecycle"')[1].split("</svg>")[0]


def test_spec_and_edges_options_choose_the_file_and_the_edges(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "mine.yaml").write_bytes(SPEC.read_bytes())
    page = ("Edges\n=====\n\n"
            ".. session-lifecycle::\n   :spec: ../specs/mine.yaml\n   :edges: command\n\n"
            ".. session-lifecycle::\n   :spec: /../specs/mine.yaml\n   :edges: provider\n")
    src = _project(tmp_path, page)
    proc = _build(src, "-W")
    assert proc.returncode == 0, proc.stderr
    out = (src.parent / "out" / "index.html").read_text()
    command, provider = re.findall(r"<svg\b.*?</svg>", out, re.S)
    commands = {t for e in builtin_spec().events if e.is_command for t in e.triggers}
    labels_command, labels_provider = _texts(command), _texts(provider)
    # Each picture's edge labels name only triggers of its own kind.
    assert any(c in label for label in labels_command for c in commands)
    assert not any(c in label for label in labels_provider for c in commands)
    assert any("turn.started" in label for label in labels_provider)
    assert not any("turn.started" in label for label in labels_command)


def test_a_missing_spec_fails_the_build_naming_the_page_line_and_file(tmp_path: Path) -> None:
    page = "Broken\n======\n\ntext\n\n.. session-lifecycle::\n   :spec: no-such-spec.yaml\n"
    src = _project(tmp_path, page)
    proc = _build(src, "-W")
    assert proc.returncode != 0
    assert "index.rst:6" in proc.stderr
    assert "no-such-spec.yaml" in proc.stderr and "option \"spec\"" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_broken_spec_names_its_place(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bad.yaml").write_text(SPEC.read_text().replace("initial: idle", "initial: nowhere", 1))
    (tmp_path / "src" / "conf.py").write_text('extensions = ["statemachine.rendering.sphinx"]\n')
    (tmp_path / "src" / "index.rst").write_text("T\n=\n\n.. session-lifecycle::\n   :spec: bad.yaml\n")
    proc = _build(tmp_path / "src", "-W")
    assert proc.returncode != 0
    assert "index.rst:4" in proc.stderr and "bad.yaml" in proc.stderr and "initial" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unknown_edges_value_is_an_error_at_the_directive(tmp_path: Path) -> None:
    src = _project(tmp_path, "T\n=\n\n.. session-lifecycle::\n   :edges: <b>bold</b>\n")
    proc = _build(src, "-W")
    assert proc.returncode != 0
    assert "index.rst:4" in proc.stderr and "edges" in proc.stderr and "all, provider, command" in proc.stderr
    # Without -W the page still builds; the value shows as text, never as markup.
    proc = _build(src)
    assert proc.returncode == 0, proc.stderr
    assert "<b>bold</b>" not in (src.parent / "out" / "index.html").read_text()
