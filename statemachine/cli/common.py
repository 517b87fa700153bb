"""What every subcommand shares: exit codes, the spec, reading inputs, writing outputs, the
`--from` option, and how standard output and error are guarded.

Outputs. A file named on the command line is written only if it is a regular file or does not
exist yet, and always through a temporary file beside it and a rename: an interrupted write never
leaves half a file, and a symlink, FIFO, device or directory at that name is refused (exit 2)
instead of being followed, blocked on or clobbered. `-` and `/dev/stdout` mean standard output.

Standard output. Any write error on it but EPIPE (a full disk, `/dev/full`, a closed descriptor)
ends the command with one line on standard error and exit 2; EPIPE (the reader left, `| head`)
ends it quietly with 141. Standard error escapes terminal control characters.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, TextIO, TypeVar, cast

from statemachine.observing.text import visible, visible_lines
from statemachine.spec.load import builtin_spec, load_spec
from statemachine.spec.model import Spec

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a program ended by SIGPIPE

T = TypeVar("T")


def spec_of(args: argparse.Namespace) -> Spec:
    path = getattr(args, "spec", None)
    return load_spec(path) if path else builtin_spec()


def say(command: str, message: str) -> None:
    """One line on standard error, `command: message` (control characters escaped on the way)."""
    print(f"{command}: {message}", file=sys.stderr)


def reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


# -- inputs ----------------------------------------------------------------------------------


def open_input(name: str) -> IO[bytes]:
    return sys.stdin.buffer if name == "-" else open(name, "rb")


def read_with(command: str, name: str, use: Callable[[IO[bytes]], T]) -> T | None:
    """Open `name` (- for standard input), run `use` on it, close it. None when it cannot be read
    (said on standard error, for exit 2); a closed standard output propagates (main ends quietly)."""
    try:
        stream = open_input(name)
    except OSError as exc:
        say(command, f"cannot read {name}: {reason(exc)}")
        return None
    try:
        return use(stream)
    except BrokenPipeError:
        raise
    except OSError as exc:
        say(command, f"cannot read {name}: {reason(exc)}")
        return None
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


class TooLarge(ValueError):
    """A whole-file input is longer than its limit."""


def read_limited(name: str, limit: int, *, stdin: bool = True) -> bytes:
    """The whole of `name` (- for standard input, unless `stdin` is false), refused past `limit`
    bytes: one byte more is read at most, so an endless input (/dev/zero) costs `limit` bytes,
    never all the memory. OSError when it cannot be read, TooLarge past the limit."""
    stream = open_input(name) if stdin else open(name, "rb")  # noqa: SIM115 - closed below
    try:
        data = stream.read(limit + 1)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if len(data) > limit:
        raise TooLarge(f"longer than {limit} bytes, the limit for this input")
    return data


# -- outputs ---------------------------------------------------------------------------------

STDOUT_NAMES = ("-", "/dev/stdout")


def is_stdout(target: str | None) -> bool:
    """Does this output name mean standard output (none given, `-` or `/dev/stdout`)?"""
    return target is None or target in STDOUT_NAMES


_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def refusal(path: str) -> str | None:
    """Why `path` may not be written as an output file, or None when it may (a regular file, or no
    file yet). The name itself is looked at (lstat): a symlink is refused, not followed."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return reason(exc)
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"it is {kind}; give a regular file, a new file name, or - for standard output"


class OutputRefused(Exception):
    """An output file that may not be written (its name is not a regular file), or a write that
    failed: `cannot write PATH: WHY`, the one line to print."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"cannot write {path}: {why}")
        self.path, self.why = path, why


class AtomicFile:
    """A binary file written beside `path` and renamed onto it by `commit()`; `discard()` (or
    leaving without committing) removes it. The temporary name is new (O_EXCL): nothing at it is
    ever followed or truncated."""

    def __init__(self, path: str) -> None:
        why = refusal(path)
        if why is not None:
            raise OutputRefused(path, why)
        self.path = path
        parent = os.path.dirname(path) or "."
        base = os.path.basename(path)
        try:
            existing = os.lstat(path).st_mode & 0o7777
        except OSError:
            existing = None
        for _ in range(16):
            tmp = os.path.join(parent, f".{base}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise OutputRefused(path, reason(exc)) from None
        else:  # pragma: no cover - 16 random names all taken
            raise OutputRefused(path, "no temporary name free beside it")
        self.tmp = tmp
        if existing is not None:  # rewriting a file keeps its permissions
            with contextlib.suppress(OSError):
                os.fchmod(fd, existing)
        self.file: IO[bytes] = os.fdopen(fd, "wb")
        self._done = False

    def write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as exc:
            raise OutputRefused(self.path, reason(exc)) from None

    def commit(self) -> None:
        try:
            self.file.close()
            why = refusal(self.path)  # checked again: something may have appeared there meanwhile
            if why is not None:
                raise OutputRefused(self.path, why)
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise OutputRefused(self.path, reason(exc)) from None
        except OutputRefused:
            self.discard()
            raise
        self._done = True

    def discard(self) -> None:
        if not self._done:
            self._done = True
            with contextlib.suppress(OSError):
                self.file.close()
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()  # after commit() this does nothing


def write_file(path: str, data: bytes) -> None:
    """`data` into `path` through AtomicFile; OutputRefused when it may not or cannot be written."""
    with AtomicFile(path) as out:
        out.write(data)
        out.commit()


def write_output(command: str, output: str | None, data: bytes) -> int:
    """`data` to standard output (no name, `-`, `/dev/stdout`) or to the file named; exit 2 if it
    may not or cannot be written (said on standard error)."""
    if is_stdout(output):
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return EXIT_OK
    assert output is not None
    try:
        write_file(output, data)
    except OutputRefused as exc:
        say(command, str(exc))
        return EXIT_USAGE
    return EXIT_OK


def output_directory(directory: str) -> str | None:
    """Why files may not be written into `directory` (None: they may): it must be a directory
    (a link to one is fine) or not exist yet. Nothing is created here."""
    try:
        mode = os.stat(directory).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return reason(exc)
    return None if stat.S_ISDIR(mode) else "it is not a directory"


# -- standard output and error ---------------------------------------------------------------


class OutputError(Exception):
    """Standard output cannot be written: full, closed, or an I/O error (not EPIPE)."""

    def __init__(self, cause: OSError | None) -> None:
        super().__init__(f"cannot write to standard output: {reason(cause)}" if cause is not None
                         else "cannot write to standard output: it is closed")


class _GuardedOut:
    """Standard output (or its `.buffer`) with every write error but EPIPE turned into OutputError,
    which main reports in one line: code that writes to it (here or in the layers below) need not
    catch anything."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def write(self, data: Any) -> Any:
        try:
            return self._target.write(data)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(exc) from None

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._target.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(exc) from None

    @property
    def buffer(self) -> _GuardedOut:
        return _GuardedOut(self._target.buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class _ClosedOut:
    """Standard output when its descriptor was closed (`>&-`): a command that writes only files
    still runs; the first write to it fails with OutputError."""

    encoding = "utf-8"
    errors = "strict"

    @property
    def buffer(self) -> _ClosedOut:
        return self

    def write(self, data: Any) -> int:
        raise OutputError(None)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass  # nothing was written

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


class _SafeErr:
    """Standard error: terminal controls escaped (a message may quote a threadId or a file name),
    and a write that fails dropped (there is nowhere left to report it)."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def write(self, text: str) -> int:
        if self._target is None:
            return len(text)
        with contextlib.suppress(OSError, ValueError):
            self._target.write(visible_lines(text))
        return len(text)

    def flush(self) -> None:
        if self._target is not None:
            with contextlib.suppress(OSError, ValueError):
                self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def _descriptor_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def guarded_streams() -> Iterator[None]:
    """Standard output and error guarded as above while a command runs; restored after."""
    out, err = sys.stdout, sys.stderr
    for fd in (1, 2):
        if not _descriptor_open(fd):
            # Hold the number with /dev/null opened read-only: a file the command opens must not
            # become "standard output" by taking the free descriptor, and a write to it fails.
            with contextlib.suppress(OSError):
                held = os.open(os.devnull, os.O_RDONLY)
                if held != fd:
                    os.dup2(held, fd)
                    os.close(held)
    sys.stdout = cast(TextIO, _ClosedOut() if out is None else _GuardedOut(out))
    sys.stderr = cast(TextIO, _SafeErr(err))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


def silence_stdout() -> None:
    """Point descriptor 1 at /dev/null: Python flushes standard output again at exit, and what a
    failed write left in its buffer would print a second error."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)


# -- the --from option: raw provider output --------------------------------------------------

# How many non-blank lines of an input are kept to tell which raw format it is in (each cut to
# SAMPLE_BYTES): enough for every format's first lifecycle event, few enough to try each adapter.
SAMPLE_LINES, SAMPLE_BYTES = 20, 64 << 10


class _Keeping:
    """A binary stream read as `bounded_lines` reads it (`readline(size)`), keeping its first
    non-blank lines."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._readline = stream.readline
        self.lines: list[bytes] = []
        self._line_start = True

    def readline(self, size: int = -1) -> bytes:
        chunk = self._readline(size)
        if self._line_start and len(self.lines) < SAMPLE_LINES and chunk.strip():
            self.lines.append(chunk[:SAMPLE_BYTES])
        self._line_start = chunk.endswith(b"\n")
        return chunk

    def __iter__(self) -> Iterator[bytes]:  # the line readers use readline(size): bounded
        return iter(self.readline, b"")


class Sample:
    """An input to read (`source`) and, afterwards, its first non-blank lines (`lines()`), which
    tell which raw format it was in. A regular file is read as it is (nothing slows its lines) and
    opened again for the sample; standard input or a pipe, which cannot be read twice, is read
    through a wrapper that keeps them."""

    def __init__(self, name: str, stream: IO[bytes]) -> None:
        self.name = name
        self._keeping: _Keeping | None = None
        self.source: Any = stream
        if name == "-" or not _regular(stream):
            self._keeping = self.source = _Keeping(stream)

    def lines(self) -> list[bytes]:
        if self._keeping is not None:
            return self._keeping.lines
        try:
            with open(self.name, "rb") as f:
                keeping = _Keeping(f)
                for _ in range(SAMPLE_LINES * 50):  # blank lines and parts of long ones included
                    if len(keeping.lines) >= SAMPLE_LINES or not keeping.readline(SAMPLE_BYTES + 1):
                        break
                return keeping.lines
        except OSError:
            return []


def _regular(stream: IO[bytes]) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def formats_reading(lines: Sequence[bytes]) -> list[str]:
    """The raw formats (`--from` names) whose adapter makes a lifecycle event of these lines."""
    from statemachine.adapters import FORMATS, make_adapter

    found = []
    for name in FORMATS:
        adapter = make_adapter(name)
        for line in lines:
            adapter.feed(line)
        if adapter.stats.events:
            found.append(name)
    return found


def input_name(name: str) -> str:
    return "standard input" if name == "-" else name


def make_from_adapter(args: argparse.Namespace) -> Any:
    """The adapter `--from`, `--on-eof` and `--stream` ask for (defaults applied here: the options
    default to None so that giving one without --from can be refused)."""
    from statemachine.adapters import make_adapter

    return make_adapter(args.from_format, on_eof=args.on_eof or "interrupted", stream=args.stream or "")


def nothing_understood(command: str, format_name: str, adapter: Any, sample: Sample) -> bool:
    """Say so (one line, naming the formats that do read the input's first lines) and return True
    when lines were read but the adapter made no lifecycle event of any: the wrong `--from`."""
    if adapter.stats.events:
        return False
    lines = sample.lines()
    if not lines:
        return False  # empty, or blank lines only
    others = [f for f in formats_reading(lines) if f != format_name]
    if others:
        hint = f"its first lines read as {' or '.join(others)}: try --from {others[0]}"
    else:
        from statemachine.adapters import FORMATS

        hint = f"no format reads its first lines (formats: {', '.join(FORMATS)})"
    say(command, f"{input_name(sample.name)}: none of its {adapter.stats.lines} line(s) is {format_name} output "
                 f"with a lifecycle event; {hint}")
    return True


def raw_format_hint(command: str, sample: Sample) -> bool:
    """When every line of an envelope log was malformed: if its first lines read as a raw format,
    say so in one line (naming `--from FORMAT`) and return True."""
    formats = formats_reading(sample.lines())
    if not formats:
        return False
    say(command, f"{input_name(sample.name)} holds no lifecycle events but reads as raw {' or '.join(formats)} "
                 f"output: give --from {formats[0]}")
    return True


def _stream_name(value: str) -> str:
    from statemachine.adapters.base import check_stream_name

    try:
        return check_stream_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _AdapterNames(Sequence[str]):
    """`statemachine.adapters.<name>` (a tuple of names), imported when first read: argparse reads
    choices only to check a value given or to print help, and a replay of an envelope log needs
    no adapter."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _names(self) -> tuple[str, ...]:
        from statemachine import adapters

        names: tuple[str, ...] = getattr(adapters, self.name)
        return names

    def __getitem__(self, index: Any) -> Any:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def add_from(parser: argparse.ArgumentParser, *, required: bool) -> None:
    from statemachine.adapters.base import EOF_SETTLEMENTS

    formats = _AdapterNames("FORMATS")  # read when --from is given or help is printed
    # %(choices)s is expanded when the help is printed: the names come from the adapters themselves.
    parser.add_argument("--from", dest="from_format", choices=formats, required=required, metavar="FORMAT",
                        help="the file is raw provider output in this format (%(choices)s), adapted to events on "
                             "the way (see docs/adapters.md)")
    parser.add_argument("--on-eof", choices=EOF_SETTLEMENTS, default=None,
                        help="with --from: how a turn still open at the end of the file is settled "
                             "(turn.completed interrupted or failed, or left open for the stale-turn bound; "
                             "default interrupted)")
    parser.add_argument("--stream", default=None, metavar="NAME", type=_stream_name,
                        help="with --from: a name for this stream, when a thread continues from an earlier one "
                             "(a resumed session, the next part of a log): keeps its synthesized ids apart")


def from_options_without_from(args: argparse.Namespace) -> str | None:
    """`--on-eof` and `--stream` only mean something to an adapter: refused without `--from`."""
    if args.from_format is None:
        given = [flag for flag, value in (("--on-eof", args.on_eof), ("--stream", args.stream)) if value is not None]
        if given:
            return f"{only_with(given)} --from FORMAT (a raw provider log)"
    return None


def only_with(flags: Sequence[str]) -> str:
    """`--a only applies with` / `--a and --b only apply with`, for an argparse error."""
    return f"{' and '.join(flags)} only {'applies' if len(flags) == 1 else 'apply'} with"


def add_spec(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", help="a spec file instead of the built-in one")


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BROKEN_PIPE",
    "EXIT_OK",
    "EXIT_USAGE",
    "SAMPLE_LINES",
    "AtomicFile",
    "OutputError",
    "OutputRefused",
    "Sample",
    "TooLarge",
    "add_from",
    "add_spec",
    "formats_reading",
    "from_options_without_from",
    "guarded_streams",
    "input_name",
    "is_stdout",
    "make_from_adapter",
    "nothing_understood",
    "only_with",
    "open_input",
    "output_directory",
    "raw_format_hint",
    "read_limited",
    "read_with",
    "reason",
    "refusal",
    "say",
    "silence_stdout",
    "spec_of",
    "visible",
    "write_file",
    "write_output",
]
