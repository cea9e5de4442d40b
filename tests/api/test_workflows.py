"""Workflows CRUD: create, read, partial update with versioning, archive; validation with clear messages."""
from datetime import datetime

import pytest
from sqlalchemy import select

from atlas.extensions import db
from atlas.models import WorkflowVersion
from atlas.services import workflows
from tests import factories
from tests.api.helpers import assert_error, validation

TEN_MINUTES = {"amount": 10, "unit": "minutes"}
WORKFLOW_KEYS = {"id", "organizationId", "name", "description", "category", "status", "tags", "triggerType",
                 "triggerConfig", "settings", "workflowData", "version", "stepCount", "usageCount", "lastRunAt",
                 "templateId", "createdBy", "createdAt", "updatedAt", "archivedAt"}


@pytest.fixture
def create(client, staff_headers):
    """POST /workflows with a valid body plus these fields; returns the response."""

    def post(**fields):
        return client.post("/api/v2/workflows", headers=staff_headers, json=factories.workflow_body(**fields))

    return post


@pytest.fixture
def put(client, staff_headers):
    def send(workflow_id, body):
        return client.put(f"/api/v2/workflows/{workflow_id}", headers=staff_headers, json=body)

    return send


def versions(workflow_id) -> list[tuple[int, list[str]]]:
    """The published snapshots: (version, node ids)."""
    rows = db.session.scalars(select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow_id)
                              .order_by(WorkflowVersion.version))
    return [(row.version, [n["id"] for n in row.workflow_data["nodes"]]) for row in rows]


# --- create -------------------------------------------------------------------------------------------------------

def test_create_returns_the_workflow_its_validation_and_a_truthful_estimate(create, org, staff):
    response = create(name="  New lead welcome ", description="Text new leads", category="Lead nurture",
                      tags=["sms", "leads", "sms", " leads "], triggerConfig={"leadSources": ["website"]},
                      settings={"timezone": "Europe/London"},
                      workflowData={"nodes": [{"id": "a", "type": "wait", "config": {"duration": TEN_MINUTES}},
                                              {"id": "b", "type": "end"}],
                                    "edges": [{"source": "a", "target": "b"}]})

    assert response.status_code == 201, response.json
    assert set(response.json) == {"workflow", "validationResults", "estimatedPerformance"}
    workflow = response.json["workflow"]
    assert set(workflow) == WORKFLOW_KEYS
    assert workflow["name"] == "New lead welcome"
    assert (workflow["organizationId"], workflow["createdBy"]) == (org.id, staff.id)
    assert (workflow["status"], workflow["version"], workflow["stepCount"], workflow["usageCount"]) == (
        "draft", 1, 2, 0)
    assert workflow["tags"] == ["leads", "sms"]
    assert (workflow["triggerType"], workflow["triggerConfig"]) == ("lead_created", {"leadSources": ["website"]})
    assert workflow["settings"] == {"timezone": "Europe/London"}
    assert workflow["workflowData"] == {  # normalised: schemaVersion, names and configs filled in
        "schemaVersion": 1,
        "nodes": [{"id": "a", "type": "wait", "name": "", "config": {"duration": TEN_MINUTES}},
                  {"id": "b", "type": "end", "name": "", "config": {}}],
        "edges": [{"source": "a", "target": "b"}]}
    assert workflow["lastRunAt"] is None and workflow["archivedAt"] is None
    assert datetime.fromisoformat(workflow["createdAt"]).tzinfo is not None
    assert response.json["validationResults"] == []
    estimate = response.json["estimatedPerformance"]
    assert (estimate["basis"], estimate["stepCount"], estimate["estimatedDurationMs"]) == ("defaults", 2, 2.0)
    assert estimate["note"].startswith("No runs measured yet: from Atlas's stated defaults")


def test_defaults_for_optional_fields(create):
    workflow = create(name="Bare").json["workflow"]

    assert (workflow["description"], workflow["category"], workflow["templateId"]) == (None, None, None)
    assert (workflow["tags"], workflow["triggerConfig"], workflow["settings"]) == ([], {}, {})


def test_an_empty_workflow_is_saved_with_a_warning(create):
    response = create(workflowData={"nodes": [], "edges": []})

    assert response.status_code == 201
    assert response.json["validationResults"] == [{
        "severity": "warning", "code": "EMPTY_WORKFLOW", "nodeId": None,
        "message": "The workflow has no steps yet; add one before activating."}]


def test_a_draft_with_graph_errors_is_saved_and_lists_them_on_their_nodes(create):
    data = factories.definition("a", "b")
    data["nodes"].append({"id": "orphan", "type": "end"})
    data["nodes"].append({"id": "ghost", "type": "teleport"})
    data["edges"].append({"source": "a", "target": "ghost"})

    response = create(workflowData=data)

    assert response.status_code == 201 and response.json["workflow"]["status"] == "draft"
    assert [(i["severity"], i["code"], i["nodeId"]) for i in response.json["validationResults"]] == [
        ("error", "UNKNOWN_STEP_TYPE", "ghost"), ("error", "ENTRY_NOT_UNIQUE", "a"),
        ("error", "MULTIPLE_EXITS", "a")]


def test_a_workflow_with_errors_cannot_be_created_active(create, client, staff_headers):
    response = create(status="active", workflowData={"nodes": [{"id": "a", "type": "end"},
                                                               {"id": "b", "type": "end"}]})

    error = assert_error(response, 422, "INVALID_WORKFLOW_DATA")
    assert error["message"].startswith("The workflow has errors, so it cannot be activated")
    assert [(i["code"], i["nodeId"]) for i in response.json["validation"]] == [("ENTRY_NOT_UNIQUE", "a")]
    assert client.get("/api/v2/workflows", headers=staff_headers).json["workflows"] == []


def test_malformed_workflow_data_lists_every_problem_at_once(create):
    response = create(workflowData={"schemaVersion": 9, "nodes": [{"id": "a", "type": "wait"}, {"type": "wait"},
                                                                   {"id": "a", "type": "wait"}],
                                    "edges": [{"source": "a", "target": "ghost"}, "a->b"]})

    error = assert_error(response, 422, "INVALID_WORKFLOW_DATA")
    assert error["message"].startswith("workflowData is malformed: ")
    assert [(i["code"], i["message"]) for i in response.json["validation"]] == [
        ("UNSUPPORTED_SCHEMA_VERSION", "schemaVersion 9 is not supported; use 1."),
        ("INVALID_NODE", "nodes[1].id must be letters, digits and underscores, starting with a letter or underscore, "
                         "at most 64 characters (it is used as steps.<id>)."),
        ("INVALID_EDGE", "edges[1] must be an object with string source and target."),
        ("DUPLICATE_NODE_ID", "Node id 'a' is used more than once."),
        ("UNKNOWN_NODE", "An edge's target names unknown node 'ghost'."),
    ]


@pytest.mark.parametrize("change, field, message", [
    ({"name": None}, "name", "Field may not be null."),
    ({"name": "   "}, "name", "Must not be blank."),
    ({"name": "x" * 121}, "name", "Longer than maximum length 120."),
    ({"name": 7}, "name", "Not a valid string."),
    ({"description": "x" * 2001}, "description", "Longer than maximum length 2000."),
    ({"category": "x" * 65}, "category", "Longer than maximum length 64."),
    ({"status": "paused"}, "status", "A new workflow starts as draft or active."),
    ({"triggerType": "Lead Created"}, "triggerType",
     "triggerType must be a lower-case identifier such as lead_created."),
    ({"triggerConfig": ["a"]}, "triggerConfig", "Not a valid mapping type."),
    ({"workflowData": "nodes"}, "workflowData", "Not a valid mapping type."),
    ({"tags": [f"t{i}" for i in range(21)]}, "tags", "At most 20 tags."),
    ({"tags": "leads"}, "tags", "Not a valid list."),
    ({"templateId": "x" * 37}, "templateId", "Longer than maximum length 36."),
    ({"colour": "red"}, "colour", "Unknown field."),
    ({"trigger_type": "lead_created"}, "trigger_type", "Unknown field."),
])
def test_create_is_validated_with_clear_messages(create, change, field, message):
    response = create(**change)

    assert validation(response)[field] == message
    assert f"{field}: {message}" in response.json["error"]["message"]


def test_required_fields(client, staff_headers):
    response = client.post("/api/v2/workflows", headers=staff_headers, json={})

    assert validation(response) == {f: "Missing data for required field." for f in
                                    ("name", "workflowData", "triggerType")}


def test_the_database_itself_refuses_a_live_name_twice_ignoring_case(org):
    """Two saves racing past the service's check still cannot both commit (the lower(name) unique index)."""
    from sqlalchemy.exc import IntegrityError

    from atlas.models import Workflow

    for name in ("Welcome", "WELCOME"):
        db.session.add(Workflow(organization_id=org.id, name=name, trigger_type="manual", workflow_data={}))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_names_are_unique_in_an_organization_ignoring_case(create):
    create(name="Welcome")

    error = assert_error(create(name="WELCOME"), 409, "WORKFLOW_NAME_TAKEN")
    assert error["message"] == "A workflow named 'WELCOME' already exists in this organization."
    assert error["details"] == {"field": "name"}


def test_a_concurrent_save_of_the_same_name_is_409_not_500(create, monkeypatch):
    """Both saves pass the 'is the name free' check; the second loses on the unique index."""
    create(name="Welcome")
    monkeypatch.setattr(workflows, "_ensure_name_free", lambda *args, **kwargs: None)

    error = assert_error(create(name="Welcome"), 409, "WORKFLOW_NAME_TAKEN")
    assert error["message"] == "Another workflow with this name was saved at the same time."


# --- read ---------------------------------------------------------------------------------------------------------

def test_details_are_truthful_before_any_run(client, staff_headers, create):
    workflow = create(triggerConfig={"source": "web"}).json["workflow"]

    response = client.get(f"/api/v2/workflows/{workflow['id']}", headers=staff_headers)

    assert response.status_code == 200
    assert response.json["workflow"] == workflow
    assert response.json["triggers"] == [{"triggerType": "lead_created", "config": {"source": "web"},
                                          "source": "workflow"}]
    assert response.json["variables"] == [] and response.json["recentExecutions"] == []
    assert response.json["analytics"] == {"totalExecutions": 0, "successfulExecutions": 0, "failedExecutions": 0,
                                          "successRate": None, "avgExecutionTimeMs": None, "lastRunAt": None}
    assert response.json["performance"] == {"basis": "none", "avgDurationMs": None, "p95DurationMs": None,
                                            "runsMeasured": 0}


def test_an_unknown_id_is_workflow_not_found(client, staff_headers):
    error = assert_error(client.get("/api/v2/workflows/nope", headers=staff_headers), 404, "WORKFLOW_NOT_FOUND")
    assert error["message"] == "Workflow not found."


# --- update -------------------------------------------------------------------------------------------------------

def test_update_is_partial(create, put):
    before = create(name="Welcome", description="Old", category="Leads", tags=["sms"]).json["workflow"]

    response = put(before["id"], {"description": "New", "tags": ["email"]})

    assert response.status_code == 200
    assert set(response.json) == {"workflow", "validationResults", "migrationWarnings"}
    after = response.json["workflow"]
    assert (after["description"], after["tags"]) == ("New", ["email"])
    unchanged = {k: v for k, v in before.items() if k not in {"description", "tags", "updatedAt"}}
    assert {k: after[k] for k in unchanged} == unchanged
    assert datetime.fromisoformat(after["updatedAt"]) > datetime.fromisoformat(before["updatedAt"])
    assert response.json["migrationWarnings"] == []


def test_an_empty_update_changes_nothing(create, put):
    before = create().json["workflow"]

    response = put(before["id"], {})

    assert response.status_code == 200 and response.json["workflow"]["version"] == 1
    assert {k: v for k, v in response.json["workflow"].items() if k != "updatedAt"} == {
        k: v for k, v in before.items() if k != "updatedAt"}


def test_update_can_clear_optional_fields(create, put):
    workflow = create(description="Something", category="Leads").json["workflow"]

    after = put(workflow["id"], {"description": None, "category": None}).json["workflow"]

    assert (after["description"], after["category"]) == (None, None)


@pytest.mark.parametrize("body, field, message", [
    ({"status": "deleted"}, "status", "Must be one of: draft, active, paused, archived."),
    ({"name": ""}, "name", "Must not be blank."),
    ({"name": "x" * 121}, "name", "Longer than maximum length 120."),
    ({"templateId": "t1"}, "templateId", "Unknown field."),
    ({"version": 5}, "version", "Unknown field."),
    ({"workflowData": None}, "workflowData", "Field may not be null."),
])
def test_update_is_validated(create, put, body, field, message):
    workflow = create().json["workflow"]

    assert validation(put(workflow["id"], body)) == {field: message}


def test_renaming_onto_a_taken_name_is_409(create, put):
    create(name="Welcome")
    other = create(name="Win-back").json["workflow"]

    assert_error(put(other["id"], {"name": "welcome"}), 409, "WORKFLOW_NAME_TAKEN")
    assert put(other["id"], {"name": "WIN-BACK"}).json["workflow"]["name"] == "WIN-BACK"  # its own name, recased


def test_malformed_workflow_data_in_an_update_changes_nothing(create, put, client, staff_headers):
    workflow = create(description="Before").json["workflow"]

    response = put(workflow["id"], {"description": "After", "workflowData": {"nodes": "a"}})

    assert_error(response, 422, "INVALID_WORKFLOW_DATA")
    reread = client.get(f"/api/v2/workflows/{workflow['id']}", headers=staff_headers).json["workflow"]
    assert reread["description"] == "Before"


# --- versions -----------------------------------------------------------------------------------------------------

def test_editing_a_draft_keeps_its_version(create, put):
    workflow = create().json["workflow"]

    response = put(workflow["id"], {"workflowData": factories.definition("a", "b", "c")})

    assert response.json["workflow"]["version"] == 1 and response.json["migrationWarnings"] == []
    assert versions(workflow["id"]) == []


def test_activating_publishes_the_current_version(create, put):
    workflow = create().json["workflow"]

    response = put(workflow["id"], {"status": "active"})

    assert response.json["workflow"]["status"] == "active"
    assert response.json["migrationWarnings"] == ["The workflow is active: its trigger starts runs from now on."]
    assert versions(workflow["id"]) == [(1, ["a", "b"])]


def test_changing_an_active_workflow_s_definition_makes_a_new_version(create, put):
    workflow = create(status="active").json["workflow"]
    assert versions(workflow["id"]) == [(1, ["a", "b"])]

    response = put(workflow["id"], {"workflowData": factories.definition("a", "b", "c")})

    assert response.status_code == 200
    assert response.json["workflow"]["version"] == 2
    assert response.json["migrationWarnings"] == [
        "workflowData changed, so this is now version 2. New runs use version 2; the 0 run(s) in flight keep "
        "running version 1 to the end."]
    assert versions(workflow["id"]) == [(1, ["a", "b"]), (2, ["a", "b", "c"])]
    assert put(workflow["id"], {"workflowData": factories.definition("a", "b", "c", "d")}).json[
        "workflow"]["version"] == 3


@pytest.mark.parametrize("body", [{"workflowData": factories.definition("a", "b")}, {"name": "Renamed"},
                                  {"tags": ["x"], "description": "New words", "category": "Leads"},
                                  {"triggerType": "lead_created", "settings": {}}])
def test_an_active_workflow_keeps_its_version_when_the_definition_does_not_change(create, put, body):
    workflow = create(status="active").json["workflow"]

    response = put(workflow["id"], body)

    assert response.json["workflow"]["version"] == 1 and response.json["migrationWarnings"] == []
    assert versions(workflow["id"]) == [(1, ["a", "b"])]


@pytest.mark.parametrize("body, changed", [
    ({"settings": {"quietHours": True}}, "settings"),
    ({"triggerType": "form_submitted", "triggerConfig": {"formId": "f1"}}, "triggerType, triggerConfig")])
def test_changing_an_active_workflow_s_trigger_or_settings_makes_a_new_version(create, put, body, changed):
    workflow = create(status="active").json["workflow"]

    response = put(workflow["id"], body)

    assert response.json["workflow"]["version"] == 2
    assert response.json["migrationWarnings"][0].startswith(f"{changed} changed, so this is now version 2.")
    assert [v for v, _ in versions(workflow["id"])] == [1, 2]


def test_an_active_workflow_cannot_take_a_definition_with_errors(create, put):
    workflow = create(status="active").json["workflow"]
    broken = {"nodes": [{"id": "a", "type": "wait"}, {"id": "b", "type": "wait"}], "edges": []}

    response = put(workflow["id"], {"workflowData": broken})

    assert_error(response, 422, "INVALID_WORKFLOW_DATA")
    assert versions(workflow["id"]) == [(1, ["a", "b"])]
    assert put(workflow["id"], {"workflowData": broken, "status": "paused"}).status_code == 200  # paused: allowed


def test_pausing_warns_and_does_not_publish(create, put):
    workflow = create(status="active").json["workflow"]

    response = put(workflow["id"], {"status": "paused", "workflowData": factories.definition("x")})

    assert response.json["workflow"]["status"] == "paused"
    assert response.json["migrationWarnings"][-1] == (
        "The workflow is paused: its trigger starts no new runs until it is activated again.")
    assert response.json["workflow"]["version"] == 2
    assert versions(workflow["id"]) == [(1, ["a", "b"])]  # version 2 is published when it is activated
    put(workflow["id"], {"status": "active"})
    assert versions(workflow["id"]) == [(1, ["a", "b"]), (2, ["x"])]


# --- archive ------------------------------------------------------------------------------------------------------

def test_delete_archives(client, staff_headers, create):
    workflow = create(name="Welcome", status="active").json["workflow"]

    response = client.delete(f"/api/v2/workflows/{workflow['id']}", headers=staff_headers)

    assert response.status_code == 200
    assert response.json["success"] is True and response.json["affectedExecutions"] == 0
    archived = response.json["archivedWorkflow"]
    assert {k: archived[k] for k in ("id", "name", "status", "previousStatus")} == {
        "id": workflow["id"], "name": "Welcome", "status": "archived", "previousStatus": "active"}
    assert datetime.fromisoformat(archived["archivedAt"]).tzinfo is not None
    reread = client.get(f"/api/v2/workflows/{workflow['id']}", headers=staff_headers).json["workflow"]
    assert (reread["status"], reread["archivedAt"]) == ("archived", archived["archivedAt"])


def test_archived_workflows_leave_the_default_list_but_show_when_asked_for(client, staff_headers, create):
    kept = create(name="Kept").json["workflow"]
    gone = create(name="Gone").json["workflow"]
    client.delete(f"/api/v2/workflows/{gone['id']}", headers=staff_headers)

    default = client.get("/api/v2/workflows", headers=staff_headers).json
    archived = client.get("/api/v2/workflows?status=archived", headers=staff_headers).json

    assert [w["id"] for w in default["workflows"]] == [kept["id"]] and default["pagination"]["total"] == 1
    assert [w["id"] for w in archived["workflows"]] == [gone["id"]]
    assert default["filters"]["statuses"] == ["draft", "archived"]


def test_archiving_twice_is_harmless(client, staff_headers, create):
    workflow = create().json["workflow"]
    first = client.delete(f"/api/v2/workflows/{workflow['id']}", headers=staff_headers).json["archivedWorkflow"]

    second = client.delete(f"/api/v2/workflows/{workflow['id']}", headers=staff_headers)

    assert second.status_code == 200
    assert second.json["archivedWorkflow"]["previousStatus"] == "archived"
    assert second.json["archivedWorkflow"]["archivedAt"] == first["archivedAt"]


def test_archiving_frees_the_name_and_restoring_needs_it_free(client, staff_headers, create, put):
    old = create(name="Welcome").json["workflow"]
    client.delete(f"/api/v2/workflows/{old['id']}", headers=staff_headers)
    assert create(name="Welcome").status_code == 201

    error = assert_error(put(old["id"], {"status": "draft"}), 409, "WORKFLOW_NAME_TAKEN")

    assert error["details"] == {"field": "name"}
    restored = put(old["id"], {"status": "draft", "name": "Welcome (old)"}).json["workflow"]
    assert (restored["status"], restored["archivedAt"]) == ("draft", None)


def test_archiving_through_put_also_records_when(create, put):
    workflow = create().json["workflow"]

    response = put(workflow["id"], {"status": "archived"})

    assert response.json["workflow"]["archivedAt"] is not None
    assert response.json["migrationWarnings"] == [
        "The workflow is archived: its trigger starts no new runs and it leaves the default list."]


def test_the_version_warning_counts_the_runs_in_flight(create, put, org):
    from atlas.extensions import db
    from atlas.models import Execution

    workflow = create(status="active").json["workflow"]
    db.session.add_all([Execution(organization_id=org.id, workflow_id=workflow["id"], version=1, status=status,
                                  test_mode=test) for status, test in
                        [("waiting", False), ("queued", False), ("completed", False), ("waiting", True)]])
    db.session.commit()

    warnings = put(workflow["id"], {"workflowData": factories.definition("a", "c")}).json["migrationWarnings"]
    assert "the 2 run(s) in flight keep running version 1 to the end" in warnings[0]
