"""A probe, not part of the package: the built-in spec's generated engine compiled ahead of time with
mypyc, timed against the exec'd (pure-Python) engine and the hand-written table (b).

    .venv/bin/python benchmarks/mypyc_probe.py             # 100,000 events over 1,000 sessions, 7 rounds
    .venv/bin/python benchmarks/mypyc_probe.py --quick     # the same stream, 3 rounds
    .venv/bin/python benchmarks/mypyc_probe.py --reuse ... # keep the builds of an earlier run

Builds, under .bench/mypyc/ (nothing in the package changes; 5 to 15 minutes on 2 cores):

  engine   the generated module sources (`apply`'s steps and the batch path's lean steps) written
           to .py files, the exec scope's names and the constants bound as `Final` module names,
           parameters and locals declared `Any` (see `typed`), compiled alone; loaded into the pure
           package's engine in place of the exec'd functions ("mypyc engine").
  package  a copy of the package whose per-event modules (PACKAGE_MODULES) are compiled together
           with the same engine modules ("mypyc package") and with a second spelling of them that
           declares the record a `ThreadRecord` and the session a `Session` ("mypyc package
           typed"); imported in this same process beside the pure package (its modules are swapped
           into sys.modules while in use).

Before any time is taken, each build must agree with the pure engine, outcome by outcome (kind,
reason, transition, sessions before and after) and on the final snapshot, on the timed stream and
on every example log, and on the batch path's counts, rejections and final snapshot; and `explore`
(as `verify` walks it, with the `transitions` engine as reference) must pass on every explored edge
for the steps and the lean steps. Then every contender runs once per round, the order rotated, in
one process; CPU-time medians and ratios against (b) and against (c) (transitions with one shared
Machine, on one session in 10) are printed, and the engine's step functions alone ("steps",
"lean": every engine call of the stream, each on a record holding the state it met).

Exit status: 0 when everything agreed, 1 on a disagreement, 2 when mypyc, setuptools, a C compiler
or the Python headers are missing or a build fails.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = ROOT / ".bench" / "mypyc"
sys.path.insert(0, str(HERE))

from handwritten import HandwrittenProjector, from_wire  # noqa: E402
from naive_transitions import NaiveProjector  # noqa: E402
from stream import generate_stream, session_subset  # noqa: E402

# The modules every event passes through (besides the engine), compiled in the `package` build.
# `core/event.py` is left out: `Event` subclasses `tuple`, which a mypyc native class cannot, and as
# a non-native class its `if TYPE_CHECKING: ... else:` body is refused (docs/performance.md).
PACKAGE_MODULES = (
    "statemachine/core/session.py",
    "statemachine/core/outcome.py",
    "statemachine/core/record.py",
    "statemachine/core/clock.py",
    "statemachine/runtime/pipeline.py",
    "statemachine/runtime/projector.py",
)
ENGINE_MODULES = ("aot_step", "aot_batch")  # the generated modules, as compiled

MYPY_INI = """[mypy]
python_version = 3.11
ignore_missing_imports = True
"""

SETUP_PY = """from setuptools import setup
from mypyc.build import mypycify

setup(name="mypyc-probe", packages=[], ext_modules=mypycify({paths!r} + ["--config-file", "mypy.ini"],
      opt_level="3"))
"""


class Unavailable(Exception):
    """mypyc, a C compiler or the Python headers are missing, or a build failed."""


# -- preflight and builds ------------------------------------------------------------------------


def preflight() -> None:
    try:
        import mypyc  # noqa: F401
    except ImportError as exc:
        raise Unavailable("mypyc is not installed for this interpreter (pip install mypy)") from exc
    try:
        import setuptools  # noqa: F401
    except ImportError as exc:
        raise Unavailable("setuptools is not installed for this interpreter (mypyc builds through it)") from exc
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        raise Unavailable(f"no C compiler: {cc!r} is not on PATH (set CC, or install gcc or clang)")
    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not include.exists():
        raise Unavailable(f"no Python headers: {include} is missing (install python3-dev or the like)")


def engine_source(spec: Any, generated: Any, kind: str, typed_record: bool = False) -> str:
    """One generated module as a file mypyc can compile: the exec scope's names and the constants
    bound as `Final` module names (a constant's value becomes source text here), the functions
    (see `typed`), and the dispatch table status -> trigger -> function."""
    lines = [
        f'"""{kind} steps of spec {spec.name!a} (digest {spec.digest[:16]}), for mypyc; written by '
        'benchmarks/mypyc_probe.py."""',
        "# ruff: noqa",
        "from datetime import UTC, datetime",
        "from typing import Any, Final",
        "",
        "from statemachine.core.outcome import Outcome, OutcomeKind",
        "from statemachine.core.record import ThreadRecord",
        "from statemachine.core.session import Session",
        "",
        "new: Final = tuple.__new__",
        "APPLIED: Final = OutcomeKind.APPLIED",
        "REJECTED: Final = OutcomeKind.REJECTED",
        "fromisoformat: Final = datetime.fromisoformat",
    ]
    for name, value in generated.constants:
        if type(value) not in (str, int, float, bool, type(None)):
            raise Unavailable(f"constant {name} = {value!r} cannot be written as a literal")
        lines.append(f"{name}: Final = {value!r}")
    functions = [typed(f, typed_record) for f in generated.functions]
    lines += ["", "", *(f + "\n\n" for f in functions)]
    table: dict[str, dict[str, str]] = {}
    for (trigger, status), fn in generated.names.items():
        table.setdefault(status, {})[trigger] = fn
    lines.append("DISPATCH = {")
    for status, row in table.items():
        lines.append(f"    {status!r}: {{" + ", ".join(f"{t!r}: {fn}" for t, fn in row.items()) + "},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def typed(function: str, typed_record: bool) -> str:
    """A generated function as mypyc accepts it: its parameters and every local declared `Any`
    (mypyc type-checks each body, and a local first bound to None, or to a value read from an
    untyped parameter, would be inferred as None and refuse the string bound to it later).
    `typed_record`: the record is declared a `ThreadRecord` and the session a `Session` instead,
    so that a compiled `ThreadRecord` is read and written natively."""
    head, body = function.split("\n", 1)
    names = dict.fromkeys(re.findall(r"^ +([a-z_][a-z0-9_]*) = ", body, flags=re.M))
    if typed_record:
        declared = "".join(f"    {n}: {'Session' if n == 's' else 'Any'}\n" for n in names)
        return head.replace("(rec, ev):", "(rec: ThreadRecord, ev: Any) -> Any:", 1) + "\n" + declared + body
    declared = "".join(f"    {n}: Any\n" for n in names)
    return head.replace("(rec, ev):", "(rec: Any, ev: Any) -> Any:", 1) + "\n" + declared + body


def write_engine(spec: Any, engine: Any, where: Path, typed_record: bool = False) -> list[Path]:
    paths = []
    for name, generated in zip(ENGINE_MODULES, (engine.generated, engine.batch_generated), strict=True):
        path = where / f"{name}{'_typed' if typed_record else ''}.py"
        path.write_text(engine_source(spec, generated, "apply" if name == "aot_step" else "batch", typed_record))
        paths.append(path)
    return paths


def mypycify(where: Path, paths: Sequence[str], log: Callable[[str], None], mypypath: str | None = None) -> None:
    """Compile `paths` (relative to `where`) with mypyc, in place."""
    (where / "mypy.ini").write_text(MYPY_INI)
    (where / "setup.py").write_text(SETUP_PY.format(paths=list(paths)))
    env = {**os.environ, "MYPYPATH": mypypath or ""}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=where, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise Unavailable(f"mypyc build in {where} failed:\n{tail}")
    log(f"  built {len(paths)} module(s) in {time.perf_counter() - t0:.0f} s")


def build(log: Callable[[str], None], spec: Any, engine: Any, reuse: bool) -> tuple[Path, Path]:
    """The two builds, made afresh (they follow the current source) unless `reuse`."""
    engine_dir, package_dir = BUILD / "engine", BUILD / "package"
    if reuse and (BUILD / "done").exists():
        log(f"mypyc: reusing the builds in {BUILD}")
        return engine_dir, package_dir
    shutil.rmtree(BUILD, ignore_errors=True)
    engine_dir.mkdir(parents=True)
    paths = write_engine(spec, engine, engine_dir)
    log("mypyc: the generated engine alone")
    mypycify(engine_dir, [p.name for p in paths], log, mypypath=str(ROOT))

    for part in ("statemachine", "specs"):  # the package reads the spec from the checkout
        shutil.copytree(ROOT / part, package_dir / part, ignore=shutil.ignore_patterns("__pycache__"))
    engines = [*write_engine(spec, engine, package_dir / "statemachine" / "engine"),
               *write_engine(spec, engine, package_dir / "statemachine" / "engine", typed_record=True)]
    log(f"mypyc: {len(PACKAGE_MODULES)} package modules with the generated engine (two spellings)")
    mypycify(package_dir, [*PACKAGE_MODULES, *(str(p.relative_to(package_dir)) for p in engines)], log)
    (BUILD / "done").touch()
    return engine_dir, package_dir


# -- two copies of the package in one process -----------------------------------------------------


def _ours(name: str) -> bool:
    return name == "statemachine" or name.startswith("statemachine.")


class Copy:
    """A copy of the package imported beside the one in sys.modules; `installed()` swaps it in
    (lazy imports inside the package then find the copy's modules)."""

    def __init__(self, root: Path, names: Sequence[str]) -> None:
        saved = {k: v for k, v in sys.modules.items() if _ours(k)}
        for k in saved:
            del sys.modules[k]
        sys.path.insert(0, str(root))
        try:
            self.mods = {n: importlib.import_module(n) for n in names}
        finally:
            sys.path.remove(str(root))
            self.modules = {k: v for k, v in sys.modules.items() if _ours(k)}
            for k in self.modules:
                del sys.modules[k]
            sys.modules.update(saved)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        saved = {k: v for k, v in sys.modules.items() if _ours(k)}
        for k in saved:
            del sys.modules[k]
        sys.modules.update(self.modules)
        try:
            yield
        finally:
            # Kept with the copy: what it imported meanwhile (lazy imports) is part of it now.
            self.modules = {k: v for k, v in sys.modules.items() if _ours(k)}
            for k in self.modules:
                del sys.modules[k]
            sys.modules.update(saved)


class Flavour:
    """One way of running the package: its SessionProjector and the engine steps it uses."""

    def __init__(self, name: str, projector_cls: Any, record_cls: Any, engine: Any, step: Any, lean: Any,
                 installed: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext) -> None:
        self.name, self.projector_cls, self.record_cls, self.engine = name, projector_cls, record_cls, engine
        self.step, self.lean, self.installed = step, lean, installed

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """This flavour's steps in its engine (shared by its projectors; the batch path reads them
        on every call), with its copy of the package in sys.modules."""
        self.engine.dispatch = self.step
        self.engine.__dict__["batch_dispatch"] = self.lean
        with self.installed():
            yield

    def projector(self, parser: Any = None) -> Any:
        with self.active():
            p = self.projector_cls(parser=parser)
        # Its steps are this flavour's; the batch path reads the lean ones from the same engine.
        if p.pipeline.dispatch is not self.step or p.pipeline.engine is not self.engine:
            raise RuntimeError(f"{self.name}: a projector does not use this flavour's steps "
                               f"({p.pipeline.dispatch is self.step}, {p.pipeline.engine is self.engine})")
        return p


# -- agreement -----------------------------------------------------------------------------------


def outcome_key(o: Any) -> tuple[Any, ...]:
    return (o.kind.value, o.reason, o.transition, tuple(o.before), tuple(o.after))


def snapshot_text(p: Any) -> str:
    return json.dumps(p.snapshot(), sort_keys=True)


def agree(pure: Flavour, other: Flavour, streams: dict[str, list[Any]]) -> list[str]:
    """Every stream through both, one event at a time and as a batch; the differences found."""
    problems = []
    for name, wire in streams.items():
        pa, pb = pure.projector(), other.projector()
        with pure.active():
            ka = [outcome_key(pa.apply(w)) for w in wire]
        with other.active():
            kb = [outcome_key(pb.apply(w)) for w in wire]
        if ka != kb:
            i = next(i for i, (x, y) in enumerate(zip(ka, kb, strict=True)) if x != y)
            problems.append(f"{name}: apply differs first at event {i + 1}: {ka[i]} vs {kb[i]}")
        elif snapshot_text(pa) != snapshot_text(pb):
            problems.append(f"{name}: apply's final snapshots differ")
        ba, bb = pure.projector(), other.projector()
        ra: list[Any] = []
        rb: list[Any] = []
        with pure.active():
            ca = ba.apply_batch(wire, on_rejected=lambda *r, out=ra: out.append(r)).counts
        with other.active():
            cb = bb.apply_batch(wire, on_rejected=lambda *r, out=rb: out.append(r)).counts
        if (ca, ra) != (cb, rb) or snapshot_text(ba) != snapshot_text(bb) or snapshot_text(ba) != snapshot_text(pa):
            problems.append(f"{name}: the batch path differs ({ca} vs {cb})")
    return problems


def explored(flavour: Flavour, explore: Callable[..., Any], spec: Any, requirements: Any) -> tuple[bool, str]:
    """`explore` (as `verify` walks it) with `flavour`'s steps as the compiled engine and the
    `transitions` engine as reference."""
    with flavour.active():
        result = explore(spec, requirements, engine="compiled", reference="transitions")
    # The walk must have stepped this flavour's functions: it must stop at a step that raises.
    canary = Flavour(f"{flavour.name} canary", flavour.projector_cls, flavour.record_cls, flavour.engine,
                     {st: dict.fromkeys(row, _canary) for st, row in flavour.step.items()},
                     {st: dict.fromkeys(row, _canary) for st, row in flavour.lean.items()}, flavour.installed)
    try:
        with canary.active():
            explore(spec, requirements, engine="compiled", reference="transitions")
    except Canary:
        return result.ok, result.detail
    return False, "the walk did not use this flavour's steps (a step that raises was never called)"


class Canary(Exception):
    pass


def _canary(rec: Any, ev: Any) -> Any:
    raise Canary


# -- timing --------------------------------------------------------------------------------------


class Row:
    def __init__(self, name: str, events: int, run: Callable[[], float]) -> None:
        self.name, self.events, self.run = name, events, run
        self.seconds: list[float] = []

    @property
    def rate(self) -> float:
        return self.events / statistics.median(self.seconds)


def each(apply: Callable[[Any], Any], items: list[Any]) -> Callable[[], None]:
    """`apply` on every item, each result dropped at once (as benchmarks/run.py times them)."""
    def loop() -> None:
        for item in items:
            apply(item)
    return loop


def clocked(loop: Callable[[], Any]) -> float:
    """The CPU time `loop` takes (this process's: on 2 shared cores, wall time measures the neighbours)."""
    gc.collect()
    t0 = time.process_time()
    loop()
    elapsed = time.process_time() - t0
    gc.collect()
    return elapsed


def apply_row(name: str, flavour: Flavour, wire: list[Any]) -> Row:
    """`apply` on pre-parsed Events, by a fresh projector sharing the parser that made them."""
    maker = flavour.projector()
    events = [maker.parse(w) for w in wire]

    def run() -> float:
        apply = flavour.projector(maker.parser).apply
        with flavour.active():
            return clocked(each(apply, events))
    return Row(name, len(events), run)


def batch_row(name: str, flavour: Flavour, wire: list[Any]) -> Row:
    """`apply_batch` on pre-parsed Events, by a fresh projector whose parser made them."""
    def run() -> float:
        p = flavour.projector()
        with flavour.active():
            mine = [p.parse(w) for w in wire]
            return clocked(lambda: p.apply_batch(mine))
    return Row(name, len(wire), run)


def engine_calls(flavour: Flavour, events: list[Any]) -> list[tuple[str, str, Any, tuple[str, ...], Any]]:
    """Every call `apply` makes to the engine on `events`: (status, trigger, session and finished
    turns before, event)."""
    calls: list[tuple[str, str, Any, tuple[str, ...], Any]] = []

    def spy(status: str, trigger: str, fn: Any) -> Any:
        def step(rec: Any, ev: Any) -> Any:
            calls.append((status, trigger, rec.session, tuple(rec.finished), ev))
            return fn(rec, ev)
        return step
    p = flavour.projector(events[0].checked_by)
    p.pipeline.dispatch = {st: {tr: spy(st, tr, fn) for tr, fn in row.items()} for st, row in flavour.step.items()}
    for ev in events:
        p.apply(ev)
    return calls


def steps_row(name: str, flavour: Flavour, lean: bool, calls: list[Any]) -> Row:
    """The engine's steps alone: each call of the stream on a record holding the state it met."""
    records = []
    for _, _, session, finished, _ in calls:
        rec = flavour.record_cls(session, 1024, 256)
        for turn in finished:
            rec.remember_turn(turn)
        records.append(rec)
    table = flavour.lean if lean else flavour.step
    items = [(rec, ev, table[st][tr]) for rec, (st, tr, _, _, ev) in zip(records, calls, strict=True)]
    sessions = [c[2] for c in calls]

    def run() -> float:
        for rec, session in zip(records, sessions, strict=True):
            rec.session = session

        def loop() -> None:
            for rec, ev, fn in items:
                fn(rec, ev)
        return clocked(loop)
    return Row(name, len(items), run)


def plain_row(name: str, make: Callable[[], Callable[[Any], Any]], items: list[Any]) -> Row:
    def run() -> float:
        apply = make()
        return clocked(each(apply, items))
    return Row(name, len(items), run)


# -- the run -------------------------------------------------------------------------------------


def example_logs() -> dict[str, list[Any]]:
    logs = {}
    for path in sorted((ROOT / "examples").glob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        logs[path.name] = lines
    return logs


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--sessions", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--reuse", action="store_true", help="reuse the builds of an earlier run (else built afresh)")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats = 3
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {msg}", flush=True)

    from statemachine import SessionProjector
    from statemachine.core.record import ThreadRecord
    from statemachine.engine.registry import compiled_for
    from statemachine.spec.load import builtin_spec
    from statemachine.spec.requirements import builtin_requirements
    from statemachine.verify.explore import explore

    spec = builtin_spec()
    engine = compiled_for(spec)
    pure = Flavour("pure", SessionProjector, ThreadRecord, engine, engine.dispatch, engine.batch_dispatch)
    try:
        preflight()
        engine_dir, package_dir = build(log, spec, engine, args.reuse)
    except Unavailable as exc:
        print(f"mypyc_probe: {exc}", file=sys.stderr)
        return 2

    sys.path.insert(0, str(engine_dir))
    aot = {m: importlib.import_module(m) for m in ENGINE_MODULES}
    sys.path.remove(str(engine_dir))
    for m in aot.values():
        if not str(m.__file__).endswith(sysconfig.get_config_var("EXT_SUFFIX")):
            print(f"mypyc_probe: {m.__name__} was not loaded as an extension ({m.__file__})", file=sys.stderr)
            return 2
    engine_only = Flavour("mypyc engine", SessionProjector, ThreadRecord, engine, aot["aot_step"].DISPATCH,
                          aot["aot_batch"].DISPATCH)

    names = ["statemachine", "statemachine.engine.registry", "statemachine.spec.load",
             "statemachine.verify.explore", "statemachine.spec.requirements",
             *(f"statemachine.engine.{m}{t}" for m in ENGINE_MODULES for t in ("", "_typed")),
             *(p[:-3].replace("/", ".") for p in PACKAGE_MODULES)]
    copy = Copy(package_dir, names)
    mods = copy.mods
    with copy.installed():
        compiled = [n for n in names if str(mods[n].__file__).endswith(sysconfig.get_config_var("EXT_SUFFIX"))]
        copy_spec = mods["statemachine.spec.load"].builtin_spec()
        copy_projector = mods["statemachine.runtime.projector"].SessionProjector
        copy_record = mods["statemachine.core.record"].ThreadRecord
        # The engine the copy's projectors use, as they reach it.
        copy_engine = copy_projector().pipeline.engine
        copy_engine.batch_dispatch  # noqa: B018 - built now, while the copy is installed
        copy_requirements = mods["statemachine.spec.requirements"].builtin_requirements(copy_spec)
    log(f"package build: compiled modules loaded: {', '.join(compiled)}")
    package = Flavour("mypyc package", copy_projector, copy_record, copy_engine,
                      mods["statemachine.engine.aot_step"].DISPATCH, mods["statemachine.engine.aot_batch"].DISPATCH,
                      copy.installed)
    package_typed = Flavour("mypyc package typed", copy_projector, copy_record, copy_engine,
                            mods["statemachine.engine.aot_step_typed"].DISPATCH,
                            mods["statemachine.engine.aot_batch_typed"].DISPATCH, copy.installed)
    flavours = (pure, engine_only, package, package_typed)

    log(f"stream: {args.events:,} events over {args.sessions:,} sessions (seed {args.seed})")
    wire = generate_stream(args.events, args.sessions, args.seed)
    streams = {"stream": wire, **example_logs()}
    all_agree = True
    copy_explore = mods["statemachine.verify.explore"].explore
    walks = ((engine_only, explore, spec, builtin_requirements(spec)),
             (package, copy_explore, copy_spec, copy_requirements),
             (package_typed, copy_explore, copy_spec, copy_requirements))
    for flavour, explore_fn, explore_spec, requirements in walks:
        problems = agree(pure, flavour, streams)
        ok, detail = explored(flavour, explore_fn, explore_spec, requirements)
        events = sum(map(len, streams.values()))
        log(f"agreement, {flavour.name} vs pure: {'AGREE' if not problems else 'DISAGREE'} on {events:,} events "
            f"({len(streams)} streams: outcomes, sessions, batch counts, rejections, snapshots)"
            + "".join(f"\n    {p}" for p in problems))
        log(f"explore, {flavour.name} vs transitions (steps and lean steps on every edge): "
            f"{'AGREE' if ok else 'DISAGREE'}: {detail}")
        all_agree = all_agree and ok and not problems
    if not all_agree:
        log("a build disagrees with the pure engine: no times are reported")
        return 1

    sub_c = session_subset(wire, 10)
    tuples, tuples_c = [from_wire(w) for w in wire], [from_wire(w) for w in sub_c]
    maker = pure.projector()
    calls = engine_calls(pure, [maker.parse(w) for w in wire])
    rows = [plain_row("b", lambda: HandwrittenProjector().apply, tuples),
            *(apply_row(f"a {f.name}", f, wire) for f in flavours),
            *(batch_row(f"batch {f.name}", f, wire) for f in flavours),
            plain_row("c", lambda: NaiveProjector().apply, tuples_c),
            *(apply_row(f"a@c {f.name}", f, sub_c) for f in flavours),
            *(steps_row(f"steps {f.name}", f, False, calls) for f in flavours),
            *(steps_row(f"lean {f.name}", f, True, calls) for f in flavours)]
    gc.collect()
    gc.freeze()
    log(f"timing {len(rows)} contenders x {args.repeats} rounds, alternated, in this process")
    for r in range(args.repeats):
        for row in rows[r % len(rows):] + rows[: r % len(rows)]:
            row.seconds.append(row.run())
        log(f"  round {r + 1}/{args.repeats} done")
    by = {row.name: row for row in rows}
    b, c = by["b"].rate, by["c"].rate
    print()
    print(f"{args.events:,} events, {args.sessions:,} sessions; median of {args.repeats}, alternated; "
          f"(c) on 1 session in 10 ({len(sub_c):,} events)")
    print()
    print("| contender | us per event or call | vs (b) | vs pure |")
    print("|---|---:|---:|---:|")
    for row in rows:
        kind = row.name.split(" ")[0]
        base = by.get(f"{kind} pure")
        vs_b = f"{row.rate / b:.3f}x" if kind in ("a", "batch") or row.name == "b" else "-"
        vs_pure = f"{row.rate / base.rate:.2f}x" if base is not None else "-"
        print(f"| {row.name} | {1e6 / row.rate:.3f} | {vs_b} | {vs_pure} |")
    print(f"\n(steps, lean: the engine's step functions alone, per call; {len(calls):,} calls, "
          f"{len(calls) / len(wire):.2f} per stream event)")
    print()
    print("| goal | " + " | ".join(f.name for f in flavours) + " |")
    print("|---|" + "---:|" * len(flavours))
    for goal, key, base_rate, fmt in (("apply >= 0.5x (b)", "a", b, "{:.3f}x"),
                                      ("batch >= 0.7x (b)", "batch", b, "{:.3f}x"),
                                      ("apply >= 10x (c), same events", "a@c", c, "{:.1f}x")):
        cells = [fmt.format(by[f"{key} {f.name}"].rate / base_rate) for f in flavours]
        print(f"| {goal} | " + " | ".join(cells) + " |")
    # What the engine's steps cost per stream event, and (a) and the batch path with them free.
    per_event = {k: statistics.median(by[f"{k} pure"].seconds) / len(wire) * 1e6 for k in ("steps", "lean")}
    a_us, batch_us = 1e6 / by["a pure"].rate, 1e6 / by["batch pure"].rate
    print(f"\nthe pure steps cost {per_event['steps']:.2f} us per stream event of (a)'s {a_us:.2f} us, the lean "
          f"steps {per_event['lean']:.2f} of the batch path's {batch_us:.2f}: with the steps free, (a) would be "
          f"{1e6 / b / (a_us - per_event['steps']):.3f}x (b) and the batch path "
          f"{1e6 / b / (batch_us - per_event['lean']):.3f}x (b)")
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs; "
          f"Python {sys.version.split()[0]}; wall {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
