"""The step registry and the control steps' run functions, with no app, database or Redis."""
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from atlas.core import steps, templating
from atlas.core.steps.base import Continue, Finish, StepContext, StepType, Wait, WaitForEvent

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
DATA = {"trigger": {"booked": True, "class_at": "2026-11-27T18:30:00Z"}, "contact": {"id": "c-1", "tier": "vip"},
        "vars": {}, "steps": {}}
CONTROL = ["ab_split", "end", "goal", "if_else", "set_variable", "split", "wait", "wait_for_event", "wait_until"]


def run(key: str, config: dict, data=DATA, node_id="n1"):
    return steps.get(key).run(StepContext(node_id=node_id, config=config, data=data, now=NOW, execution_id="e-1"))


def test_every_control_step_is_registered_with_a_complete_catalogue_entry():
    control = [t for t in steps.all_types() if t.category == "control"]
    assert sorted(t.key for t in control) == CONTROL
    for step_type in control:
        entry = step_type.describe()
        assert entry["name"] and entry["description"] and entry["icon"] and entry["side_effects"] is False
        assert entry["config_schema"]["type"] == "object" and entry["retry_policy"]["max_attempts"] == 1


def test_a_key_registers_once_and_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="already registered"):
        steps.register(steps.get("wait"))
    with pytest.raises(steps.UnknownStepType):
        steps.get("teleport")
    assert isinstance(steps.get("wait"), StepType)


def test_if_else_true_branch():
    result = run("if_else", {"condition": {"field": "trigger.booked", "operator": "equals", "value": True}})
    assert result == Continue(output={"result": True}, branch="true")


def test_if_else_false_branch():
    result = run("if_else", {"condition": {"field": "trigger.booked", "operator": "equals", "value": False}})
    assert result == Continue(output={"result": False}, branch="false")


def test_split_takes_the_first_matching_branch_else_default():
    config = {"branches": [{"name": "regular", "condition": {"field": "contact.tier", "operator": "equals",
                                                             "value": "basic"}},
                           {"name": "vip", "condition": {"field": "contact.tier", "operator": "in",
                                                         "value": ["vip", "gold"]}}]}
    assert run("split", config).branch == "vip"
    assert run("split", config, data={**DATA, "contact": {"tier": "trial"}}).branch == "default"
    assert steps.get("split").exits(config) == ["regular", "vip", "default"]


def test_ab_split_is_deterministic_per_contact_and_follows_the_percentages():
    config = {"variants": [{"name": "A", "percent": 20}, {"name": "B", "percent": 80}]}
    first = run("ab_split", config)
    assert all(run("ab_split", config) == first for _ in range(5))
    counts = Counter(run("ab_split", config, data={**DATA, "contact": {"id": f"c-{i}"}}).branch for i in range(2000))
    assert 300 < counts["A"] < 500 and counts["A"] + counts["B"] == 2000


def test_wait_sleeps_for_its_duration():
    assert run("wait", {"duration": {"amount": 10, "unit": "minutes"}}) == Wait(
        until=NOW + timedelta(minutes=10), output={"waitedUntil": "2026-11-26T09:10:00+00:00"})


def test_wait_until_reads_a_templated_time_and_skips_a_time_already_past():
    result = run("wait_until", {"until": "{{ trigger.class_at }}"})
    assert isinstance(result, Wait) and result.until == datetime(2026, 11, 27, 18, 30, tzinfo=timezone.utc)
    assert run("wait_until", {"until": "2026-01-01"}) == Continue(
        output={"waitedUntil": "2026-01-01T00:00:00+00:00", "alreadyPassed": True})
    with pytest.raises(templating.TemplateError, match="not an ISO 8601 date-time"):
        run("wait_until", {"until": "{{ contact.tier }}"})


def test_wait_for_event_sleeps_until_the_event_or_the_timeout():
    result = run("wait_for_event", {"event": "class_booked", "timeout": {"amount": 2, "unit": "days"}})
    assert result == WaitForEvent(event="class_booked", timeout_at=NOW + timedelta(days=2), match=None,
                                  output={"event": "class_booked", "timeoutAt": "2026-11-28T09:00:00+00:00"})
    assert steps.get("wait_for_event").exits({}) == ["event", "timeout"]


def test_set_variable_renders_its_value_and_sets_it():
    result = run("set_variable", {"name": "greeting", "value": {"text": "Hi {{ contact.tier }}", "n": 2}})
    assert result == Continue(output={"name": "greeting", "value": {"text": "Hi vip", "n": 2}},
                              variables={"greeting": {"text": "Hi vip", "n": 2}})


def test_goal_passes_through_and_end_finishes():
    assert run("goal", {"event": "class_booked"}) == Continue(output={"reached": True, "how": "path"})
    assert run("end", {}) == Finish()
    assert steps.get("end").terminal and not steps.get("goal").terminal
