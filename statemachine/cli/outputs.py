"""Where a command's output goes: files named on the command line, and standard output and error.

Files. A file named on the command line is written only if it is a regular file or does not exist
yet, and always through a new temporary file beside it and a rename: an interrupted write never
leaves half a file, and a symlink, FIFO, device or directory at that name is refused (exit 2)
instead of being followed, blocked on or clobbered. `-` and `/dev/stdout` mean standard output.

Standard output. Any write error on it but EPIPE (a full disk, `/dev/full`, a closed descriptor)
ends the command with one line on standard error and exit 2; EPIPE (the reader left, `| head`)
ends it quietly with 141. Standard error escapes terminal control characters.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Iterator
from typing import IO, Any, TextIO, cast

from statemachine.cli.common import EXIT_OK, EXIT_USAGE, reason, say
from statemachine.observing.text import visible_lines

__all__ = [
    "STDOUT_NAMES",
    "AtomicFile",
    "OutputError",
    "OutputRefused",
    "guarded_streams",
    "is_stdout",
    "output_directory",
    "refusal",
    "silence_stdout",
    "write_file",
    "write_output",
]

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
