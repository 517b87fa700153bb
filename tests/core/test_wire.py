"""Line decoding: the stdlib's `json` and msgspec (the `[fast]` extra) give the same result on every
line, including where JSON libraries differ. Each case is decided once (docs/reliability.md,
"Where JSON decoders differ") and checked on both decoders, through the parser and the batch path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from statemachine import SessionProjector
from statemachine.core import wire
from statemachine.core.event import EventError

DECODERS = ["json", "msgspec"]


@pytest.fixture(params=DECODERS)
def decoder(request: pytest.FixtureRequest) -> Iterator[str]:
    before = wire.decoder_name()
    assert wire.use_decoder(request.param) == request.param
    yield str(request.param)
    wire.use_decoder(before)


def envelope(payload: str = "{}", *, type_: str = "runtime.warning", extra: str = "") -> str:
    """A well-formed line with `payload` (JSON text) inserted as it is, and `extra` top-level text."""
    return ('{"eventId":"e1","type":"' + type_ + '","provider":"codex","threadId":"t1",'
            '"createdAt":"2026-11-20T10:00:00Z",' + extra + '"payload":' + payload + "}")


def nested(depth: int) -> str:
    """A payload nested `depth` levels deep, counting the envelope as level 1."""
    inner = depth - 2
    return '{"x":' + "[" * inner + "]" * inner + "}"


# (name, line, what it must give: a check of the parsed payload, or the start of the line error)
Check = Callable[[dict[str, Any]], bool]
ACCEPTED: list[tuple[str, str | bytes, Check]] = [
    ("lone surrogate escape", envelope('{"m":"a\\ud800b"}'), lambda p: p["m"] == "a\ud800b"),
    ("surrogate pair escape", envelope('{"m":"\\ud83d\\ude00"}'), lambda p: p["m"] == "\U0001f600"),
    ("lone surrogate as UTF-8 bytes", envelope('{"m":"a\ud800b"}').encode("utf-8", "surrogatepass"),
     lambda p: p["m"] == "a\ud800b"),
    ("NaN", envelope('{"m":NaN}'), lambda p: math.isnan(p["m"])),
    ("Infinity", envelope('{"m":Infinity,"n":-Infinity}'), lambda p: p["m"] == math.inf and p["n"] == -math.inf),
    ("2**64", envelope(f'{{"m":{2**64}}}'), lambda p: p["m"] == 2**64 and type(p["m"]) is int),
    ("2**70 negative", envelope(f'{{"m":{-(2**70)}}}'), lambda p: p["m"] == -(2**70)),
    ("4300 digits", envelope('{"m":' + "7" * 4300 + "}"), lambda p: p["m"] == int("7" * 4300)),
    ("float beyond range", envelope('{"m":1e400,"n":-1e400}'), lambda p: p["m"] == math.inf and p["n"] == -math.inf),
    ("float below range", envelope('{"m":1e-400}'), lambda p: p["m"] == 0.0),
    ("floats round as Python's", envelope('{"a":0.1,"b":2.2250738585072011e-308,"c":1.7976931348623157e308,'
                                          '"d":-0.0,"e":-0}'),
     lambda p: (p["a"], p["b"], p["c"]) == (0.1, 2.2250738585072011e-308, 1.7976931348623157e308)
     and math.copysign(1, p["d"]) == -1 and p["e"] == 0 and type(p["e"]) is int),
    ("duplicate keys: the last wins", envelope('{"m":1,"m":2}', extra='"eventId":"e0",'), lambda p: p["m"] == 2),
    ("nesting at the bound", envelope(nested(wire.MAX_NESTING)), lambda p: isinstance(p["x"], list)),
    ("UTF-8 BOM before a bytes line", b"\xef\xbb\xbf" + envelope('{"m":"\xe9"}').encode(), lambda p: p["m"] == "\xe9"),
    ("UTF-16 bytes", envelope('{"m":"x"}').encode("utf-16"), lambda p: p["m"] == "x"),
    ("UTF-8 BOM before a text line", "\ufeff" + envelope('{"m":"\xe9"}'), lambda p: p["m"] == "\xe9"),
    ("unknown top-level key", envelope('{"m":1}', extra='"zz":[1,{"a":2}],'), lambda p: p["m"] == 1),
    ("whitespace around", "  \t" + envelope('{"m":1}') + " \r\n", lambda p: p["m"] == 1),
]

REFUSED: list[tuple[str, str | bytes, str]] = [
    ("4301 digits", envelope('{"m":' + "7" * 4301 + "}"), "line: not valid JSON: Exceeds the limit"),
    ("4301 digits in an unknown key", envelope(extra='"zz":' + "7" * 4301 + ","),
     "line: not valid JSON: Exceeds the limit"),
    ("1e400 is fine but NaN junk is not", envelope('{"m":nan}'), "line: not valid JSON: Expecting value"),
    ("nesting past the bound", envelope(nested(wire.MAX_NESTING + 1)),
     f"line: not valid JSON: nested deeper than {wire.MAX_NESTING} levels"),
    ("nesting past the recursion limit", envelope(nested(100_000)),
     "line: not valid JSON: maximum recursion depth exceeded"),
    ("invalid UTF-8", envelope('{"m":"\xe9"}').encode("latin-1"), "line: not valid JSON: 'utf-8' codec can't decode"),
    ("invalid UTF-8 in an unknown key", envelope(extra='"zz":"\xe9",').encode("latin-1"),
     "line: not valid JSON: 'utf-8' codec can't decode"),
    # A UTF-16 file read line by line: its first line ends at the first byte of "\n\0", one byte short.
    ("first line of a UTF-16 file", (envelope() + "\n").encode("utf-16").partition(b"\n")[0] + b"\n",
     "line: starts with a UTF-16 byte order mark but is not UTF-16 text"),
    ("trailing junk", envelope() + "x", "line: not valid JSON: Extra data"),
    ("two documents", envelope() + "{}", "line: not valid JSON: Extra data"),
    ("control character in a string", envelope('{"m":"a\x01b"}'), "line: not valid JSON: Invalid control character"),
    ("NUL after the document", envelope() + "\x00", "line: not valid JSON: Extra data"),
    ("vertical tab is not JSON whitespace", envelope() + "\x0b", "line: not valid JSON: Extra data"),
]


@pytest.mark.parametrize(("name", "line", "check"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_lines_decode_the_same_on_both_decoders(decoder: str, name: str, line: str | bytes,
                                                          check: Check) -> None:
    p = SessionProjector()
    event = p.parse(line)
    assert check(dict(event.payload)), name
    assert p.apply(line).kind == "ignored"
    batch = SessionProjector()
    result = batch.apply_batch([line])
    assert result.counts["ignored"] == 1 and result.counts["malformed"] == 0


@pytest.mark.parametrize(("name", "line", "error"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_lines_give_the_same_error_on_both_decoders(decoder: str, name: str, line: str | bytes,
                                                            error: str) -> None:
    p = SessionProjector()
    with pytest.raises(EventError) as info:
        p.parse(line)
    assert info.value.field == "line"
    assert str(info.value).startswith(error), str(info.value)[:200]
    errors: list[str] = []
    result = p.apply_batch([line], on_malformed=lambda _, exc: errors.append(str(exc)))
    assert result.counts["malformed"] == 1 and errors == [str(info.value)]
    assert len(p) == 0


CASES = [c[1] for c in ACCEPTED] + [c[1] for c in REFUSED]


def _answer(line: str | bytes) -> Any:
    try:
        return ("event", SessionProjector().parse(line).to_wire())
    except EventError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("line", CASES, ids=[c[0] for c in ACCEPTED + REFUSED])
def test_both_decoders_give_byte_identical_answers(line: str | bytes) -> None:
    before = wire.decoder_name()
    try:
        answers = []
        for name in DECODERS:
            wire.use_decoder(name)
            answers.append(json.dumps(_answer(line), default=repr))
    finally:
        wire.use_decoder(before)
    assert answers[0] == answers[1]


def test_a_lifecycle_value_reaches_the_session_the_same_way(decoder: str) -> None:
    line = envelope('{"state":"error","reason":"bad \\u00e9 news"}', type_="session.state.changed")
    for apply in ("apply", "batch"):
        p = SessionProjector()
        if apply == "apply":
            p.apply(line)
        else:
            p.apply_batch([line])
        assert p["t1"].last_error == "bad \u00e9 news"


@pytest.mark.parametrize("text", ["bad \\ud800 news", "bad \\u0000 news"])
def test_text_no_store_can_keep_is_refused_the_same_way_on_every_path(decoder: str, text: str) -> None:
    line = envelope('{"state":"error","reason":"' + text + '"}', type_="session.state.changed")
    p = SessionProjector()
    with pytest.raises(EventError, match=r"payload\.reason: holds a"):
        p.apply(line)
    errors: list[str] = []
    result = p.apply_batch([line], on_malformed=lambda n, e: errors.append(str(e)))
    assert result.counts["malformed"] == 1 and errors[0].startswith("payload.reason: holds a")
    assert "t1" not in p


def test_the_decoder_can_be_forced_and_is_told() -> None:
    before = wire.decoder_name()
    try:
        assert wire.use_decoder("json") == "json" == wire.decoder_name()
        assert wire.use_decoder("auto") == ("msgspec" if wire.fast_available() else "json")
        with pytest.raises(ValueError, match="decoder must be one of"):
            wire.use_decoder("simdjson")
    finally:
        wire.use_decoder(before)


def test_replay_prints_the_same_bytes_with_either_decoder(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    log = tmp_path / "log.jsonl"
    lines = [c[1] if isinstance(c[1], bytes) else c[1].encode("utf-8", "surrogatepass") for c in ACCEPTED + REFUSED]
    log.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")
    outputs = []
    for name in DECODERS:
        env = {**os.environ, "STATEMACHINE_JSON": name}
        done = subprocess.run([sys.executable, "-m", "statemachine", "replay", "--json", str(log)],
                              capture_output=True, env=env, timeout=120)
        assert done.returncode == 1, done.stderr  # some lines are malformed
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["outcomes"]["malformed"] >= len(REFUSED)
