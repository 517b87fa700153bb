"""The Promela model: no spec string becomes model code, and the model's own rendering of each
guard and effect agrees with the Python declaration on every input of the verification universe.

spin runs the C preprocessor over the model, then compiles pan.c from it: a spec string written
into a comment could end the comment (`*` backslash CR `/` is spliced into `*/`) and the rest
would be model code, and a `c_decl` or `c_code` block runs when the verifier does. Spec strings
therefore never reach the model as text: names are checked identifiers, other strings appear as
numbers or checked labels, or not at all.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from statemachine import builtin_spec
from statemachine.core.session import FIELDS
from statemachine.engine.compiled import generate
from statemachine.engine.registry import compiled_for
from statemachine.runtime.projector import SessionProjector
from statemachine.spec.check import build_spec
from statemachine.spec.loader import read_spec_file
from statemachine.spec.model import Spec
from statemachine.spec.requirements import builtin_requirements, parse_requirements
from statemachine.spec.semantics import VOCABULARY
from statemachine.verify.promela import (
    EFFECTS,
    GUARDS,
    awaiting_names,
    export_promela,
    payload_guards,
    request_id,
    request_kinds,
    unmodelled_effects,
    unmodelled_fields,
)
from statemachine.verify.promela_requirements import MODELLED_FIELDS, render_state
from statemachine.verify.spin import check_spin

HAVE_SPIN = shutil.which("spin") is not None and (shutil.which("gcc") or shutil.which("cc")) is not None
needs_spin = pytest.mark.skipif(not HAVE_SPIN, reason="spin or gcc is not installed")


def _top_level(marker: Path) -> str:
    # Ends the comment it lands in (the preprocessor splices `*` backslash CR `/` into `*/`), then
    # declares a C function that runs when spin's verifier starts.
    return ('x*\\\r/ c_decl { __attribute__((constructor)) static void pwn(void) { system("touch '
            + str(marker) + '"); } } /* y')


def _in_process(marker: Path) -> str:
    # The same, where the comment sits inside the process: a statement the verifier executes.
    return 'x*\\\r/ c_code { system("touch ' + str(marker) + '"); }; /* y'


# Everything a comment, string or line could be broken with.
NASTY = ['a*/b', 'c\rd', 'e\nf', 'g\\\nh', 'i"j', 'k c_code { l', 'm??/n??=o', 'p\x00q', '*\\\r/ c_expr { 1 } /*',
         '#define X', '%s%n', "'"]


def _hostile(data: dict[str, Any], text: str, top: str | None = None) -> dict[str, Any]:
    """The built-in spec with `text` in every string position that a spec may fill freely (and
    `top` where the model would put it at the top level), still a spec that loads."""
    out = copy.deepcopy(data)
    top = text if top is None else top
    for status in out["statuses"]:
        status["description"] = text
    for inv in out["invariants"]:
        inv["description"] = text
    events = {e["type"]: e for e in out["events"]}
    # An enum value (a variant, hence a trigger name), a payload field name and a default.
    events["session.state.changed"]["payload"]["state"]["enum"].append(top)
    events["runtime.error"]["payload"][text] = {"type": "string", "default": text}
    for t in out["transitions"]:
        for i, e in enumerate(t.get("effects", [])):
            if isinstance(e, dict) and "set_error" in e:
                e["set_error"]["default"] = text
                if t["trigger"] == "runtime.error":
                    e["set_error"]["field"] = text  # a payload field the event has
            if isinstance(e, dict) and "open_request" in e:
                t["effects"][i] = {"open_request": {"what": text + e["open_request"]["what"]}}
    return out


def _spec(data: dict[str, Any], source: str) -> Spec:
    return build_spec(data, source)


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return read_spec_file(None)[0]


@needs_spin
def test_no_spec_string_runs_code_when_spin_checks_it(data: dict[str, Any], tmp_path: Path) -> None:
    top, inner = tmp_path / "top-level-ran", tmp_path / "in-process-ran"
    spec = _spec(_hostile(data, _in_process(inner), _top_level(top)), str(tmp_path / "spec*\\\r.yaml"))
    result = check_spin(spec, builtin_requirements(builtin_spec()))
    assert not top.exists() and not inner.exists(), "a spec string ran as code in spin's verifier"
    # The model compiled and was searched (the added variant has no transition: requirements about
    # state changes fail on it, which is the model doing its job).
    assert not result.skipped and result.covered.get("states", 0) > 0, result.detail


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_spec_strings_never_reach_the_model_as_text(data: dict[str, Any], text: str) -> None:
    reqs = builtin_requirements(builtin_spec())
    hostile = _spec(_hostile(data, text), "x*\\\r/\x00.yaml")
    # The same spec with a harmless string in the same places (not a plain word either, so shown
    # the same way): the model must not depend on which.
    twin = _spec(_hostile(data, "plain text"), "plain.yaml")
    for temporal in (False, True):
        model = export_promela(hostile, reqs, temporal=temporal)
        assert model == export_promela(twin, reqs, temporal=temporal)
        for bad in ("\r", "\x00", "\\\n", "??", "c_code", "c_expr", "c_decl", "#define", "%s", "%n"):
            assert bad not in model, (bad, text)
        assert model.count("/*") == model.count("*/")  # every comment is one of the model's own
        assert all(ch.isascii() and (ch.isprintable() or ch == "\n") for ch in model)


def test_spec_strings_never_become_python_source(data: dict[str, Any], tmp_path: Path) -> None:
    marker = tmp_path / "python-ran"
    payload = "x'\\\n\r\x00\u2028\x0c; __import__('os').system('touch " + str(marker) + "') #"
    spec = _spec(_hostile(data, payload), "hostile.yaml")
    table = compiled_for(spec).table
    for lean in (False, True):
        source = generate(spec, table, lean=lean).source
        assert "\r" not in source and "\x00" not in source and "\u2028" not in source and "\x0c" not in source
        for line in source.splitlines():
            # A spec string may appear only inside a comment, as an ascii() literal.
            if "__import__(" in line:
                assert line.lstrip().startswith("#"), line
    projector = SessionProjector(spec)
    projector.apply({"eventId": "e1", "type": "runtime.error", "provider": "codex", "threadId": "t",
                     "createdAt": "2026-01-01T00:00:00Z", "payload": {"message": "m"}})
    assert not marker.exists()


# -- the independent rendering agrees with the declarations ----------------------------------------

# The model's domain: active turn, the event's turn, the finished bits of turns 1..3, the pending
# turn (0 none, 255 unknown id, else its turn) and the payload bit the guards read; with no request
# open and with two. Then the open requests (every list of distinct ids 0..K, id 0 standing for a
# request without one, each asking any kind) with every event request id (`rid`): the guards and
# effects that read the requests read nothing else of the session (their declared slots).
TURN_VALUES = range(4)
FIN_MASKS = range(8)
PEND_VALUES = (0, 255, 1, 2, 3)
OPT_VALUES = (0, 1)
Requests = tuple[tuple[int, str], ...]  # (rid, kind), oldest first


def _request_lists(spec: Spec) -> list[Requests]:
    from itertools import permutations, product

    slots = range(len(request_kinds(spec)) + 1)
    kinds = sorted(awaiting_names(spec))
    return [tuple(zip(ids, ks, strict=True)) for n in range(len(slots) + 1) for ids in permutations(slots, n)
            for ks in product(kinds, repeat=n)]


def _two_open(spec: Spec) -> Requests:
    """Two requests open, each of its own kind: what the turn section of the domain runs with."""
    return tuple((i, kind) for i, kind in enumerate(request_kinds(spec)[:2], 1))


def _effect_uses(spec: Spec) -> list[tuple[str, dict[str, Any]]]:
    """Each modelled effect once, and each awaiting setter once per value the spec gives it."""
    uses: dict[str, dict[str, Any]] = {}
    refs = [e for t in spec.transitions for e in t.effects] + [e for s in spec.statuses for e in s.on_enter]
    for ref in [*refs, *spec.on_applied]:
        uses.setdefault(ref.label(), ref.param_map | {"": ref.name})
    return sorted(((params.pop(""), params) for params in uses.values()), key=lambda u: (u[0], sorted(u[1].items())))


def _promela_program(spec: Spec, guards: Mapping[str, str], effects: Mapping[str, Any]
                     ) -> tuple[str, list[str], list[tuple[str, dict[str, Any]]]]:
    names = sorted(guards)
    awaiting = awaiting_names(spec)
    ids = len(request_kinds(spec)) + 1
    lists = _request_lists(spec)
    uses = [(n, p) for n, p in _effect_uses(spec) if n not in unmodelled_effects(VOCABULARY)]
    requests = " ".join(["%e"] * ids + ["%d"] * ids)
    body = ["load();", "printf(\"I %d %d %d %d %d %d %d\\n\", t, e, f, p, o, r, q);"]
    for g in names:
        body.append(f"load(); printf(\"G {g} %d\\n\", ({guards[g]} -> 1 : 0));")
    for k, (name, params) in enumerate(uses):
        extra = {"AW": awaiting[str(params["what"])]} if "what" in params else {}
        body.append(f"load(); {effects[name](params | extra | {'IDS': ids})}; "
                    f"printf(\"E {k} %d %d %d %d %d %e %d {requests}\\n\", turn, fin[1], fin[2], fin[3], pend, aw, "
                    f"nrq, {', '.join(f'rq[{i}]' for i in range(ids))}, {', '.join(f'ro[{i}]' for i in range(ids))});")
    # The request lists as a table: list r's id i asks tq[r * ids + i] (AW_none: not open), at place
    # to[r * ids + i]; it holds tn[r] requests and awaits ta[r].
    table = []
    for r, listed in enumerate(lists):
        for place, (i, kind) in enumerate(listed, 1):
            table.append(f"tq[{r * ids + i}] = {awaiting[kind]}; to[{r * ids + i}] = {place};")
        table.append(f"tn[{r}] = {len(listed)}; ta[{r}] = {awaiting[listed[-1][1]] if listed else 'AW_none'};")
    lines = ["mtype = { " + ", ".join(["AW_none", *awaiting.values()]) + " };",
             "byte turn; bool fin[4]; byte pend; mtype aw = AW_none; byte ev; bit opt;",
             f"mtype rq[{ids}] = AW_none; byte ro[{ids}]; byte nrq; byte rid;",
             f"mtype tq[{len(lists) * ids}] = AW_none; byte to[{len(lists) * ids}]; byte tn[{len(lists)}];"
             f" mtype ta[{len(lists)}] = AW_none;",
             "byte t, e, f, p, o, r, q, s;",
             "inline load() {",
             "  turn = t; ev = e; fin[1] = (f & 1); fin[2] = ((f >> 1) & 1); fin[3] = ((f >> 2) & 1);",
             "  if :: p == 0 -> pend = 0 :: p == 1 -> pend = 255 :: else -> pend = p - 1 fi;",
             "  opt = o; aw = ta[r]; nrq = tn[r]; rid = q;",
             *(f"  rq[{i}] = tq[r * {ids} + {i}]; ro[{i}] = to[r * {ids} + {i}];" for i in range(ids)),
             "}",
             "active proctype agree() {",
             *("  " + line for line in table)]

    def loops(ranges: list[tuple[str, int]], inner: list[str]) -> list[str]:
        out: list[str] = []
        for var, top in ranges:
            out += [f"  {var} = 0;", "  do", f"  :: {var} > {top} -> break", "  :: else ->"]
        out += ["    " + b for b in inner]
        for var, _ in reversed(ranges):
            out += [f"    {var}++", "  od;"]
        return out

    # The turns' domain with no request open and with two (s: which), then every request list
    # with every event request id.
    two = lists.index(_two_open(spec))
    lines += loops([("t", 3), ("e", 3), ("f", 7), ("p", 4), ("o", 1), ("s", 1)],
                   [f"r = s * {two}; q = 0;", *body])
    lines += ["  t = 0; e = 0; f = 0; p = 0; o = 0;"]
    lines += loops([("r", len(lists) - 1), ("q", ids - 1)], body)
    lines.append("}")
    return "\n".join(lines) + "\n", names, uses


def _python_input(projector: SessionProjector, t: int, e: int, f: int, p: int, o: int, requests: Requests = (),
                  q: int = 0) -> tuple[Any, ...]:
    from statemachine.core.session import Session

    turn = None if t == 0 else f"turn-{t}"
    pending = None if p == 0 else ("" if p == 255 else f"turn-{p}")
    payload: dict[str, Any] = {"onlyIfSettled": True} if o else {}
    if q:
        payload["requestId"] = request_id(q)
    wire: dict[str, Any] = {"eventId": "x", "type": "thread.session.stop", "provider": "codex", "threadId": "th",
                            "createdAt": "2026-01-01T00:00:00Z", "payload": payload}
    if e:
        wire["turnId"] = f"turn-{e}"
    finished = frozenset(f"turn-{i}" for i in (1, 2, 3) if f >> (i - 1) & 1)
    open_requests = tuple((request_id(i), kind) for i, kind in requests)
    session = Session("th", "running", "codex", active_turn_id=turn, pending_turn=pending,
                      awaiting=requests[-1][1] if requests else None, open_requests=open_requests)
    return session, finished, projector.parse(wire)


def _disagreements(tmp_path: Path, guards: Mapping[str, str], effects: Mapping[str, Any]) -> list[str]:
    """spin's interpreter runs each guard's and effect's Promela on every input of the model's
    domain, the declarations' Python runs on the same inputs: where they answer differently."""
    import subprocess

    from statemachine.spec.semantics import Cursor

    spec = builtin_spec()
    program, names, uses = _promela_program(spec, guards, effects)
    lists = _request_lists(spec)
    ids = len(request_kinds(spec)) + 1
    (tmp_path / "agree.pml").write_text(program)
    run = subprocess.run(["spin", "-T", "agree.pml"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    awaiting = {v: k for k, v in awaiting_names(spec).items()} | {"AW_none": None}
    turn_ids = [None, "turn-1", "turn-2", "turn-3"]
    projector = SessionProjector(spec)
    compared, differing = 0, []
    current: tuple[Any, ...] = ()
    for line in run.stdout.splitlines():
        kind, *rest = line.split() or [""]
        if kind not in ("I", "G", "E"):
            continue  # spin's own lines (processes created); the count below says all were seen
        if kind == "I":
            t, e, f, pi, o, r, q = map(int, rest)
            # pi: the pending value's place; r: the request list's
            current = _python_input(projector, t, e, f, PEND_VALUES[pi], o, lists[r], q)
            continue
        session, finished, event = current
        cursor = Cursor(session, None, finished, event)
        compared += 1
        if kind == "G":
            name, value = rest
            if VOCABULARY.guards[name].fn(cursor) != bool(int(value)):
                differing.append(f"guard {name} on {line_of(current)}")
            continue
        name, params = uses[int(rest[0])]
        VOCABULARY.effects[name].fn(cursor, params)
        pend = {0: None, 255: ""}.get(int(rest[5]), f"turn-{rest[5]}")
        asks, places = rest[8:8 + ids], [int(x) for x in rest[8 + ids:8 + 2 * ids]]
        # The model's requests as a list, oldest first (a place repeated or missing shows as a gap).
        listed = tuple((request_id(i), awaiting[asks[i]]) for i in sorted(range(ids), key=lambda i: places[i])
                       if places[i] != 0 or asks[i] != "AW_none")
        if sorted(x for x in places if x) != list(range(1, len(listed) + 1)) or int(rest[7]) != len(listed):
            listed = (*listed, ("places", tuple(places)), ("count", int(rest[7])))
        theirs = (turn_ids[int(rest[1])], {turn_ids[i] for i in (1, 2, 3) if rest[1 + i] == "1"}, pend,
                  awaiting[rest[6]], listed)
        if (cursor.active_turn, finished | set(cursor.newly_finished), cursor.pending_turn, cursor.awaiting,
                tuple(cursor.open_requests)) != theirs:
            differing.append(f"effect {name} on {line_of(current)}")
    domain = len(TURN_VALUES) ** 2 * len(FIN_MASKS) * len(PEND_VALUES) * len(OPT_VALUES) * 2 + len(lists) * ids
    assert compared == domain * (len(names) + len(uses))
    return differing


def line_of(current: tuple[Any, ...]) -> str:
    session, finished, event = current
    return (f"turn={session.active_turn_id} pending={session.pending_turn!r} finished={sorted(finished)} "
            f"requests={list(session.open_requests)} event turn={event.turn_id} payload={event.payload}")


@needs_spin
def test_the_promela_rendering_agrees_with_the_declarations_on_the_whole_domain(tmp_path: Path) -> None:
    assert set(GUARDS) == set(VOCABULARY.guards)
    assert _disagreements(tmp_path, GUARDS, EFFECTS) == []


@needs_spin
def test_the_agreement_fails_on_a_wrong_rendering(tmp_path: Path) -> None:
    # A turn_matches that forgets "no turn is active", a consume that ignores the unknown id; a
    # closes_last_request that forgets a resolution naming none, a close_request that awaits
    # nothing though a request stays open, an open_request that keeps the place of one asked again.
    guards = {**GUARDS, "turn_matches": "(ev == 0 || ev == turn)",
              "closes_last_request": "(nrq == 1 && rq[rid] != AW_none)"}
    effects = {**EFFECTS, "consume_pending_turn": lambda _: "if :: pend == ev -> pend = 0 :: else -> skip fi",
               "close_request": lambda p: EFFECTS["close_request"](p) + "; aw = AW_none",
               "open_request": lambda p: ("if :: rq[rid] == AW_none -> nrq = nrq + 1; ro[rid] = nrq :: else -> skip"
                                          f" fi; rq[rid] = {p['AW']}; aw = {p['AW']}")}
    found = _disagreements(tmp_path, guards, effects)
    assert any(d.startswith("guard turn_matches on turn=None") for d in found)
    assert any(d.startswith("effect consume_pending_turn on ") and "pending=''" in d for d in found)
    assert any(d.startswith("guard closes_last_request on ") and "payload={}" in d for d in found)
    assert any(d.startswith("effect close_request on ") and "requests=[(1, 'approval'), ('1', " in d for d in found)
    assert any(d.startswith("effect open_request on ") and "requests=[(1, 'approval'), ('1', " in d
               and "'requestId': 1}" in d for d in found)
    assert not any("guard has_active_turn" in d or "guard request_room" in d for d in found)


def test_what_the_model_leaves_out_is_derived_from_the_declarations() -> None:
    from statemachine.spec.semantics import Cursor

    spec = builtin_spec()
    projector = SessionProjector(spec)
    skipped = unmodelled_effects(VOCABULARY)
    assert skipped == {"clear_error", "set_error", "advance_updated_at", "record_provider"}
    # The request id is the model's `rid`, not the one other payload field (`opt`).
    assert payload_guards(VOCABULARY) == {"stop_unconditional"}
    assert set(awaiting_names(spec)) == {"approval", "user-input"}
    assert request_kinds(spec) == ["approval", "user-input"]
    # An effect left out changes nothing the model keeps, on every input of its domain.
    uses = [(n, p) for n, p in _effect_uses(spec) if n in skipped]
    for t in TURN_VALUES:
        for f in FIN_MASKS:
            for p in PEND_VALUES:
                for requests in ((), _two_open(spec)):
                    session, finished, event = _python_input(projector, t, t, f, p, 0, requests, 1)
                    for name, params in uses:
                        cursor = Cursor(session, None, finished, event)
                        VOCABULARY.effects[name].fn(cursor, params)
                        assert (cursor.active_turn, cursor.pending_turn, cursor.awaiting, cursor.open_requests,
                                cursor.newly_finished) == (session.active_turn_id, session.pending_turn,
                                                           session.awaiting, session.open_requests, []), name
    # A vocabulary whose effect writes the turn is no longer left out, and needs a rendering.
    from statemachine.spec.semantics import Effect

    loud = VOCABULARY.extended(effects=(Effect("clear_error", "turn = None\nerr = None", (), ("turn", "err"),
                                               "Clears the error, and the turn too."),))
    assert "clear_error" not in unmodelled_effects(loud)


def test_a_name_is_an_identifier_without_a_trailing_newline(data: dict[str, Any]) -> None:
    from dataclasses import replace

    from statemachine.spec.model import SpecError
    from statemachine.verify.mutate import spec_from_data
    from statemachine.verify.promela import PromelaError

    # Python's `$` also matches before a final newline: the schema says "nothing after the end".
    for where, edit in (("statuses[6].name", lambda d: d["statuses"][6].update(name="error\n")),
                        ("events[0].type", lambda d: d["events"][0].update(type="session.started\n")),
                        ("name", lambda d: d.update(name="session-lifecycle\n"))):
        broken = copy.deepcopy(data)
        edit(broken)
        with pytest.raises(SpecError) as caught:
            spec_from_data(broken, "newline.yaml")
        assert caught.value.path == where
    # A Spec made some other way with such a name is refused by the exporter, not written out.
    spec = builtin_spec()
    renamed = replace(spec, statuses=(replace(spec.statuses[0], name="idle\n*/"), *spec.statuses[1:]))
    with pytest.raises(PromelaError, match="is not an identifier"):
        export_promela(renamed)


def test_the_model_keeps_every_lifecycle_field_or_says_it_leaves_it_out() -> None:
    # From the one field table: a lifecycle field the model does not keep is named in its header,
    # and a requirement reading it is not rendered (never passed by a model that cannot see it).
    spec = builtin_spec()
    header = export_promela(spec).split("*/")[0]
    said = next(line for line in header.splitlines() if "are not modelled" in line)
    status = {s.name: f"S_{s.name}" for s in spec.statuses}
    awaiting = awaiting_names(spec)
    for f in FIELDS:
        if not f.lifecycle:
            continue
        holds = "{eq: [session.status, ready]}" if f.wire == "status" else f"{{is_null: session.{f.wire}}}"
        text = f"requirements_version: 1\nrequirements:\n  - {{name: x, form: state, description: d, holds: {holds}}}\n"
        (req,) = parse_requirements(text, spec).items
        rendered = render_state(spec, status, req, awaiting)
        if f.wire in MODELLED_FIELDS:
            assert rendered is not None and f.wire not in said, f.wire
        else:
            assert rendered is None and f.wire in said, f.wire
    assert set(unmodelled_fields()) == {"providerName", "lastError", "updatedAt"}
