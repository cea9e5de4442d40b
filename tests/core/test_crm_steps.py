"""CRM step types in a bare interpreter: catalogue entries, config schemas, and what each asks the effects port."""
from datetime import datetime, timedelta, timezone

import pytest
from jsonschema import Draft202012Validator

from atlas.core import steps, templating
from atlas.core.steps.base import Continue, StepContext, StepError

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
DATA = {"trigger": {"class": "HIIT", "source": "instagram"}, "contact": {"id": "c-1", "first_name": "Sarah"},
        "vars": {"level": "gold"}, "steps": {}}
CRM = ["add_tag", "assign_owner", "change_lead_status", "create_task", "remove_tag", "update_contact_field"]


def run(key: str, config: dict):
    """Run the step with a port that records (kind, params) and answers {"ok": True}."""
    calls = []

    def port(kind, params):
        calls.append((kind, params))
        return {"ok": True, **params}

    ctx = StepContext(node_id="n1", config=config, data=DATA, now=NOW, execution_id="e-1", idempotency_key="e-1:n1:1",
                      effects=port)
    return steps.get(key).run(ctx), calls


def valid(key: str, config: dict) -> bool:
    return not list(Draft202012Validator(steps.get(key).config_schema).iter_errors(config))


def test_every_crm_step_is_registered_with_side_effects_and_a_retry_policy():
    crm = [t for t in steps.all_types() if t.category == "crm"]
    assert sorted(t.key for t in crm) == CRM
    for step_type in crm:
        entry = step_type.describe()
        assert entry["side_effects"] is True and entry["retry_policy"]["max_attempts"] > 1
        assert entry["config_schema"]["type"] == "object" and entry["output_schema"]["type"] == "object"
        Draft202012Validator.check_schema(entry["config_schema"])


def test_add_and_remove_tag_render_the_tag():
    result, calls = run("add_tag", {"tag": "lead-{{ trigger.source }}"})
    assert calls == [("add_tag", {"tag": "lead-instagram", "idempotency_key": "e-1:n1:1"})]
    assert isinstance(result, Continue) and result.output["tag"] == "lead-instagram"
    _, calls = run("remove_tag", {"tag": "  trial  "})
    assert calls[0][0] == "remove_tag" and calls[0][1]["tag"] == "trial"


def test_a_tag_that_renders_blank_or_too_long_fails_permanently():
    with pytest.raises(StepError) as blank:
        run("add_tag", {"tag": "{{ trigger.missing | default('') }}"})
    assert blank.value.code == "EMPTY_VALUE" and not blank.value.retryable
    with pytest.raises(StepError, match="at most 64"):
        run("add_tag", {"tag": "{{ 'x' * 65 }}"})
    with pytest.raises(templating.TemplateError, match="trigger.nope"):
        run("add_tag", {"tag": "{{ trigger.nope }}"})


def test_create_task_renders_and_computes_the_due_time():
    _, calls = run("create_task", {"title": "Call {{ contact.first_name }}", "description": "Liked {{ trigger.class }}",
                                   "dueIn": {"amount": 2, "unit": "hours"}})
    kind, params = calls[0]
    assert kind == "create_task" and params["title"] == "Call Sarah" and params["description"] == "Liked HIIT"
    assert params["due_at"] == (NOW + timedelta(hours=2)).isoformat() and params["assignee"] == "owner"
    _, calls = run("create_task", {"title": "x", "assignee": "user-9"})
    assert calls[0][1]["due_at"] is None and calls[0][1]["assignee"] == "user-9"


def test_config_schemas_refuse_bad_configs():
    assert valid("create_task", {"title": "Call", "dueIn": {"amount": 1, "unit": "days"}, "assignee": "owner"})
    assert not valid("create_task", {"title": "Call", "dueIn": {"amount": 1, "unit": "fortnights"}})
    assert not valid("create_task", {"description": "no title"})
    assert valid("update_contact_field", {"field": "custom.goal", "value": "lose 5kg"})
    assert valid("update_contact_field", {"field": "birthday", "value": None})
    assert not valid("update_contact_field", {"field": "owner_id", "value": "x"})
    assert not valid("update_contact_field", {"field": "custom.", "value": "x"})
    assert valid("change_lead_status", {"status": "former_member"})
    assert not valid("change_lead_status", {"status": "vip"})
    assert valid("assign_owner", {"userId": "round_robin"}) and not valid("assign_owner", {})
    assert not valid("add_tag", {"tag": ""}) and not valid("add_tag", {"tag": "x", "extra": 1})


def test_update_contact_field_renders_and_checks_values():
    _, calls = run("update_contact_field", {"field": "custom.level", "value": "{{ vars.level }}"})
    assert calls[0][1] == {"field": "custom.level", "value": "gold", "idempotency_key": "e-1:n1:1"}
    _, calls = run("update_contact_field", {"field": "birthday", "value": "1990-04-21T00:00:00Z"})
    assert calls[0][1]["value"] == "1990-04-21"
    for field, value in [("birthday", "21/04/1990"), ("timezone", "Mars/Olympus"), ("email", "nope")]:
        with pytest.raises(StepError) as bad:
            run("update_contact_field", {"field": field, "value": value})
        assert bad.value.code == "INVALID_FIELD_VALUE"
    _, calls = run("update_contact_field", {"field": "lead_source", "value": 3})
    assert calls[0][1]["value"] == 3


def test_status_and_owner_pass_their_config():
    _, calls = run("change_lead_status", {"status": "trial"})
    assert calls[0][:1] == ("change_lead_status",) and calls[0][1]["status"] == "trial"
    _, calls = run("assign_owner", {"userId": "round_robin"})
    assert calls[0][1]["user_id"] == "round_robin"


def test_without_an_effects_port_a_crm_step_fails_clearly():
    ctx = StepContext(node_id="n1", config={"tag": "x"}, data=DATA, now=NOW)
    with pytest.raises(StepError) as failed:
        steps.get("add_tag").run(ctx)
    assert failed.value.code == "NO_EFFECTS"
