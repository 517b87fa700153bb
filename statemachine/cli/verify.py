"""`verify`: prove the spec against the requirements."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any

from statemachine.cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, add_spec, reason, say, spec_of, whole_number
from statemachine.cli.outputs import OutputRefused, output_directory, write_file
from statemachine.observing.text import visible_lines

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from statemachine.spec.requirements import RequirementsError, load_requirements
    from statemachine.verify.run import CHECKS, render_text, report_json, run_checks, write_counterexamples

    unknown = sorted(set(args.skip) - set(CHECKS))
    if unknown:
        print(f"verify: unknown check(s) {unknown}; known: {sorted(CHECKS)}", file=sys.stderr)
        return EXIT_USAGE
    spec = spec_of(args)
    try:
        requirements = load_requirements(spec, args.requirements)  # the built-in file when None
    except RequirementsError as exc:
        print(f"requirements error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    target = args.counterexample_out
    why = output_directory(target) if target else None
    if why is not None:  # said before the checks run, not after
        say("verify", f"cannot write counterexamples to {target}: {why}")
        return EXIT_USAGE
    if args.mutate or args.mutate_sample is not None:
        from statemachine.verify.mutation import mutate_command

        return mutate_command(spec, requirements, sample=args.mutate_sample, seed=args.mutate_seed,
                              spin=args.mutate_spin, as_json=args.json, out=sys.stdout, err=sys.stderr)
    results = run_checks(spec, requirements, skip=args.skip)
    if target:
        # Written where nothing can be in the way, then each file moved in as any output file is
        # (a regular file or a new name; a link or FIFO at DIR/NAME.jsonl is refused).
        with tempfile.TemporaryDirectory() as scratch:
            try:
                made = write_counterexamples(Path(scratch), requirements, results, spec)
                if made:
                    os.makedirs(target, exist_ok=True)
                for path in made:
                    write_file(os.path.join(target, path.name), path.read_bytes())
            except OutputRefused as exc:
                say("verify", f"cannot write counterexamples: {exc}")
                return EXIT_USAGE
            except OSError as exc:
                say("verify", f"cannot write counterexamples to {target}: {reason(exc)}")
                return EXIT_USAGE
    if args.json:
        json.dump(report_json(spec, requirements, results), sys.stdout)
        sys.stdout.write("\n")
    else:
        # The report quotes the spec's and requirements' file names and contents: no terminal controls.
        sys.stdout.write(visible_lines(render_text(spec, requirements, results)))
    return EXIT_OK if all(r.ok for r in results) else EXIT_BAD_INPUT


def add_parser(sub: Any) -> None:
    from statemachine.verify.run import CHECKS  # the names only; the checks run in `run`

    verify = sub.add_parser(
        "verify", help="prove the spec against the requirements (exit 0 only when every check holds)",
        description=(
            "Prove the spec against the requirements (specs/requirements.yaml, or --requirements FILE) and "
            "its own invariants: static rules, exhaustive exploration, induction, agreement of the compiled "
            "engine with the transitions machine, and the spin model checker. Prints one line per "
            "requirement and what each check covered and how long it took. Exit 0 when every check holds, "
            "1 when one fails (with a counterexample as JSONL that replay accepts), 2 when the command "
            "could not run."
        ),
    )
    add_spec(verify)
    verify.add_argument("--json", action="store_true", help="print one JSON report")
    verify.add_argument(
        "--skip", action="append", default=[], metavar="CHECK",
        help=f"leave a check out ({', '.join(CHECKS)}); repeatable",
    )
    verify.add_argument("--requirements", metavar="FILE",
                        help="a requirements file instead of the built-in one (specs/requirements.yaml)")
    verify.add_argument("--counterexample-out", metavar="DIR",
                        help="write each violated requirement's counterexample to DIR/NAME.jsonl, and its "
                             "timeline to DIR/NAME.html")
    verify.add_argument("--mutate", action="store_true",
                        help="instead of the checks: judge every single-edit mutant of the spec (declarations, "
                             "explore, induction), print the mutation score and each surviving mutant with the "
                             "shortest trace on which it differs (exit 1 when one survives)")
    verify.add_argument("--mutate-sample", metavar="N", type=whole_number(1_000_000), default=None,
                        help="with or without --mutate: judge a sample of N mutants, drawn with --mutate-seed")
    verify.add_argument("--mutate-seed", metavar="S", type=int, default=0, help="the sample's seed (default 0)")
    verify.add_argument("--mutate-spin", action="store_true",
                        help="with --mutate: run spin too on the mutants the other checks let through (slow)")
    verify.set_defaults(handler=run)

