"""Lifecycle diagrams, drawn from the spec's `transitions` machine.

The machine is built by `build_transitions_machine` as a `MarkupMachine` (the part of
`transitions`' diagram extension that describes a machine as data) and has no model, so nothing is
highlighted as a "current" state. Its public `markup` (states, on-enter hooks, transitions with
their guards) is drawn with the `graphviz` package's public API, or written as Mermaid text. Two
refinements over a plain drawing keep the picture readable and say what the spec means:

- transitions sharing trigger, guards and destination are merged; when they leave (almost) every
  status they are drawn once, from a dashed pseudo-state "any status [except ...]";
- statuses that may not hold a turn are grouped and styled apart, each showing its on-enter hook
  (`entry / clear_turn`);
- transitions taken on the orchestrator's commands (event types marked `source: command` in the
  spec) get edges of their own, drawn bold and coloured in Graphviz and labelled `cmd:` in
  Mermaid (whose state diagrams cannot style edges).

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

from transitions.extensions.markup import MarkupMachine

from statemachine.engine.machine import build_transitions_machine
from statemachine.spec.model import Spec

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


def _transition_label(t: Mapping[str, Any]) -> str:
    """`trigger [g1 & g2 & !u]`, `[internal]` for a transition that enters no status (UML style)."""
    label = str(t["trigger"])
    if "dest" not in t:
        label += " [internal]"
    guards = [*t.get("conditions", ()), *("!" + u for u in t.get("unless", ()))]
    if guards:
        label += " [" + " & ".join(guards) + "]"
    return label


Edge = tuple[str, str, bool]  # (source, dest, drawn for commands)


def _commands(spec: Spec) -> frozenset[str]:
    """The triggers of the event types the spec marks as the orchestrator's commands."""
    return frozenset(t.name for e in spec.events if e.is_command for t in e.trigger_values)


def _edge_labels(transitions: Iterable[Mapping[str, Any]], commands: frozenset[str] = frozenset()
                 ) -> dict[Edge, list[str]]:
    """(source, dest, is a command edge) -> label lines, in spec order.

    Triggers sharing an edge and the same guards are listed together, UML style
    (`a, b [g1 & g2]`); commands never share an edge with provider events.
    """
    by_edge: dict[Edge, dict[tuple[Any, ...], list[str]]] = {}
    for t in transitions:
        guards = (tuple(t.get("conditions", ())), tuple(t.get("unless", ())), "dest" not in t)
        edge = (t["source"], t.get("dest", t["source"]), t["trigger"] in commands)
        by_edge.setdefault(edge, {}).setdefault(guards, []).append(t["trigger"])
    labels: dict[Edge, list[str]] = {}
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
            lines.extend(_wrap(_transition_label(merged)))
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


def _graphviz(spec: Spec, markup: Mapping[str, Any]) -> Any:
    """The lifecycle as a `graphviz.Digraph`: merged edges, the no-turn statuses in one cluster."""
    graphviz = importlib.import_module("graphviz")
    styles = _styles_for("graphviz")
    title = _title(spec, "graphviz")
    holds = {s.name: s.holds_turn for s in spec.statuses}
    states = markup["states"]
    edges, pseudos = _grouped(markup["transitions"], [s["name"] for s in states])
    graph = graphviz.Digraph(
        name=title,
        graph_attr={**styles["graph"]["default"], **GRAPHVIZ_ATTRIBUTES, "label": title},
        node_attr=styles["node"]["default"],
        edge_attr=styles["edge"]["default"],
    )

    def add(target: Any, state: Mapping[str, Any], style: str) -> None:
        hooks = _entry_hooks(state)
        text = f"<b>{_html(state['name'])}</b>"
        if hooks:
            text += f'<br/><font point-size="10">entry / {_html(hooks)}</font>'
        target.node(state["name"], label=f"<{text}>", **styles["node"][style])

    for state in states:
        if holds[state["name"]]:
            add(graph, state, "holds_turn")
    # The no-turn statuses share one column, framed and labelled; the start dot sits beside the
    # initial status when that status is one of them.
    attrs = {**styles["cluster"]["no_turn"], "label": "may not hold a turn"}
    with graph.subgraph(name="cluster_no_turn", graph_attr=attrs) as sub:
        for state in states:
            if not holds[state["name"]]:
                add(sub, state, "no_turn")
        (sub if not holds[spec.initial] else graph).node("_start", label="", **styles["node"]["initial"])
    graph.edge("_start", spec.initial)
    for pseudo in pseudos:
        graph.node(pseudo.id, label=pseudo.label, **styles["node"]["any"])
    pseudo_ids = {p.id for p in pseudos}
    for (src, dest, command), labels in _edge_labels(edges, _commands(spec)).items():
        style = {**(styles["edge"]["from_any"] if src in pseudo_ids else {}),
                 **(styles["edge"]["command"] if command else {})}
        # A borderless table, one left-aligned row per line: Graphviz sizes HTML labels exactly,
        # so neighbouring edges keep clear of them (plain multi-line labels get grazed).
        rows = "".join(f'<tr><td align="left">{_html(line)}</td></tr>' for line in labels)
        table = f'<table border="0" cellborder="0" cellpadding="1" cellspacing="0">{rows}</table>'
        graph.edge(src, dest, label=f"<{table}>", **style)
    return graph


# -- Mermaid ---------------------------------------------------------------------------------


def _mermaid_attrs(attrs: Mapping[str, str], sep: str) -> list[str]:
    renamed = {"fillcolor": "fill", "rankdir": "direction"}
    return [f"{renamed.get(k, k)}{sep}{v}" for k, v in attrs.items() if k not in _MERMAID_IGNORED]


def _mermaid(spec: Spec, markup: Mapping[str, Any]) -> str:
    """The lifecycle as a Mermaid state diagram: merged edges, no-turn statuses styled apart.

    Mermaid cannot style states inside composite states, so statuses are not nested: the no-turn
    ones get their own class and an `entry / hook` description instead.
    """
    styles = _styles_for("mermaid")
    holds = {s.name: s.holds_turn for s in spec.statuses}
    states = markup["states"]
    edges, pseudos = _grouped(markup["transitions"], [s["name"] for s in states])
    lines = ["---", _title(spec, "mermaid"), "---", "stateDiagram-v2"]
    body = _mermaid_attrs(MERMAID_ATTRIBUTES, " ")
    body += [f"classDef s_{name} {','.join(_mermaid_attrs(attrs, ':'))}" for name, attrs in styles["node"].items()]
    body.append("")
    for state in states:
        name = state["name"]
        body.append(f'state "{name}" as {name}')
        hooks = _entry_hooks(state)
        if hooks:
            body.append(f"{name} : entry / {hooks}")
        body.append(f"class {name} s_{'holds_turn' if holds[name] else 'no_turn'}")
    for pseudo in pseudos:
        body.append(f'state "{pseudo.label}" as {pseudo.id}')
        body.append(f"class {pseudo.id} s_any")
    body.append("")
    body += [f"{src} --> {dest}: {'cmd: ' if command else ''}{'<br/>'.join(labels)}"
             for (src, dest, command), labels in _edge_labels(edges, _commands(spec)).items()]
    body.append(f"[*] --> {spec.initial}")
    return "\n".join([*lines, *("  " + line if line else "  " for line in body)]) + "\n"


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
        # The orchestrator's commands, apart from provider events.
        "command": {"color": "#b45309", "fontcolor": "#92400e", "penwidth": "2"},
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
# Graphviz attributes with no Mermaid meaning.
_MERMAID_IGNORED = frozenset({"style", "shape", "peripheries", "strict", "directed"})
_GRAPHVIZ_ONLY = frozenset({"fontname", "fontcolor", "width", "color"})


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


def _markup(spec: Spec) -> Mapping[str, Any]:
    """The spec's machine described as data by `transitions` itself (`MarkupMachine.markup`)."""
    machine = build_transitions_machine(spec, machine_class=MarkupMachine)
    markup: Mapping[str, Any] = machine.markup
    return markup


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
        return _mermaid(spec, _markup(spec)).encode("utf-8")
    _require_graphviz(fmt)
    graph = _graphviz(spec, _markup(spec))
    if fmt == "dot":
        return str(graph.source).encode("utf-8")
    graphviz = importlib.import_module("graphviz")
    try:
        data: bytes = graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise DiagramUnavailable(
            f"the {fmt} format needs Graphviz's `dot` program, which could not be run: {DEBIAN_HINT}"
        ) from None
    if fmt == "svg":
        data = _GENERATOR_COMMENT.sub("", data.decode("utf-8")).encode("utf-8")
    return data
