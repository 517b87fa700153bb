"""A per-user cache on disk of what every process would otherwise rebuild from the built-in spec.

What it holds: the built-in spec's validated data (what the YAML reader and the JSON Schema give,
so neither PyYAML nor jsonschema is imported), and its compiled engine (the generated source, its
constants and its code object, so neither `transitions` is imported to record the table nor the
source compiled). A one-line replay then costs little more than the interpreter's own start.

Where it lives: `$SESSION_LIFECYCLE_CACHE` if set (`off` turns it off; a relative path is refused,
so nothing is created in whatever directory a command runs from), else
`$XDG_CACHE_HOME/agent-session-lifecycle`, else `~/.cache/agent-session-lifecycle`. The
directory is created private (0700) and used only while it is a real directory owned by this
user that no one else can write; otherwise nothing is cached and everything is built as before.
Not beside the package: an installation is often shared by users who must not write into it.

Keys: each entry's file name is a SHA-256 over everything its content is derived from: the spec
file's bytes, the JSON Schema's bytes, the vocabulary's fingerprint, the source of every module in
the layers that read, record and compile it (`source_parts`), the installed `transitions` module,
the package version and the interpreter's version. Change any and the key changes: a stale entry is never read, only
left behind (`clear()` removes them all).

Trust: an entry is read only if its HMAC-SHA256 checks out under a random 32-byte secret kept in
the same private directory (mode 0600). A corrupt, truncated, renamed, hand-edited or foreign
entry (written by anyone without that secret) fails the check and is ignored: the value is built
as if there were no cache, and the entry rewritten. Only this user (or root), who can already
change the package itself, could forge one. Whatever is read is checked again for its shape
before use, and the spec data still goes through `build_spec`. Writes are atomic (a temporary
file, then a rename), so a crash or a concurrent process never leaves half an entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import marshal
import os
import stat
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["CACHE_ENV", "cache_dir", "cached", "clear", "file_bytes", "key_of", "runtime_parts", "source_parts"]

CACHE_ENV = "SESSION_LIFECYCLE_CACHE"
_MAGIC = b"SLC1"
_SECRET = "secret"
_SECRET_BYTES = 32
_MAX_ENTRY_BYTES = 16 << 20  # an engine is a few hundred KB
_SUFFIX = ".entry"

T = TypeVar("T")


def cache_dir() -> str | None:
    """The cache directory, created if missing; None when caching is off or the place is unsafe."""
    env = os.environ.get(CACHE_ENV)
    if env is not None and env.strip().lower() in ("", "off", "0", "no", "false"):
        return None
    if env is not None:
        if not os.path.isabs(env):
            return None  # relative to the working directory: a cache would appear wherever it runs
        path = env
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        home = os.path.expanduser("~")
        if xdg and os.path.isabs(xdg):
            base = xdg
        elif os.path.isabs(home):
            base = os.path.join(home, ".cache")
        else:  # no home directory
            return None
        path = os.path.join(base, "agent-session-lifecycle")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        return None
    return path


def _private_file(fd: int) -> bool:
    info = os.fstat(fd)
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077


# Opening for reading never waits: a FIFO put at an entry's or the secret's name would otherwise
# block the open until a writer came. A regular file reads the same with O_NONBLOCK, and anything
# else is refused by `_private_file` (fstat) before a byte is read.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def _secret(directory: str) -> bytes | None:
    """The directory's secret, made at first use. None when it cannot be read or made safely."""
    path = os.path.join(directory, _SECRET)
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return _new_secret(directory)
    except OSError:
        return None
    try:
        data = os.read(fd, _SECRET_BYTES + 1) if _private_file(fd) else b""
    finally:
        os.close(fd)
    return data if len(data) == _SECRET_BYTES else None


def _new_secret(directory: str) -> bytes | None:
    path = os.path.join(directory, _SECRET)
    tmp = os.path.join(directory, f"{_SECRET}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, os.urandom(_SECRET_BYTES))
        finally:
            os.close(fd)
        try:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # atomic, and never replaces a secret another process made first
        finally:
            os.unlink(tmp)
    except OSError:
        return None
    return _secret(directory) if os.path.exists(path) else None


def key_of(parts: Iterable[bytes]) -> str:
    """The entry name for these inputs (each part is length-prefixed: no two lists collide)."""
    digest = hashlib.sha256(_MAGIC)
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _mac(secret: bytes, key: str, blob: bytes) -> bytes:
    # The key is signed too: an entry renamed to another key is refused.
    return hmac.new(secret, _MAGIC + key.encode("ascii") + blob, hashlib.sha256).digest()


def _read(directory: str, secret: bytes, key: str) -> Any:
    """The value stored under `key`, or None when missing, unsafe, corrupt or forged."""
    try:
        fd = os.open(os.path.join(directory, f"{key}{_SUFFIX}"), _READ_FLAGS)
    except OSError:
        return None
    try:
        if not _private_file(fd):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(_MAX_ENTRY_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    head = len(_MAGIC) + hashlib.sha256().digest_size
    if len(data) > _MAX_ENTRY_BYTES or len(data) < head or not data.startswith(_MAGIC):
        return None
    mac, blob = data[len(_MAGIC):head], data[head:]
    if not hmac.compare_digest(mac, _mac(secret, key, blob)):
        return None
    try:
        return marshal.loads(blob)
    except (ValueError, EOFError, TypeError):
        return None


def _write(directory: str, secret: bytes, key: str, value: Any) -> None:
    try:
        blob = marshal.dumps(value)
    except ValueError:  # a value marshal cannot hold (e.g. a date in spec data): not cached
        return
    tmp = os.path.join(directory, f"{key}.{os.getpid()}.{os.urandom(4).hex()}.tmp")  # unique per writer
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + _mac(secret, key, blob) + blob)
        os.replace(tmp, os.path.join(directory, f"{key}{_SUFFIX}"))
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def cached(key_of: Callable[[], str], build: Callable[[], T], dump: Callable[[T], Any],
           load: Callable[[Any], T | None]) -> T:
    """`load(stored)` when the entry under `key_of()` is there, authentic, and accepted by `load`
    (None refuses it); else `build()`, stored as `dump(value)` for next time. The key is computed
    only when there is a cache to look in."""
    directory = cache_dir()
    secret = _secret(directory) if directory is not None else None
    if directory is None or secret is None:
        return build()
    key = key_of()
    stored = _read(directory, secret, key)
    if stored is not None:
        try:
            value = load(stored)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            value = None
        if value is not None:
            return value
    built = build()
    _write(directory, secret, key, dump(built))
    return built


def clear() -> int:
    """Remove every entry (not the secret). Returns how many were removed."""
    directory = cache_dir()
    removed = 0
    if directory is None:
        return removed
    for name in os.listdir(directory):
        if name.endswith(_SUFFIX):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
                removed += 1
    return removed


def file_bytes(*paths: str) -> list[bytes]:
    """The bytes of each file (a key part); a missing file counts as empty."""
    out = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                out.append(f.read())
        except OSError:
            out.append(b"")
    return out


def runtime_parts() -> list[bytes]:
    """The interpreter and the package version: parts of every key."""
    from statemachine.core.version import __version__

    return [sys.version.encode(), (sys.implementation.cache_tag or "").encode(), __version__.encode()]


_PACKAGE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def source_parts(*layers: str, root: str | None = None) -> list[bytes]:
    """The source of every module in these layers of the package (key parts), in a fixed order.

    A cached artifact built by code in a layer can only depend on that layer and the ones below
    it: the import contract (`[tool.importlinter]` in pyproject.toml) refuses any other import.
    So naming the layers covers every module whose code reaches the artifact, and a new module
    joins the key without being listed. `root`: another copy of the package (tests)."""
    parts: list[bytes] = []
    for layer in layers:
        folder = os.path.join(root or _PACKAGE, layer)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                parts.append(f"{layer}/{name}".encode())
                parts.extend(file_bytes(os.path.join(folder, name)))
    return parts
