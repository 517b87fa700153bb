"""The `session-lifecycle` MkDocs plugin, in real `mkdocs build` runs of a small project in a tmp dir."""

from __future__ import annotations

import html
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from helpers import require_graphviz

from statemachine import builtin_spec
from statemachine.rendering.mkdocs import find_blocks

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "session_lifecycle.yaml"
PLUGIN = "session-lifecycle"


@pytest.fixture(scope="module", autouse=True)
def graphviz_available() -> None:
    require_graphviz()


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A path entry under which MkDocs finds the plugin by its entry point, as declared in pyproject.

    An environment installed from this checkout has it already; one installed from an older
    checkout gets the same declaration as a distribution's metadata, so the entry point tested is
    always the one in pyproject.toml."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["mkdocs.plugins"]
    assert declared == {PLUGIN: "statemachine.rendering.mkdocs:SessionLifecyclePlugin"}
    installed = importlib.metadata.entry_points(group="mkdocs.plugins", name=PLUGIN)
    if any(ep.value == declared[PLUGIN] for ep in installed):
        return str(ROOT)
    site = tmp_path_factory.mktemp("site")
    info = site / "session_lifecycle_docs_plugin-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: session-lifecycle-docs-plugin\nVersion: 0\n")
    (info / "entry_points.txt").write_text(f"[mkdocs.plugins]\n{PLUGIN} = {declared[PLUGIN]}\n")
    return os.pathsep.join([str(ROOT), str(site)])


def _project(tmp_path: Path, page: str) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text(f"site_name: demo\nplugins:\n  - {PLUGIN}\n")
    (tmp_path / "docs" / "index.md").write_text(page)
    return tmp_path


def _build(project: Path, plugin_path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(project / "mkdocs.yml"),
         "-d", str(project / "site")],
        capture_output=True, text=True, timeout=300, cwd=project, env={**os.environ, "PYTHONPATH": plugin_path},
    )


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, re.S)


def _texts(svg: str) -> set[str]:
    return {html.unescape(t) for t in re.findall(r"<text\b[^>]*>([^<]*)</text>", svg)}


def test_the_block_becomes_the_diagram_with_every_status(tmp_path: Path, plugin_path: str) -> None:
    page = "# Lifecycle\n\nBefore.\n\n```session-lifecycle\n```\n\nAfter.\n"
    proc = _build(_project(tmp_path, page), plugin_path)
    assert proc.returncode == 0, proc.stderr
    out = (tmp_path / "site" / "index.html").read_text()
    (svg,) = _svgs(out)
    assert set(builtin_spec().status_names) <= _texts(svg)
    assert '<div class="session-lifecycle" data-edges="all"' in out
    assert "session-lifecycle</code>" not in out and "data-session-lifecycle" not in out
    assert out.index("Before.") < out.index("<svg") < out.index("After.")


def test_options_choose_the_spec_file_and_the_edges(tmp_path: Path, plugin_path: str) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "mine.yaml").write_bytes(SPEC.read_bytes())
    page = ("---\ntitle: Edges\n---\n# Edges\n\n"
            "```session-lifecycle\nspec: ../specs/mine.yaml\nedges: command\n```\n\n"
            "~~~~ session-lifecycle\nedges: provider\n~~~~\n\n"
            "````markdown\n```session-lifecycle\nedges: nonsense\n```\n````\n")
    proc = _build(_project(tmp_path, page), plugin_path)
    assert proc.returncode == 0, proc.stderr
    out = (tmp_path / "site" / "index.html").read_text()
    command, provider = _svgs(out)
    commands = {t for e in builtin_spec().events if e.is_command for t in e.triggers}
    assert any(c in label for label in _texts(command) for c in commands)
    assert not any(c in label for label in _texts(provider) for c in commands)
    assert any("turn.started" in label for label in _texts(provider))
    # The block shown inside another fenced block stays an example: escaped text, not a diagram.
    assert "edges: nonsense" in out


def test_a_missing_spec_fails_the_build_naming_page_line_and_option(tmp_path: Path, plugin_path: str) -> None:
    page = "---\ntitle: Broken\n---\n# Broken\n\n```session-lifecycle\nspec: no-such-spec.yaml\n```\n"
    proc = _build(_project(tmp_path, page), plugin_path)
    assert proc.returncode != 0
    message = proc.stderr + proc.stdout
    assert "index.md, line 6" in message and "'spec'" in message and "no-such-spec.yaml" in message
    assert "Traceback" not in message


def test_an_unknown_option_or_edges_fails_the_build(tmp_path: Path, plugin_path: str) -> None:
    project = _project(tmp_path, "# T\n\n```session-lifecycle\nedges: \x1b[31mred\n```\n")
    proc = _build(project, plugin_path)
    assert proc.returncode != 0
    assert "index.md, line 3" in proc.stderr and "'edges'" in proc.stderr and "all, provider, command" in proc.stderr
    assert "\x1b" not in proc.stderr  # a terminal escape from the page is spelled out, not sent
    (project / "docs" / "index.md").write_text("# T\n\n```session-lifecycle\ncolour: blue\n```\n")
    proc = _build(project, plugin_path)
    assert proc.returncode != 0 and "line 4" in proc.stderr and "colour: blue" in proc.stderr


def test_find_blocks_skips_other_fences_and_reads_options() -> None:
    lines = ["```python", "```session-lifecycle", "```", "", "```session-lifecycle", "spec: a.yaml", "",
             "edges: all", "```", "~~~", "```session-lifecycle", "~~~"]
    (block,) = find_blocks(lines)
    assert (block.start, block.end, block.line) == (4, 8, 5)
    assert block.options == {"spec": "a.yaml", "edges": "all"}
