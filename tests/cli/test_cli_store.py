"""statemachine/cli/store.py: no credential in any message, no database made by a typo, the
snapshot read with a limit."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from statemachine.cli.store import redact

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "examples" / "codex_session.jsonl"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([sys.executable, "-m", "statemachine", *args], capture_output=True, cwd=cwd, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)))
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    return proc


# -- credentials ------------------------------------------------------------------------------

SECRET = "s3cr3t-Pw"

# URLs a driver refuses, each quoting (some of) itself in its message.
MALFORMED_URLS = [
    f"postgresql://user:{SECRET}@[::1/db",            # unclosed IPv6 bracket: the message quotes the URL
    f"postgresql://user:{SECRET}%zz@host/db",         # bad percent-escape: the message quotes the token
    f"postgresql://user@127.0.0.1:1/db?password={SECRET}&port=x",  # password as a parameter
    f"postgresql://user:{SECRET}@127.0.0.1:notaport/db",
    f"postgres://user:p@{SECRET}@127.0.0.1:1/db",      # an unencoded @ inside the password
]


@pytest.mark.skipif(importlib.util.find_spec("psycopg") is None, reason="needs the [postgres] extra")
@pytest.mark.parametrize("url", MALFORMED_URLS)
@pytest.mark.parametrize("command", ["export", "import", "replay"])
def test_no_message_about_a_store_url_shows_its_password(url: str, command: str, tmp_path: Path) -> None:
    snap = tmp_path / "snap.json"
    assert run("replay", "--snapshot-out", str(snap), str(LOG)).returncode == 0
    args = {"export": ["store", "export", url], "import": ["store", "import", url, str(snap)],
            "replay": ["replay", "--store", url, str(LOG)]}[command]
    proc = run(*args)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "***" in err
    assert SECRET not in err and SECRET.replace("-", "%2D") not in err and "s3cr3t" not in err


def test_redact_covers_the_url_forms() -> None:
    assert redact("postgresql://u:pw@h/db", "postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert redact("token: \"p%41ss\"", "postgresql://u:p%41ss@h/db") == 'token: "***"'
    assert redact("got pAss in it", "postgresql://u:p%41ss@h/db") == "got *** in it"  # decoded too
    assert redact("x password=abc y", "postgresql://h/db?password=abc") == "x password=*** y"
    assert redact("dsn 'password=zz host=h'", "postgresql://h/db") == "dsn 'password=*** host=h'"
    assert redact("/tmp/a.db", "/tmp/a.db") == "/tmp/a.db"


# -- no database made by a typo ---------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "sqlite:///"])
def test_export_of_a_missing_store_is_refused_and_creates_nothing(prefix: str, tmp_path: Path) -> None:
    missing = tmp_path / "tpyo.db"
    proc = run("store", "export", prefix + str(missing))
    assert proc.returncode == 2
    assert proc.stderr.decode() == f"store export: no store at {missing}\n"
    assert list(tmp_path.iterdir()) == []


def test_a_failed_import_leaves_no_new_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "session-lifecycle-snapshot", "version": 1, "threads": 3}')
    assert run("store", "import", str(tmp_path / "new.db"), str(bad)).returncode == 1
    assert run("store", "import", str(tmp_path / "new.db"), str(tmp_path / "missing.json")).returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]
    # A good import still creates its store, and export then reads it back.
    snap = tmp_path / "snap.json"
    assert run("replay", "--snapshot-out", str(snap), str(LOG)).returncode == 0
    assert run("store", "import", str(tmp_path / "new.db"), str(snap)).returncode == 0
    exported = run("store", "export", str(tmp_path / "new.db"))
    assert exported.returncode == 0 and json.loads(exported.stdout) == json.loads(snap.read_text())


def test_an_existing_store_is_never_removed_by_a_failed_import(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert run("replay", "--store", str(db), str(LOG)).returncode == 0
    snap = tmp_path / "snap.json"
    assert run("replay", "--snapshot-out", str(snap), str(LOG)).returncode == 0
    assert run("store", "import", str(db), str(snap)).returncode == 2  # it holds sessions already
    assert run("store", "export", str(db)).returncode == 0


# -- the snapshot is read with a limit --------------------------------------------------------


def test_importing_an_endless_snapshot_is_one_line_and_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    proc = run("store", "import", str(db), "/dev/zero")
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert err.count("\n") == 1 and "limit" in err
    assert not db.exists()


def test_store_export_refuses_a_linked_output(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert run("replay", "--store", str(db), str(LOG)).returncode == 0
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "out.json").symlink_to(victim)
    proc = run("store", "export", str(db), "-o", str(tmp_path / "out.json"))
    assert proc.returncode == 2 and "symbolic link" in proc.stderr.decode()
    assert victim.read_text() == "keep\n"
