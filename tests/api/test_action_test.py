"""POST /api/v2/actions/test/{actionType}: one action, mocked by default or for real, with logs and timing."""
import pytest
from sqlalchemy import select

from atlas.extensions import db
from atlas.models import AuditLog, Contact, StaffTask
from tests import factories


def url(action: str) -> str:
    return f"/api/v2/actions/test/{action}"


def test_mock_mode_is_the_default_and_changes_nothing(client, org, staff_headers):
    contact = factories.make_contact(org, first_name="Sarah", tags=["vip"])
    response = client.post(url("add_tag"), headers=staff_headers,
                           json={"config": {"tag": "hello-{{ contact.first_name | lower }}"},
                                 "inputData": {"contactId": contact.id}})
    body = response.get_json()
    assert response.status_code == 200 and body["success"] is True and body["error"] is None
    assert body["output"] == {"tag": "hello-sarah", "changed": False, "mock": True}
    assert body["performance"]["durationMs"] >= 0
    assert [log["level"] for log in body["logs"]] == ["info", "info", "info"]
    assert "mock mode" in body["logs"][0]["message"] and body["logs"][0]["at"]
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).tags == ["vip"]


def test_live_mode_really_performs_and_is_audited(client, org, staff, staff_headers):
    contact = factories.make_contact(org, owner_id=staff.id)
    response = client.post(url("create_task"), headers=staff_headers, json={
        "config": {"title": "Call {{ contact.first_name }} about {{ trigger.class }}"},
        "inputData": {"contactId": contact.id, "trigger": {"class": "HIIT"}}, "mockMode": False})
    body = response.get_json()
    assert body["success"] is True and body["output"]["created"] is True and "mock" not in body["output"]
    task = db.session.scalar(select(StaffTask).where(StaffTask.organization_id == org.id))
    assert task.title == f"Call {contact.first_name} about HIIT" and task.assignee_id == staff.id
    assert task.id == body["output"]["taskId"]
    again = client.post(url("create_task"), headers=staff_headers, json={
        "config": {"title": "x"}, "inputData": {"contactId": contact.id}, "mockMode": False}).get_json()
    assert again["output"]["created"] is True  # each test run is its own: no key collides with another's
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "action.test")).all()
    assert [a.target_id for a in audit] == ["create_task", "create_task"]


def test_viewers_may_mock_but_not_perform(client, org, member):
    _, viewer = member("viewer")
    contact = factories.make_contact(org)
    body = {"config": {"status": "trial"}, "inputData": {"contactId": contact.id}}
    assert client.post(url("change_lead_status"), headers=viewer, json=body).status_code == 200
    refused = client.post(url("change_lead_status"), headers=viewer, json={**body, "mockMode": False})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "INSUFFICIENT_PERMISSIONS"
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).status == "lead"


def test_unknown_action_and_invalid_config(client, staff_headers):
    missing = client.post(url("teleport"), headers=staff_headers, json={"config": {}})
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "ACTION_NOT_FOUND"
    bad = client.post(url("change_lead_status"), headers=staff_headers, json={"config": {"status": "vip"}})
    error = bad.get_json()
    assert bad.status_code == 422 and error["error"]["code"] == "INVALID_CONFIG"
    assert error["error"]["details"]["path"] == "config.status" and error["validation"][0]["field"] == "config.status"
    reserved = client.post(url("http_request"), headers=staff_headers, json={
        "config": {"method": "GET", "url": "https://x.example", "headers": {"Host": "evil"}}})
    assert reserved.status_code == 422 and reserved.get_json()["validation"][0]["field"] == "config.headers.Host"


@pytest.mark.parametrize("body", [{"config": {}, "mockMode": "sometimes"}, {"config": [], "inputData": {}},
                                  {"config": {}, "surprise": 1}])
def test_a_malformed_request_is_a_422(client, staff_headers, body):
    response = client.post(url("add_tag"), headers=staff_headers, json=body)
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "VALIDATION_FAILED"


def test_another_organizations_contact_is_not_found(client, org, staff_headers):
    foreign = factories.make_contact(factories.make_org(), tags=["theirs"])
    response = client.post(url("remove_tag"), headers=staff_headers, json={
        "config": {"tag": "theirs"}, "inputData": {"contactId": foreign.id}, "mockMode": False})
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "CONTACT_NOT_FOUND"
    unknown = client.post(url("remove_tag"), headers=staff_headers, json={
        "config": {"tag": "theirs"}, "inputData": {"contactId": "no-such-id"}})
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "CONTACT_NOT_FOUND"
    db.session.expire_all()
    assert db.session.get(Contact, foreign.id).tags == ["theirs"]


def test_a_failing_step_is_an_answer_not_an_error(client, staff_headers):
    response = client.post(url("add_tag"), headers=staff_headers, json={
        "config": {"tag": "x"}, "inputData": {}, "mockMode": False})
    body = response.get_json()
    assert response.status_code == 200 and body["success"] is False and body["output"] == {}
    assert body["error"] == {"code": "NO_CONTACT", "message": body["error"]["message"], "retryable": False}
    assert body["logs"][-1]["level"] == "error" and body["logs"][-1]["message"].startswith("NO_CONTACT:")
    template = client.post(url("add_tag"), headers=staff_headers, json={
        "config": {"tag": "{{ contact.nickname }}"}, "inputData": {"contact": {"first_name": "Sam"}}}).get_json()
    assert template["success"] is False and template["error"]["code"] == "TEMPLATE_ERROR"
    assert "contact.nickname" in template["error"]["message"]


def test_an_inline_sample_contact_feeds_templates_in_mock_mode(client, staff_headers):
    body = client.post(url("create_task"), headers=staff_headers, json={
        "config": {"title": "Call {{ contact.first_name }}", "dueIn": {"amount": 1, "unit": "days"}},
        "inputData": {"contact": {"id": "sample-1", "first_name": "Sam"}}}).get_json()
    assert body["success"] is True and body["output"]["title"] == "Call Sam" and body["output"]["mock"] is True
    assert body["output"]["dueAt"]


def test_control_steps_report_their_branch(client, staff_headers):
    body = client.post(url("if_else"), headers=staff_headers, json={
        "config": {"condition": {"field": "vars.score", "operator": "greater_than", "value": 5}},
        "inputData": {"vars": {"score": 7}}}).get_json()
    assert body["success"] is True and body["output"] == {"result": True}
    assert "'true' branch" in body["logs"][-1]["message"]


def test_http_request_live_against_an_allowed_local_server(client, org, staff_headers, server, connections):
    org.settings = {"httpAllowlist": ["127.0.0.1"]}
    db.session.commit()
    body = client.post(url("http_request"), headers=staff_headers, json={
        "config": {"method": "POST", "url": server.url("/echo"), "payload": {"n": "{{ vars.n }}"}},
        "inputData": {"vars": {"n": 3}}, "mockMode": False}).get_json()
    assert body["success"] is True and body["output"]["status"] == 200
    assert body["output"]["body"]["body"] == '{"n": "3"}' and connections == ["127.0.0.1"]
    failed = client.post(url("http_request"), headers=staff_headers, json={
        "config": {"method": "GET", "url": server.url("/status/503")}, "mockMode": False}).get_json()
    assert failed["success"] is False and failed["error"]["retryable"] is True
    assert [log["level"] for log in failed["logs"]][-2:] == ["error", "warning"]


@pytest.mark.parametrize("target", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/",
                                    "http://localhost:9/", "http://127.0.0.1:9/"])
def test_http_request_live_to_internal_addresses_is_refused(client, staff_headers, connections, target):
    body = client.post(url("http_request"), headers=staff_headers, json={
        "config": {"method": "GET", "url": target}, "mockMode": False}).get_json()
    assert body["success"] is False and body["error"]["code"] == "SSRF_BLOCKED" and connections == []


def test_run_workflow_in_mock_mode_checks_the_target(client, org, staff, staff_headers):
    active = factories.make_workflow(org, staff, name="Welcome", status="active")
    body = client.post(url("run_workflow"), headers=staff_headers,
                       json={"config": {"workflowId": active.id}}).get_json()
    assert body["success"] is True and body["output"]["depth"] == 1 and body["output"]["executionId"] is None
    foreign = factories.make_workflow(factories.make_org(), None, name="Theirs", status="active")
    hidden = client.post(url("run_workflow"), headers=staff_headers,
                         json={"config": {"workflowId": foreign.id}}).get_json()
    assert hidden["success"] is False and hidden["error"]["code"] == "WORKFLOW_NOT_FOUND"
