"""A Sphinx directive that draws a spec's lifecycle into the page: `.. session-lifecycle::`.

In `conf.py`: `extensions = ["statemachine.rendering.sphinx"]`. Then, in a page::

    .. session-lifecycle::
       :spec: ../specs/session_lifecycle.yaml
       :edges: provider

Both options are optional: `spec` defaults to the built-in spec and is read like
`literalinclude` reads its file (relative to the page, or to the source directory when it starts
with `/`); `edges` is `all` (default), `provider` or `command`. The diagram is inline SVG drawn by
Graphviz (`statemachine.rendering.embed`), so HTML builders show it; other builders leave it out.

A spec that does not load, an unknown `edges` or a missing Graphviz is reported as a Sphinx error
at the directive's file and line (`sphinx-build -W` turns it into a failed build). Pages that
show a spec are rebuilt when it changes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from statemachine.core.version import __version__
from statemachine.rendering.embed import EDGE_KINDS, EmbedError, check_edges, diagram_html

__all__ = ["SessionLifecycleDirective", "setup"]

DIRECTIVE = "session-lifecycle"


def _edges(argument: str | None) -> str:
    try:
        return check_edges(argument)
    except EmbedError as exc:
        raise ValueError(exc.message) from None  # docutils reports it with the option's name


class SessionLifecycleDirective(SphinxDirective):
    """`.. session-lifecycle::` with `:spec: PATH` and `:edges: all|provider|command`."""

    has_content = False
    required_arguments = 0
    optional_arguments = 0
    option_spec: ClassVar[dict[str, Any]] = {
        "spec": directives.unchanged_required,
        "edges": _edges,
    }

    def run(self) -> list[nodes.Node]:
        spec_option = self.options.get("spec")
        path = None
        if spec_option is not None:
            _, path = self.env.relfn2path(spec_option.strip(), self.env.docname)
            self.env.note_dependency(path)
        try:
            html = diagram_html(path, self.options.get("edges"))
        except EmbedError as exc:
            shown = f" {spec_option.strip()!r}" if exc.option == "spec" and spec_option is not None else ""
            return [self.state.document.reporter.error(
                f'"{DIRECTIVE}" directive, option "{exc.option}"{shown}: {exc.message}', line=self.lineno)]
        return [nodes.raw("", html, format="html")]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive(DIRECTIVE, SessionLifecycleDirective)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}


__all__ += ["EDGE_KINDS"]
