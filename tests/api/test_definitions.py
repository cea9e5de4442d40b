"""The step catalogue, the published definition format, and POST /workflows/{id}/validate."""
import jsonschema

from atlas.core import steps
from atlas.extensions import db
from atlas.models import AuditLog
from tests import factories
from tests.api.helpers import assert_error


def test_action_definitions_come_from_the_step_registry(client, staff_headers):
    body = client.get("/api/v2/actions/definitions", headers=staff_headers).json

    assert [a["type"] for a in body["actions"]] == [t.key for t in steps.all_types()]
    wait = next(a for a in body["actions"] if a["type"] == "wait")
    assert wait["configSchema"]["required"] == ["duration"] and wait["retryPolicy"]["maxAttempts"] == 1
    assert (wait["category"], wait["sideEffects"], wait["branching"]) == ("control", False, False)
    assert [(c["key"], c["count"]) for c in body["categories"]] == [
        ("control", 9), ("communication", 3), ("crm", 6), ("integration", 2)]
    assert body["categories"][0] == {"key": "control", "name": "Flow control", "count": 9,
                                     "description": "Branch, split, wait and finish."}
    sms = next(a for a in body["actions"] if a["type"] == "send_sms")
    assert (sms["category"], sms["sideEffects"], sms["retryPolicy"]["maxAttempts"]) == ("communication", True, 5)
    assert body["customActions"] == []
    assert [(i["key"], i["configured"]) for i in body["integrations"]] == [("smtp", False), ("sms", False)]


def test_action_definitions_need_membership(client, staff):
    assert_error(client.get("/api/v2/actions/definitions"), 401, "UNAUTHENTICATED")


def test_the_definition_format_is_a_public_json_schema_that_accepts_what_atlas_saves(client, staff_headers):
    schema = client.get("/api/v2/schemas/workflow-definition.json").json
    jsonschema.Draft202012Validator.check_schema(schema)

    saved = client.post("/api/v2/workflows", headers=staff_headers,
                        json=factories.workflow_body()).json["workflow"]["workflowData"]
    jsonschema.validate(saved, schema)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors({"nodes": "x"}))


def test_validate_reports_the_saved_definition_by_severity(client, org, staff, staff_headers):
    workflow = factories.make_workflow(org, staff, workflow_data={
        "nodes": [{"id": "a", "type": "wait", "config": {"duration": {"amount": 100, "unit": "days"}}},
                  {"id": "b", "type": "if_else", "config": {"condition": {"field": "trigger.x", "operator": "nope"}}}],
        "edges": [{"source": "a", "target": "b"}]})

    body = client.post(f"/api/v2/workflows/{workflow.id}/validate", headers=staff_headers, json={}).json

    assert body["isValid"] is False
    assert [(e["code"], e["nodeId"]) for e in body["errors"]] == [
        ("UNKNOWN_OPERATOR", "b"), ("BRANCH_WITHOUT_EXIT", "b"), ("BRANCH_WITHOUT_EXIT", "b")]
    assert [(w["code"], w["nodeId"]) for w in body["warnings"]] == [("LONG_WAIT", "a")]
    assert body["suggestions"] == [] and body["estimatedPerformance"]["basis"] == "defaults"


def test_validate_a_candidate_definition_saves_nothing_and_any_member_may_ask(client, org, staff, member):
    workflow = factories.make_workflow(org, staff)
    _, viewer_headers = member("viewer")
    before = db.session.query(AuditLog).count()

    body = client.post(f"/api/v2/workflows/{workflow.id}/validate", headers=viewer_headers,
                       json={"workflowData": {"nodes": [{"id": "a", "type": "end"}, {"id": "b", "type": "end"}]}}).json

    assert body["isValid"] is False and body["errors"][0]["code"] == "ENTRY_NOT_UNIQUE"
    assert client.post(f"/api/v2/workflows/{workflow.id}/validate", headers=viewer_headers).json["isValid"] is True
    db.session.expire_all()
    assert db.session.query(AuditLog).count() == before  # nothing changed, so nothing to audit


def test_validate_refuses_malformed_data_with_every_problem(client, org, staff, staff_headers):
    workflow = factories.make_workflow(org, staff)
    response = client.post(f"/api/v2/workflows/{workflow.id}/validate", headers=staff_headers,
                           json={"workflowData": {"nodes": [{"id": "bad-id", "type": "end"}]}})
    assert_error(response, 422, "INVALID_WORKFLOW_DATA")
