"""The verify report's words: every number says what it counts."""

from __future__ import annotations

import re
import shutil

import pytest

from statemachine.spec.load import builtin_spec
from statemachine.spec.requirements import load_requirements
from statemachine.verify.promela import requirement_coverage
from statemachine.verify.spin import check_spin
from statemachine.verify.universe import TIMES, EventTemplate


def test_an_event_label_gives_its_createdat_whole_and_its_provider() -> None:
    label = EventTemplate("turn.started", "turn-1", TIMES[0], ()).label()
    assert label == f"turn.started() turn=turn-1 createdAt={TIMES[0]} from=codex"
    assert "at=0" not in label


@pytest.mark.skipif(shutil.which("spin") is None or (shutil.which("gcc") or shutil.which("cc")) is None,
                    reason="needs spin and a C compiler")
def test_the_spin_line_counts_requirements_not_fields() -> None:
    spec = builtin_spec()
    requirements = load_requirements(spec, None)
    modelled, left_out = requirement_coverage(spec, requirements)
    result = check_spin(spec, requirements)
    assert result.ok, result.detail
    assert "read fields" not in result.detail
    counted = re.search(r"(\d+) requirements modelled, (\d+) not modelled because they read what the model "
                        r"leaves out", result.detail)
    assert counted is not None, result.detail
    assert (int(counted.group(1)), int(counted.group(2))) == (len(modelled), len(left_out))
    assert len(modelled) + len(left_out) == len(requirements.items)
