"""POST /workflows/{id}/test: the workflow as edited runs at once in test mode, waits fast-forwarded."""
import pytest

from atlas.extensions import db
from atlas.models import Execution
from tests import factories
from tests.api.helpers import assert_error

NURTURE = {"nodes": [
    {"id": "greet", "type": "set_variable", "config": {"name": "greeting", "value": "Hi {{ contact.name }}"}},
    {"id": "pause", "type": "wait", "config": {"duration": {"amount": 2, "unit": "days"}}},
    {"id": "await", "type": "wait_for_event", "config": {"event": "class_booked",
                                                         "timeout": {"amount": 3, "unit": "days"}}},
    {"id": "booked", "type": "set_variable", "config": {"name": "cls", "value": "{{ steps.await.output.received.name }}"}},
    {"id": "gave_up", "type": "end", "config": {}}],
    "edges": [{"source": "greet", "target": "pause"}, {"source": "pause", "target": "await"},
              {"source": "await", "target": "booked", "branch": "event"},
              {"source": "await", "target": "gave_up", "branch": "timeout"}]}


@pytest.fixture
def draft(org, staff):
    return factories.make_workflow(org, staff, name="Nurture draft", workflow_data=NURTURE)


def try_it(client, headers, workflow, **body):
    return client.post(f"/api/v2/workflows/{workflow.id}/test", headers=headers, json=body)


def test_a_draft_runs_at_once_with_waits_fast_forwarded_and_the_awaited_event_arriving(client, staff_headers, draft):
    response = try_it(client, staff_headers, draft, testData={
        "contact": {"name": "Sarah"}, "events": {"class_booked": {"name": "Spin"}}}, stepByStep=True)

    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "completed" and body["error"] is None
    assert [(r["nodeId"], r["status"], r["branch"]) for r in body["results"]] == [
        ("greet", "completed", None), ("pause", "completed", None), ("await", "completed", "event"),
        ("booked", "completed", None)]
    assert body["results"][-1]["variables"] == {"greeting": "Hi Sarah", "cls": "Spin"}
    assert body["performance"]["stepCount"] == 4 and body["logs"]
    execution = db.session.get(Execution, body["testExecutionId"])
    assert execution.test_mode is True and execution.status == "completed"


def test_an_event_not_given_times_out(client, staff_headers, draft):
    body = try_it(client, staff_headers, draft, testData={"contact": {"name": "Sarah"}}).json
    assert [(r["nodeId"], r["branch"]) for r in body["results"]][-2:] == [("await", "timeout"), ("gave_up", None)]
    assert "variables" not in body["results"][0]  # only with stepByStep


def test_a_failing_step_shows_its_error(client, staff_headers, draft):
    body = try_it(client, staff_headers, draft, testData={}).json  # no contact.name: the template fails
    assert body["status"] == "failed" and body["results"][0]["status"] == "failed"
    assert body["results"][0]["error"].startswith("contact.name is not defined")
    assert body["error"].startswith("Step 'greet' failed: contact.name is not defined")


def test_test_runs_stay_out_of_analytics(client, staff_headers, org, staff):
    workflow = factories.make_workflow(org, staff, name="Live one", status="active")
    try_it(client, staff_headers, workflow, testData={})
    history = client.get(f"/api/v2/workflows/{workflow.id}/executions", headers=staff_headers).json
    assert len(history["executions"]) == 1 and history["analytics"]["totalExecutions"] == 0


def test_a_draft_with_errors_cannot_be_tested(client, staff_headers, org, staff):
    broken = factories.make_workflow(org, staff, name="Broken", workflow_data={
        "nodes": [{"id": "a", "type": "end"}, {"id": "b", "type": "end"}], "edges": []})
    assert_error(try_it(client, staff_headers, broken, testData={}), 422, "INVALID_WORKFLOW_DATA")


def test_test_data_is_required(client, staff_headers, draft):
    response = try_it(client, staff_headers, draft)
    assert response.status_code == 422 and response.json["validation"][0]["field"] == "testData"
