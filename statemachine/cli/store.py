"""The command line's store parts: `replay --store URL` and `store export|import`.

Every database failure ends as a one-line message and exit 2 (the command could not run), never
a traceback; a bad snapshot is bad input (exit 1). Every message naming a store shows its URL
with the password replaced by `***`, and so does any driver message that quotes it.

A store is created only by the commands meant to create one: `replay --store` and a successful
`store import`. `store export` of a SQLite path where there is no file is refused ("no store at
PATH") rather than answered from a new empty database, and an import that fails removes the
database it created.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import stat
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from statemachine.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_USAGE,
    TooLarge,
    read_limited,
    reason,
    say,
    spec_of,
    whole_number,
)
from statemachine.cli.outputs import OutputRefused, is_stdout, write_file

if TYPE_CHECKING:
    from statemachine.spec.model import Spec
    from statemachine.store import SessionStore

# The store itself (SQLite, PostgreSQL) is imported by the commands that use it, not here: every
# `replay` builds the parser below.

__all__ = ["add_parser", "add_replay_arguments", "cmd_replay_store", "missing_store", "redact", "run"]

# Events per transaction: past this, one transaction would hold a large log's whole work.
MAX_BATCH = 1_000_000

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


_batch = whole_number(MAX_BATCH)


def add_replay_arguments(replay: argparse.ArgumentParser) -> None:
    replay.add_argument(
        "--store", metavar="URL",
        help="apply into this store (a SQLite file path or a postgresql:// URL) and resume where a previous "
             "replay of the same log stopped; prints every session in the store",
    )
    replay.add_argument("--batch", type=_batch, default=None, metavar="N",
                        help="with --store: events per transaction")
    replay.add_argument("--log-key", metavar="KEY",
                        help="with --store: the name the log's progress is kept under (default: the file "
                             "name as given, - for standard input)")


# -- credentials -----------------------------------------------------------------------------

# user:password@ after a scheme, and password=... in a query string or a libpq conninfo.
_USERINFO = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_PASSWORD_PARAM = re.compile(r"(password\s*=\s*)('[^']*'|[^&\s'\"]*)", re.IGNORECASE)


def _secrets(url: str) -> set[str]:
    """The passwords a store URL holds, as written and percent-decoded."""
    found: set[str] = set()
    if "://" in url:
        rest = url.split("://", 1)[1]
        if "@" in rest:
            userinfo = rest[:rest.rindex("@")]
            if ":" in userinfo:
                password = userinfo.split(":", 1)[1]
                # An unencoded @ in it makes the URL ambiguous: a driver may take the part after
                # the first @ for the host and quote it. Every piece is a secret.
                found.add(password)
                found.update(password.split("@"))
    for match in _PASSWORD_PARAM.finditer(url):
        found.add(match.group(2).strip("'"))
    found |= {unquote(s) for s in found}
    return {s for s in found if s}


def redact(text: str, url: str) -> str:
    """`text` (a message, or the URL itself) with every password of `url` replaced by `***`: the
    driver's messages may quote a malformed URL, or a piece of it, whole."""
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _USERINFO.sub(r"\1***@", text)
    return _PASSWORD_PARAM.sub(r"\1***", text)


# -- the SQLite file behind a URL ------------------------------------------------------------


def _sqlite_path(url: str) -> str | None:
    """The file a SQLite store URL names (as `open_store` reads it), or None for another kind."""
    if url.startswith(_POSTGRES_SCHEMES):
        return None
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    return path if path and "://" not in path else None


def missing_store(url: str) -> str | None:
    """Why `url` names no existing store (None: it may): a SQLite path with no regular file there."""
    path = _sqlite_path(url)
    if path is None:
        return None
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"no store at {path}"
    except OSError as exc:
        return f"no store at {path}: {reason(exc)}"
    return None if stat.S_ISREG(mode) else f"no store at {path}: not a regular file"


def _remove_new_database(path: str) -> None:
    """Undo the creation of a SQLite database (and its journal files) by a failed import."""
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        with contextlib.suppress(OSError):
            os.unlink(name)


# -- replay --store --------------------------------------------------------------------------


def cmd_replay_store(args: argparse.Namespace, spec: Spec, printer: Callable[[dict[str, Any]], None]) -> int:
    from statemachine.replay.store import DEFAULT_BATCH, LogMismatch, replay_into_store
    from statemachine.store import StoreError, open_store

    if args.snapshot_in or args.snapshot_out:
        say("replay", "--store cannot be combined with --snapshot-in/--snapshot-out "
                      "(use: python -m statemachine store export|import)")
        return EXIT_USAGE
    try:
        stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as exc:
        say("replay", f"cannot read {args.file}: {reason(exc)}")
        return EXIT_USAGE
    store: SessionStore | None = None
    try:
        # The same pipeline options as an in-memory replay: the clock bound included.
        store = open_store(args.store, spec, max_clock_skew=args.max_clock_skew)
        batch = args.batch if args.batch is not None else DEFAULT_BATCH
        result = replay_into_store(store, stream, args.log_key or args.file, batch=batch)
        data = result.to_json(store)
    except StoreError as exc:
        say("replay", f"store {redact(args.store, args.store)}: {redact(str(exc), args.store)}")
        return EXIT_USAGE
    except LogMismatch as exc:
        say("replay", redact(str(exc), args.store))
        return EXIT_USAGE
    except BrokenPipeError:
        raise
    except OSError as exc:
        say("replay", f"cannot read {args.file}: {reason(exc)}")
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


# -- store export | import -------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    return _export(args, spec_of(args)) if args.action == "export" else _import(args, spec_of(args))


def _export(args: argparse.Namespace, spec: Spec) -> int:
    from statemachine.core.event import EventError
    from statemachine.store import StoreError, open_store

    url = args.url
    missing = missing_store(url)
    if missing is not None:  # opening it would create an empty database and export nothing
        say("store export", missing)
        return EXIT_USAGE
    store: SessionStore | None = None
    try:
        store = open_store(url, spec)
        text = json.dumps(store.export_snapshot()) + "\n"
    except (StoreError, EventError) as exc:
        say("store export", f"store {redact(url, url)}: {redact(str(exc), url)}")
        return EXIT_USAGE
    finally:
        if store is not None:
            store.close()
    if is_stdout(args.output):
        sys.stdout.write(text)
        return EXIT_OK
    try:
        write_file(args.output, text.encode("utf-8"))
    except OutputRefused as exc:
        say("store export", str(exc))
        return EXIT_USAGE
    return EXIT_OK


def _import(args: argparse.Namespace, spec: Spec) -> int:
    from statemachine.core.event import EventError
    from statemachine.runtime.snapshot import MAX_SNAPSHOT_BYTES, SnapshotError
    from statemachine.store import StoreError, open_store

    url = args.url
    try:
        data = read_limited(args.snapshot, MAX_SNAPSHOT_BYTES, stdin=False)
    except OSError as exc:
        say("store import", f"cannot read {args.snapshot}: {reason(exc)}")
        return EXIT_USAGE
    except TooLarge as exc:
        say("store import", f"bad snapshot {args.snapshot}: {exc}")
        return EXIT_USAGE
    path = _sqlite_path(url)
    created = path is not None and not os.path.lexists(path)
    store: SessionStore | None = None
    code = EXIT_USAGE
    try:
        store = open_store(url, spec)
        count = store.import_snapshot(data)
        code = EXIT_OK
    except SnapshotError as exc:
        say("store import", f"bad snapshot {args.snapshot}: {exc}")
        code = EXIT_BAD_INPUT
    except (StoreError, EventError) as exc:
        say("store import", f"store {redact(url, url)}: {redact(str(exc), url)}")
    finally:
        if store is not None:
            store.close()
        if code != EXIT_OK and created and path is not None:
            _remove_new_database(path)  # a failed import leaves no empty database behind
    if code == EXIT_OK:
        print(f"imported {count} thread(s) into {redact(url, url)}")
    return code


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
