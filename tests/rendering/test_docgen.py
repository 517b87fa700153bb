"""statemachine/rendering/docgen.py's generated blocks: the outcome and rejection-reason tables in
docs/observing.md and docs/semantics.md, and the requirements and mutant tables of
docs/verification.md, are generated from the code, the spec, the requirements and the mutant
files, and checked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from statemachine.core.vocabulary import OUTCOME_KINDS, OUTCOME_MEANINGS, REJECTION_REASONS
from statemachine.rendering.docgen import BLOCK_END, BLOCK_PAGES, BLOCK_START, blocks, fill_blocks
from statemachine.spec.load import builtin_spec

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _cells(block: str) -> list[str]:
    return [row.split(" | ")[0].strip("| `") for row in block.splitlines()[2:]]


def test_every_outcome_has_a_meaning_and_a_row() -> None:
    assert list(OUTCOME_MEANINGS) == list(OUTCOME_KINDS)
    assert _cells(blocks(builtin_spec())["outcomes"]) == list(OUTCOME_KINDS)


def test_every_rejection_reason_has_a_row() -> None:
    assert sorted(_cells(blocks(builtin_spec())["rejection reasons"])) == sorted(REJECTION_REASONS)


@pytest.mark.parametrize("page", BLOCK_PAGES)
def test_the_committed_pages_hold_the_generated_blocks(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    made = blocks(builtin_spec())
    for name in BLOCK_PAGES[page]:
        assert f"{BLOCK_START.format(name=name)}\n{made[name]}\n{BLOCK_END.format(name=name)}" in text, (page, name)
    assert fill_blocks(text, builtin_spec()) == text


def test_filling_replaces_only_between_the_markers() -> None:
    start, end = BLOCK_START.format(name="outcomes"), BLOCK_END.format(name="outcomes")
    text = f"before\n{start}\nstale table\n{end}\nafter {start} inline is not a block\n"
    filled = fill_blocks(text, builtin_spec())
    assert filled.startswith(f"before\n{start}\n| outcome | meaning |") and "stale table" not in filled
    assert filled.endswith(f"{end}\nafter {start} inline is not a block\n")
    assert fill_blocks("no markers\n", builtin_spec()) == "no markers\n"


@pytest.mark.parametrize(("page", "row", "edited"), [
    ("observing.md", "| `forgotten` |", "| `gone` |"),
    # The requirements table: a row gone stale (its mutants), and a row missing.
    ("verification.md", "`zza_provider_not_recorded` |\n", "`l_updated_at_frozen` |\n"),
    ("verification.md", "| `exit_stops` |", "| `exit_stopped` |"),
    ("verification.md", "| `zza_provider_not_recorded` | on_applied", "| `zza_old` | on_applied"),
])
def test_a_stale_block_is_caught_and_regenerated(tmp_path: Path, page: str, row: str, edited: str) -> None:
    for name in BLOCK_PAGES:
        shutil.copy(DOCS / name, tmp_path / name)
    text = (tmp_path / page).read_text(encoding="utf-8")
    assert text.count(row) == 1
    (tmp_path / page).write_text(text.replace(row, edited), encoding="utf-8")

    def docs(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "statemachine", "docs", "--out", str(tmp_path), *extra],
                              capture_output=True, text=True, cwd=ROOT, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})

    if shutil.which("dot") is None:
        pytest.skip("docs needs Graphviz's dot (the SVG)")
    checked = docs("--check")
    assert checked.returncode == 1 and f"{tmp_path}/{page} is out of date" in checked.stderr
    assert all(f"{tmp_path}/{other}" not in checked.stderr for other in BLOCK_PAGES if other != page)
    assert docs().returncode == 0
    for name in BLOCK_PAGES:
        assert (tmp_path / name).read_bytes() == (DOCS / name).read_bytes(), name
