"""The lifecycle diagram as a fragment of an HTML page, for documentation builders.

Shared by the Sphinx directive (`statemachine.rendering.sphinx`) and the MkDocs plugin
(`statemachine.rendering.mkdocs`), so both take the same options and give the same markup:

- `spec`: a spec file (default: the built-in spec);
- `edges`: which transitions to draw: `all`, `provider` (those taken on provider events) or
  `command` (those taken on the orchestrator's commands), after the spec's `source` field.

The diagram is SVG drawn by Graphviz (`statemachine.rendering.diagrams`) and inlined in the page,
so its status names are text a reader can find and copy. Labels are escaped by the drawing code
and by `dot`; the SVG is then checked against a list of the elements `dot` draws with, and refused
if it holds anything that could run or fetch (a script, an event handler, a link, a style), so
nothing from a spec becomes active markup in the page.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from statemachine.rendering.diagrams import DiagramUnavailable, render
from statemachine.spec.load import builtin_spec, load_spec
from statemachine.spec.model import Spec, SpecError

__all__ = [
    "CSS_CLASS", "EDGE_KINDS", "EmbedError", "check_edges", "check_svg", "diagram_html", "diagram_svg", "printable",
]

EDGE_KINDS = ("all", "provider", "command")
CSS_CLASS = "session-lifecycle"

# What `dot -Tsvg` draws with. Anything else (script, foreignObject, a, image, style, use...) is refused.
_SVG_ELEMENTS = frozenset({
    "svg", "g", "title", "desc", "polygon", "polyline", "path", "ellipse", "circle", "rect", "line", "text",
    "tspan", "defs", "linearGradient", "radialGradient", "stop",
})
_REFUSED_ATTRIBUTES = frozenset({"href", "style", "src", "begin", "end", "from", "to", "values", "attributeName"})
_SVG_NS = "{http://www.w3.org/2000/svg}"
_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)


class EmbedError(ValueError):
    """An option that cannot be used. `option` names it (`spec`, `edges`); the message says why."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


def printable(text: str, limit: int = 400) -> str:
    """`text` for a terminal or a log: control characters spelled as escapes, cut at `limit`."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in cut)


def check_edges(value: str | None) -> str:
    """The `edges` option, checked (None: `all`)."""
    if value is None:
        return "all"
    edges = value.strip()
    if edges not in EDGE_KINDS:
        raise EmbedError("edges", f"'{printable(edges, 40)}' is not one of {', '.join(EDGE_KINDS)}")
    return edges


def _spec(path: Path | None) -> Spec:
    if path is None:
        return builtin_spec()
    try:
        return load_spec(path)
    except SpecError as exc:
        # The loader names the file and the place in it; its message quotes the file with repr.
        raise EmbedError("spec", printable(str(exc))) from None
    except OSError as exc:
        raise EmbedError("spec", printable(f"{path}: cannot read the file: {exc.strerror or exc}")) from None


def _only(spec: Spec, edges: str) -> Spec:
    """The spec with only the transitions taken on provider events, or only on commands.

    Statuses stay, so a status no drawn edge reaches still shows. The digest changes with the
    filter: nothing keyed on it takes the filtered spec for the whole one."""
    if edges == "all":
        return spec
    commands = {t.name for e in spec.events if e.is_command for t in e.trigger_values}
    kept = tuple(t for t in spec.transitions if (t.trigger in commands) == (edges == "command"))
    return dataclasses.replace(spec, transitions=kept, digest=f"{spec.digest}:edges={edges}")


def check_svg(svg: str) -> str:
    """`dot`'s SVG without its prolog and comments, after checking it holds nothing active."""
    body = _COMMENT.sub("", _PROLOG.sub("", svg, count=1))
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise EmbedError("spec", f"Graphviz gave SVG that does not parse ({exc})") from None
    for element in root.iter():
        tag = element.tag.removeprefix(_SVG_NS)
        if tag not in _SVG_ELEMENTS:
            raise EmbedError("spec", f"the drawn SVG holds a <{printable(tag, 40)}> element, which is not drawn inline")
        for name, value in element.attrib.items():
            local = name.rpartition("}")[2]
            lowered = value.lower()
            if (local.lower().startswith("on") or local in _REFUSED_ATTRIBUTES
                    or "javascript:" in lowered or ("url(" in lowered and "url(#" not in lowered)):
                raise EmbedError("spec", f"the drawn SVG has an attribute '{printable(local, 40)}' "
                                 "that is not drawn inline")
    return body.strip()


# Drawn once per spec content and edge kind: a page set showing one diagram many times runs `dot` once.
_DRAWN: dict[tuple[str, str], str] = {}
_MAX_DRAWN = 32


def _svg_for(spec: Spec, edges: str) -> str:
    key = (spec.digest, edges)
    svg = _DRAWN.get(key) if spec.digest else None
    if svg is None:
        try:
            data = render(_only(spec, edges), "svg")
        except DiagramUnavailable as exc:
            raise EmbedError("spec", str(exc)) from None
        svg = check_svg(data.decode("utf-8"))
        if len(_DRAWN) >= _MAX_DRAWN:
            _DRAWN.clear()
        _DRAWN[key] = svg
    return svg


def diagram_svg(spec_path: str | Path | None = None, edges: str | None = None) -> str:
    """The lifecycle of the spec at `spec_path` (None: the built-in one) as checked SVG markup.

    Raises `EmbedError` naming the option for a spec that does not load, an unknown `edges`, or
    Graphviz missing (the message says what to install)."""
    kind = check_edges(edges)
    spec = _spec(Path(spec_path) if spec_path is not None else None)
    return _svg_for(spec, kind)


def diagram_html(spec_path: str | Path | None = None, edges: str | None = None) -> str:
    """`diagram_svg` in a `<div class="session-lifecycle">`, scaled down to fit the page's width."""
    kind = check_edges(edges)
    svg = diagram_svg(spec_path, kind)
    # Scaled down to the page's width (its viewBox keeps the proportions); readers zoom for detail.
    fitted = svg.replace("<svg ", '<svg style="max-width:100%;height:auto" ', 1)
    return f'<div class="{CSS_CLASS}" data-edges="{kind}">{fitted}</div>'
