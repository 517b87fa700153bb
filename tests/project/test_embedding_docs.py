"""docs/embedding.md: every Python block runs, and prints exactly the output block that follows it."""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "embedding.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)


@dataclass
class Example:
    heading: str
    code: str
    output: str | None  # the ```text block right after it, if any
    line: int


def examples() -> list[Example]:
    text = DOC.read_text(encoding="utf-8")
    blocks = list(FENCE.finditer(text))
    found = []
    for i, block in enumerate(blocks):
        if block.group(1) != "python":
            continue
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        follows = nxt is not None and nxt.group(1) == "text" and not text[block.end():nxt.start()].strip()
        # Headings outside code blocks only: a comment line in Python also starts with "#".
        headings = HEADING.findall(FENCE.sub("", text[: block.start()]))
        output = nxt.group(2) if follows and nxt is not None else None
        found.append(Example(headings[-1] if headings else "", block.group(2), output,
                             text.count("\n", 0, block.start()) + 1))
    return found


EXAMPLES = examples()


def test_the_guide_shows_each_operation() -> None:
    code = "\n".join(e.code for e in EXAMPLES)
    for name in ("projector.apply(", ".subscribe(", ".snapshot()", "SessionProjector.restore(", "SnapshotError",
                 "reconcile(", "stale_turns(", "expire_stale_turns(", "ActivityClock", "reapable_sessions(",
                 "reapable(", "LockedProjector", "consume(", "asyncio.Queue"):
        assert name in code, f"docs/embedding.md has no example using {name}"
    assert "--snapshot-in" in DOC.read_text(encoding="utf-8")
    assert all(e.output is not None for e in EXAMPLES), "every example states what it prints"


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"line{e.line}-{e.heading}" for e in EXAMPLES])
def test_example_runs_and_prints_what_the_guide_says(
    example: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example.code, f"{DOC.name}:{example.line}", "exec"), {"__name__": "__embedding__"})
    if example.output is not None:
        assert out.getvalue() == example.output
