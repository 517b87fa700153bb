"""`attention`: sessions waiting on what will not come by itself (a requested turn that never
started, a session stuck starting), from a log or a store, with the usual recovery."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from statemachine.cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, add_spec, read_with, say, spec_of

__all__ = ["add_parser", "run"]


def _duration(text: str) -> timedelta:
    """`90s`, `5m`, `2h`, `1d`: a positive duration."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0 or len(number) > 9:
        raise argparse.ArgumentTypeError(f"not a positive duration such as 90s, 5m, 2h or 1d: {text[:40]!r}")
    return timedelta(seconds=int(number) * units[unit])


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text[:40]!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    from statemachine.runtime.operations import needs_attention

    spec = spec_of(args)
    now = args.now if args.now is not None else datetime.now(UTC)
    if (args.log is None) == (args.store is None):
        say("attention", "give a LOG or --store URL (one of them)")
        return EXIT_USAGE
    if args.store is not None:
        from statemachine.cli.store import missing_store, redact
        from statemachine.store import StoreError, open_store

        missing = missing_store(args.store)
        if missing is not None:
            say("attention", missing)
            return EXIT_USAGE
        try:
            with open_store(args.store, spec) as store:
                found = needs_attention(store, now, args.bound)
        except StoreError as exc:
            say("attention", f"store {redact(args.store, args.store)}: {redact(str(exc), args.store)}")
            return EXIT_USAGE
    else:
        from statemachine.replay.lines import replay_lines
        from statemachine.runtime.projector import SessionProjector

        projector = SessionProjector(spec, max_clock_skew=None)
        report = read_with("attention", args.log, lambda stream: replay_lines(projector, stream))
        if report is None:
            return EXIT_USAGE
        found = needs_attention(projector, now, args.bound)
    rows: list[dict[str, Any]] = [a.to_json() for a in found]
    if args.json:
        json.dump(rows, sys.stdout)
        sys.stdout.write("\n")
    else:
        from statemachine.observing.text import visible

        for row in rows:
            sys.stdout.write(f"{visible(row['threadId'])}: {row['reason']}, waiting {row['waitingSeconds']:.0f} s "
                             f"({row['status']}); {row['recovery']}\n")
        if not rows:
            sys.stdout.write("no session needs attention\n")
    return EXIT_BAD_INPUT if rows else EXIT_OK


def add_parser(sub: Any) -> None:
    attention = sub.add_parser(
        "attention", help="list sessions waiting on what will not come by itself",
        description=(
            "List the sessions that need attention: a requested turn that never started, or a session "
            "stuck starting, for longer than --bound, each with the usual recovery. Reads a JSONL log "
            "(replayed in memory) or a store. Exit 0 when none needs attention, 1 when some do, 2 when "
            "the command could not run."
        ),
    )
    attention.add_argument("log", nargs="?", metavar="LOG", help="JSONL file of events, or - for standard input")
    attention.add_argument("--store", metavar="URL", help="a store instead of a log (SQLite path, postgresql:// URL)")
    attention.add_argument("--bound", type=_duration, default=timedelta(minutes=5), metavar="DURATION",
                           help="how long a session may wait (90s, 5m, 2h, 1d; default 5m)")
    attention.add_argument("--now", type=_instant, metavar="TIME",
                           help="the time to measure from, ISO 8601 (default: the current time)")
    attention.add_argument("--json", action="store_true", help="print one JSON array")
    add_spec(attention)
    attention.set_defaults(handler=run)
