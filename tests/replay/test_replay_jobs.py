"""`replay --jobs N`: the same bytes as `--jobs 1` on every log, hostile ones included; flags
that need one process refused with a message; a routing guess a crafted line fools never changes
the answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import Events

from statemachine.replay.jobs import MAX_JOBS, _guess_owner, _parts, owner, replay_file_in_parallel
from statemachine.replay.lines import MAX_LINE_BYTES

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from stream import generate_stream  # noqa: E402


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([sys.executable, "-m", "statemachine", *args], input=stdin, capture_output=True,
                          cwd=ROOT, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    return proc


def write_log(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def dumps(wire: dict[str, Any]) -> bytes:
    return json.dumps(wire).encode()


def assert_same_output(log: Path, *jobs: int, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[bytes]:
    """--jobs 1 and each of `jobs` print the same bytes and exit with the same code, in text and --json."""
    first = None
    for shape in ((), ("--json",)):
        one = run("replay", *shape, *extra, "--jobs", "1", str(log))
        first = first or one
        for n in jobs:
            many = run("replay", *shape, *extra, "--jobs", str(n), str(log))
            assert many.stdout == one.stdout, f"--jobs {n} {shape} differs"
            assert (many.returncode, many.stderr) == (one.returncode, one.stderr)
    assert first is not None
    return first


def hostile_lines() -> list[bytes]:
    a, b, c = Events("thr-a"), Events("thr-b", "claudeAgent"), Events("thr-c")
    started = a("session.started")
    crafted = b("turn.started", "T9", note='"threadId": "thr-a"')  # another threadId, after the real one
    return [
        dumps(started),
        dumps(b("session.started")),
        b"",  # blank
        b"{not json",
        b'{"threadId": "thr-a"}',  # threadId readable, the rest missing
        b'{"threadId": 7, "eventId": "x"}',  # threadId not a string
        b"[1, 2, 3]",
        b'"just a string"',
        dumps(a("turn.started", "T1")),
        dumps(started),  # a duplicate
        dumps(a("turn.completed", "T2", state="completed")),  # another turn: rejected
        # An escaped threadId: routed by the stdlib parse.
        b'{"eventId": "e-esc", "type": "turn.started", "turnId": "T1", "threadId": "thr-\\u0061", '
        b'"provider": "codex", "createdAt": "2026-11-20T10:00:30Z", "payload": {}}',
        dumps(crafted),
        b"x" * (MAX_LINE_BYTES + 10),  # huge
        dumps(a("turn.completed", "T1", state="completed")),
        b"\xff\xfe not utf-8",
        b"{" * 100_000,  # deep nesting
        dumps(c("thread.delete")),  # a command: forgets thr-c
        dumps(b("turn.completed", "T9", state="failed", errorMessage="boom")),
        dumps(c("session.started")),  # thr-c again: it now comes after thr-b
        "é".encode() + dumps(a("turn.started", "T3")),
    ]


def test_the_example_logs_give_the_same_bytes_in_parallel() -> None:
    for log in sorted((ROOT / "examples").glob("*.jsonl")):
        assert_same_output(log, 2, 3)


def test_a_generated_stream_gives_the_same_bytes(tmp_path: Path) -> None:
    stream = generate_stream(20_000, 300, seed=5)
    compact = write_log(tmp_path / "compact.jsonl", [json.dumps(w, separators=(",", ":")).encode() for w in stream])
    assert_same_output(compact, 3)
    log = write_log(tmp_path / "stream.jsonl", [dumps(w) for w in stream])
    done = assert_same_output(log, 2, 4)
    data = json.loads(run("replay", "--json", "--jobs", "2", str(log)).stdout)
    assert len(data["sessions"]) == 300
    assert data["outcomes"]["rejected"] > MAX_JOBS  # enough to interleave the workers' lists
    assert done.returncode == 0


def test_more_than_1000_rejections_and_errors_keep_the_first_1000_by_line(tmp_path: Path) -> None:
    lines: list[bytes] = []
    for i in range(1_300):
        ev = Events(f"thr-{i % 7}")
        lines.append(dumps(ev("turn.completed", "T0", state="completed")))  # no active turn: rejected
        lines.append(b"{broken %d" % i)
    log = write_log(tmp_path / "many.jsonl", lines)
    assert_same_output(log, 2, 5)
    data = json.loads(run("replay", "--json", "--jobs", "3", str(log)).stdout)
    assert data["outcomes"]["malformed"] == 1_300 and len(data["errors"]) == 1_000
    assert [e["line"] for e in data["errors"]] == list(range(2, 2_001, 2))


def test_hostile_lines_give_the_same_bytes_and_exit_code(tmp_path: Path) -> None:
    log = write_log(tmp_path / "hostile.jsonl", hostile_lines())
    done = assert_same_output(log, 2, 3, 7)
    assert done.returncode == 1  # some lines are malformed
    data = json.loads(run("replay", "--json", "--jobs", "2", str(log)).stdout)
    assert list(data["sessions"]) == ["thr-a", "thr-b", "thr-c"]  # thr-c forgotten, then seen again
    assert any("longer than" in e["error"] for e in data["errors"])
    assert data["outcomes"]["forgotten"] == 1 and data["outcomes"]["duplicate"] >= 1
    for n in (2, 3):  # every worker kept to its own threads: no fallback to one process
        parts = _parts(str(log), n, None, None, MAX_LINE_BYTES)
        assert not any(p.misrouted for p in parts)


def test_more_jobs_than_threads(tmp_path: Path) -> None:
    a = Events("only-thread")
    log = write_log(tmp_path / "one.jsonl", [dumps(a("session.started")), dumps(a("turn.started", "T1"))])
    assert_same_output(log, 2, 16, MAX_JOBS)
    empty = write_log(tmp_path / "empty.jsonl", [])
    assert_same_output(empty, 3)


def test_a_spec_and_clock_skew_are_passed_to_every_worker(tmp_path: Path) -> None:
    a = Events("thr-future")
    log = write_log(tmp_path / "future.jsonl", [dumps(a("session.started", created_at="2999-01-01T00:00:00Z"))])
    assert_same_output(log, 2, extra=("--max-clock-skew", "none"))
    assert_same_output(log, 2, extra=("--max-clock-skew", "1d"))
    spec = str(ROOT / "specs" / "session_lifecycle.yaml")
    assert_same_output(log, 2, extra=("--spec", spec))


def test_a_fooled_guess_is_caught_and_the_answer_stays_right(tmp_path: Path) -> None:
    # The first "threadId" in the line is in the payload, and routes to another worker than the
    # real one: the worker sees it from the parsed event and the log is replayed in one process.
    real, decoy = "thr-real", next(t for t in (f"decoy-{i}" for i in range(100)) if owner(t, 2) != owner("thr-real", 2))
    ev = Events(real)("session.started")
    line = json.dumps({"payload": {"threadId": decoy}, **{k: v for k, v in ev.items() if k != "payload"}}).encode()
    assert _guess_owner(line, 2) != owner(real, 2)
    log = write_log(tmp_path / "crafted.jsonl", [line])
    data = replay_file_in_parallel(str(log), 2, max_clock_skew=None)
    assert list(data["sessions"]) == [real]
    assert any(p.misrouted for p in _parts(str(log), 2, None, None, MAX_LINE_BYTES))
    assert_same_output(log, 2)


def test_the_guess_reads_escaped_and_compact_ids_exactly() -> None:
    for line in (b'{"threadId":"t-1"}', b'{"threadId": "t-1"}', b'{"threadId": "t\\u002d1"}',
                 b'{ "threadId" :\n "t-1" }'):
        assert _guess_owner(line, 7) == owner("t-1", 7), line


@pytest.mark.parametrize("flags", [
    ("--trace",), ("--trace-out", "x.jsonl"), ("--snapshot-in", "s.json"), ("--snapshot-out", "s.json"),
    ("--store", "db.sqlite"), ("--from", "codex-exec"),
])
def test_flags_that_need_one_process_are_refused(tmp_path: Path, flags: tuple[str, ...]) -> None:
    log = write_log(tmp_path / "log.jsonl", [dumps(Events("t")("session.started"))])
    done = run("replay", "--jobs", "2", *flags, str(log))
    assert done.returncode == 2
    assert b"--jobs 2 cannot be combined with" in done.stderr and flags[0].encode() in done.stderr
    assert done.stdout == b""


def test_standard_input_a_pipe_a_missing_file_and_bad_counts_are_refused(tmp_path: Path) -> None:
    done = run("replay", "--jobs", "2", "-", stdin=b"")
    assert done.returncode == 2 and b"not standard input" in done.stderr
    done = run("replay", "--jobs", "2", "/dev/null")
    assert done.returncode == 2 and b"not a regular file" in done.stderr
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = run("replay", "--jobs", "2", str(fifo))  # refused without waiting for a writer
    assert done.returncode == 2 and b"not a regular file" in done.stderr
    done = run("replay", "--jobs", "2", str(tmp_path / "missing.jsonl"))
    assert done.returncode == 2 and b"cannot read" in done.stderr
    for bad in ("0", "-1", "x", str(MAX_JOBS + 1)):
        done = run("replay", "--jobs", bad, str(tmp_path / "missing.jsonl"))
        assert done.returncode == 2 and b"--jobs" in done.stderr


def test_a_spool_that_cannot_be_made_is_named_not_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from statemachine.replay.jobs import SpoolError

    log = write_log(tmp_path / "log.jsonl", [])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no" / "such" / "dir"))
    with pytest.raises(SpoolError, match="spool directory"):
        replay_file_in_parallel(str(log), 2, max_clock_skew=None)


def test_the_subcommand_list_matches_the_parser() -> None:
    from statemachine.cli.main import SUBCOMMANDS, build_parser, subcommand_parsers

    assert set(SUBCOMMANDS) == set(subcommand_parsers(build_parser()))
    for name in SUBCOMMANDS:  # one subcommand alone helps exactly as within the whole parser
        alone = subcommand_parsers(build_parser(only=name), width=100)
        assert list(alone) == [name]
        assert alone[name].format_help() == subcommand_parsers(width=100)[name].format_help()


def test_jobs_1_is_the_usual_path_and_accepts_standard_input() -> None:
    log = (ROOT / "examples" / "codex_session.jsonl").read_bytes()
    one = run("replay", "--json", "--jobs", "1", "-", stdin=log)
    assert one.returncode == 0 and one.stdout == run("replay", "--json", "-", stdin=log).stdout


def test_lines_at_the_length_limit_count_as_in_one_process(tmp_path: Path) -> None:
    from statemachine import SessionProjector
    from statemachine.replay.lines import replay_lines

    a = Events("thr-limit")
    event = dumps(a("session.started"))
    limit = len(event)
    body = [event, b" " * (limit - 1) + b"{", b"x" * (limit + 1), dumps(a("turn.started", "T1")) + b" " * limit,
            b"y" * (limit * 3)]  # the last line over the limit, with no line break after it
    path = tmp_path / "limit.jsonl"
    path.write_bytes(b"\n".join(body))
    projector = SessionProjector(max_clock_skew=None)
    with open(path, "rb") as stream:
        one = replay_lines(projector, stream, max_line_bytes=limit).to_json(projector)
    for n in (2, 3):
        assert replay_file_in_parallel(str(path), n, max_clock_skew=None, max_line_bytes=limit) == one
    assert one["outcomes"]["malformed"] == 4 and one["outcomes"]["applied"] == 1


def test_each_line_is_routed_once_to_its_owner_from_ranges_cut_at_line_starts(tmp_path: Path) -> None:
    import tempfile
    from itertools import pairwise

    from statemachine.replay.jobs import _ranges, _route, _spooled

    wire = generate_stream(600, 40, 7)
    long_line = dumps({**wire[0], "payload": {"pad": "x" * 5_000}})  # crosses a cut point
    lines = [dumps(w) for w in wire[:300]] + [long_line] + [dumps(w) for w in wire[300:]]
    log = write_log(tmp_path / "log.jsonl", lines)
    data = log.read_bytes()
    for jobs in (1, 2, 3, 7):
        ranges = _ranges(str(log), jobs)
        assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
        assert all(end == start for (_, end), (start, _) in pairwise(ranges))
        assert all(start == 0 or data[start - 1:start] == b"\n" for start, _ in ranges)
        with tempfile.TemporaryDirectory() as spool:
            counts = [_route(str(log), start, end, i, jobs, MAX_LINE_BYTES, spool)
                      for i, (start, end) in enumerate(ranges)]
            offsets = [sum(counts[:i]) for i in range(jobs)]
            got = {j: list(_spooled(str(log), spool, j, offsets)) for j in range(jobs)}
        assert sum(counts) == len(lines)
        numbers = sorted(n for part in got.values() for n, _ in part)
        assert numbers == list(range(1, len(lines) + 1))  # every line once, none twice
        for j, part in got.items():
            assert [n for n, _ in part] == sorted(n for n, _ in part)  # in file order
            for n, line in part:
                assert line is not None and line.rstrip(b"\n") == lines[n - 1]
                assert owner(json.loads(line)["threadId"], jobs) == j  # only its own threads
