"""The package's import graph: layers point downward (import-linter) and nothing imports in a cycle.

grimp (import-linter's own graph builder) counts every import, those under TYPE_CHECKING and inside
functions too, so neither check has exceptions."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_package_has_no_import_cycle() -> None:
    graph = grimp.build_graph("statemachine")
    assert _cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    assert _cycles(graph) == []
    graph.add_import(importer="c", imported="a")
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_layers_contract_holds_and_fails_on_an_upward_import(tmp_path: Path) -> None:
    ok = subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "KEPT" in ok.stdout
    # A copy of the package where a core module imports the CLI: the contract breaks.
    shutil.copytree(ROOT / "statemachine", tmp_path / "statemachine", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    session = tmp_path / "statemachine" / "core" / "session.py"
    session.write_text(session.read_text(encoding="utf-8") + "\nfrom statemachine.cli import main as _main  # noqa\n",
                       encoding="utf-8")
    broken = subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(tmp_path),
                                                                              "PATH": "/usr/bin:/bin"})
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "statemachine.core.session -> statemachine.cli" in broken.stdout.replace("\n", " ")
