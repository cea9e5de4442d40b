"""/api/v2/queue: status, jobs, retry of a failed run from its failed step, and bulk retry after an outage."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from atlas.core import steps
from atlas.core.engine import StepError
from atlas.core.steps.base import Continue, StepType
from atlas.extensions import db
from atlas.models import Execution, ExecutionStep
from jobs.worker import run_worker
from tests import factories
from tests.api.helpers import assert_error

OUTAGE = {"down": True}


@pytest.fixture
def flaky_provider(step_registry):
    """A side-effect step that fails (not retried) while OUTAGE['down'] is true, like an SMS provider that is down."""

    def send(ctx):
        if OUTAGE["down"]:
            raise StepError("SMS provider answered 503", code="PROVIDER_UNAVAILABLE", retryable=True)
        return Continue(output={"sent": True, "key": ctx.idempotency_key})

    steps.register(StepType(key="test_sms", category="test", name="SMS", description="", icon="", config_schema={},
                            output_schema={}, run=send, side_effects=True))
    OUTAGE["down"] = True
    yield OUTAGE


@pytest.fixture
def workflow(org, staff, flaky_provider):
    data = {"nodes": [{"id": "prep", "type": "set_variable", "config": {"name": "x", "value": 1}},
                      {"id": "sms", "type": "test_sms", "config": {}}],
            "edges": [{"source": "prep", "target": "sms"}]}
    return factories.make_workflow(org, staff, name="Texts", status="active", workflow_data=data)


def execute(client, headers, workflow, priority=5):
    response = client.post(f"/api/v2/workflows/{workflow.id}/execute", headers=headers, json={"priority": priority})
    assert response.status_code == 202, response.json
    return response.json["executionId"]


def work():
    db.session.commit()
    run_worker(burst=True)
    db.session.expire_all()


def test_status_counts_runs_and_lists_workers(client, staff_headers, workflow):
    ids = [execute(client, staff_headers, workflow) for _ in range(3)]
    before = client.get("/api/v2/queue/status", headers=staff_headers).json
    assert (before["queuedJobs"], before["failedJobs"], before["totalJobs"]) == (3, 0, 3)
    assert before["estimatedWaitTime"] is None  # queued, but nothing finished lately to measure throughput by
    work()
    after = client.get("/api/v2/queue/status", headers=staff_headers).json
    assert (after["queuedJobs"], after["failedJobs"]) == (0, 3) and after["throughputPerSecond"] > 0
    assert isinstance(after["workers"], list) and len(ids) == 3


def test_jobs_filter_by_status_priority_and_workflow(client, staff_headers, workflow, org, staff):
    execute(client, staff_headers, workflow, priority=9)
    execute(client, staff_headers, workflow, priority=2)
    work()
    execute(client, staff_headers, workflow, priority=5)
    body = client.get("/api/v2/queue/jobs?status=failed", headers=staff_headers).json
    assert body["statistics"] == {"queued": 1, "processing": 0, "completed": 0, "failed": 2}
    assert [(j["status"], j["priority"], j["queue"]) for j in body["jobs"]] == [
        ("failed", 2, "atlas-low"), ("failed", 9, "atlas-high")]  # newest first
    assert body["jobs"][0]["errorCode"] == "PROVIDER_UNAVAILABLE" and body["jobs"][0]["failedNode"] == "sms"
    high = client.get("/api/v2/queue/jobs?priority=9", headers=staff_headers).json["jobs"]
    assert [j["priority"] for j in high] == [9]
    other = factories.make_workflow(org, staff, name="Other")
    assert client.get(f"/api/v2/queue/jobs?workflowId={other.id}", headers=staff_headers).json["jobs"] == []


def test_retry_resumes_at_the_failed_step_without_repeating_the_ones_before(client, staff_headers, workflow):
    execution_id = execute(client, staff_headers, workflow)
    work()
    OUTAGE["down"] = False

    body = client.post(f"/api/v2/queue/jobs/{execution_id}/retry", headers=staff_headers,
                       json={"resetRetryCount": True, "newPriority": 9}).json
    assert body["success"] is True and body["newJobId"] == f"run-{execution_id}-2"
    work()

    execution = db.session.get(Execution, execution_id)
    assert execution.status == "completed" and execution.priority == 9
    attempts = [(s.node_id, s.attempt, s.status) for s in db.session.scalars(
        select(ExecutionStep).where(ExecutionStep.execution_id == execution_id).order_by(ExecutionStep.started_at))]
    # prep is not executed again; the retry is attempt 2 of sms with a fresh retry budget
    assert attempts == [("prep", 1, "completed"), ("sms", 1, "failed"), ("sms", 2, "completed")]


def test_only_failed_runs_can_be_retried(client, staff_headers, workflow):
    OUTAGE["down"] = False
    execution_id = execute(client, staff_headers, workflow)
    work()
    assert_error(client.post(f"/api/v2/queue/jobs/{execution_id}/retry", headers=staff_headers, json={}), 409,
                 "NOT_RETRYABLE")


def test_bulk_retry_after_an_outage_retries_the_window_and_reason(client, staff_headers, workflow):
    ids = [execute(client, staff_headers, workflow) for _ in range(3)]
    work()
    OUTAGE["down"] = False
    now = datetime.now(timezone.utc)
    window = {"since": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(minutes=1)).isoformat()}

    none = client.post("/api/v2/queue/retry", headers=staff_headers, json={**window, "errorCode": "OTHER"}).json
    assert none == {"retried": 0, "executionIds": []}
    body = client.post("/api/v2/queue/retry", headers=staff_headers,
                       json={**window, "workflowId": workflow.id, "errorCode": "PROVIDER_UNAVAILABLE"}).json
    assert body["retried"] == 3 and sorted(body["executionIds"]) == sorted(ids)
    work()
    assert {db.session.get(Execution, i).status for i in ids} == {"completed"}


def test_bulk_retry_needs_a_window(client, staff_headers):
    response = client.post("/api/v2/queue/retry", headers=staff_headers, json={"workflowId": "x"})
    assert response.status_code == 422 and {v["field"] for v in response.json["validation"]} == {"since", "until"}
