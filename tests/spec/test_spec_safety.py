"""Hostile spec files: refused with a `SpecError` saying why, before anything is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from statemachine.spec.load import BUILTIN_SPEC, load_spec, parse_spec
from statemachine.spec.loader import MAX_SPEC_BYTES, MAX_SPEC_DEPTH
from statemachine.spec.model import SpecError
from statemachine.verify.mutate import load_mutant

SPECS = Path(__file__).resolve().parents[2] / "specs"
BASE = BUILTIN_SPEC.read_text(encoding="utf-8")


def refused(text: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, "hostile.yaml")
    assert caught.value.file == "hostile.yaml"
    return caught.value


def test_the_builtin_spec_and_the_mutants_still_load() -> None:
    assert load_spec(None).name == "session-lifecycle"
    mutants = sorted((SPECS / "mutants").glob("*.yaml"))
    assert mutants
    for path in mutants:
        load_mutant(path)


@pytest.mark.parametrize(
    "text",
    [
        "!!python/object/apply:os.system ['echo owned']\n",
        "name: !!python/name:os.system\n",
        "x: !!python/object/new:subprocess.Popen [[ls]]\n",
    ],
)
def test_python_tags_are_refused(text: str) -> None:
    error = refused(text)
    assert error.path == "line 1"
    assert "tag" in error.message and "python" in error.message


def test_any_explicit_tag_is_refused_even_a_standard_one() -> None:
    text = BASE.replace("name: session-lifecycle", "name: !!str session-lifecycle")
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "!!str" in s)
    error = refused(text)
    assert error.path == f"line {line}"
    assert "tag:yaml.org,2002:str" in error.message
    assert "tag ! refused" in refused("a: ! b\n").message
    assert "tag !local refused" in refused("a: !local {}\n").message


def test_a_billion_laughs_is_refused_at_its_first_anchor() -> None:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*l{i - 1}"] * 9)
        lines.append(f"l{i}: &l{i} [{refs}]")
    error = refused("\n".join(lines) + "\n")
    assert error.path == "line 1"
    assert "anchor &l0" in error.message


def test_an_alias_alone_is_refused() -> None:
    # An undefined alias is a YAML error anyway; the refusal must come first and say why.
    assert "alias *nowhere refused" in refused("a: *nowhere\n").message


def test_an_anchor_on_a_real_spec_is_refused() -> None:
    text = BASE.replace("on_applied: [advance_updated_at, record_provider]", "on_applied: &x [advance_updated_at]")
    assert "anchor &x" in refused(text).message


def test_a_huge_spec_is_refused_before_parsing() -> None:
    error = refused(BASE + "#" + "x" * MAX_SPEC_BYTES + "\n")
    assert error.path == "$"
    assert str(MAX_SPEC_BYTES) in error.message


def test_size_counts_bytes_not_characters() -> None:
    # Under the limit in characters, over it in UTF-8 bytes.
    text = "# " + "é" * (MAX_SPEC_BYTES // 2 + 10) + "\n"
    assert len(text) < MAX_SPEC_BYTES
    assert "limit" in refused(text).message


def test_a_huge_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_SPEC_BYTES * 4))
    with pytest.raises(SpecError, match="MAX_SPEC_BYTES"):
        load_spec(path)


def test_an_endless_file_is_refused() -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    with pytest.raises(SpecError, match="MAX_SPEC_BYTES"):
        load_spec("/dev/zero")


@pytest.mark.parametrize("text", ["[" * 20_000 + "]" * 20_000, "".join(" " * i + "a:\n" for i in range(200))])
def test_deep_nesting_is_refused(text: str) -> None:
    error = refused(text)
    assert f"deeper than {MAX_SPEC_DEPTH}" in error.message
    assert error.path.startswith("line ")


@pytest.mark.parametrize(("key", "shown"), [("1", "1"), ("null", "None"), ("2024-01-01", "datetime.date")])
def test_keys_must_be_strings(key: str, shown: str) -> None:
    text = BASE.replace("guards:\n  has_active_turn:", f"guards:\n  {key}:\n    rejects_as: x\n  has_active_turn:")
    error = refused(text)
    assert error.path == "guards"
    assert shown in error.message and "must be a string" in error.message


@pytest.mark.parametrize("name", ["os.system", "__import__('os')", "eval"])
def test_names_are_never_evaluated(name: str) -> None:
    # Guard names are looked up in a fixed table; anything else is an unknown name, not code.
    text = BASE.replace("guards: [has_active_turn]}", f"guards: [{name!r}]}}", 1)
    assert text != BASE
    error = refused(text)
    assert error.path.startswith("transitions[0].guards")


def test_invalid_utf8_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(path)


def test_a_file_that_is_not_a_spec_is_named_without_quoting_all_of_it(tmp_path: Path) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("a line of plain text\n" * 2000, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(text_file)
    assert info.value.path == "$" and len(str(info.value)) < 500
