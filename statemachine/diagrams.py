"""Lifecycle diagrams, drawn by `transitions`' own diagram extension from the spec's machine.

The machine is built by `build_transitions_machine` with a `GraphMachine` subclass and has no
model, so nothing is highlighted as a "current" state. Two refinements over transitions' stock
drawing keep the picture readable and say what the spec means:

- transitions sharing trigger, guards and destination are merged; when they leave (almost) every
  status they are drawn once, from a dashed pseudo-state "any status [except ...]";
- statuses that may not hold a turn are grouped and styled apart, each showing its on-enter hook
  (`entry / clear_turn`).

Mermaid needs nothing beyond this package; DOT needs the `graphviz` Python package; SVG and PNG
also need Graphviz's `dot` program.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from transitions.extensions import GraphMachine
from transitions.extensions import diagrams_graphviz as tx_graphviz
from transitions.extensions import diagrams_mermaid as tx_mermaid

from .machine import build_transitions_machine
from .spec import Spec

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "DiagramUnavailable",
    "format_for_path",
    "render",
]

FORMATS = ("mermaid", "dot", "svg", "png")
GRAPHVIZ_FORMATS = frozenset({"dot", "svg", "png"})
BINARY_FORMATS = frozenset({"png"})
# File name endings that imply a format; `-o` with one of these must agree with `--format`.
EXTENSIONS: Mapping[str, str] = {
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".dot": "dot",
    ".gv": "dot",
    ".svg": "svg",
    ".png": "png",
}

PYPI_HINT = "pip install graphviz (or the package's [diagrams] extra: pip install 'agent-session-lifecycle[diagrams]')"
DEBIAN_HINT = "apt-get install graphviz (the Debian package `graphviz`)"

# A group of transitions leaving at least this share of statuses, missing at most
# MAX_EXCEPTIONS, is drawn once from a pseudo-state instead of once per status.
MAX_EXCEPTIONS = 2
# Edge labels wrap at this many characters, so the gaps between columns stay narrow and the
# picture stays legible when scaled down to a page's width.
MAX_LINE = 30
INDENT = "\u00a0" * 3  # continuation lines; kept by both Graphviz and Mermaid, unlike plain spaces
_BREAKS = re.compile(r"(?<=, )|(?= \[)|(?<= & )")


class DiagramUnavailable(RuntimeError):
    """The format needs Graphviz and it is not installed. The message names what to install."""


def format_for_path(path: str) -> str | None:
    """The format a file name implies, if any (`x.svg` -> `svg`)."""
    lowered = path.lower()
    return next((fmt for ext, fmt in EXTENSIONS.items() if lowered.endswith(ext)), None)


# -- grouping --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pseudo:
    """A dashed box standing for a set of source statuses."""

    id: str
    label: str


def _pseudo_for(sources: Sequence[str], statuses: Sequence[str]) -> _Pseudo | None:
    missing = [s for s in statuses if s not in sources]
    if not missing:
        return _Pseudo("any_status", "any status")
    if len(missing) <= MAX_EXCEPTIONS and len(sources) > len(statuses) // 2:
        return _Pseudo("any_except_" + "_".join(missing), "any status except " + ", ".join(missing))
    return None


def _grouped(
    transitions: Iterable[Mapping[str, Any]], statuses: Sequence[str]
) -> tuple[list[dict[str, Any]], list[_Pseudo]]:
    """Markup transitions (one per source) -> one per drawn edge label, sources merged."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for t in transitions:
        key = (t["trigger"], t.get("dest"), tuple(t.get("conditions", ())), tuple(t.get("unless", ())))
        group = groups.setdefault(key, {**t, "sources": []})
        group["sources"].append(t["source"])
    edges: list[dict[str, Any]] = []
    pseudos: dict[str, _Pseudo] = {}
    for group in groups.values():
        sources = group.pop("sources")
        # An internal transition is a loop on each status it stays in; no pseudo-state for it.
        pseudo = _pseudo_for(sources, statuses) if "dest" in group else None
        if pseudo is not None:
            pseudos.setdefault(pseudo.id, pseudo)
            edges.append({**group, "source": pseudo.id})
        else:
            edges.extend({**group, "source": s} for s in sources)
    return edges, list(pseudos.values())


def _edge_labels(graph: Any, transitions: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """(source, dest) -> label lines, in spec order.

    Triggers sharing an edge and the same guards are listed together, UML style
    (`a, b [g1 & g2]`); transitions' own `_transition_label` writes each line.
    """
    by_edge: dict[tuple[str, str], dict[tuple[Any, ...], list[str]]] = {}
    for t in transitions:
        guards = (tuple(t.get("conditions", ())), tuple(t.get("unless", ())), "dest" not in t)
        triggers = by_edge.setdefault((t["source"], t.get("dest", t["source"])), {}).setdefault(guards, [])
        triggers.append(t["trigger"])
    labels: dict[tuple[str, str], list[str]] = {}
    for edge, groups in by_edge.items():
        lines = labels.setdefault(edge, [])
        for (conditions, unless, internal), triggers in groups.items():
            merged: dict[str, Any] = {"trigger": ", ".join(triggers)}
            if not internal:
                merged["dest"] = edge[1]  # transitions labels a transition without one "[internal]"
            if conditions:
                merged["conditions"] = list(conditions)
            if unless:
                merged["unless"] = list(unless)
            lines.extend(_wrap(graph._transition_label(merged)))
    return labels


def _wrap(label: str) -> list[str]:
    """Greedy wrap at `, `, ` [` and ` & `; continuation lines are indented, inside `[...]` past the `[`."""
    lines: list[str] = []
    in_guards = False
    for piece in _BREAKS.split(label):
        if lines and len(lines[-1]) + len(piece) <= MAX_LINE:
            lines[-1] += piece
        elif lines:
            lines.append(INDENT + ("\u00a0" if in_guards else "") + piece.strip())
        else:
            lines.append(piece)
        in_guards = in_guards or piece.startswith(" [")
    return [line.rstrip() for line in lines]


def _entry_hooks(state: Mapping[str, Any]) -> str:
    return ", ".join(state.get("on_enter", ()))


# -- Graphviz --------------------------------------------------------------------------------


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _GraphvizGraph(tx_graphviz.Graph):
    """transitions' Graphviz graph, with merged edges and the turn-holding clusters."""

    machine: _LifecycleGraphMachine

    def _get_elements(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        states, transitions = super()._get_elements()
        self._edges, self._pseudos = _grouped(transitions, [s["name"] for s in states])
        return states, self._edges

    def _add_nodes(self, states: list[dict[str, Any]], container: Any) -> None:
        styles = self.machine.lifecycle_styles["node"]
        holds = self.machine.holds_turn
        initial = str(self.machine.initial)

        def add(target: Any, state: Mapping[str, Any], style: str) -> None:
            hooks = _entry_hooks(state)
            text = f"<b>{_html(state['name'])}</b>"
            if hooks:
                text += f'<br/><font point-size="10">entry / {_html(hooks)}</font>'
            target.node(state["name"], label=f"<{text}>", **styles[style])

        for state in states:
            if holds[state["name"]]:
                add(container, state, "holds_turn")
        # The no-turn statuses share one column, framed and labelled; the start dot sits beside
        # the initial status when that status is one of them.
        attrs = {**self.machine.lifecycle_styles["cluster"]["no_turn"], "label": "may not hold a turn"}
        with container.subgraph(name="cluster_no_turn", graph_attr=attrs) as sub:
            for state in states:
                if not holds[state["name"]]:
                    add(sub, state, "no_turn")
            (sub if not holds[initial] else container).node("_start", label="", **styles["initial"])
        container.edge("_start", initial)
        for pseudo in self._pseudos:
            container.node(pseudo.id, label=pseudo.label, **styles["any"])

    def _add_edges(self, transitions: list[dict[str, Any]], container: Any) -> None:
        pseudo_ids = {p.id for p in self._pseudos}
        edge_styles = self.machine.lifecycle_styles["edge"]
        for (src, dest), labels in _edge_labels(self, transitions).items():
            style = edge_styles["from_any"] if src in pseudo_ids else {}
            # A borderless table, one left-aligned row per line: Graphviz sizes HTML labels exactly,
            # so neighbouring edges keep clear of them (plain multi-line labels get grazed).
            rows = "".join(f'<tr><td align="left">{_html(line)}</td></tr>' for line in labels)
            table = f'<table border="0" cellborder="0" cellpadding="1" cellspacing="0">{rows}</table>'
            container.edge(src, dest, label=f"<{table}>", **style)


# -- Mermaid ---------------------------------------------------------------------------------


class _MermaidGraph(tx_mermaid.Graph):
    """transitions' Mermaid graph, with merged edges and styled no-turn statuses.

    Mermaid cannot style states inside composite states, so statuses are not nested: the
    no-turn ones get their own class and an `entry / hook` description instead.
    """

    machine: _LifecycleGraphMachine

    def _get_elements(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        states, transitions = super()._get_elements()
        self._edges, self._pseudos = _grouped(transitions, [s["name"] for s in states])
        return states, self._edges

    def _add_nodes(self, states: list[dict[str, Any]], container: list[str]) -> None:
        holds = self.machine.holds_turn
        for state in states:
            name = state["name"]
            container.append(f'state "{name}" as {name}')
            hooks = _entry_hooks(state)
            if hooks:
                container.append(f"{name} : entry / {hooks}")
            container.append(f"class {name} s_{'holds_turn' if holds[name] else 'no_turn'}")
        for pseudo in self._pseudos:
            container.append(f'state "{pseudo.label}" as {pseudo.id}')
            container.append(f"class {pseudo.id} s_any")

    def _add_edges(self, transitions: list[dict[str, Any]], container: list[str]) -> None:
        for (src, dest), labels in _edge_labels(self, transitions).items():
            container.append(f"{src} --> {dest}: {'<br/>'.join(labels)}")


# -- the machine -----------------------------------------------------------------------------


Styles = dict[str, dict[str, dict[str, str]]]

# Graphviz attribute names; Mermaid classDefs get `fillcolor` (as `fill`), `stroke*` only.
STYLES: Styles = {
    "node": {
        "default": {"shape": "rectangle", "style": "rounded,filled", "fillcolor": "white", "color": "black",
                    "fontname": "Helvetica"},
        "holds_turn": {"fillcolor": "#dbeafe", "color": "#1d4ed8", "stroke": "#1d4ed8"},
        "no_turn": {"fillcolor": "#f1f5f9", "color": "#475569", "stroke": "#475569", "width": "1.7",
                    "stroke-dasharray": "4 3"},
        "any": {"style": "dashed,rounded", "fillcolor": "white", "color": "#64748b", "fontcolor": "#334155",
                "stroke": "#64748b", "stroke-dasharray": "2 2"},
        "initial": {"shape": "point", "width": "0.15", "fillcolor": "black"},
    },
    "edge": {
        "default": {"color": "#1f2937", "fontname": "Helvetica", "fontsize": "11", "arrowsize": "0.7"},
        "from_any": {"color": "#64748b", "style": "dashed"},
    },
    "graph": {"default": {"color": "black", "fillcolor": "white", "style": "solid", "fontname": "Helvetica"}},
    "cluster": {
        # rank=same puts the no-turn statuses in one column; the label goes below, clear of edges.
        "no_turn": {"style": "rounded,dashed", "color": "#475569", "fontcolor": "#475569", "fontsize": "11",
                    "rank": "same", "labelloc": "b"},
    },
}
GRAPHVIZ_ATTRIBUTES = {
    "directed": "true",
    "strict": "false",
    "rankdir": "LR",
    "labelloc": "t",
    "fontname": "Helvetica",
    "fontsize": "16",
    "nodesep": "0.35",
    "ranksep": "0.9",
    "newrank": "true",  # lets rank=same act inside a cluster
}
# transitions turns `rankdir` into Mermaid's `direction`; nothing else applies there.
MERMAID_ATTRIBUTES = {"rankdir": "LR"}
_MERMAID_ONLY = frozenset({"stroke", "stroke-dasharray"})
_GRAPHVIZ_ONLY = frozenset({"fontname", "fontcolor", "width", "color"})


class _LifecycleGraphMachine(GraphMachine):
    """A `GraphMachine` that draws with the graph classes above and knows which statuses hold turns."""

    def __init__(self, *args: Any, holds_turn: Mapping[str, bool], styles: Styles, **kwargs: Any) -> None:
        self.holds_turn = dict(holds_turn)
        self.lifecycle_styles = styles
        super().__init__(*args, **kwargs)

    def _init_graphviz_engine(self, graph_engine: str) -> type[Any]:
        # transitions would silently fall back to Mermaid when graphviz is missing; never do.
        return _GraphvizGraph if graph_engine == "graphviz" else _MermaidGraph


def _title(spec: Spec, engine: str) -> str:
    title = f"{spec.name} - statuses and the events that move between them"
    # transitions writes the Mermaid title bare between `---` lines, which Mermaid reads as YAML
    # front matter: give it a `title:` key (a JSON string is valid YAML).
    return f"title: {json.dumps(title)}" if engine == "mermaid" else title


def _styles_for(engine: str) -> Styles:
    drop = _MERMAID_ONLY if engine == "graphviz" else _GRAPHVIZ_ONLY
    styles = {
        kind: {name: {k: v for k, v in attrs.items() if k not in drop} for name, attrs in group.items()}
        for kind, group in STYLES.items()
    }
    if engine == "mermaid":
        del styles["node"]["initial"]  # Mermaid draws its own `[*]`
    return styles


def _machine(spec: Spec, engine: str) -> _LifecycleGraphMachine:
    styles = _styles_for(engine)
    machine = build_transitions_machine(
        spec,
        machine_class=_LifecycleGraphMachine,
        graph_engine=engine,
        show_conditions=True,
        title=_title(spec, engine),
        holds_turn={s.name: s.holds_turn for s in spec.statuses},
        styles=styles,
    )
    assert isinstance(machine, _LifecycleGraphMachine)
    # Instance attributes: transitions reads these when drawing (node/edge defaults, classDefs).
    style_attributes: dict[str, Any] = {k: v for k, v in styles.items() if k != "cluster"}
    machine.style_attributes = style_attributes
    machine.machine_attributes = dict(GRAPHVIZ_ATTRIBUTES if engine == "graphviz" else MERMAID_ATTRIBUTES)
    return machine


def _graph(spec: Spec, engine: str) -> Any:
    machine = _machine(spec, engine)
    # A graph of its own, never bound to a model: no state is styled "active" or "previous".
    return machine.graph_cls(machine).get_graph()


def _require_graphviz(fmt: str) -> None:
    try:
        importlib.import_module("graphviz")
    except ImportError:
        raise DiagramUnavailable(
            f"the {fmt} format needs the Python package `graphviz`, which is not installed: {PYPI_HINT}"
        ) from None
    if fmt != "dot" and shutil.which("dot") is None:
        raise DiagramUnavailable(
            f"the {fmt} format needs Graphviz's `dot` program, which is not on PATH: {DEBIAN_HINT}"
        )


# dot stamps its own version into SVG; dropped so generated files only change with the spec.
_GENERATOR_COMMENT = re.compile(r"<!-- Generated by graphviz[^>]*-->\n")


def render(spec: Spec, fmt: str) -> bytes:
    """The spec's lifecycle diagram in `fmt` (one of FORMATS), as bytes (UTF-8 for text)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown diagram format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "mermaid":
        source: str = _graph(spec, "mermaid").draw(None)
        return (source.rstrip("\n") + "\n").encode("utf-8")
    _require_graphviz(fmt)
    graph = _graph(spec, "graphviz")
    if fmt == "dot":
        return str(graph.source).encode("utf-8")
    graphviz = importlib.import_module("graphviz")
    try:
        data: bytes = graph.draw(None, format=fmt)
    except graphviz.ExecutableNotFound:
        raise DiagramUnavailable(
            f"the {fmt} format needs Graphviz's `dot` program, which could not be run: {DEBIAN_HINT}"
        ) from None
    if fmt == "svg":
        data = _GENERATOR_COMMENT.sub("", data.decode("utf-8")).encode("utf-8")
    return data
