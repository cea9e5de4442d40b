"""The messaging steps in a bare interpreter: what they render, what they ask for, how they read the answer."""
from datetime import datetime, timedelta, timezone

import pytest

from atlas.core import engine, steps, validation
from atlas.core.definition import WorkflowDefinition
from atlas.core.steps.base import NETWORK_RETRY, Continue, Defer, StepContext, StepError
from atlas.core.templating import TemplateError

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
SARAH = {"id": "c-1", "first_name": "Sarah", "email": "sarah@example.com", "phone": "+15550100"}
DATA = {"trigger": {"class": "Spin"}, "contact": SARAH, "vars": {}, "steps": {}}
SENT = {"messageId": "m-1", "status": "sent", "to": "sarah@example.com", "provider": "smtp", "providerId": "<x@y>"}


class Port:
    """Records what the step asks for and answers with a fixed result."""

    def __init__(self, answer: dict | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.answer = answer or SENT

    def __call__(self, kind, params):
        self.calls.append((kind, params))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def run(key: str, config: dict, port: Port, data=DATA):
    ctx = StepContext(node_id="n1", config=config, data=data, now=NOW, execution_id="e-1",
                      idempotency_key="e-1:n1:1", effects=port)
    return steps.get(key).run(ctx)


def test_the_messaging_steps_are_registered_with_side_effects_and_retries():
    for key in ("send_email", "send_sms", "notify_staff"):
        entry = steps.get(key).describe()
        assert entry["category"] == "communication" and entry["side_effects"] is True
    assert steps.get("send_email").retry == NETWORK_RETRY and steps.get("send_sms").retry == NETWORK_RETRY
    assert steps.get("notify_staff").retry.max_attempts == 1


def test_send_email_renders_inline_text_and_defaults_to_the_contacts_address():
    port = Port()
    result = run("send_email", {"subject": "Hi {{ contact.first_name }}", "body": "See you at {{ trigger.class }}",
                                "fromName": "Iron {{ 'Temple' }}"}, port)
    kind, params = port.calls[0]
    assert kind == "send_email"
    assert params["to"] == "sarah@example.com" and params["subject"] == "Hi Sarah"
    assert params["body"] == "See you at Spin" and params["fromName"] == "Iron Temple"
    assert params["idempotency_key"] == "e-1:n1:1" and params["nodeId"] == "n1"
    assert result == Continue(output=SENT)


def test_a_configured_recipient_is_rendered():
    port = Port()
    run("send_sms", {"body": "hello", "to": "{{ trigger.class }}-desk"}, port)
    assert port.calls[0][1]["to"] == "Spin-desk"


def test_a_template_id_is_passed_through_with_the_runs_data():
    port = Port()
    run("send_sms", {"templateId": "t-1"}, port)
    params = port.calls[0][1]
    assert params["templateId"] == "t-1" and params["data"]["contact"]["first_name"] == "Sarah"
    assert params["to"] == "+15550100" and "body" not in params


def test_no_address_on_the_contact_is_passed_as_none_for_the_handler_to_suppress():
    port = Port()
    run("send_sms", {"body": "hi"}, port, data={**DATA, "contact": {"id": "c-2"}})
    assert port.calls[0][1]["to"] is None


def test_a_deferral_answer_becomes_defer():
    until = NOW + timedelta(hours=11)
    port = Port({"deferUntil": until.isoformat(), "reason": "Quiet hours", "rule": "quiet_hours"})
    result = run("send_sms", {"body": "hi"}, port)
    assert isinstance(result, Defer) and result.until == until and result.reason == "Quiet hours"


def test_a_suppressed_answer_continues_with_the_reason():
    port = Port({"messageId": "m-2", "status": "suppressed", "to": "+15550100", "provider": None,
                 "providerId": None, "reason": "The contact has opted out of SMS.", "rule": "consent"})
    result = run("send_sms", {"body": "hi"}, port)
    assert isinstance(result, Continue) and result.output["status"] == "suppressed"
    assert result.output["reason"] == "The contact has opted out of SMS." and result.output["rule"] == "consent"


def test_a_template_error_in_inline_text_is_raised_before_anything_is_sent():
    port = Port()
    with pytest.raises(TemplateError, match="contact.nickname is not defined"):
        run("send_email", {"subject": "Hi", "body": "{{ contact.nickname }}"}, port)
    assert port.calls == []


def test_notify_staff_renders_its_message():
    port = Port({"notificationId": "n-1", "status": "created", "userId": None})
    result = run("notify_staff", {"message": "{{ contact.first_name }} booked {{ trigger.class }}"}, port)
    assert port.calls[0] == ("notify_staff", {"message": "Sarah booked Spin", "userId": None, "contactId": "c-1",
                                              "idempotency_key": "e-1:n1:1"})
    assert result.output == {"notificationId": "n-1", "status": "created", "userId": None}


def test_validation_wants_a_template_or_the_inline_text():
    definition = WorkflowDefinition.from_dict({"schemaVersion": 1, "nodes": [
        {"id": "mail", "type": "send_email", "config": {"subject": "only a subject"}},
        {"id": "text", "type": "send_sms", "config": {}},
        {"id": "ok", "type": "send_sms", "config": {"templateId": "t-1"}}],
        "edges": [{"source": "mail", "target": "text"}, {"source": "text", "target": "ok"}]})
    issues = [(i["node_id"], i["code"]) for i in validation.validate(definition)]
    assert ("mail", "MISSING_CONTENT") in issues and ("text", "MISSING_CONTENT") in issues
    assert not [i for i in issues if i[0] == "ok"]


def _sms_workflow() -> WorkflowDefinition:
    return WorkflowDefinition.from_dict({"schemaVersion": 1, "nodes": [
        {"id": "text", "type": "send_sms", "config": {"body": "Hi {{ contact.first_name }}"}}], "edges": []})


def test_the_engine_defers_the_node_and_runs_it_again_as_a_new_attempt():
    until = NOW + timedelta(hours=11)
    port = Port({"deferUntil": until.isoformat(), "reason": "Quiet hours (21:00-08:00, UTC)", "rule": "quiet_hours"})
    definition = _sms_workflow()
    outcome = engine.advance(definition, engine.start(definition), trigger={}, contact=SARAH, clock=lambda: NOW,
                             execution_id="e-1", effects=port)
    assert outcome.status == "waiting" and outcome.resume_at == until
    assert outcome.records[0].status == "deferred" and outcome.records[0].error.startswith("Quiet hours")
    port.answer = SENT
    later = engine.advance(definition, outcome.state, trigger={}, contact=SARAH, clock=lambda: until,
                           execution_id="e-1", effects=port)
    assert later.status == "completed" and later.records[0].output == SENT
    assert [params["idempotency_key"] for _, params in port.calls] == ["e-1:text:1", "e-1:text:2"]


def test_a_retryable_provider_error_makes_the_engine_retry():
    port = Port(StepError("The SMS provider is unavailable (HTTP 503)", code="PROVIDER_UNAVAILABLE", retryable=True))
    definition = _sms_workflow()
    outcome = engine.advance(definition, engine.start(definition), trigger={}, contact=SARAH, clock=lambda: NOW,
                             execution_id="e-1", effects=port)
    assert outcome.status == "retry" and outcome.error_code == "PROVIDER_UNAVAILABLE"
