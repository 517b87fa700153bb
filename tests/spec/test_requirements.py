"""The requirements file: its loader refuses what it cannot use, and its evaluator means what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import markdown_tables

from statemachine import Outcome, OutcomeKind, Session, SessionProjector, builtin_spec, load_spec
from statemachine.core.session import FIELDS
from statemachine.spec.requirements import (
    BUILTIN_REQUIREMENTS,
    RequirementsError,
    builtin_requirements,
    load_requirements,
    parse_requirements,
)
from statemachine.verify import explore as explore_module
from statemachine.verify import induction as induction_module
from statemachine.verify.explore import SeenView, explore
from statemachine.verify.induction import induction
from statemachine.verify.mutate import PROJECTOR_GUARANTEES, load_mutant

ROOT = Path(__file__).resolve().parents[2]
THREAD = "t"


def _event(type_: str, turn: str | None = None, at: int = 1, event_id: str | None = None,
           provider: str = "codex", **payload: Any) -> dict[str, Any]:
    wire: dict[str, Any] = {"eventId": event_id or f"{type_}-{turn}-{at}", "type": type_, "provider": provider,
                            "threadId": THREAD, "createdAt": f"2026-01-01T00:00:{at:02d}Z", "payload": payload}
    if turn is not None:
        wire["turnId"] = turn
    return wire


def _one(body: str) -> str:
    return "requirements_version: 1\nrequirements:\n" + body


def _parse(body: str) -> Any:
    return parse_requirements(_one(body), builtin_spec(), "test.yaml")


# -- the built-in file ---------------------------------------------------------------------------


def test_builtin_requirements_cover_the_three_forms_and_the_core_invariant() -> None:
    reqs = builtin_requirements(builtin_spec())
    assert len(reqs.of_form("state")) >= 5
    assert len(reqs.of_form("contract")) >= 30
    assert {r.name for r in reqs.of_form("temporal")} == {
        "quiet_active_turn_settles", "exited_stays_stopped", "no_quiet_cycle_holds_turn"}
    core = reqs.get("no_turn_in_inactive_status")
    # Named literally, not read from the spec's holds_turn flags.
    assert core.no_turn_statuses == ("idle", "ready", "interrupted", "stopped", "error")
    assert all(r.description and r.rule for r in reqs.items)
    assert reqs.source == str(BUILTIN_REQUIREMENTS)


def test_a_real_session_is_judged_by_the_state_requirements() -> None:
    reqs = builtin_requirements(builtin_spec())
    projector = SessionProjector()
    projector.apply(_event("turn.started", "T1"))
    session = projector[THREAD]
    assert reqs.state_violations(session, projector.finished_turns(THREAD)) == []
    # The seed bug's state, built by hand: ready with a turn, and a turn that is both active and finished.
    assert reqs.state_violations(session._replace(status="ready"), ()) == ["no_turn_in_inactive_status"]
    assert reqs.state_violations(session, ("T1",)) == ["active_turn_never_finished"]
    assert reqs.state_violations(session._replace(status="error", active_turn_id=None), ()) == ["error_has_message"]


def _outcome_of(*events: dict[str, Any]) -> tuple[Outcome, tuple[str, ...], tuple[str, ...]]:
    projector = SessionProjector()
    for e in events[:-1]:
        projector.apply(e)
    before = projector.finished_turns(THREAD) if THREAD in projector else ()
    outcome = projector.apply(events[-1])
    return outcome, before, projector.finished_turns(THREAD)


def test_contracts_hold_on_real_steps_and_name_the_broken_one_on_a_falsified_outcome() -> None:
    reqs = builtin_requirements(builtin_spec())
    outcome, before, after = _outcome_of(_event("turn.started", "T1"), _event("turn.completed", "T2", at=2))
    assert outcome.kind is OutcomeKind.REJECTED
    assert reqs.step_violations(outcome, before, after) == []
    # The same step, reported the way a machine without the turn guard would have it.
    wrong = outcome._replace(kind=OutcomeKind.APPLIED, reason=None, transition=14,
                             after=outcome.after._replace(status="ready", active_turn_id=None))
    broken = reqs.step_violations(wrong, before, after)
    assert "foreign_completion_rejected" in broken
    assert "cleared_turn_is_remembered" in broken  # T1 left without being remembered


def test_updated_at_contracts_compare_instants_not_strings() -> None:
    reqs = builtin_requirements(builtin_spec())
    first = _event("session.started", at=5)
    later_written_in_another_offset = {**_event("thread.started", at=1), "createdAt": "2026-01-01T02:00:01+02:00"}
    outcome, before, after = _outcome_of(first, later_written_in_another_offset)
    assert outcome.kind is OutcomeKind.APPLIED
    # 02:00:01+02:00 is 00:00:01Z, earlier than 00:00:05Z: updatedAt stays.
    assert outcome.after.updated_at == first["createdAt"]
    assert reqs.step_violations(outcome, before, after) == []
    moved_back = outcome._replace(after=outcome.after._replace(updated_at="2026-01-01T00:00:01Z"))
    assert set(reqs.step_violations(moved_back, before, after)) == {
        "updated_at_never_decreases", "applied_advances_updated_at"}


def test_redelivery_contracts_apply_only_to_redeliveries() -> None:
    reqs = builtin_requirements(builtin_spec())
    projector = SessionProjector()
    event = _event("turn.started", "T1")
    fresh = projector.apply(event)
    again = projector.apply(event)
    finished = projector.finished_turns(THREAD)
    assert again.kind is OutcomeKind.DUPLICATE
    assert reqs.step_violations(again, finished, finished, redelivered=True) == []
    assert "fresh_event_is_not_duplicate" in reqs.step_violations(again, finished, finished, redelivered=False)
    assert "redelivery_is_duplicate" in reqs.step_violations(fresh, (), finished, redelivered=True)


def test_a_spec_flag_that_weakens_the_core_requirement_is_a_declaration_violation() -> None:
    reqs = builtin_requirements(load_mutant(ROOT / "specs" / "mutants" / "h_stopped_flag_flipped.yaml")[0])
    bad = reqs.declaration_violations()
    assert list(bad) == ["no_turn_in_inactive_status"]
    assert "stopped" in bad["no_turn_in_inactive_status"]
    assert builtin_requirements(builtin_spec()).declaration_violations() == {}


# -- the loader refuses what it cannot use -------------------------------------------------------


@pytest.mark.parametrize(("body", "where", "message"), [
    ("  - {name: x, form: state, description: d, holds: {eq: [session.status, paused]}}\n",
     "requirements[0].holds.eq[1]", "status 'paused' is not in the spec"),
    ("  - {name: x, form: contract, description: d, when: {eq: [event.trigger, 'turn.paused']},"
     " then: {is_null: after.activeTurnId}}\n", "requirements[0].when.eq[1]", "trigger 'turn.paused'"),
    ("  - {name: x, form: contract, description: d, when: {eq: [event.type, turn.paused]},"
     " then: {is_null: after.activeTurnId}}\n", "requirements[0].when.eq[1]", "neither in the spec"),
    ("  - {name: x, form: contract, description: d, then: {eq: [outcome.reason, too_late]}}\n",
     "requirements[0].then.eq[1]", "reason 'too_late'"),
    ("  - {name: x, form: contract, description: d, then: {is_null: event.payload.colour}}\n",
     "requirements[0].then.is_null", "payload field 'colour'"),
    ("  - {name: x, form: contract, description: d, then: {eq: [event.payload.state, paused]}}\n",
     "requirements[0].then.eq[1]", "'paused' is not a value the spec allows"),
    ("  - {name: x, form: contract, description: d, when: {eq: [outcome.kind, applied]},"
     " then: {is_null: after.activeTurnId}}\n", "requirements[0].when.eq[0]", "'outcome' cannot be read here"),
    ("  - {name: x, form: state, description: d, holds: {is_null: after.activeTurnId}}\n",
     "requirements[0].holds.is_null", "'after' cannot be read here"),
    ("  - {name: x, form: state, description: d, holds: {contains: [session.status, session.activeTurnId]}}\n",
     "requirements[0].holds.contains[0]", "is not a set"),
    ("  - {name: x, form: state, description: d, no_turn_statuses: [paused], holds: {is_null: session.lastError}}\n",
     "requirements[0].no_turn_statuses[0]", "status 'paused'"),
    ("  - {name: x, form: temporal, description: d, ltl: {always: {status_in: [paused]}}}\n",
     "requirements[0]", "needs stale_expiry"),
    ("  - {name: x, form: state, description: d, holds: {is_null: session.lastError}}\n"
     "  - {name: x, form: state, description: d, holds: {is_null: session.lastError}}\n",
     "requirements[1].name", "duplicate requirement"),
    ("  - {name: x, form: contract, description: d, when: {eq: [event.type, thread.delete]},"
     " must_apply_from: [ready, paused]}\n", "requirements[0].must_apply_from[1]", "status 'paused'"),
    ("  - {name: x, form: contract, description: d, then: {contains: [before.seen, event.eventId]}}\n",
     "requirements[0].then.contains[0]", "only after.seen can be read"),
    ("  - {name: x, form: contract, description: d, then: {empty: after.lastError}}\n",
     "requirements[0].then.empty", "is not a set"),
    ("  - {name: x, form: state, description: d, holds: {empty: after.finished}}\n",
     "requirements[0].holds.empty", "'after' cannot be read here"),
])
def test_a_requirement_naming_what_the_spec_lacks_is_an_error_naming_where(body: str, where: str, message: str) -> None:
    with pytest.raises(RequirementsError) as caught:
        _parse(body)
    assert caught.value.path == where, caught.value
    assert message in caught.value.message


def test_a_temporal_requirement_is_checked_against_the_spec_too() -> None:
    text = ("requirements_version: 1\nstale_expiry: {trigger: 'turn.completed[paused]'}\nrequirements:\n"
            "  - {name: x, form: temporal, description: d, ltl: {always: turn_active}}\n")
    with pytest.raises(RequirementsError, match=r"stale_expiry.trigger: trigger 'turn.completed\[paused\]'"):
        parse_requirements(text, builtin_spec())


@pytest.mark.parametrize(("text", "where"), [
    ("requirements_version: 1\nrequirements: []\n", "requirements"),
    ("requirements_version: 2\nrequirements: [{name: x, form: state, description: d, holds: {}}]\n",
     "requirements_version"),
    (_one("  - {name: x, form: state, description: d, holds: {eval: '__import__(\"os\")'}}\n"), "requirements[0]"),
    (_one("  - {name: x, form: state, description: d, holds: {is_null: session.x.y.z}}\n"), "requirements[0]"),
    (_one("  - {name: x, form: contract, description: d, holds: {is_null: session.status}}\n"), "requirements[0]"),
    # An outcome says what acceptance means: without must_apply_from it says nothing.
    (_one("  - {name: x, form: contract, description: d, outcome: forgotten, then: {is_null: after.status}}\n"),
     "requirements[0]"),
    (_one("  - {name: x, form: contract, description: d, must_apply_from: [ready], outcome: ignored}\n"),
     "requirements[0]"),
])
def test_schema_errors_name_the_place(text: str, where: str) -> None:
    with pytest.raises(RequirementsError) as caught:
        parse_requirements(text, builtin_spec())
    assert caught.value.path.startswith(where), caught.value


@pytest.mark.parametrize(("text", "message"), [
    (_one("  - &a {name: x, form: state, description: d, holds: {is_null: session.lastError}}\n"), "anchor"),
    (_one("  - !!python/object:os.system {name: x}\n"), "tag"),
    ("requirements: " + "[" * 40 + "]" * 40 + "\n", "nested deeper"),
    ("requirements: [\n", "not valid YAML"),
    ("1: x\n", "must be a string"),
])
def test_the_spec_loaders_hardened_yaml_rules_apply(text: str, message: str) -> None:
    with pytest.raises(RequirementsError, match=message):
        parse_requirements(text, builtin_spec())


def test_size_limit_and_unreadable_files(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    huge.write_text("#" * (300 * 1024))
    with pytest.raises(RequirementsError, match="MAX_SPEC_BYTES"):
        load_requirements(builtin_spec(), huge)
    with pytest.raises(RequirementsError, match="cannot read"):
        load_requirements(builtin_spec(), tmp_path / "missing.yaml")


def test_the_builtin_requirements_name_only_what_the_builtin_spec_has_so_another_spec_may_fail_to_load(
    tmp_path: Path,
) -> None:
    # A spec without `interrupted` cannot be judged by requirements that name it: an error, not a pass.
    text = (ROOT / "specs" / "session_lifecycle.yaml").read_text()
    spec_path = tmp_path / "renamed.yaml"
    spec_path.write_text(text.replace("interrupted", "paused"))
    spec = load_spec(spec_path)
    with pytest.raises(RequirementsError, match=r"'(turn.completed\[)?interrupted\]?' is not in the spec .*renamed"):
        builtin_requirements(spec)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "statemachine", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_verify_refuses_unusable_requirements_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(_one("  - {name: x, form: state, description: d, holds: {eq: [session.status, paused]}}\n"))
    for args in (("--requirements", str(bad)), ("--requirements", str(tmp_path / "missing.yaml"))):
        proc = _cli("verify", "--skip", "spin", *args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.startswith("requirements error: ")
        assert "Traceback" not in proc.stderr


def test_verify_takes_a_users_own_requirements(tmp_path: Path) -> None:
    # A stricter house rule the built-in lifecycle does not meet: running sessions never carry an error.
    own = tmp_path / "own.yaml"
    own.write_text(_one(
        "  - name: running_has_no_error\n    form: state\n    description: A running session has no lastError.\n"
        "    holds: {implies: [{eq: [session.status, running]}, {is_null: session.lastError}]}\n"))
    proc = _cli("verify", "--skip", "spin", "--requirements", str(own))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "VIOLATED    running_has_no_error" in proc.stdout
    assert f"requirements: {own} (1: 1 state, 0 contract, 0 temporal)" in proc.stdout


# -- requirements a spec cannot break, shown failing on broken projectors -------------------------


class _ForgetsEventIds(SessionProjector):
    """Broken on purpose: forgets every eventId after processing it (no de-duplication)."""

    def apply(self, event: Any) -> Outcome:
        outcome = super().apply(event)
        thread = outcome.event.thread_id
        if thread in self:  # a forgotten thread is gone already
            self.seed(self[thread], finished_turns=self.finished_turns(thread))
        return outcome


class _CallsEverythingDuplicate(SessionProjector):
    def apply(self, event: Any) -> Outcome:
        return super().apply(event)._replace(kind=OutcomeKind.DUPLICATE, reason=None)


class _ReasonOnEveryOutcome(SessionProjector):
    def apply(self, event: Any) -> Outcome:
        return super().apply(event)._replace(reason="because")


class _CopiesCreatedAt(SessionProjector):
    """T3 Code's bug 6: updatedAt is the event's createdAt, even when that is earlier."""

    def apply(self, event: Any) -> Outcome:
        outcome = super().apply(event)
        if outcome.kind is not OutcomeKind.APPLIED:
            return outcome
        return outcome._replace(after=outcome.after._replace(updated_at=outcome.event.created_at))


class _RejectionsLeaveTraces(SessionProjector):
    def apply(self, event: Any) -> Outcome:
        outcome = super().apply(event)
        if outcome.kind is not OutcomeKind.REJECTED:
            return outcome
        return outcome._replace(after=outcome.after._replace(last_error="rejected"))


class _LosesProvider(SessionProjector):
    def apply(self, event: Any) -> Outcome:
        outcome = super().apply(event)
        if outcome.kind is not OutcomeKind.APPLIED:
            return outcome
        return outcome._replace(after=outcome.after._replace(provider_name="someone else"))


class _InventsCarriedFields(SessionProjector):
    """Broken on purpose: writes runtimeMode, which the lifecycle only carries."""

    def apply(self, event: Any) -> Outcome:
        outcome = super().apply(event)
        if outcome.kind is not OutcomeKind.APPLIED:
            return outcome
        return outcome._replace(after=outcome.after._replace(runtime_mode="full-access"))


class _DropsCarriedFields(SessionProjector):
    def apply(self, event: Any) -> Outcome:
        outcome = super().apply(event)
        if outcome.kind is not OutcomeKind.APPLIED:
            return outcome
        return outcome._replace(after=outcome.after._replace(provider_instance_id=None))


class _KeepsMemoriesWhenForgetting(SessionProjector):
    """Broken on purpose: a forgotten thread comes back with what it remembered."""

    def apply(self, event: Any) -> Outcome:
        parsed = self.parse(event)
        finished = self.finished_turns(parsed.thread_id)
        outcome = super().apply(parsed)
        if outcome.kind is OutcomeKind.FORGOTTEN:
            self.seed(outcome.after, finished_turns=finished, seen_event_ids=[parsed.event_id])
        return outcome


class _NewThreadsFromSomeoneElse(SessionProjector):
    """Broken on purpose: a new thread starts with another provider than its first event's."""

    def apply(self, event: Any) -> Outcome:
        parsed = self.parse(event)
        if parsed.thread_id not in self:
            self.seed(Session(parsed.thread_id, self.spec.initial, "someone-else"))
        return super().apply(parsed)


BROKEN_PROJECTORS = [
    (_InventsCarriedFields, "carried_fields_untouched"),
    (_KeepsMemoriesWhenForgetting, "forgetting_drops_memories"),
    (_NewThreadsFromSomeoneElse, "new_thread_starts_idle"),
    (_ForgetsEventIds, "redelivery_is_duplicate"),
    (_CallsEverythingDuplicate, "fresh_event_is_not_duplicate"),
    (_CallsEverythingDuplicate, "unapplied_changes_nothing"),
    (_ReasonOnEveryOutcome, "only_rejections_have_reasons"),
    (_CopiesCreatedAt, "updated_at_never_decreases"),
    (_RejectionsLeaveTraces, "unapplied_changes_nothing"),
    (_LosesProvider, "applied_records_provider"),
]


def test_every_requirement_no_spec_can_break_has_a_broken_projector_that_breaks_it() -> None:
    # The requirements table (docs/verification.md) points here for these.
    assert {requirement for _, requirement in BROKEN_PROJECTORS} >= PROJECTOR_GUARANTEES


@pytest.mark.parametrize(("projector", "requirement"), BROKEN_PROJECTORS,
                         ids=lambda p: p if isinstance(p, str) else p.__name__)
def test_projector_guarantees_fail_in_explore_on_a_projector_that_breaks_them(
    monkeypatch: pytest.MonkeyPatch, projector: type[SessionProjector], requirement: str
) -> None:
    # No spec can break these (the projector keeps them for every spec); the checker must still
    # see a projector that does not.
    monkeypatch.setattr(explore_module, "SessionProjector", projector)
    spec = builtin_spec()
    result = explore(spec, builtin_requirements(spec))
    assert not result.ok
    assert requirement in result.violated, result.violated
    assert requirement in result.counterexamples


@pytest.mark.parametrize(("name", "kind", "requirement"), [
    ("inactive_status_holds_no_turn", "no_turn_unless_holds_turn", "no_turn_in_inactive_status"),
    ("active_turn_not_finished", "active_turn_not_remembered", "active_turn_never_finished"),
])
def test_a_spec_that_only_deletes_an_invariant_fails_its_declarations(name: str, kind: str, requirement: str) -> None:
    from statemachine.spec.load import BUILTIN_SPEC, parse_spec
    from statemachine.verify.declarations import declarations

    text = BUILTIN_SPEC.read_text(encoding="utf-8")
    start = text.index(f"  - name: {name}\n")
    end = text.index("\n  - name:", start + 1) + 1 if "\n  - name:" in text[start + 1:] else len(text)
    weakened = parse_spec(text[:start] + text[end:])
    assert all(inv.kind != kind for inv in weakened.invariants)
    result = declarations(weakened, builtin_requirements(weakened))
    assert not result.ok and result.violated == (requirement,)
    assert declarations(builtin_spec(), builtin_requirements(builtin_spec())).ok


# -- acceptance, a thread's first event, its memories ------------------------------------------


def test_must_apply_from_means_taken_from_those_statuses_with_its_outcome_and_then() -> None:
    reqs = _parse(
        "  - name: x\n    form: contract\n    description: d\n    when: {eq: [event.type, thread.delete]}\n"
        "    must_apply_from: [ready]\n    outcome: forgotten\n    then: {eq: [after.status, idle]}\n")
    (x,) = reqs.items
    assert x.must_apply_from == ("ready",) and x.outcome == "forgotten"
    outcome, before, after = _outcome_of(_event("session.started"), _event("thread.delete", at=2))
    assert outcome.kind is OutcomeKind.FORGOTTEN and outcome.before.status == "ready"
    assert reqs.step_violations(outcome, before, after) == []
    assert reqs.step_violations(outcome._replace(kind=OutcomeKind.APPLIED), before, after) == ["x"]
    assert reqs.step_violations(outcome._replace(after=outcome.before), before, after) == ["x"]
    # From a status it does not list, the requirement says nothing.
    stopped = outcome._replace(kind=OutcomeKind.REJECTED, before=outcome.before._replace(status="stopped"))
    assert reqs.step_violations(stopped, before, after) == []


def test_a_first_delivery_contract_judges_only_the_event_that_creates_the_thread() -> None:
    reqs = _parse("  - {name: x, form: contract, applies_to: first, description: d, "
                  "then: {eq: [before.status, idle]}}\n")
    outcome, before, after = _outcome_of(_event("session.started"), _event("session.exited", at=2))
    assert outcome.before.status == "ready"
    assert reqs.step_violations(outcome, before, after, first=True) == ["x"]
    assert reqs.step_violations(outcome, before, after) == []


def test_a_contract_reading_what_the_thread_remembers_is_left_out_when_the_caller_cannot_say() -> None:
    reqs = builtin_requirements(builtin_spec())
    projector = SessionProjector()
    projector.apply(_event("turn.started", "T1"))
    before = projector.finished_turns(THREAD)
    outcome = projector.apply(_event("thread.delete", at=2))
    assert outcome.kind is OutcomeKind.FORGOTTEN
    seen = SeenView(projector, THREAD)
    assert reqs.step_violations(outcome, before, (), seen_after=seen) == []
    # A thread that kept its memories: named when the caller says what it remembers, and only then.
    projector.seed(outcome.after, finished_turns=before, seen_event_ids=[outcome.event.event_id])
    assert "forgetting_drops_memories" in reqs.step_violations(outcome, before, before, seen_after=seen)
    assert "forgetting_drops_memories" not in reqs.step_violations(outcome, before, before)


def test_every_status_a_trigger_is_taken_from_is_one_a_requirement_says_it_must_be_taken_from() -> None:
    # The built-in spec's sources, each demanded by an acceptance requirement: a spec that drops
    # one fails explore wherever the status is reachable with the requirement's `when`.
    spec = builtin_spec()
    reqs = builtin_requirements(spec)
    demanded = {(trigger, status) for r in reqs.of_form("contract") for trigger in spec.triggers
                if r.applies_to_trigger(trigger.partition("[")[0], trigger) for status in r.must_apply_from}
    taken = {(t.trigger, s) for t in spec.transitions for s in t.sources}
    assert taken - demanded == set()


def test_a_spec_that_stops_recording_the_provider_fails_the_induction_too() -> None:
    # explore shows it too (tests/verify/test_mutants.py): the induction's abstract states carry a provider.
    spec, _ = load_mutant(ROOT / "specs" / "mutants" / "zza_provider_not_recorded.yaml")
    result = induction(spec, builtin_requirements(spec))
    assert not result.ok and result.violated == ("applied_records_provider",)
    assert induction(builtin_spec(), builtin_requirements(builtin_spec())).ok


def test_a_projector_that_drops_a_carried_field_fails_the_induction(monkeypatch: pytest.MonkeyPatch) -> None:
    # No event sets the carried fields, so explore only meets them null; the induction's states
    # carry them, and a step that drops one shows there.
    monkeypatch.setattr(induction_module, "SessionProjector", _DropsCarriedFields)
    spec = builtin_spec()
    result = induction(spec, builtin_requirements(spec))
    assert not result.ok and "carried_fields_untouched" in result.violated


# -- the semantics page names the requirement of every rule ---------------------------------------

SEMANTICS = ROOT / "docs" / "semantics.md"
_LISTED = re.compile(r"^\*\*Requirements:\*\* ((?:`[a-z0-9_]+`(?:, | and )?)+)", re.MULTILINE)


def test_every_row_and_section_of_the_semantics_page_names_its_requirements_or_says_why_not() -> None:
    text = SEMANTICS.read_text(encoding="utf-8")
    names = set(builtin_requirements(builtin_spec()).names)
    tables = [t for t in markdown_tables(text) if t and "requirements" in t[0]]
    assert len(tables) == 4  # outcomes, rejection reasons, the turn-id guard, commands
    for table in tables:
        for row in table:
            cell = row["requirements"]
            if cell.startswith("not a requirement: "):
                continue
            listed = [n.strip(" `") for n in cell.split(",")]
            assert listed and set(listed) <= names, (row, set(listed) - names)
    listed_lines = _LISTED.findall(text)
    assert len(listed_lines) == text.count("**Requirements:**")  # each line starts with names
    for line in listed_lines:
        assert set(re.findall(r"`([a-z0-9_]+)`", line)) <= names, line
    # Every section under "Event by event" has its line (the turn-id guard: its table's column).
    events = text.split("## Event by event")[1].split("\n## ")[0]
    sections = events.split("\n### ")[1:]
    assert len(sections) == 10 and all("**Requirements:**" in s or "| requirements |" in s for s in sections)
    # And every requirement is the statement of something this page says.
    assert {n for n in names if f"`{n}`" not in text} == set()


def test_every_session_field_but_the_thread_id_is_a_path_requirements_may_read() -> None:
    # The paths come from the one field table: a field added to it is readable here, by its wire name.
    for f in FIELDS:
        body = f"  - {{name: x, form: state, description: d, holds: {{is_null: session.{f.wire}}}}}\n"
        if f.attr == "thread_id":
            with pytest.raises(RequirementsError, match=r"unknown path 'session\.threadId'"):
                _parse(body)
            continue
        reqs = _parse(body)
        assert reqs.state_violations(Session("t", "ready")._replace(**{f.attr: "v"}), ()) == ["x"], f.wire
        if f.attr != "status" and getattr(Session("t", "ready"), f.attr) is None:
            assert reqs.state_violations(Session("t", "ready"), ()) == [], f.wire
