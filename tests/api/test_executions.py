"""Section 2, Workflow Execution: execute, history with analytics, details and cancel, through a real Redis and real
RQ workers (a burst SimpleWorker in this process; tests/services/test_durability.py runs worker processes)."""
import threading
from datetime import datetime, timedelta, timezone

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select, update

from atlas.extensions import db, redis_holder
from atlas.models import AuditLog, Execution, ExecutionStep
from atlas.models.base import utcnow
from atlas.services import executions, queue
from jobs.worker import run_worker
from tests import factories
from tests.api.helpers import assert_error, missing_id, validation, without_timestamp

QUEUES = ("atlas-high", "atlas-default", "atlas-low")
BOOKED = {"field": "trigger.booked", "operator": "equals", "value": True}
SARAH = {"contact": {"id": "c-1", "name": "Sarah"}}


def welcome() -> dict:
    """greet -> check (booked?) -> thanks | nudge"""
    nodes = [{"id": "greet", "type": "set_variable", "config": {"name": "greeting", "value": "Hi {{ contact.name }}"}},
             {"id": "check", "type": "if_else", "config": {"condition": BOOKED}},
             {"id": "thanks", "type": "set_variable", "config": {"name": "outcome", "value": "booked"}},
             {"id": "nudge", "type": "set_variable", "config": {"name": "outcome", "value": "{{ vars.greeting }}!"}}]
    edges = [{"source": "greet", "target": "check"}, {"source": "check", "target": "thanks", "branch": "true"},
             {"source": "check", "target": "nudge", "branch": "false"}]
    return {"schemaVersion": 1, "nodes": nodes, "edges": edges}


def pausing() -> dict:
    """greet -> pause (10 minutes) -> bye"""
    nodes = [{"id": "greet", "type": "set_variable", "config": {"name": "greeting", "value": "Hi"}},
             {"id": "pause", "type": "wait", "config": {"duration": {"amount": 10, "unit": "minutes"}}},
             {"id": "bye", "type": "end", "config": {}}]
    return {"schemaVersion": 1, "nodes": nodes,
            "edges": [{"source": "greet", "target": "pause"}, {"source": "pause", "target": "bye"}]}


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Welcome", status="active", workflow_data=welcome())


def url(workflow, tail: str = "execute") -> str:
    return f"/api/v2/workflows/{workflow.id}/{tail}"


def execute(client, workflow, headers, **body):
    """POST .../execute; the run's contact is Sarah unless the body says otherwise."""
    return client.post(url(workflow), headers=headers, json={"inputData": SARAH, **body})


def cancel(client, workflow, execution_id, headers):
    return client.post(url(workflow, f"executions/{execution_id}/cancel"), headers=headers)


def work():
    """A real RQ worker drains the queues; the test's own transaction ends first (SQLite has one writer)."""
    db.session.commit()
    run_worker(burst=True)
    db.session.expire_all()


def run_of(execution_id: str) -> Execution:
    db.session.expire_all()
    return db.session.get(Execution, execution_id)


def runs() -> int:
    return db.session.scalar(select(func.count()).select_from(Execution))


def jobs() -> dict:
    """The job ids waiting in each Atlas queue."""
    return {name: Queue(name, connection=redis_holder.client).job_ids for name in QUEUES}


def steps_of(execution_id: str) -> list[tuple]:
    return [(s.node_id, s.status) for s in db.session.scalars(select(ExecutionStep).where(
        ExecutionStep.execution_id == execution_id).order_by(ExecutionStep.started_at, ExecutionStep.id))]


# --- POST /execute --------------------------------------------------------------------------------------------

def test_execute_commits_a_queued_run_then_enqueues_its_job(client, workflow, staff_headers):
    response = execute(client, workflow, staff_headers, inputData=SARAH, triggerData={"booked": True})

    assert response.status_code == 202, response.json
    body = response.json
    assert set(body) == {"executionId", "status", "estimatedDuration", "queuePosition"}
    assert (body["status"], body["queuePosition"]) == ("queued", 1)
    assert isinstance(body["estimatedDuration"], float) and body["estimatedDuration"] > 0
    execution = run_of(body["executionId"])
    assert (execution.status, execution.workflow_id, execution.version, execution.priority, execution.test_mode,
            execution.contact_id, execution.trigger_data) == ("queued", workflow.id, 1, 5, False, "c-1",
                                                              {"booked": True})
    assert jobs() == {"atlas-high": [], "atlas-default": [execution.job_id], "atlas-low": []}
    job = Job.fetch(execution.job_id, connection=redis_holder.client)
    assert (job.func_name, tuple(job.args)) == ("jobs.runs.run_execution", (execution.id,))

    assert execute(client, workflow, staff_headers).json["queuePosition"] == 2


@pytest.mark.parametrize("priority, queue_name", [(1, "atlas-low"), (3, "atlas-low"), (4, "atlas-default"),
                                                  (7, "atlas-default"), (8, "atlas-high"), (10, "atlas-high")])
def test_priority_maps_to_its_rq_queue(client, workflow, staff_headers, priority, queue_name):
    response = execute(client, workflow, staff_headers, priority=priority)

    execution = run_of(response.json["executionId"])
    assert execution.priority == priority
    assert jobs() == {name: [execution.job_id] if name == queue_name else [] for name in QUEUES}


def test_a_worker_takes_higher_priority_runs_first(client, workflow, staff_headers):
    ids = {priority: execute(client, workflow, staff_headers, priority=priority).json["executionId"]
           for priority in (2, 5, 9)}

    work()

    started = {priority: run_of(execution_id).started_at for priority, execution_id in ids.items()}
    assert started[9] < started[5] < started[2]


def test_a_run_scheduled_for_later_waits_in_rq_s_scheduled_registry_until_its_time(client, workflow, staff_headers):
    at = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    response = execute(client, workflow, staff_headers, scheduledAt=at.isoformat(), triggerData={"booked": True})

    assert response.status_code == 202 and response.json["queuePosition"] is None  # not in a queue yet
    execution = run_of(response.json["executionId"])
    registry = ScheduledJobRegistry(queue=Queue("atlas-default", connection=redis_holder.client))
    assert registry.get_job_ids() == [execution.job_id] and jobs()["atlas-default"] == []
    assert registry.get_scheduled_time(execution.job_id) == at and execution.scheduled_at == at

    work()  # a burst worker runs RQ's scheduler once: nothing is due

    execution = run_of(execution.id)
    assert (execution.status, execution.started_at, steps_of(execution.id)) == ("queued", None, [])

    due = utcnow() - timedelta(seconds=1)  # its time comes
    db.session.execute(update(Execution).where(Execution.id == execution.id).values(scheduled_at=due))
    registry.schedule(Job.fetch(execution.job_id, connection=redis_holder.client), due)
    work()

    assert run_of(execution.id).status == "completed"


def test_an_idempotency_key_returns_the_first_run_and_starts_nothing_new(client, workflow, staff_headers):
    headers = {**staff_headers, "Idempotency-Key": "lead-42-welcome"}
    first = execute(client, workflow, headers, triggerData={"booked": True})
    again = execute(client, workflow, headers, triggerData={"booked": False}, priority=9)

    assert first.status_code == again.status_code == 202
    assert again.json["executionId"] == first.json["executionId"]
    assert runs() == 1 and jobs() == {"atlas-high": [], "atlas-default": [run_of(first.json["executionId"]).job_id],
                                      "atlas-low": []}

    work()
    after = execute(client, workflow, headers)

    assert after.json["executionId"] == first.json["executionId"] and after.json["queuePosition"] is None
    assert runs() == 1 and steps_of(first.json["executionId"]) == [("greet", "completed"), ("check", "completed"),
                                                                   ("thanks", "completed")]


def test_an_idempotency_key_is_the_organization_s_and_belongs_to_one_workflow(
        client, org, staff, workflow, staff_headers, other_org, outsider):
    headers = {**staff_headers, "Idempotency-Key": "k-1"}
    first = execute(client, workflow, headers).json["executionId"]
    other = factories.make_workflow(org, staff, name="Other", status="active", workflow_data=welcome())
    theirs = factories.make_workflow(other_org, outsider, name="Theirs", status="active", workflow_data=welcome())

    reused = execute(client, other, headers)
    elsewhere = execute(client, theirs, {**factories.headers(outsider, other_org), "Idempotency-Key": "k-1"})

    error = assert_error(reused, 409, "IDEMPOTENCY_KEY_REUSED")
    assert first not in error["message"]
    assert elsewhere.status_code == 202 and elsewhere.json["executionId"] != first
    assert runs() == 2


@pytest.mark.parametrize("key", ["", "   ", "k" * 201])
def test_an_idempotency_key_must_be_1_to_200_characters(client, workflow, staff_headers, key):
    response = execute(client, workflow, {**staff_headers, "Idempotency-Key": key})

    assert validation(response) == {"Idempotency-Key": "1 to 200 characters"}
    assert runs() == 0


def test_two_concurrent_requests_with_one_key_start_one_run(app, workflow, staff_headers, monkeypatch):
    headers, target = {**staff_headers, "Idempotency-Key": "double-click"}, url(workflow)
    if db.engine.dialect.name == "postgresql":  # SQLite serializes writing requests, so there is no race to force
        barrier, depth = threading.Barrier(2, timeout=10), queue.depth

        def both_past_the_key_check():
            barrier.wait()
            return depth()

        monkeypatch.setattr(queue, "depth", both_past_the_key_check)
    db.session.remove()  # the test's own transaction must not hold SQLite's write lock
    answers = []

    def post():
        answers.append(app.test_client().post(target, headers=headers, json={"inputData": SARAH}))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert [a.status_code for a in answers] == [202, 202], [a.json for a in answers]
    assert answers[0].json["executionId"] == answers[1].json["executionId"]
    assert runs() == 1 and sum(len(ids) for ids in jobs().values()) == 1


@pytest.mark.parametrize("status", ["draft", "paused", "archived"])
def test_a_workflow_that_is_not_active_runs_only_in_test_mode(client, org, staff, staff_headers, status):
    workflow = factories.make_workflow(org, staff, name="Not live", workflow_data=welcome())
    factories.workflows.update_workflow(org.id, staff.id, workflow.id, {"status": status})

    error = assert_error(execute(client, workflow, staff_headers), 409, "WORKFLOW_NOT_ACTIVE")

    assert status in error["message"] and runs() == 0 and jobs()["atlas-default"] == []


def test_a_test_run_of_a_draft_runs_the_definition_as_it_was_when_started(client, org, staff, staff_headers):
    draft = factories.make_workflow(org, staff, name="Draft", workflow_data=factories.definition("a", "b"))
    response = execute(client, draft, staff_headers, testMode=True)
    client.put(f"/api/v2/workflows/{draft.id}", headers=staff_headers,
               json={"workflowData": factories.definition("x")})

    work()

    execution = run_of(response.json["executionId"])
    assert response.status_code == 202 and execution.test_mode and execution.status == "completed"
    assert [n["id"] for n in execution.definition["nodes"]] == ["a", "b"]
    assert steps_of(execution.id) == [("a", "completed"), ("b", "completed")]
    assert execution.state["variables"] == {"v_a": "a", "v_b": "b"}
    db.session.refresh(draft)
    assert (draft.usage_count, draft.last_run_at) == (0, None)  # test runs are not usage


def test_a_test_run_of_a_draft_with_errors_is_refused_with_every_error(client, org, staff, staff_headers):
    broken = {"schemaVersion": 1, "edges": [{"source": "pause", "target": "bye"}],
              "nodes": [{"id": "pause", "type": "wait", "config": {}}, {"id": "bye", "type": "nosuch", "config": {}}]}
    draft = factories.make_workflow(org, staff, name="Broken", workflow_data=broken)

    response = execute(client, draft, staff_headers, testMode=True)

    assert_error(response, 422, "INVALID_WORKFLOW_DATA")
    errors = {(i["nodeId"], i["code"]) for i in response.json["validation"] if i["severity"] == "error"}
    assert {("pause", "INVALID_CONFIG"), ("bye", "UNKNOWN_STEP_TYPE")} <= errors
    assert runs() == 0


def test_a_full_queue_refuses_a_run_with_503_and_commits_nothing(build_app, workflow, staff_headers):
    small, target = build_app(ATLAS_MAX_QUEUE_DEPTH=1), url(workflow)
    db.session.remove()  # the test's own transaction must not hold SQLite's write lock
    client = small.test_client()

    accepted = client.post(target, headers=staff_headers, json={"inputData": SARAH})
    refused = client.post(target, headers=staff_headers, json={"priority": 9})  # every queue counts

    assert accepted.status_code == 202
    error = assert_error(refused, 503, "QUEUE_FULL")
    assert error["message"] == "The execution queue is full; nothing was started. Retry in a little while."
    assert runs() == 1 and jobs()["atlas-high"] == []
    audit = db.session.scalars(select(AuditLog).order_by(AuditLog.created_at)).all()
    assert [(a.action, a.status_code) for a in audit] == [("workflow.execute", 202), ("workflow.execute", 503)]


@pytest.mark.parametrize("body, field", [
    ({"priority": 0}, "priority"), ({"priority": 11}, "priority"), ({"priority": "high"}, "priority"),
    ({"surprise": True}, "surprise"), ({"input_data": {}}, "input_data"), ({"inputData": []}, "inputData"),
    ({"scheduledAt": "2030-01-01T09:00:00"}, "scheduledAt"), ({"scheduledAt": "soon"}, "scheduledAt"),
    ({"testMode": "maybe"}, "testMode")])
def test_an_invalid_execute_request_is_422_and_starts_nothing(client, workflow, staff_headers, body, field):
    response = execute(client, workflow, staff_headers, **body)

    assert_error(response, 422, "VALIDATION_FAILED")
    assert field in validation(response)
    assert runs() == 0 and jobs()["atlas-default"] == []


# --- GET /executions ------------------------------------------------------------------------------------------

def finished_run(workflow, status: str, *, duration_ms=None, error_code=None, test_mode=False) -> Execution:
    """A run row as a worker leaves it (for exact analytics); the other tests make theirs with real workers."""
    now = utcnow()
    execution = Execution(organization_id=workflow.organization_id, workflow_id=workflow.id, version=1,
                          status=status, test_mode=test_mode, duration_ms=duration_ms, error_code=error_code,
                          error=f"failed with {error_code}" if error_code else None,
                          started_at=now if status != "queued" else None,
                          finished_at=now if status in ("completed", "failed", "cancelled") else None)
    db.session.add(execution)
    db.session.commit()
    return execution


def history(client, workflow, headers, query=""):
    response = client.get(url(workflow, f"executions{query}"), headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def test_analytics_count_live_runs_with_success_rate_mean_time_and_failure_reasons(client, workflow, staff_headers):
    for status, duration, code in [("completed", 100, None), ("completed", 300, None), ("failed", 50, "TEMPLATE_ERROR"),
                                   ("failed", 60, "TEMPLATE_ERROR"), ("failed", 70, "PROVIDER_UNAVAILABLE"),
                                   ("cancelled", None, None), ("queued", None, None), ("running", None, None)]:
        finished_run(workflow, status, duration_ms=duration, error_code=code)
    finished_run(workflow, "completed", duration_ms=9000, test_mode=True)  # test runs: listed, not counted
    finished_run(workflow, "failed", duration_ms=10, error_code="TEST_ONLY", test_mode=True)

    body = history(client, workflow, staff_headers)

    assert body["analytics"] == {
        "totalExecutions": 8, "successRate": 0.4, "avgExecutionTime": 200.0,
        "failureReasons": [{"code": "TEMPLATE_ERROR", "count": 2, "example": "failed with TEMPLATE_ERROR"},
                           {"code": "PROVIDER_UNAVAILABLE", "count": 1, "example": "failed with PROVIDER_UNAVAILABLE"}]}
    assert len(body["executions"]) == 10 and sum(e["testMode"] for e in body["executions"]) == 2
    assert history(client, workflow, staff_headers, "?status=failed")["analytics"] == body["analytics"]


def test_analytics_of_a_workflow_without_finished_runs_say_so(client, workflow, staff_headers):
    finished_run(workflow, "completed", duration_ms=5, test_mode=True)

    assert history(client, workflow, staff_headers)["analytics"] == {
        "totalExecutions": 0, "successRate": None, "avgExecutionTime": None, "failureReasons": []}


def test_history_filters_by_status_and_dates_and_pages_newest_first(client, workflow, staff_headers):
    ids = [execute(client, workflow, staff_headers, triggerData={"booked": True}).json["executionId"]
           for _ in range(3)]
    cancel(client, workflow, ids[2], staff_headers)
    work()
    for day, execution_id in enumerate(ids, start=1):
        db.session.execute(update(Execution).where(Execution.id == execution_id).values(
            created_at=datetime(2026, 1, day, 12, tzinfo=timezone.utc)))
    db.session.commit()

    def listed(query):
        return [e["id"] for e in history(client, workflow, staff_headers, query)["executions"]]

    assert listed("") == [ids[2], ids[1], ids[0]]
    assert listed("?status=completed") == [ids[1], ids[0]]
    assert listed("?status=cancelled") == [ids[2]]
    assert listed("?startDate=2026-01-02T00:00:00Z") == [ids[2], ids[1]]
    assert listed("?endDate=2026-01-02T12:00:00%2B00:00") == [ids[0]]  # the end is exclusive
    dated = history(client, workflow, staff_headers, "?startDate=2026-01-02T00:00:00Z&endDate=2026-01-03T00:00:00Z")
    assert [e["id"] for e in dated["executions"]] == [ids[1]] and dated["analytics"]["totalExecutions"] == 1
    paged = history(client, workflow, staff_headers, "?limit=2&page=2")
    assert [e["id"] for e in paged["executions"]] == [ids[0]]
    assert paged["pagination"] == {"total": 3, "page": 2, "limit": 2, "totalPages": 2}


@pytest.mark.parametrize("query, field", [("status=lost", "status"), ("startDate=2026-01-01T00:00:00", "startDate"),
                                          ("endDate=yesterday", "endDate"), ("limit=101", "limit"),
                                          ("page=0", "page")])
def test_history_refuses_an_invalid_query(client, workflow, staff_headers, query, field):
    response = client.get(url(workflow, f"executions?{query}"), headers=staff_headers)

    assert field in validation(response)


# --- GET /executions/{executionId} ----------------------------------------------------------------------------

def test_details_show_what_a_real_worker_did_step_by_step(client, workflow, staff_headers):
    execution_id = execute(client, workflow, staff_headers, inputData=SARAH,
                           triggerData={"booked": True}).json["executionId"]
    work()

    response = client.get(url(workflow, f"executions/{execution_id}"), headers=staff_headers)

    assert response.status_code == 200
    body = response.json
    assert set(body) == {"execution", "steps", "timeline", "performance", "logs", "debugInfo"}
    run = body["execution"]
    assert (run["id"], run["status"], run["workflowId"], run["version"], run["contactId"], run["error"]) == (
        execution_id, "completed", workflow.id, 1, "c-1", None)
    assert run["createdAt"] <= run["startedAt"] <= run["finishedAt"] and run["durationMs"] > 0
    steps = body["steps"]
    assert [(s["nodeId"], s["stepType"], s["attempt"], s["status"], s["branch"]) for s in steps] == [
        ("greet", "set_variable", 1, "completed", None), ("check", "if_else", 1, "completed", "true"),
        ("thanks", "set_variable", 1, "completed", None)]
    assert steps[0]["input"] == {"name": "greeting", "value": "Hi {{ contact.name }}"}
    assert steps[0]["output"] == {"name": "greeting", "value": "Hi Sarah"}
    assert (steps[1]["input"], steps[1]["output"]) == ({"condition": BOOKED}, {"result": True})
    for step in steps:
        assert step["startedAt"] <= step["finishedAt"] and step["durationMs"] >= 0 and step["error"] is None
    assert [(t["event"], t["nodeId"]) for t in body["timeline"]] == [
        ("queued", None), ("step_completed", "greet"), ("step_completed", "check"), ("step_completed", "thanks"),
        ("completed", None)]
    performance = body["performance"]
    assert performance["stepCount"] == 3 and performance["queueDelayMs"] >= 0
    assert performance["activeMs"] == pytest.approx(sum(s["durationMs"] for s in steps), abs=0.01)
    assert performance["totalDurationMs"] == run["durationMs"]
    assert [(log["level"], log["nodeId"]) for log in body["logs"]] == [("info", "greet"), ("info", "check"),
                                                                       ("info", "thanks")]
    assert body["logs"][1]["message"].startswith("check (if_else) completed -> true in ")
    debug = body["debugInfo"]
    assert (debug["jobId"], debug["enqueues"], debug["resumeAt"], debug["waitEvent"]) == (
        f"run-{execution_id}-1", 1, None, None)
    assert debug["state"]["path"] == ["greet", "check", "thanks"]
    assert debug["state"]["variables"] == {"greeting": "Hi Sarah", "outcome": "booked"}


def test_details_and_analytics_of_a_run_that_failed_name_the_step_and_the_reason(client, org, staff, staff_headers):
    data = factories.definition("a")
    data["nodes"][0]["config"]["value"] = "{{ contact.nickname }}"
    workflow = factories.make_workflow(org, staff, name="Nickname", status="active", workflow_data=data)
    execution_id = execute(client, workflow, staff_headers, inputData=SARAH).json["executionId"]
    work()

    body = client.get(url(workflow, f"executions/{execution_id}"), headers=staff_headers).json

    assert (body["execution"]["status"], body["execution"]["errorCode"], body["execution"]["failedNode"]) == (
        "failed", "TEMPLATE_ERROR", "a")
    assert body["execution"]["error"] == "Step 'a' failed: contact.nickname is not defined"
    assert [(s["nodeId"], s["status"], s["errorCode"]) for s in body["steps"]] == [("a", "failed", "TEMPLATE_ERROR")]
    assert body["logs"][0]["level"] == "error" and body["timeline"][-1]["event"] == "failed"
    assert history(client, workflow, staff_headers)["analytics"]["failureReasons"] == [
        {"code": "TEMPLATE_ERROR", "count": 1, "example": "Step 'a' failed: contact.nickname is not defined"}]


def test_details_of_a_run_that_waits_say_when_it_resumes(client, org, staff, staff_headers):
    workflow = factories.make_workflow(org, staff, name="Pause", status="active", workflow_data=pausing())
    execution_id = execute(client, workflow, staff_headers).json["executionId"]
    work()

    body = client.get(url(workflow, f"executions/{execution_id}"), headers=staff_headers).json

    assert (body["execution"]["status"], body["execution"]["currentNode"]) == ("waiting", "pause")
    assert body["execution"]["finishedAt"] is None and body["performance"]["totalDurationMs"] is None
    assert [(s["nodeId"], s["status"]) for s in body["steps"]] == [("greet", "completed"), ("pause", "waiting")]
    resume_at = datetime.fromisoformat(body["debugInfo"]["resumeAt"])
    assert timedelta(minutes=9) < resume_at - utcnow() <= timedelta(minutes=10)
    assert body["debugInfo"]["jobId"] == f"run-{execution_id}-2"  # the resume is a job of its own, scheduled


# --- POST /executions/{executionId}/cancel --------------------------------------------------------------------

def test_cancel_stops_a_waiting_run_and_refuses_a_finished_one(client, org, staff, staff_headers):
    workflow = factories.make_workflow(org, staff, name="Pause", status="active", workflow_data=pausing())
    execution_id = execute(client, workflow, staff_headers).json["executionId"]
    work()

    response = cancel(client, workflow, execution_id, staff_headers)

    assert response.status_code == 200
    assert (response.json["id"], response.json["status"], response.json["resumeAt"]) == (execution_id, "cancelled",
                                                                                         None)
    assert response.json["finishedAt"] is not None
    error = assert_error(cancel(client, workflow, execution_id, staff_headers), 409, "EXECUTION_FINISHED")
    assert error["message"] == "The execution already cancelled; there is nothing to cancel."

    db.session.execute(update(Execution).where(Execution.id == execution_id).values(  # its wait would be over now
        resume_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert executions.runner.run_execution(execution_id) is None  # a late resume finds nothing to run
    assert steps_of(execution_id) == [("greet", "completed"), ("pause", "waiting")]


def test_a_queued_run_cancelled_before_a_worker_takes_it_never_runs(client, workflow, staff_headers):
    execution_id = execute(client, workflow, staff_headers).json["executionId"]

    assert cancel(client, workflow, execution_id, staff_headers).json["status"] == "cancelled"
    work()  # its job is still in Redis: the worker's claim finds nothing

    execution = run_of(execution_id)
    assert (execution.status, execution.started_at, steps_of(execution_id)) == ("cancelled", None, [])


def test_a_completed_run_cannot_be_cancelled(client, workflow, staff_headers):
    execution_id = execute(client, workflow, staff_headers).json["executionId"]
    work()

    error = assert_error(cancel(client, workflow, execution_id, staff_headers), 409, "EXECUTION_FINISHED")

    assert error["message"] == "The execution already completed; there is nothing to cancel."
    assert run_of(execution_id).status == "completed"


# --- tenancy, roles, audit ------------------------------------------------------------------------------------

def test_an_execution_is_reached_only_through_its_own_workflow_and_organization(
        client, org, staff, workflow, staff_headers, other_org, outsider):
    theirs = factories.make_workflow(other_org, outsider, name="Theirs", status="active", workflow_data=welcome())
    foreign, _ = executions.start_execution(other_org.id, outsider.id, theirs.id, trigger_data={}, input_data={})
    sibling_workflow = factories.make_workflow(org, staff, name="Sibling", status="active", workflow_data=welcome())
    sibling = execute(client, sibling_workflow, staff_headers).json["executionId"]
    headers = {**staff_headers, "X-Request-ID": "probe"}

    for tail in ("executions/{}", "executions/{}/cancel"):
        method = "POST" if tail.endswith("cancel") else "GET"
        missing = client.open(url(workflow, tail.format(missing_id())), method=method, headers=headers)
        for execution_id in (foreign.id, sibling):
            response = client.open(url(workflow, tail.format(execution_id)), method=method, headers=headers)
            assert_error(response, 404, "EXECUTION_NOT_FOUND")
            assert without_timestamp(response) == without_timestamp(missing), (tail, execution_id)
            assert response.headers["Content-Length"] == missing.headers["Content-Length"]

    assert history(client, workflow, staff_headers)["executions"] == []
    assert (run_of(foreign.id).status, run_of(sibling).status) == ("queued", "queued")


def test_a_viewer_reads_runs_but_cannot_start_or_cancel_them(client, member, workflow, staff_headers):
    _, viewer = member("viewer")
    execution_id = execute(client, workflow, staff_headers).json["executionId"]

    for response in (execute(client, workflow, viewer), cancel(client, workflow, execution_id, viewer)):
        error = assert_error(response, 403, "INSUFFICIENT_PERMISSIONS")
        assert error["message"] == "This action needs the staff role or higher; your role here is viewer."

    assert history(client, workflow, viewer)["pagination"]["total"] == 1
    assert client.get(url(workflow, f"executions/{execution_id}"), headers=viewer).status_code == 200
    assert runs() == 1 and run_of(execution_id).status == "queued"


def test_each_execute_and_cancel_leaves_an_audit_entry(client, org, staff, workflow, staff_headers, member):
    _, admin = member("admin")
    draft = factories.make_workflow(org, staff, name="Draft", workflow_data=welcome())

    def as_staff(request_id, **extra):
        return {**staff_headers, "X-Request-ID": request_id, **extra}

    execution_id = execute(client, workflow, as_staff("req-execute", **{"Idempotency-Key": "k"})).json["executionId"]
    execute(client, workflow, as_staff("req-again", **{"Idempotency-Key": "k"}))
    execute(client, draft, as_staff("req-refused"))
    cancel(client, workflow, execution_id, as_staff("req-cancel"))
    cancel(client, workflow, execution_id, as_staff("req-cancel-again"))

    logged = client.get("/api/v2/audit-logs?limit=100", headers=admin).json["auditLogs"]

    assert [(e["requestId"], e["action"], e["statusCode"], e["targetType"], e["targetId"]) for e in logged] == [
        ("req-cancel-again", "execution.cancel", 409, None, execution_id),
        ("req-cancel", "execution.cancel", 200, "execution", execution_id),
        ("req-refused", "workflow.execute", 409, None, draft.id),
        ("req-again", "workflow.execute", 202, "execution", execution_id),  # the same run, nothing new started
        ("req-execute", "workflow.execute", 202, "execution", execution_id)]
    assert {e["userId"] for e in logged} == {staff.id} and runs() == 1


def test_a_run_for_a_crm_contact_reads_the_contact_as_it_is_at_each_step(client, org, workflow, staff_headers):
    from atlas.services import contacts, runner

    sarah = factories.make_contact(org, first_name="Sarah", last_name="Mitchell", tags=["new-lead"])
    response = execute(client, workflow, staff_headers, inputData={"contactId": sarah.id})

    assert response.status_code == 202, response.json
    execution = run_of(response.json["executionId"])
    assert (execution.contact_id, execution.contact["first_name"], execution.contact["tags"]) == (
        sarah.id, "Sarah", ["new-lead"])
    contacts.set_fields(org.id, sarah.id, {"first_name": "Sally"}, source="api")  # renamed before the run starts
    db.session.commit()
    runner.run_execution(execution.id)
    db.session.expire_all()
    assert run_of(execution.id).state["variables"]["greeting"] == "Hi Sally Mitchell"


def test_an_unknown_or_foreign_contact_id_starts_nothing(client, workflow, staff_headers, other_org):
    foreign = factories.make_contact(other_org)
    for contact_id in (foreign.id, "no-such-contact"):
        response = execute(client, workflow, staff_headers, inputData={"contactId": contact_id})
        assert_error(response, 404, "CONTACT_NOT_FOUND")
    assert db.session.scalar(select(func.count()).select_from(Execution)) == 0


# --- many runs at once ------------------------------------------------------------------------------------------

def batch(client, workflow, headers, runs, **body):
    return client.post(url(workflow, "execute/batch"), headers=headers, json={"runs": runs, **body})


def test_a_batch_starts_a_run_per_contact_in_one_commit_and_a_worker_runs_them(client, org, workflow,
                                                                               staff_headers):
    people = [factories.make_contact(org, first_name=name) for name in ("Ann", "Ben", "Cal")]
    response = batch(client, workflow, staff_headers, [{"inputData": {"contactId": p.id},
                                                        "triggerData": {"booked": i == 0}}
                                                       for i, p in enumerate(people)], priority=9)

    assert response.status_code == 202, response.json
    body = response.json
    assert body["queued"] == 3 and isinstance(body["estimatedDuration"], float)
    started = [run_of(e["executionId"]) for e in body["executions"]]
    assert [(e.contact_id, e.status, e.priority) for e in started] == [(p.id, "queued", 9) for p in people]
    assert jobs()["atlas-high"] == [e.job_id for e in started]

    db.session.commit()
    run_worker(burst=True)
    db.session.expire_all()
    finished = [run_of(e.id) for e in started]
    assert [f.state["variables"] for f in finished] == [
        {"greeting": "Hi Ann Lead", "outcome": "booked"}, {"greeting": "Hi Ben Lead", "outcome": "Hi Ben Lead!"},
        {"greeting": "Hi Cal Lead", "outcome": "Hi Cal Lead!"}]


def test_a_batch_is_all_or_nothing(client, org, workflow, staff_headers, other_org):
    ours, theirs = factories.make_contact(org), factories.make_contact(other_org)
    response = batch(client, workflow, staff_headers, [{"inputData": {"contactId": ours.id}},
                                                       {"inputData": {"contactId": theirs.id}}])
    assert_error(response, 404, "CONTACT_NOT_FOUND")
    assert runs() == 0 and jobs()["atlas-default"] == []


@pytest.mark.parametrize("runs_sent", [[], [{}] * 501, [{"inputData": []}], "everyone"])
def test_a_batch_needs_one_to_500_well_formed_runs(client, workflow, staff_headers, runs_sent):
    assert_error(batch(client, workflow, staff_headers, runs_sent), 422, "VALIDATION_FAILED")
    assert runs() == 0


def test_a_repeated_batch_key_answers_the_first_batch(client, workflow, staff_headers):
    headers = {**staff_headers, "Idempotency-Key": "import-2026-11-26"}
    first = batch(client, workflow, headers, [{}, {}]).json
    again = batch(client, workflow, headers, [{}, {}]).json
    assert again["executions"] == first["executions"] and runs() == 2


def test_a_batch_that_would_overflow_the_queue_is_refused_whole(build_app, workflow, staff_headers):
    small, target = build_app(ATLAS_MAX_QUEUE_DEPTH=2), url(workflow, "execute/batch")
    db.session.remove()  # the test's own transaction must not hold SQLite's write lock
    client = small.test_client()
    assert_error(client.post(target, headers=staff_headers, json={"runs": [{}, {}, {}]}), 503, "QUEUE_FULL")
    assert client.post(target, headers=staff_headers, json={"runs": [{}, {}]}).status_code == 202
    assert runs() == 2
