"""The command line's store parts: `replay --store URL` and `store export|import`.

Every database failure ends as a one-line message and exit 2 (the command could not run), never
a traceback; a bad snapshot is bad input (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from statemachine.cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, spec_of

if TYPE_CHECKING:
    from statemachine.spec.model import Spec
    from statemachine.store import SessionStore

# The store itself (SQLite, PostgreSQL) is imported by the commands that use it, not here: every
# `replay` builds the parser below.

__all__ = ["add_parser", "add_replay_arguments", "cmd_replay_store", "run"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_replay_arguments(replay: argparse.ArgumentParser) -> None:
    replay.add_argument(
        "--store", metavar="URL",
        help="apply into this store (a SQLite file path or a postgresql:// URL) and resume where a previous "
             "replay of the same log stopped; prints every session in the store",
    )
    replay.add_argument("--batch", type=_positive, default=None, metavar="N",
                        help="with --store: events per transaction")
    replay.add_argument("--log-key", metavar="KEY",
                        help="with --store: the name the log's progress is kept under (default: the file "
                             "name as given, - for standard input)")


def cmd_replay_store(args: argparse.Namespace, spec: Spec, printer: Callable[[dict[str, Any]], None]) -> int:
    from statemachine.replay.store import DEFAULT_BATCH, LogMismatch, replay_into_store
    from statemachine.store import StoreError, open_store

    if args.snapshot_in or args.snapshot_out:
        print("replay: --store cannot be combined with --snapshot-in/--snapshot-out "
              "(use: python -m statemachine store export|import)", file=sys.stderr)
        return EXIT_USAGE
    try:
        stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        print(f"replay: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    store: SessionStore | None = None
    try:
        store = open_store(args.store, spec)
        batch = args.batch if args.batch is not None else DEFAULT_BATCH
        result = replay_into_store(store, stream, args.log_key or args.file, batch=batch)
        data = result.to_json(store)
    except StoreError as exc:
        print(f"replay: store {_safe(args.store)}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LogMismatch as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"replay: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if store is not None:
            store.close()
        if stream is not sys.stdin.buffer:
            stream.close()
    if args.json:
        json.dump(data, sys.stdout)
        sys.stdout.write("\n")
    else:
        printer(data)
    return EXIT_BAD_INPUT if result.progress.malformed else EXIT_OK


def _safe(url: str) -> str:
    """The URL without a password, for messages."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}" if ":" in credentials else url
    return url


def run(args: argparse.Namespace) -> int:
    return _store(args, spec_of(args))


def _store(args: argparse.Namespace, spec: Spec) -> int:
    from statemachine.core.event import EventError
    from statemachine.runtime.snapshot import SnapshotError
    from statemachine.store import StoreError, open_store

    store: SessionStore | None = None
    try:
        if args.action == "import":
            try:
                with open(args.snapshot, "rb") as f:
                    data = f.read()
            except OSError as exc:
                print(f"store import: cannot read {args.snapshot}: {exc.strerror or exc}", file=sys.stderr)
                return EXIT_USAGE
            store = open_store(args.url, spec)
            count = store.import_snapshot(data)
            print(f"imported {count} thread(s) into {_safe(args.url)}")
            return EXIT_OK
        store = open_store(args.url, spec)
        text = json.dumps(store.export_snapshot()) + "\n"
    except SnapshotError as exc:
        print(f"store import: bad snapshot {args.snapshot}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (StoreError, EventError) as exc:
        print(f"store {args.action}: store {_safe(args.url)}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if store is not None:
            store.close()
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return EXIT_OK
    try:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        print(f"store export: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def add_parser(sub: Any) -> None:
    store = sub.add_parser(
        "store",
        help="convert a session store to and from the snapshot JSON",
        description="Export every thread of a store (a SQLite file path or a postgresql:// URL) as the snapshot "
                    "JSON that replay --snapshot-out writes, or import such a snapshot into an empty store: "
                    "`store export URL [-o FILE] [--spec SPEC]` (to standard output without -o), "
                    "`store import URL FILE [--spec SPEC]` (the store is created if it does not exist). "
                    "Exit 1 for a bad snapshot, 2 when the store cannot be used.",
    )
    actions = store.add_subparsers(dest="action", required=True, parser_class=type(store),
                                   help="export: store to snapshot JSON; import: snapshot JSON into an empty store")
    export = actions.add_parser("export", help="write the store's sessions as snapshot JSON")
    export.add_argument("url", metavar="URL", help="the store")
    export.add_argument("-o", "--output", metavar="FILE", help="write to this file instead of standard output")
    export.add_argument("--spec", help="a spec file instead of the built-in one")
    imp = actions.add_parser("import", help="load a snapshot JSON file into an empty store")
    imp.add_argument("url", metavar="URL", help="the store (created if it does not exist)")
    imp.add_argument("snapshot", metavar="FILE", help="a snapshot written by replay --snapshot-out or store export")
    imp.add_argument("--spec", help="a spec file instead of the built-in one")
    store.set_defaults(handler=run)
