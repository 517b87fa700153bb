"""`audit`: another orchestrator's sessions against this package's replay of the same log."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from statemachine.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_USAGE,
    TooLarge,
    add_spec,
    read_limited,
    read_with,
    reason,
    say,
    spec_of,
)
from statemachine.observing.text import visible_lines

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from statemachine.observing.audit import MAX_SESSIONS_BYTES, AuditError, load_sessions

    spec = spec_of(args)
    try:
        theirs = load_sessions(read_limited(args.sessions, MAX_SESSIONS_BYTES, stdin=False))
    except OSError as exc:
        say("audit", f"cannot read {args.sessions}: {reason(exc)}")
        return EXIT_USAGE
    except (AuditError, TooLarge) as exc:
        say("audit", f"{args.sessions}: {exc}")
        return EXIT_USAGE
    from statemachine.observing.audit import audit_log

    report = read_with("audit", args.log, lambda stream: audit_log(stream, theirs, spec=spec))
    if report is None:
        return EXIT_USAGE
    if args.json:
        json.dump(report.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        from statemachine.observing.audit import render_text

        text = visible_lines(render_text(report))
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        sys.stdout.write(text.encode(encoding, "backslashreplace").decode(encoding))
    return EXIT_BAD_INPUT if report.differs else EXIT_OK


def add_parser(sub: Any) -> None:
    audit = sub.add_parser(
        "audit", help="compare another orchestrator's sessions with this package's replay of the same log",
        description=(
            "Replay a JSONL event log and compare the result with another orchestrator's sessions "
            "(a JSON object threadId -> {status, activeTurnId, lastError, ...}, the shape of replay "
            "--json's sessions). Lists every thread that differs, field by field, every impossible "
            "state, and the first line after which ours could no longer have become theirs. Exit 0 "
            "when all agree, 1 when any thread differs, 2 when the command could not run."
        ),
    )
    audit.add_argument("--log", required=True, metavar="LOG", help="JSONL file of events, or - for standard input")
    audit.add_argument("--sessions", required=True, metavar="THEIRS",
                       help="their sessions as JSON (threadId -> session)")
    audit.add_argument("--json", action="store_true", help="print one JSON report")
    add_spec(audit)
    audit.set_defaults(handler=run)
