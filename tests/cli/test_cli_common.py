"""The command line's doors (statemachine/cli/common.py and its users): output files, standard
output that cannot be written, inputs read whole, terminal control characters, numeric flags."""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "examples" / "codex_session.jsonl"
RAW = ROOT / "examples" / "raw" / "codex_exec_turns.jsonl"
# verify with its cheap checks only: the output is what is tested here, not the proofs.
QUICK_VERIFY = ["verify", "--skip", "explore", "--skip", "induction", "--skip", "agreement", "--skip", "spin"]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, /dev/full and descriptors are POSIX")


def run(*args: str, stdin: bytes | None = None, stdout: int | None = subprocess.PIPE, cwd: Path = ROOT,
        preexec: Callable[[], None] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([sys.executable, "-m", "statemachine", *args], input=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, cwd=cwd, timeout=timeout, preexec_fn=preexec,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    return proc


def one_line(stderr: bytes) -> str:
    text = stderr.decode()
    assert text.count("\n") == 1 and text.endswith("\n"), text
    return text


# -- output files: a regular file or a new name, written through a rename ---------------------

# (subcommand arguments with {out} for the output file); each writes one file.
FILE_OUTPUTS = {
    "replay --snapshot-out": ["replay", "--snapshot-out", "{out}", str(LOG)],
    "replay --trace-out": ["replay", "--trace-out", "{out}", str(LOG)],
    "adapt -o": ["adapt", "--from", "codex-exec", "-o", "{out}", str(RAW)],
    "export -o": ["export", "python", "-o", "{out}"],
    "diagram -o": ["diagram", "-o", "{out}"],
    "timeline -o": ["timeline", "-o", "{out}", str(LOG)],
}


def _out_name(case: str) -> str:
    return "out.mmd" if case.startswith("diagram") else "out.txt"


@pytest.mark.parametrize("case", FILE_OUTPUTS)
def test_an_output_that_is_a_symlink_is_refused_and_its_target_untouched(case: str, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    link = tmp_path / _out_name(case)
    link.symlink_to(victim)
    proc = run(*[a.replace("{out}", str(link)) for a in FILE_OUTPUTS[case]])
    assert proc.returncode == 2
    assert "symbolic link" in one_line(proc.stderr)
    assert victim.read_text() == "keep me\n" and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([victim.name, link.name])  # no temporary left


@pytest.mark.parametrize("case", FILE_OUTPUTS)
def test_an_output_that_is_a_fifo_is_refused_without_blocking(case: str, tmp_path: Path) -> None:
    fifo = tmp_path / _out_name(case)
    os.mkfifo(fifo)
    proc = run(*[a.replace("{out}", str(fifo)) for a in FILE_OUTPUTS[case]], timeout=60)
    assert proc.returncode == 2 and "FIFO" in one_line(proc.stderr)


def _device(tmp_path: Path) -> Path:
    """A character device of our own (the null device's numbers) in tmp_path: never a system path,
    which a regression writing through a rename would replace for everyone on the machine."""
    node = tmp_path / "null-device"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        pytest.skip("making a device node needs CAP_MKNOD")
    return node


@pytest.mark.parametrize("case", ["replay --snapshot-out", "export -o", "timeline -o"])
def test_an_output_that_is_a_directory_or_a_device_is_refused(case: str, tmp_path: Path) -> None:
    directory = tmp_path / _out_name(case)
    directory.mkdir()
    device = _device(tmp_path)
    for target, word in ((directory, "directory"), (device, "character device")):
        proc = run(*[a.replace("{out}", str(target)) for a in FILE_OUTPUTS[case]])
        assert proc.returncode == 2 and word in one_line(proc.stderr)
    assert list(directory.iterdir()) == []
    assert stat.S_ISCHR(device.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([directory.name, device.name])


@pytest.mark.parametrize("case", FILE_OUTPUTS)
def test_a_regular_file_is_replaced_whole_and_a_new_name_created(case: str, tmp_path: Path) -> None:
    target = tmp_path / _out_name(case)
    target.write_text("old\n" * 100_000)
    target.chmod(0o640)
    proc = run(*[a.replace("{out}", str(target)) for a in FILE_OUTPUTS[case]])
    assert proc.returncode == 0, proc.stderr
    written = target.read_bytes()
    assert b"old\n" not in written and written
    assert target.stat().st_mode & 0o777 == 0o640  # a rewritten file keeps its permissions
    fresh = tmp_path / "sub" / _out_name(case)
    fresh.parent.mkdir()
    assert run(*[a.replace("{out}", str(fresh)) for a in FILE_OUTPUTS[case]]).returncode == 0
    assert _unkeyed(case, fresh.read_bytes()) == _unkeyed(case, written)
    assert sorted(p.name for p in fresh.parent.iterdir()) == [fresh.name]


def _unkeyed(case: str, written: bytes) -> object:
    """What two runs must agree on: a snapshot's eventId digests are keyed by a random key per
    projector, so only their number per thread is the same from run to run."""
    if case != "replay --snapshot-out":
        return written
    data = json.loads(written)
    assert len(data.pop("eventIdKey")) == 32
    for entry in (*data["threads"], *data["tombstones"]):
        entry["seenEventDigests"] = len(entry["seenEventDigests"])
    return data


@pytest.mark.parametrize("name", ["-", "/dev/stdout"])
def test_dash_and_dev_stdout_write_standard_output(name: str) -> None:
    plain = run("timeline", str(LOG)).stdout
    assert run("timeline", "-o", name, str(LOG)).stdout == plain
    assert run("export", "python", "-o", name).stdout == run("export", "python").stdout


def test_a_snapshot_to_dash_is_written_to_standard_output() -> None:
    # Only `-` here: a regression that renamed a file onto /dev/stdout would replace the system's link.
    snapshot = run("replay", "--json", "--snapshot-out", "-", str(LOG))
    assert snapshot.returncode == 0
    first, second = snapshot.stdout.decode().splitlines()
    assert json.loads(first)["format"] == "session-lifecycle-snapshot" and "sessions" in json.loads(second)


def test_the_names_of_standard_output() -> None:
    from statemachine.cli.outputs import is_stdout, refusal

    assert all(is_stdout(name) for name in (None, "-", "/dev/stdout"))
    assert not any(is_stdout(name) for name in ("", "./-", "/dev/stdout/", "/dev/stderr"))
    assert refusal("/dev/stderr") is not None and refusal("/dev/null") is not None


def test_docs_and_counterexamples_refuse_a_linked_file_inside_their_directory(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    out = tmp_path / "docs"
    out.mkdir()
    (out / "cli.md").symlink_to(victim)
    proc = run("docs", "--out", str(out))
    assert proc.returncode == 2 and "symbolic link" in proc.stderr.decode()
    assert victim.read_text() == "keep me\n"
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    proc = run("docs", "--out", str(not_a_dir))
    assert proc.returncode == 2 and "not a directory" in one_line(proc.stderr)
    mutant = ROOT / "specs" / "mutants" / "a_seed_ready_keeps_turn.yaml"
    cx = tmp_path / "cx"
    cx.mkdir()
    (cx / "no_turn_in_inactive_status.jsonl").symlink_to(victim)
    proc = run("verify", "--skip", "spin", "--skip", "agreement", "--skip", "induction", "--spec", str(mutant),
               "--counterexample-out", str(cx))
    assert proc.returncode == 2 and "symbolic link" in one_line(proc.stderr)
    assert victim.read_text() == "keep me\n"


# -- standard output that cannot be written ---------------------------------------------------

WHOLE_OUTPUTS = {
    "replay": ["replay", str(LOG)],
    "replay --json": ["replay", "--json", str(LOG)],
    "replay --trace": ["replay", "--trace", str(LOG)],
    "timeline": ["timeline", str(LOG)],
    "verify": QUICK_VERIFY,
    "diagram": ["diagram"],
    "export": ["export", "promela"],
    "adapt": ["adapt", "--from", "codex-exec", str(RAW)],
    "audit": ["audit", "--log", str(LOG), "--sessions", "{theirs}"],
    "store export": ["store", "export", "{db}"],
}


@pytest.fixture
def prepared(tmp_path: Path) -> Callable[[list[str]], list[str]]:
    theirs = tmp_path / "theirs.json"
    theirs.write_text(json.dumps({"thr-x": {"status": "ready"}}))
    db = tmp_path / "s.db"
    assert run("replay", "--store", str(db), str(LOG)).returncode == 0

    def fill(args: list[str]) -> list[str]:
        return [a.replace("{theirs}", str(theirs)).replace("{db}", str(db)) for a in args]

    return fill


@pytest.mark.parametrize("case", WHOLE_OUTPUTS)
def test_a_full_standard_output_is_one_line_and_exit_2(case: str, prepared: Callable[[list[str]], list[str]]) -> None:
    with open("/dev/full", "wb") as full:
        proc = run(*prepared(WHOLE_OUTPUTS[case]), stdout=full.fileno())
    assert proc.returncode == 2
    assert "cannot write to standard output: No space left on device" in one_line(proc.stderr)


@pytest.mark.parametrize("case", WHOLE_OUTPUTS)
def test_a_closed_standard_output_is_one_line_and_exit_2(case: str, prepared: Callable[[list[str]], list[str]]) -> None:
    proc = run(*prepared(WHOLE_OUTPUTS[case]), stdout=None, preexec=lambda: os.close(1))
    assert proc.returncode == 2
    assert "standard output" in one_line(proc.stderr)


def test_a_closed_standard_output_does_not_stop_a_command_that_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    proc = run("timeline", "-o", str(out), str(LOG), stdout=None, preexec=lambda: os.close(1))
    assert proc.returncode == 0 and proc.stderr == b""
    assert out.read_bytes().startswith(b"<!doctype html>") or out.read_bytes().startswith(b"<!DOCTYPE html>")


@pytest.mark.parametrize("case", WHOLE_OUTPUTS)
def test_a_reader_that_left_ends_every_command_quietly_with_141(
    case: str, prepared: Callable[[list[str]], list[str]]
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte is written: EPIPE, never a race
    try:
        proc = run(*prepared(WHOLE_OUTPUTS[case]), stdout=write_end)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == b""  # adapt does not blame its input file, nobody prints a traceback


# -- inputs read whole have a size limit ------------------------------------------------------


def _limit_memory() -> None:
    # Far above what a refused input costs (one byte past its limit), far below "all of it".
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


@pytest.mark.parametrize("args", [
    ["audit", "--log", str(LOG), "--sessions", "/dev/zero"],
    ["replay", "--snapshot-in", "/dev/zero", str(LOG)],
    ["replay", "--spec", "/dev/zero", str(LOG)],
], ids=lambda a: " ".join(a[:2]))
def test_an_endless_input_is_refused_in_one_line(args: list[str]) -> None:
    proc = run(*args, preexec=_limit_memory, timeout=60)
    assert proc.returncode == 2
    assert "limit" in one_line(proc.stderr)


# -- terminal control characters --------------------------------------------------------------

ESC_ID = "thr-\x1b[2J\x1b]0;pwned\x07-\x9b31m-\x7f"


def _hostile_log(path: Path) -> Path:
    event = {"eventId": "e\x1b[1m1", "type": "turn.started", "provider": "pro\x1bvider", "threadId": ESC_ID,
             "createdAt": "2026-01-01T00:00:00Z", "turnId": "t\x1b1", "payload": {}}
    stale = dict(event, eventId="e2", type="turn.completed", turnId="other")
    path.write_text(json.dumps(event) + "\n" + json.dumps(stale) + "\n" + '{"eventId": "x\x1b", "type": 5}\n')
    return path


def _no_controls(data: bytes) -> None:
    text = data.decode("utf-8")
    assert not any((ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 for c in text), repr(text)


def test_replay_summary_escapes_control_characters(tmp_path: Path) -> None:
    proc = run("replay", str(_hostile_log(tmp_path / "log.jsonl")))
    assert proc.returncode == 1
    _no_controls(proc.stdout)
    out = proc.stdout.decode()
    assert "thr-\\x1b[2J\\x1b]0;pwned\\x07-\\x9b31m-\\x7f:" in out and "pro\\x1bvider" in out
    assert "rejected e2" in out and len(out.splitlines()) == 4  # counts, one thread, one rejection, one error
    as_json = run("replay", "--json", str(tmp_path / "log.jsonl"))
    assert ESC_ID in json.loads(as_json.stdout)["sessions"]  # JSON stays JSON: the exact id


def test_audit_and_error_lines_escape_control_characters(tmp_path: Path) -> None:
    log = _hostile_log(tmp_path / "log.jsonl")
    theirs = tmp_path / "theirs.json"
    theirs.write_text(json.dumps({ESC_ID: {"status": "ready\x1b[0m"}, "gone\x1b": {"status": "idle"}}))
    proc = run("audit", "--log", str(log), "--sessions", str(theirs))
    assert proc.returncode == 1
    _no_controls(proc.stdout)
    assert "thr-\\x1b[2J" in proc.stdout.decode()
    missing = tmp_path / "no\x1b[31mfile.jsonl"
    proc = run("replay", str(missing))
    assert proc.returncode == 2
    _no_controls(proc.stderr)
    assert "no\\x1b[31mfile" in one_line(proc.stderr)


def test_verify_report_escapes_control_characters_of_the_spec_name(tmp_path: Path) -> None:
    spec = tmp_path / "sp\x1b[2Jec.yaml"
    spec.write_bytes((ROOT / "specs" / "session_lifecycle.yaml").read_bytes())
    proc = run(*QUICK_VERIFY, "--spec", str(spec))
    assert proc.returncode == 0
    _no_controls(proc.stdout)
    assert "sp\\x1b[2Jec.yaml" in proc.stdout.decode()


# -- numeric flags ----------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["timeline", "--stale-after", "1e300", str(LOG)],
    ["timeline", "--stale-after", "nan", str(LOG)],
    ["timeline", "--stale-after", "inf", str(LOG)],
    ["timeline", "--stale-after", "-1", str(LOG)],
    ["replay", "--max-clock-skew", "1e300", str(LOG)],
    ["replay", "--jobs", str(10**30), str(LOG)],
    ["replay", "--store", "x.db", "--batch", str(10**30), str(LOG)],
    ["replay", "--store", "x.db", "--batch", "-3", str(LOG)],
], ids=lambda a: " ".join(a[-3:-1]))
def test_numeric_flags_out_of_range_are_argparse_errors(args: list[str], tmp_path: Path) -> None:
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert f"error: argument {args[-3]}" in proc.stderr.decode()
    assert list(tmp_path.iterdir()) == []
