"""`timeline`: a log drawn as one self-contained HTML page."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from typing import IO, Any

from statemachine.cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, add_spec, read_with, spec_of, visible
from statemachine.cli.formats import (
    Sample,
    add_from,
    from_options_without_from,
    make_from_adapter,
    nothing_understood,
    raw_format_hint,
)
from statemachine.cli.outputs import write_output

__all__ = ["add_parser", "run"]


# Beyond this a bound means nothing for a log, and a timedelta cannot hold 1e300 seconds at all.
_MAX_SECONDS = 10 * 365 * 86400


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= _MAX_SECONDS:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"must be a positive number of seconds up to {_MAX_SECONDS} (10 years), got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from statemachine.observing.timeline import page_html, timeline_data

    spec = spec_of(args)
    source = "standard input" if args.file == "-" else os.path.basename(args.file)
    raw_errors: list[dict[str, Any]] = []
    sample: list[Sample] = []
    adapter = make_from_adapter(args) if args.from_format else None

    def draw(stream: IO[bytes]) -> dict[str, Any]:
        sample.append(Sample(args.file, stream))
        lines: Iterable[bytes | str] = sample[0].source
        if adapter is not None:  # a raw provider log: its adapter turns it into envelope lines
            from statemachine.replay.raw import adapt_lines

            lines = (json.dumps(e) for e in adapt_lines(adapter, sample[0].source, raw_errors))
        return timeline_data(lines, spec=spec, stale_after=timedelta(seconds=args.stale_after), source=source)

    data = read_with("timeline", args.file, draw)
    if data is None:
        return EXIT_USAGE
    for e in raw_errors:
        print(f"timeline: line {e['line']}: malformed: {visible(e['error'])}", file=sys.stderr)
    if adapter is not None and nothing_understood("timeline", args.from_format, adapter, sample[0]):
        return EXIT_BAD_INPUT  # no page: it would show nothing
    counts = data["outcomes"]
    if adapter is None and counts["malformed"] and not sum(n for k, n in counts.items() if k != "malformed"):
        raw_format_hint("timeline", sample[0])  # the page (every line malformed) is still written
    code = write_output("timeline", args.output, page_html(data, args.title).encode("ascii"))
    if code != EXIT_OK:
        return code
    return EXIT_BAD_INPUT if data["outcomes"]["malformed"] or raw_errors else EXIT_OK


def add_parser(sub: Any) -> None:
    from statemachine.observing.timeline import DEFAULT_STALE_AFTER

    stale_default = DEFAULT_STALE_AFTER.total_seconds()
    timeline = sub.add_parser(
        "timeline", help="draw a log as an HTML timeline: a lane per thread, statuses, turns, rejections",
        description=(
            "Replay a JSONL event log and write one self-contained HTML page (no network): a lane per "
            "thread with its status over time, active turns as bars, rejected, duplicate and malformed "
            "events as marks with their reasons on hover, stale turns flagged, filters by thread and "
            "outcome, and paging for logs of many threads. Exit 0 when written, 1 when written but a "
            "line was malformed, 2 when the command could not run."
        ),
    )
    timeline.add_argument("file", help="JSONL file of events, or - for standard input")
    timeline.add_argument("-o", "--output", metavar="FILE", help="write the page here instead of standard output")
    timeline.add_argument("--stale-after", type=_positive_seconds, default=stale_default, metavar="SECONDS",
                          help=f"flag a turn held this long with no event of its thread (default: {stale_default:g})")
    timeline.add_argument("--title", help="the page's title (default: from the file name)")
    add_spec(timeline)
    add_from(timeline, required=False)
    timeline.set_defaults(handler=run, combination_check=from_options_without_from)
