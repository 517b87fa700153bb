"""A MkDocs plugin that draws a spec's lifecycle into the page where a fenced block asks for it.

In `mkdocs.yml`::

    plugins:
      - session-lifecycle

Then, in a page, a fenced block whose info string is `session-lifecycle`, holding `key: value`
lines (both optional, as the Sphinx directive's options)::

    ```session-lifecycle
    spec: ../specs/session_lifecycle.yaml
    edges: provider
    ```

`spec` is read relative to the page's own file, or to `docs_dir` when it starts with `/`
(default: the built-in spec); `edges` is `all` (default), `provider` or `command`. The block
becomes the inline SVG diagram of `statemachine.rendering.embed`. Fenced blocks of any other
kind are left alone, and so is a `session-lifecycle` block shown inside another fenced block.

A block that cannot be drawn stops the build with a `PluginError` naming the page, the line of
the block and the option.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

from mkdocs.config.base import Config
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

from statemachine.rendering.embed import EDGE_KINDS, EmbedError, diagram_html, printable

__all__ = ["EDGE_KINDS", "FENCE_INFO", "PluginOptions", "SessionLifecyclePlugin", "find_blocks"]

FENCE_INFO = "session-lifecycle"
OPTIONS = ("spec", "edges")
# A fence opens with 3+ backticks or tildes, indented by at most 3 spaces (CommonMark).
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*?)[ \t]*$")


class Block:
    """One `session-lifecycle` block: where it is (0-based lines, the closing fence included) and
    what it asks for."""

    __slots__ = ("end", "line", "options", "start")

    def __init__(self, start: int, end: int, options: dict[str, str], line: int) -> None:
        self.start, self.end, self.options, self.line = start, end, options, line


def _closes(line: str, fence: str) -> bool:
    match = _FENCE.match(line)
    return (match is not None and not match["info"] and match["fence"][0] == fence[0]
            and len(match["fence"]) >= len(fence))


def _options(body: list[str], first_line: int) -> dict[str, str]:
    options: dict[str, str] = {}
    for offset, text in enumerate(body):
        if not text.strip():
            continue
        key, sep, value = text.strip().partition(":")
        key = key.strip()
        if not sep or key not in OPTIONS:
            raise EmbedError("line " + str(first_line + offset),
                             f"expected `spec: PATH` or `edges: {'|'.join(EDGE_KINDS)}`, got "
                             f"'{printable(text.strip(), 80)}'")
        if key in options:
            raise EmbedError(key, f"given twice (line {first_line + offset})")
        options[key] = value.strip()
    return options


def find_blocks(lines: list[str], first_line: int = 1) -> Iterator[Block]:
    """The `session-lifecycle` blocks of a Markdown page given as lines. Other fenced blocks are
    skipped whole, so an example block shown inside one is not drawn. An unclosed block runs to
    the end of the page, as in CommonMark."""
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None or (match["fence"][0] == "`" and "`" in match["info"]):
            i += 1
            continue
        fence, start = match["fence"], i
        i += 1
        while i < len(lines) and not _closes(lines[i], fence):
            i += 1
        if match["info"].split(maxsplit=1)[0:1] == [FENCE_INFO]:
            yield Block(start, i, _options(lines[start + 1:i], first_line + start + 1), first_line + start)
        i += 1


class PluginOptions(Config):  # type: ignore[no-untyped-call]  # mkdocs leaves __init_subclass__ untyped
    """The plugin takes no options in mkdocs.yml: each block carries its own."""


class SessionLifecyclePlugin(BasePlugin[PluginOptions]):  # type: ignore[no-untyped-call]  # as above
    """Replaces each `session-lifecycle` block with the diagram (see the module's docstring)."""

    def __init__(self) -> None:
        self._drawn: dict[str, dict[str, str]] = {}  # page -> placeholder -> diagram

    def on_page_markdown(self, markdown: str, /, *, page: Page, config: MkDocsConfig, files: Files) -> str:
        lines = markdown.split("\n")
        where = page.file.src_uri
        try:
            blocks = list(find_blocks(lines, self._first_line(markdown, page)))
        except EmbedError as exc:
            raise PluginError(f"{FENCE_INFO}: {printable(where)}: {exc.option}: {exc.message}") from None
        if not blocks:
            return markdown
        # Placeholders carry a fresh random token: text in the page cannot forge one.
        token = secrets.token_hex(8)
        drawn: dict[str, str] = {}
        for n, block in reversed(list(enumerate(blocks))):
            spec = block.options.get("spec")
            try:
                html = diagram_html(self._spec_path(spec, page, config), block.options.get("edges"))
            except EmbedError as exc:
                given = f" '{printable(spec, 200)}'" if exc.option == "spec" and spec else ""
                raise PluginError(f"{FENCE_INFO}: {printable(where)}, line {block.line}: option "
                                  f"'{exc.option}'{given}: {exc.message}") from None
            placeholder = f'<div data-session-lifecycle="{token}-{n}"></div>'
            drawn[placeholder] = html
            indent = _FENCE.match(lines[block.start])["indent"]  # type: ignore[index]  # matched in find_blocks
            lines[block.start:block.end + 1] = ["", indent + placeholder, ""]
        self._drawn[where] = drawn
        return "\n".join(lines)

    def on_page_content(self, html: str, /, *, page: Page, config: MkDocsConfig, files: Files) -> str:
        for placeholder, diagram in self._drawn.pop(page.file.src_uri, {}).items():
            html = html.replace(placeholder, diagram)
        return html

    @staticmethod
    def _first_line(markdown: str, page: Page) -> int:
        """The file's line number of the Markdown's first line: MkDocs strips the front matter
        before plugins see the page."""
        try:
            source = page.file.content_string
        except (OSError, ValueError):
            return 1
        if source.endswith(markdown):
            return source[:len(source) - len(markdown)].count("\n") + 1
        return 1

    @staticmethod
    def _spec_path(spec: str | None, page: Page, config: MkDocsConfig) -> Path | None:
        if not spec:
            return None
        if spec.startswith("/"):
            return Path(config.docs_dir) / spec.lstrip("/")
        base = Path(page.file.abs_src_path).parent if page.file.abs_src_path else Path(config.docs_dir)
        return base / spec
