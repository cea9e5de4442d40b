"""/api/v2/triggers, /api/v2/config/triggers and the enrollment decision log, through the HTTP API."""
from datetime import datetime, timedelta, timezone

import pytest

from atlas.extensions import db
from atlas.models import ContactTag, CustomField, Event, Form, LeadSource, TriggerFire
from atlas.models.base import utcnow
from atlas.services import enrollment
from tests import factories
from tests.api.helpers import assert_error, missing_id, without_timestamp


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Trial follow-up", trigger_type="form_submitted",
                                   trigger_config={"formId": "frm_trial"}, status="active")


@pytest.fixture
def api(client, staff_headers):
    def call(method, url, **kwargs):
        return getattr(client, method)(f"/api/v2{url}", headers=staff_headers, **kwargs)
    return call


def add(api, workflow, **body):
    body.setdefault("triggerType", "tag_added")
    body.setdefault("config", {"tag": "trial"})
    return api("post", f"/triggers/{workflow.id}", json=body)


# --- definitions ----------------------------------------------------------------------------------------------

def test_definitions_list_the_catalog_with_schemas_and_samples(api):
    response = api("get", "/triggers/definitions")

    assert response.status_code == 200 and set(response.json) == {"triggers", "categories", "customTriggers"}
    triggers = {t["type"]: t for t in response.json["triggers"]}
    assert len(triggers) == 14 and response.json["customTriggers"] == []
    lead = triggers["lead_created"]
    assert (lead["category"], lead["name"], lead["eventType"], lead["dateBased"]) == (
        "leads", "Lead created", "lead_created", False)
    assert lead["configSchema"]["properties"]["leadSources"]["type"] == "array"
    assert lead["samplePayload"]["leadSource"] == "website" and "trigger.leadSource" in lead["provides"]
    assert triggers["membership_expiring"]["dateBased"] and triggers["schedule"]["scheduled"]
    assert {c["key"]: c["count"] for c in response.json["categories"]}["classes"] == 3


def test_definitions_need_a_signed_in_member(client):
    assert_error(client.get("/api/v2/triggers/definitions"), 401, "UNAUTHENTICATED")


# --- a workflow's triggers -------------------------------------------------------------------------------------

def test_a_workflow_s_primary_trigger_comes_first(api, workflow):
    response = api("get", f"/triggers/{workflow.id}")

    assert response.status_code == 200
    assert set(response.json) == {"triggers", "webhookEndpoints", "scheduledTriggers"}
    [primary] = response.json["triggers"]
    assert (primary["id"], primary["primary"], primary["triggerType"], primary["config"], primary["active"]) == (
        "primary", True, "form_submitted", {"formId": "frm_trial"}, True)
    assert (primary["triggerName"], primary["scheduleType"]) == ("Form submitted", "immediate")
    assert response.json["webhookEndpoints"] == [] and response.json["scheduledTriggers"] == []


def test_adding_a_trigger_returns_it_and_lists_it_after_the_primary(api, workflow, staff):
    response = add(api, workflow, triggerName="Trial tag")

    assert response.status_code == 201, response.json
    assert set(response.json) == {"trigger", "webhookEndpoint", "validationResults"}
    trigger = response.json["trigger"]
    assert (trigger["triggerType"], trigger["triggerName"], trigger["config"], trigger["scheduleType"],
            trigger["primary"], trigger["active"], trigger["workflowId"]) == (
        "tag_added", "Trial tag", {"tag": "trial"}, "immediate", False, True, workflow.id)
    assert response.json["webhookEndpoint"] is None and response.json["validationResults"] == []
    listed = api("get", f"/triggers/{workflow.id}").json["triggers"]
    assert [t["id"] for t in listed] == ["primary", trigger["id"]]


def test_the_new_trigger_enrolls_contacts(api, workflow, org):
    trigger = add(api, workflow).json["trigger"]
    contact = factories.make_contact(org)
    event = Event(organization_id=org.id, type="tag_added", contact_id=contact.id, payload={"tag": "trial"})
    db.session.add(event)
    db.session.commit()

    [decision] = enrollment.evaluate_event(org.id, event)

    assert (decision.outcome, decision.trigger_key) == ("enrolled", trigger["id"])


def test_advice_for_a_draft_workflow_and_a_webhook(api, org, staff):
    draft = factories.make_workflow(org, staff, name="Draft")
    response = add(api, draft, triggerType="webhook", config={})
    codes = [r["code"] for r in response.json["validationResults"]]
    assert response.status_code == 201 and codes == ["WORKFLOW_NOT_ACTIVE", "WEBHOOK_ENDPOINT_NEEDED"]
    assert response.json["webhookEndpoint"] is None
    assert api("get", f"/triggers/{draft.id}").json["webhookEndpoints"] == []
    unknown = add(api, draft, triggerType="webhook", triggerName="Other", config={"endpointId": "wh_nope"})
    assert [r["code"] for r in unknown.json["validationResults"]] == ["WORKFLOW_NOT_ACTIVE",
                                                                      "WEBHOOK_ENDPOINT_NOT_FOUND"]


def test_the_webhook_endpoints_that_reach_a_workflow_are_listed_with_how(api, org, staff, other_org):
    flow = factories.make_workflow(org, staff, name="Website form")
    starts, _ = factories.make_webhook(org, name="Starts it", workflow_id=flow.id)
    heard, _ = factories.make_webhook(org, name="Heard by its trigger")
    factories.make_webhook(org, name="Elsewhere", workflow_id=factories.make_workflow(org, staff, name="Other").id)
    factories.make_webhook(other_org, name="Another gym's")
    assert api("get", f"/triggers/{flow.id}").json["webhookEndpoints"] == [
        {"id": starts.id, "name": "Starts it", "active": True, "reachesBy": "workflow",
         "endpointUrl": f"http://localhost/api/v2/webhooks/receive/{starts.id}"}]

    named = add(api, flow, triggerType="webhook", config={"endpointId": heard.id})
    assert named.json["webhookEndpoint"] == f"http://localhost/api/v2/webhooks/receive/{heard.id}"
    assert [r["code"] for r in named.json["validationResults"]] == ["WORKFLOW_NOT_ACTIVE"]
    listed = api("get", f"/triggers/{flow.id}").json["webhookEndpoints"]
    assert sorted((e["name"], e["reachesBy"]) for e in listed) == [("Heard by its trigger", "trigger"),
                                                                   ("Starts it", "workflow")]
    add(api, flow, triggerType="webhook", triggerName="Any endpoint", config={})  # listens on every endpoint
    listed = api("get", f"/triggers/{flow.id}").json["webhookEndpoints"]
    assert sorted(e["name"] for e in listed) == ["Elsewhere", "Heard by its trigger", "Starts it"]


def test_a_cron_trigger_is_listed_with_its_next_and_last_run(api, org, workflow):
    org.timezone = "America/New_York"
    db.session.commit()
    trigger = add(api, workflow, triggerType="schedule", config={}, scheduleType="cron",
                  cronExpression="0 9 * * 1").json["trigger"]
    assert (trigger["scheduleType"], trigger["cronExpression"]) == ("cron", "0 9 * * 1")
    assert trigger["config"] == {"scheduleType": "cron", "cronExpression": "0 9 * * 1"}
    fired = utcnow() - timedelta(days=3)
    db.session.add(TriggerFire(organization_id=org.id, workflow_id=workflow.id, trigger_key=trigger["id"],
                               occurrence="x", fired_at=fired))
    db.session.commit()

    [scheduled] = api("get", f"/triggers/{workflow.id}").json["scheduledTriggers"]

    assert (scheduled["triggerId"], scheduled["cronExpression"]) == (trigger["id"], "0 9 * * 1")
    assert datetime.fromisoformat(scheduled["lastRunAt"]) == fired
    next_run = datetime.fromisoformat(scheduled["nextRunAt"])
    local = next_run.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0) and next_run.utcoffset() == timedelta(0)
    assert utcnow() < next_run <= utcnow() + timedelta(days=7)


def test_a_recurring_trigger_counts_from_its_start(api, org, workflow):
    trigger = add(api, workflow, triggerType="schedule", scheduleType="recurring",
                  config={"every": {"amount": 1, "unit": "days"}, "startAt": "2026-01-05T07:15:00"}).json["trigger"]
    assert (trigger["scheduleType"], trigger["cronExpression"]) == ("recurring", None)
    assert trigger["config"]["scheduleType"] == "recurring"
    [scheduled] = api("get", f"/triggers/{workflow.id}").json["scheduledTriggers"]
    next_run = datetime.fromisoformat(scheduled["nextRunAt"])
    assert (next_run.hour, next_run.minute) == (7, 15) and utcnow() < next_run <= utcnow() + timedelta(days=1)
    assert scheduled["lastRunAt"] is None


def test_a_schedule_primary_trigger_is_a_scheduled_trigger(api, org, staff):
    timed = factories.make_workflow(org, staff, name="Weekly", trigger_type="schedule", trigger_config={
        "scheduleType": "cron", "cronExpression": "30 6 * * *"})
    response = api("get", f"/triggers/{timed.id}")
    assert response.json["triggers"][0]["scheduleType"] == "cron"
    assert [s["triggerId"] for s in response.json["scheduledTriggers"]] == ["primary"]
    assert datetime.fromisoformat(response.json["scheduledTriggers"][0]["nextRunAt"]).minute == 30


@pytest.mark.parametrize("body, code, field", [
    ({"triggerType": "teleport", "config": {}}, "UNKNOWN_TRIGGER_TYPE", "triggerType"),
    ({"config": {"tag": 7}}, "INVALID_TRIGGER_CONFIG", "config.tag"),
    ({"config": {}}, "INVALID_TRIGGER_CONFIG", "config.tag"),
    ({"triggerType": "lead_created", "config": {"leadSources": "website"}}, "INVALID_TRIGGER_CONFIG",
     "config.leadSources"),
    ({"scheduleType": "cron"}, "INVALID_TRIGGER_CONFIG", "scheduleType"),
    ({"triggerType": "birthday", "config": {}, "scheduleType": "immediate"}, "INVALID_TRIGGER_CONFIG", "scheduleType"),
    ({"triggerType": "schedule", "config": {}, "scheduleType": "recurring"}, "INVALID_TRIGGER_CONFIG", "config.every"),
    ({"triggerType": "schedule", "config": {}, "scheduleType": "cron"}, "INVALID_CRON_EXPRESSION", "cronExpression"),
    ({"triggerType": "schedule", "config": {}, "scheduleType": "cron", "cronExpression": "0 25 * * *"},
     "INVALID_CRON_EXPRESSION", "cronExpression"),
    ({"triggerType": "schedule", "config": {"scheduleType": "cron", "cronExpression": "every monday"}},
     "INVALID_CRON_EXPRESSION", "config.cronExpression"),
])
def test_bad_triggers_are_refused_with_a_precise_code(api, workflow, body, code, field):
    response = add(api, workflow, **body)
    error = assert_error(response, 422, code)
    assert field in [item["field"] for item in response.json["validation"]], response.json
    assert error["message"]
    if code == "INVALID_TRIGGER_CONFIG" and field.startswith("config"):
        assert error["details"]["path"] == field


def test_request_shape_errors_are_validation_failures(api, workflow):
    response = add(api, workflow, scheduleType="hourly")
    assert_error(response, 422, "VALIDATION_FAILED")
    assert_error(add(api, workflow, triggerType="Not A Type"), 422, "VALIDATION_FAILED")


def test_an_unknown_or_foreign_workflow_is_not_found_alike(api, client, staff_headers, foreign_workflow):
    missing = api("get", f"/triggers/{missing_id()}")
    foreign = api("get", f"/triggers/{foreign_workflow.id}")
    assert_error(missing, 404, "WORKFLOW_NOT_FOUND") and assert_error(foreign, 404, "WORKFLOW_NOT_FOUND")
    assert without_timestamp(missing).replace(missing.headers["X-Request-ID"].encode(), b"") == \
        without_timestamp(foreign).replace(foreign.headers["X-Request-ID"].encode(), b"")
    assert_error(add(api, foreign_workflow), 404, "WORKFLOW_NOT_FOUND")
    assert_error(api("put", f"/triggers/{foreign_workflow.id}/{missing_id()}", json={}), 404, "WORKFLOW_NOT_FOUND")
    assert_error(api("delete", f"/triggers/{foreign_workflow.id}/{missing_id()}"), 404, "WORKFLOW_NOT_FOUND")


def test_a_foreign_trigger_is_not_found(api, client, workflow, foreign_workflow, outsider_headers):
    theirs = client.post(f"/api/v2/triggers/{foreign_workflow.id}", headers=outsider_headers,
                         json={"triggerType": "manual"}).json["trigger"]
    assert_error(api("put", f"/triggers/{workflow.id}/{theirs['id']}", json={"triggerName": "Mine"}), 404,
                 "TRIGGER_NOT_FOUND")
    assert_error(api("delete", f"/triggers/{workflow.id}/{theirs['id']}"), 404, "TRIGGER_NOT_FOUND")


def test_a_trigger_of_another_workflow_is_not_found_under_this_one(api, org, staff, workflow):
    other = factories.make_workflow(org, staff, name="Other")
    trigger = add(api, other).json["trigger"]
    assert_error(api("delete", f"/triggers/{workflow.id}/{trigger['id']}"), 404, "TRIGGER_NOT_FOUND")
    assert_error(api("delete", f"/triggers/{workflow.id}/{missing_id()}"), 404, "TRIGGER_NOT_FOUND")


def test_updating_a_trigger(api, workflow):
    trigger = add(api, workflow).json["trigger"]

    response = api("put", f"/triggers/{workflow.id}/{trigger['id']}",
                   json={"triggerName": "VIP tag", "config": {"tag": "vip"}, "active": False})

    assert response.status_code == 200, response.json
    updated = response.json["trigger"]
    assert (updated["triggerName"], updated["config"], updated["active"]) == ("VIP tag", {"tag": "vip"}, False)
    assert [r["code"] for r in response.json["validationResults"]] == ["TRIGGER_INACTIVE"]
    changed = api("put", f"/triggers/{workflow.id}/{trigger['id']}", json={"triggerType": "class_missed"}).json
    assert (changed["trigger"]["triggerType"], changed["trigger"]["config"]) == ("class_missed", {})
    assert_error(api("put", f"/triggers/{workflow.id}/{trigger['id']}", json={"config": {"className": 3}}), 422,
                 "INVALID_TRIGGER_CONFIG")


def test_the_primary_trigger_is_changed_on_the_workflow_not_here(api, workflow):
    error = assert_error(api("delete", f"/triggers/{workflow.id}/primary"), 409, "PRIMARY_TRIGGER")
    assert "triggerType" in error["message"] and f"/api/v2/workflows/{workflow.id}" in error["message"]
    assert_error(api("put", f"/triggers/{workflow.id}/primary", json={"triggerName": "x"}), 409, "PRIMARY_TRIGGER")


def test_deleting_a_trigger(api, workflow):
    trigger = add(api, workflow).json["trigger"]
    response = api("delete", f"/triggers/{workflow.id}/{trigger['id']}")
    assert response.status_code == 200 and response.json == {"success": True, "triggerId": trigger["id"]}
    assert [t["id"] for t in api("get", f"/triggers/{workflow.id}").json["triggers"]] == ["primary"]
    assert_error(api("delete", f"/triggers/{workflow.id}/{trigger['id']}"), 404, "TRIGGER_NOT_FOUND")


def test_viewers_read_triggers_but_cannot_change_them(client, member, workflow):
    _, viewer = member("viewer")
    assert client.get(f"/api/v2/triggers/{workflow.id}", headers=viewer).status_code == 200
    response = client.post(f"/api/v2/triggers/{workflow.id}", headers=viewer,
                           json={"triggerType": "manual", "config": {}})
    assert_error(response, 403, "INSUFFICIENT_PERMISSIONS")


# --- the workflow's own trigger and settings are checked against the catalog -------------------------------------

def test_a_workflow_cannot_go_live_with_a_bad_trigger_config_or_rules(api):
    body = factories.workflow_body(triggerType="form_submitted", triggerConfig={}, status="active",
                                   settings={"reenrollment": "after_days"})
    response = api("post", "/workflows", json=body)
    assert_error(response, 422, "INVALID_WORKFLOW_DATA")
    paths = {item["path"] for item in response.json["validation"]}
    assert paths == {"triggerConfig.formId", "settings.reenrollmentDays"}

    draft = api("post", "/workflows", json={**body, "status": "draft"})
    assert draft.status_code == 201
    assert {r["code"] for r in draft.json["validationResults"]} == {"INVALID_TRIGGER_CONFIG", "INVALID_SETTINGS"}


def test_a_live_workflow_s_trigger_cannot_be_broken_by_an_update(api, workflow):
    response = api("put", f"/workflows/{workflow.id}", json={"triggerConfig": {"formId": ""}})
    assert_error(response, 422, "INVALID_WORKFLOW_DATA")
    response = api("put", f"/workflows/{workflow.id}", json={"triggerType": "teleport"})
    assert response.json["validation"][0]["code"] == "UNKNOWN_TRIGGER_TYPE"
    assert api("put", f"/workflows/{workflow.id}", json={"settings": {"reenrollment": "never"}}).status_code == 200


# --- configuration options -------------------------------------------------------------------------------------

def test_config_triggers_lists_the_organization_s_options(api, org, other_org):
    db.session.add_all([LeadSource(organization_id=org.id, key="website", name="Website"),
                        LeadSource(organization_id=org.id, key="walk_in", name="Walk-in"),
                        LeadSource(organization_id=other_org.id, key="rival", name="Rival"),
                        Form(organization_id=org.id, name="Free trial pass", fields=[{"key": "goal"}]),
                        CustomField(organization_id=org.id, key="goal", label="Fitness goal", field_type="select",
                                    options=["strength", "weight loss"])])
    db.session.commit()
    factories.make_contact(org, tags=["trial", "vip"])
    factories.make_contact(org, tags=["trial"])
    factories.make_contact(other_org, tags=["rival-only"])

    response = api("get", "/config/triggers")

    assert response.status_code == 200
    body = response.json
    assert set(body) == {"availableTriggers", "leadSources", "formsList", "tagsList", "customFields"}
    assert len(body["availableTriggers"]) == 14
    assert [s["key"] for s in body["leadSources"]] == ["walk_in", "website"]
    assert [(f["name"], f["fields"]) for f in body["formsList"]] == [("Free trial pass", [{"key": "goal"}])]
    assert body["tagsList"] == [{"tag": "trial", "count": 2}, {"tag": "vip", "count": 1}]
    assert body["customFields"][0] | {"id": None} == {"id": None, "key": "goal", "label": "Fitness goal",
                                                       "fieldType": "select", "options": ["strength", "weight loss"]}
    assert db.session.query(ContactTag).count() == 4


# --- the enrollment decision log -------------------------------------------------------------------------------

def evaluate(org, contact, kind="form_submitted", payload=None):
    event = Event(organization_id=org.id, type=kind, contact_id=contact.id,
                  payload=payload if payload is not None else {"formId": "frm_trial"})
    db.session.add(event)
    db.session.commit()
    return event, enrollment.evaluate_event(org.id, event)


def test_the_decision_log_answers_why_and_why_not(api, org, workflow):
    sarah, tom = factories.make_contact(org, first_name="Sarah"), factories.make_contact(org, first_name="Tom")
    event, [enrolled] = evaluate(org, sarah)
    evaluate(org, tom, payload={"formId": "frm_contact", "formName": "Contact us"})

    response = api("get", f"/workflows/{workflow.id}/enrollment-decisions?contactId={tom.id}")

    assert response.status_code == 200
    [decision] = response.json["decisions"]
    assert set(decision) == {"id", "workflowId", "contactId", "eventId", "eventType", "triggerKey", "outcome",
                             "reason", "detail", "executionId", "createdAt"}
    assert (decision["outcome"], decision["contactId"], decision["eventType"], decision["triggerKey"]) == (
        "trigger_mismatch", tom.id, "form_submitted", "primary")
    assert decision["reason"] == "The form submitted is 'frm_contact' ('Contact us'); this trigger waits for form " \
                                 "'frm_trial'."
    assert response.json["pagination"] == {"total": 1, "page": 1, "limit": 20, "totalPages": 1}

    mine = api("get", f"/workflows/{workflow.id}/enrollment-decisions?contactId={sarah.id}&outcome=enrolled")
    [row] = mine.json["decisions"]
    assert (row["eventId"], row["executionId"]) == (event.id, enrolled.execution_id)
    everything = api("get", f"/workflows/{workflow.id}/enrollment-decisions?limit=1&page=2").json
    assert len(everything["decisions"]) == 1 and everything["pagination"]["total"] == 2


@pytest.mark.parametrize("query, field", [("limit=101", "limit"), ("outcome=maybe", "outcome"), ("page=0", "page")])
def test_the_decision_log_query_is_checked(api, workflow, query, field):
    response = api("get", f"/workflows/{workflow.id}/enrollment-decisions?{query}")
    assert_error(response, 422, "VALIDATION_FAILED")
    assert response.json["validation"][0]["field"] == field


def test_another_organization_s_decision_log_is_not_found(api, foreign_workflow, other_org):
    assert_error(api("get", f"/workflows/{foreign_workflow.id}/enrollment-decisions"), 404, "WORKFLOW_NOT_FOUND")
    assert_error(api("get", f"/workflows/{missing_id()}/enrollment-decisions"), 404, "WORKFLOW_NOT_FOUND")


def test_times_are_utc(api, org, workflow):
    evaluate(org, factories.make_contact(org))
    created = api("get", f"/workflows/{workflow.id}/enrollment-decisions").json["decisions"][0]["createdAt"]
    assert datetime.fromisoformat(created).utcoffset() == timezone.utc.utcoffset(None)
