"""Generated docs match what is committed; a spec or CLI change without regenerating fails here."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import require_graphviz

from statemachine import builtin_spec
from statemachine.cli.main import build_parser, cli_reference, subcommand_parsers
from statemachine.rendering.docgen import CLI_MD, GENERATED, LIFECYCLE_MD, LIFECYCLE_SVG, cli_markdown, generate, stale
from statemachine.verify.mutate import load_mutant, mutant_spec_text

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MUTANT_A = ROOT / "specs" / "mutants" / "a_seed_ready_keeps_turn.yaml"
REGENERATE = "run `python -m statemachine docs` and commit the result"





@pytest.fixture(scope="module")
def graphviz_available() -> None:
    require_graphviz()

def _differing(generated: dict[str, bytes], base: Path) -> list[str]:
    return [name for name, content in generated.items()
            if not (base / name).is_file() or (base / name).read_bytes() != content]


def test_committed_docs_match_a_regeneration(tmp_path: Path, graphviz_available: None) -> None:
    proc = subprocess.run([sys.executable, "-m", "statemachine", "docs", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(GENERATED)
    differing = [name for name in GENERATED
                 if not (DOCS / name).is_file() or (DOCS / name).read_bytes() != (tmp_path / name).read_bytes()]
    assert not differing, f"out of date: {', '.join(f'docs/{n}' for n in differing)}; {REGENERATE}"


def test_check_flag_agrees(graphviz_available: None) -> None:
    proc = subprocess.run([sys.executable, "-m", "statemachine", "docs", "--check", "--out", str(DOCS)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr


def test_a_changed_spec_is_caught_and_the_file_named(tmp_path: Path, graphviz_available: None) -> None:
    # Committed docs, then the spec changes (here: a mutant) without regenerating.
    for name in GENERATED:
        shutil.copy(DOCS / name, tmp_path / name)
    mutant, _ = load_mutant(MUTANT_A)
    spec_file = tmp_path / "spec" / MUTANT_A.name  # the mutant as a whole spec file, for --spec
    spec_file.parent.mkdir()
    spec_file.write_text(mutant_spec_text(MUTANT_A))
    assert set(stale(tmp_path, mutant)) == {LIFECYCLE_MD, LIFECYCLE_SVG}
    proc = subprocess.run([sys.executable, "-m", "statemachine", "docs", "--check", "--out", str(tmp_path),
                           "--spec", str(spec_file)], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1
    assert f"{tmp_path}/{LIFECYCLE_MD} is out of date" in proc.stderr
    # Regenerating brings them back in line.
    (tmp_path / LIFECYCLE_MD).write_bytes(generate(mutant)[LIFECYCLE_MD])
    assert LIFECYCLE_MD not in stale(tmp_path, mutant)


def test_the_semantics_tables_follow_the_spec() -> None:
    # Mutant A keeps the turn when `session.state.changed[ready]` arrives: the measured table shows it.
    from statemachine.rendering.docgen import lifecycle_markdown

    normal, mutant = lifecycle_markdown(builtin_spec()), lifecycle_markdown(load_mutant(MUTANT_A)[0])
    assert normal != mutant
    assert _differing({LIFECYCLE_MD: mutant.encode("utf-8")}, DOCS) == [LIFECYCLE_MD]


def test_a_new_subcommand_changes_the_cli_page() -> None:
    def with_extra() -> argparse.ArgumentParser:
        parser = build_parser()
        extra = parser.subcommands.add_parser(  # type: ignore[attr-defined]
            "frobnicate", help="a subcommand nobody documented", description="Does nothing documented."
        )
        extra.add_argument("--level", help="how much")
        return parser

    page = cli_markdown(*cli_reference(with_extra()))
    assert "## `frobnicate`" in page and "--level LEVEL" in page and "Does nothing documented." in page
    assert page != cli_markdown(*cli_reference())
    assert _differing({CLI_MD: page.encode("utf-8")}, DOCS) == [CLI_MD]


def test_every_subcommand_is_documented() -> None:
    page = (DOCS / CLI_MD).read_text(encoding="utf-8")
    missing = [name for name in subcommand_parsers() if f"## `{name}`" not in page]
    assert not missing, f"docs/{CLI_MD} lacks {missing}; {REGENERATE}"


# Module paths the docs name: `statemachine.x.y` (a module, then attributes) and `statemachine/...`
# (a file of the repository). A module moved or renamed leaves them pointing nowhere.
_DOTTED = re.compile(r"(?<![\w./-])statemachine(?:\.[A-Za-z_]\w*)+")
_FILE = re.compile(r"(?<![\w./-])statemachine/[\w./-]*\w")


def _names(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        if parts[i - 1] == "__main__":  # running it is not looking it up
            return i == len(parts) and (ROOT / "statemachine" / "__main__.py").is_file()
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            value: object = importlib.import_module(module)
            for attr in parts[i:]:
                if not hasattr(value, attr):
                    return False
                value = getattr(value, attr)
            return True
    return False


def _missing_paths(text: str) -> list[str]:
    missing = [m.group() for m in _DOTTED.finditer(text) if not _names(m.group())]
    return missing + [m.group() for m in _FILE.finditer(text) if not (ROOT / m.group()).exists()]


def test_the_paths_the_docs_name_exist() -> None:
    files = [*sorted(DOCS.glob("*.md")), ROOT / "README.md",
             *sorted(p for p in (ROOT / "examples").rglob("*") if p.is_file() and "__pycache__" not in p.parts)]
    missing = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # not text: names nothing
        missing += [f"{file.relative_to(ROOT)}: {path}" for path in _missing_paths(text)]
    assert not missing, "paths that name nothing:\n" + "\n".join(missing)


def test_a_moved_module_is_caught() -> None:
    text = ("`statemachine.events.Event` moved to `statemachine.core.event.Event`; see statemachine/projector.py,\n"
            "now statemachine/runtime/projector.py, and statemachine.spec.semantics.VOCABULARY.")
    assert _missing_paths(text) == ["statemachine.events.Event", "statemachine/projector.py"]
