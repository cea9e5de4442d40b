"""Integration step types in a bare interpreter: http_request and run_workflow configs, params and retry budget."""
from datetime import datetime, timezone

import pytest
from jsonschema import Draft202012Validator

from atlas.core import steps
from atlas.core.steps.base import NETWORK_RETRY, StepContext, StepError

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
DATA = {"trigger": {"form": "trial"}, "contact": {"id": "c-1", "email": "sarah@example.com"}, "vars": {"n": 3},
        "steps": {"a": {"output": {"score": 7}}}}


def run(key: str, config: dict, answer=None, attempt: int = 1):
    calls = []

    def port(kind, params):
        calls.append((kind, params))
        if isinstance(answer, Exception):
            raise answer
        return answer or {"status": 200}

    ctx = StepContext(node_id="hook", config=config, data=DATA, now=NOW, execution_id="e-1", attempt=attempt,
                      idempotency_key=f"e-1:hook:{attempt}", effects=port)
    return steps.get(key).run(ctx), calls


def valid(key: str, config: dict) -> bool:
    step_type = steps.get(key)
    errors = list(Draft202012Validator(step_type.config_schema).iter_errors(config))
    return not errors and not (step_type.check and step_type.check(config))


def test_both_are_registered_as_integrations_with_side_effects():
    http, sub = steps.get("http_request"), steps.get("run_workflow")
    assert http.category == sub.category == "integration" and http.side_effects and sub.side_effects
    assert http.retry == NETWORK_RETRY and sub.retry.max_attempts > 1


def test_http_request_renders_url_headers_and_payload():
    result, calls = run("http_request", {
        "method": "POST", "url": "https://crm.example.com/leads?form={{ trigger.form }}",
        "headers": {"X-Score": "{{ steps.a.output.score }}"},
        "payload": {"email": "{{ contact.email }}", "tags": ["n{{ vars.n }}"], "fixed": 5}, "timeoutSeconds": 5})
    kind, params = calls[0]
    assert kind == "http_request" and params["url"] == "https://crm.example.com/leads?form=trial"
    assert params["headers"] == {"X-Score": "7"} and params["timeout"] == 5
    assert params["payload"] == {"email": "sarah@example.com", "tags": ["n3"], "fixed": 5}
    assert result.output == {"status": 200}
    _, calls = run("http_request", {"method": "GET", "url": "https://x.example"})
    assert "payload" not in calls[0][1] and calls[0][1]["timeout"] is None


def test_http_request_config_limits():
    assert valid("http_request", {"method": "DELETE", "url": "https://x", "payload": "plain text",
                                  "retry": {"maxAttempts": 2}})
    assert not valid("http_request", {"method": "TRACE", "url": "https://x"})
    assert not valid("http_request", {"method": "GET", "url": "https://x", "timeoutSeconds": 31})
    assert not valid("http_request", {"method": "GET", "url": "https://x", "retry": {"maxAttempts": 9}})
    assert not valid("http_request", {"method": "GET", "url": "https://x", "headers": {"Bad Name": "1"}})
    assert not valid("http_request", {"method": "GET", "url": "https://x", "headers": {"Host": "evil"}})
    assert not valid("http_request", {"method": "GET", "url": "https://x", "retry": {"backoffSeconds": 1}})
    signed = {"method": "POST", "url": "https://x", "sign": True}
    assert valid("http_request", signed) and not valid("http_request", {**signed, "sign": "yes"})
    assert not valid("http_request", {**signed, "headers": {"Webhook-Signature": "v1,forged"}})
    assert valid("http_request", {**signed, "sign": False, "headers": {"Webhook-Signature": "v1,theirs"}})


def test_a_signed_request_asks_the_effect_to_sign_and_an_unsigned_one_does_not():
    _, calls = run("http_request", {"method": "POST", "url": "https://x.example", "sign": True})
    assert calls[0][1]["sign"] is True
    _, calls = run("http_request", {"method": "POST", "url": "https://x.example"})
    assert "sign" not in calls[0][1]


def test_a_nodes_max_attempts_makes_the_last_failure_permanent():
    outage = StepError("HTTP 503", code="HTTP_SERVER_ERROR", retryable=True)
    config = {"method": "GET", "url": "https://x", "retry": {"maxAttempts": 2}}
    with pytest.raises(StepError) as first:
        run("http_request", config, answer=outage, attempt=1)
    assert first.value.retryable
    with pytest.raises(StepError) as last:
        run("http_request", config, answer=outage, attempt=2)
    assert not last.value.retryable and "gave up after 2 attempts" in last.value.message
    assert last.value.code == "HTTP_SERVER_ERROR"
    with pytest.raises(StepError) as default:  # without its own budget, the type's policy decides
        run("http_request", {"method": "GET", "url": "https://x"}, answer=outage, attempt=4)
    assert default.value.retryable


def test_run_workflow_passes_the_workflow_and_trigger():
    _, calls = run("run_workflow", {"workflowId": "wf-2"}, answer={"workflowId": "wf-2", "executionId": "e-2"})
    assert calls[0] == ("run_workflow", {"workflow_id": "wf-2", "trigger": {"form": "trial"}, "node_id": "hook",
                                         "idempotency_key": "e-1:hook:1"})
    assert valid("run_workflow", {"workflowId": "wf-2", "wait": False})
    assert not valid("run_workflow", {"workflowId": "wf-2", "wait": True})
    assert not valid("run_workflow", {})
