"""The start-up cache: what it stores is what a fresh build gives; a corrupt, forged, misplaced or
wrongly shaped entry is ignored (and rewritten) without changing behaviour; a warm replay does not
import PyYAML, jsonschema or transitions."""

from __future__ import annotations

import hashlib
import hmac
import marshal
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from statemachine.core import diskcache as startup_cache
from statemachine.engine import registry
from statemachine.engine.compiled import CompiledMachine
from statemachine.spec import load as spec_load
from statemachine.spec.check import build_spec
from statemachine.spec.load import builtin_spec
from statemachine.spec.loader import BUILTIN_SPEC, read_spec_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "codex_session.jsonl"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv(startup_cache.CACHE_ENV, str(directory))
    return directory


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.entry"))


def fresh_engine() -> CompiledMachine:
    return CompiledMachine(builtin_spec())


def test_a_cold_then_warm_start_gives_what_a_fresh_build_gives(cache: Path) -> None:
    raw = read_spec_file(None)[0]
    assert spec_load.builtin_spec_data() == raw  # cold: built, then stored
    assert spec_load.builtin_spec_data() == raw  # warm: read back
    spec = build_spec(spec_load.builtin_spec_data(), str(BUILTIN_SPEC))
    assert spec.digest == builtin_spec().digest
    cold = registry.builtin_engine(spec, CompiledMachine)
    warm = registry.builtin_engine(spec, CompiledMachine)
    assert len(entries(cache)) == 2
    assert warm is not cold and warm._table is None  # from the cache: nothing recorded
    fresh = fresh_engine()
    assert warm.source == fresh.source and warm.generated.code == fresh.generated.code
    assert warm.sources == fresh.sources and warm.generated.constants == fresh.generated.constants
    assert warm.table_size == fresh.table_size  # recorded when asked for
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    assert all(e.stat().st_mode & 0o077 == 0 for e in cache.iterdir())


def _corruptions(data: bytes) -> list[bytes]:
    return [data[:-1], data[:40], b"", data[:-3] + bytes([data[-3] ^ 1]) + data[-2:], b"XXXX" + data[4:],
            data + b"\0"]


@pytest.mark.parametrize("which", range(6))
def test_a_corrupt_entry_is_ignored_and_rewritten(cache: Path, which: int) -> None:
    registry.builtin_engine(builtin_spec(), CompiledMachine)
    (entry,) = entries(cache)
    good = entry.read_bytes()
    entry.write_bytes(_corruptions(good)[which])
    engine = registry.builtin_engine(builtin_spec(), CompiledMachine)
    assert engine._table is not None  # rebuilt (recorded), not read
    assert engine.generated.code == fresh_engine().generated.code
    assert entry.read_bytes() == good  # written again, whole


def _sign(secret: bytes, key: str, value: Any) -> bytes:
    blob = marshal.dumps(value)
    return b"SLC1" + hmac.new(secret, b"SLC1" + key.encode() + blob, hashlib.sha256).digest() + blob


def test_a_forged_entry_cannot_change_the_spec(cache: Path) -> None:
    spec_load.builtin_spec_data()
    (entry,) = entries(cache)
    key = entry.name.removesuffix(".entry")
    forged = read_spec_file(None)[0]
    forged["transitions"] = forged["transitions"][:-1]  # a different lifecycle
    entry.write_bytes(_sign(os.urandom(32), key, forged))  # signed without this cache's secret
    assert spec_load.builtin_spec_data() == read_spec_file(None)[0]
    # Signed with the right secret but under another key (a renamed entry): refused too.
    secret = (cache / "secret").read_bytes()
    entry.write_bytes(_sign(secret, "0" * 64, forged))
    assert spec_load.builtin_spec_data() == read_spec_file(None)[0]


def test_an_authentic_entry_of_the_wrong_shape_is_refused(cache: Path) -> None:
    spec = builtin_spec()
    registry.builtin_engine(spec, CompiledMachine)
    (entry,) = entries(cache)
    key = entry.name.removesuffix(".entry")
    secret = (cache / "secret").read_bytes()
    stored = marshal.loads(entry.read_bytes()[36:])
    assert set(stored) == {"step", "batch"}  # apply's module and the batch path's
    for part in ("step", "batch"):
        module = stored[part]
        for wrong in ({**module, "names": module["names"][:-1], "functions": module["functions"][:-1]},
                      {**module, "code": "not code"}, {**module, "constants": [[1, 2]]}, [1, 2, 3],
                      {k: v for k, v in module.items() if k != "source"}):
            entry.write_bytes(_sign(secret, key, {**stored, part: wrong}))
            engine = registry.builtin_engine(spec, CompiledMachine)
            assert engine._table is not None and engine.generated.code == fresh_engine().generated.code
    for broken in ([1, 2, 3], {"step": stored["step"]}):
        entry.write_bytes(_sign(secret, key, broken))
        engine = registry.builtin_engine(spec, CompiledMachine)
        assert engine._table is not None and engine.generated.code == fresh_engine().generated.code


def test_only_the_built_in_spec_is_cached(cache: Path) -> None:
    other = build_spec({**read_spec_file(None)[0], "name": "another"}, "elsewhere.yaml")
    engine = registry.builtin_engine(other, CompiledMachine)
    assert engine.spec is other and entries(cache) == []


def test_an_unsafe_place_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # others may write: never trusted
    monkeypatch.setenv(startup_cache.CACHE_ENV, str(shared))
    assert startup_cache.cache_dir() is None
    assert spec_load.builtin_spec_data() == read_spec_file(None)[0]
    assert list(shared.iterdir()) == []
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real").mkdir(mode=0o700)
    monkeypatch.setenv(startup_cache.CACHE_ENV, str(link))
    assert startup_cache.cache_dir() is None
    for off in ("off", "0", ""):
        monkeypatch.setenv(startup_cache.CACHE_ENV, off)
        assert startup_cache.cache_dir() is None


def test_a_readable_secret_or_a_linked_entry_is_not_trusted(cache: Path) -> None:
    spec_load.builtin_spec_data()
    (entry,) = entries(cache)
    (cache / "secret").chmod(0o644)  # others could read it, so forge with it
    assert spec_load.builtin_spec_data() == read_spec_file(None)[0]
    assert entries(cache) == [entry]  # nothing written either
    (cache / "secret").chmod(0o600)
    moved = cache / "elsewhere"
    entry.rename(moved)
    entry.symlink_to(moved)
    assert spec_load.builtin_spec_data() == read_spec_file(None)[0]
    assert not entry.is_symlink()  # replaced by a real entry


def test_keys_change_with_every_part() -> None:
    base = [b"spec", b"abc", b"def"]
    keys = {startup_cache.key_of(base), startup_cache.key_of([b"spec", b"abcd", b"ef"]),
            startup_cache.key_of([b"spec", b"abc", b"deg"]), startup_cache.key_of([*base, b""])}
    assert len(keys) == 4


def run_replay(cache: Path | str, *args: str) -> subprocess.CompletedProcess[bytes]:
    code = ("import sys; from statemachine.cli.main import main; code = main(sys.argv[1:]); sys.stdout.flush(); "
            "print(sorted(m for m in ('yaml', 'jsonschema', 'transitions', 'logging', 'sqlite3') if m in sys.modules),"
            " file=sys.stderr); sys.exit(code)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), startup_cache.CACHE_ENV: str(cache)}
    return subprocess.run([sys.executable, "-c", code, "replay", *args], capture_output=True, cwd=ROOT, env=env,
                          timeout=120)


def test_a_warm_replay_imports_none_of_the_heavy_libraries_and_prints_the_same(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    off = run_replay("off", "--json", str(EXAMPLE))
    cold = run_replay(cache, "--json", str(EXAMPLE))
    warm = run_replay(cache, "--json", str(EXAMPLE))
    assert off.stdout == cold.stdout == warm.stdout and off.returncode == warm.returncode == 0
    assert b"jsonschema" in off.stderr and b"transitions" in cold.stderr
    assert warm.stderr.strip() == b"[]", warm.stderr
    for entry in entries(cache):  # corrupt everything: still the same answer
        entry.write_bytes(entry.read_bytes()[:-7])
    assert run_replay(cache, "--json", str(EXAMPLE)).stdout == off.stdout


def test_every_module_that_reaches_a_cached_artifact_is_in_its_key(tmp_path: Path) -> None:
    """Edit each module of the layers an artifact is built by (a copy of the package): its key
    changes. A module above them (the runtime) reaches neither, and changes neither key."""
    import shutil

    from statemachine.engine.registry import ENGINE_LAYERS, engine_key
    from statemachine.spec.load import SPEC_LAYERS, spec_data_key

    package = ROOT / "statemachine"
    copy = tmp_path / "statemachine"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    spec = builtin_spec()
    data = BUILTIN_SPEC.read_bytes()

    def keys() -> tuple[str, str]:
        return engine_key(spec, root=str(copy)), spec_data_key(data, root=str(copy))

    base = keys()
    assert base == (engine_key(spec), spec_data_key(data))  # the copy is the package
    edited = 0
    for layer in sorted(set(ENGINE_LAYERS) | set(SPEC_LAYERS)):
        for module in sorted((copy / layer).glob("*.py")):
            text = module.read_text(encoding="utf-8")
            module.write_text(text + "\n# an edit\n", encoding="utf-8")
            engine, spec_data = keys()
            module.write_text(text, encoding="utf-8")
            assert engine != base[0], f"{layer}/{module.name} is not in the engine's key"
            if layer in SPEC_LAYERS:
                assert spec_data != base[1], f"{layer}/{module.name} is not in the spec data's key"
            edited += 1
    assert edited >= 20 and (copy / "spec" / "model.py").exists()  # no_transition_reason's module among them
    outside = copy / "runtime" / "projector.py"
    outside.write_text(outside.read_text(encoding="utf-8") + "\n# an edit\n", encoding="utf-8")
    assert keys() == base


def test_a_fifo_at_an_entry_or_the_secret_is_never_waited_on(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    off = run_replay("off", "--json", str(EXAMPLE))
    assert run_replay(cache, "--json", str(EXAMPLE)).returncode == 0  # fills the cache
    fifos = entries(cache)
    assert fifos
    for entry in fifos:  # a FIFO nobody writes: opening it for reading without O_NONBLOCK blocks
        entry.unlink()
        os.mkfifo(entry, 0o600)
    again = run_replay(cache, "--json", str(EXAMPLE))  # the timeout of run_replay fails a block
    assert again.returncode == 0 and again.stdout == off.stdout
    secret = cache / "secret"
    secret.unlink()
    os.mkfifo(secret, 0o600)
    assert run_replay(cache, "--json", str(EXAMPLE)).stdout == off.stdout


def test_a_relative_cache_directory_is_refused(tmp_path: Path) -> None:
    off = run_replay("off", "--json", str(EXAMPLE))
    env = {**os.environ, "PYTHONPATH": str(ROOT), startup_cache.CACHE_ENV: "relative-cache"}
    done = subprocess.run([sys.executable, "-m", "statemachine", "replay", "--json", str(EXAMPLE)],
                          capture_output=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout == off.stdout
    assert list(tmp_path.iterdir()) == []  # no cache directory where the command ran


def test_cache_dir_is_none_for_a_relative_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(startup_cache.CACHE_ENV, "here")
    assert startup_cache.cache_dir() is None
    assert not (tmp_path / "here").exists()
