"""Organizations never see each other: another organization's id answers exactly as a missing one does."""
import re

import pytest

from atlas.extensions import db
from atlas.models import Execution, Membership, Organization, Workflow
from tests import factories
from tests.api.helpers import assert_error, missing_id, without_timestamp

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
NOT_AN_ID = {"action_type"}  # a step type's key, the same for every organization
PUBLIC = {"/api/v2/webhooks/receive/<endpoint_id>"}  # no organization: the signature is the credential (own tests)
# What another organization's (or a missing) id answers, by the URL argument it stands in.
NOT_FOUND = {"workflow_id": "WORKFLOW_NOT_FOUND", "execution_id": "EXECUTION_NOT_FOUND",
             "job_id": "EXECUTION_NOT_FOUND", "contact_id": "CONTACT_NOT_FOUND", "trigger_id": "TRIGGER_NOT_FOUND",
             "template_id": "TEMPLATE_NOT_FOUND", "endpoint_id": "WEBHOOK_NOT_FOUND",
             "delivery_id": "WEBHOOK_DELIVERY_NOT_FOUND"}
# A body that would succeed on the caller's own row, per (method, rule); others get {}.
BODIES = {("PUT", "/api/v2/workflows/<workflow_id>"): {"name": "Hijacked", "status": "paused",
                                                       "workflowData": factories.definition("x")},
          ("POST", "/api/v2/workflows/<workflow_id>/test"): {"testData": {}},
          ("POST", "/api/v2/workflows/<workflow_id>/execute/batch"): {"runs": [{}]},
          ("PUT", "/api/v2/contacts/<contact_id>"): {"firstName": "Hijacked"},
          ("POST", "/api/v2/triggers/<workflow_id>"): {"triggerType": "manual", "triggerName": "Hijack",
                                                       "config": {}},
          ("PUT", "/api/v2/triggers/<workflow_id>/<trigger_id>"): {"triggerName": "Hijacked"},
          ("PUT", "/api/v2/config/email-templates/<template_id>"): {"name": "Hijacked"},
          ("PUT", "/api/v2/config/sms-templates/<template_id>"): {"name": "Hijacked"},
          ("PATCH", "/api/v2/webhooks/<endpoint_id>"): {"name": "Hijacked"},
          ("PUT", "/api/v2/webhooks/<endpoint_id>"): {"name": "Hijacked"},
          ("POST", "/api/v2/webhooks/<endpoint_id>/test"): {"payload": {"email": "x@example.com"}},
          ("POST", "/api/v2/webhooks/deliveries/<delivery_id>/replay"): {"live": True}}
ROUTES = {("GET", "/api/v2/workflows/<workflow_id>"), ("PUT", "/api/v2/workflows/<workflow_id>"),
          ("DELETE", "/api/v2/workflows/<workflow_id>"), ("POST", "/api/v2/workflows/<workflow_id>/validate"),
          ("POST", "/api/v2/workflows/<workflow_id>/execute"), ("POST", "/api/v2/workflows/<workflow_id>/test"),
          ("POST", "/api/v2/workflows/<workflow_id>/execute/batch"),
          ("POST", "/api/v2/workflows/<workflow_id>/stream-tickets"), ("POST", "/api/v2/queue/jobs/<job_id>/retry"),
          ("GET", "/api/v2/workflows/<workflow_id>/stream"), ("GET", "/api/v2/workflows/<workflow_id>/executions"),
          ("GET", "/api/v2/workflows/<workflow_id>/executions/<execution_id>"),
          ("POST", "/api/v2/workflows/<workflow_id>/executions/<execution_id>/cancel"),
          ("GET", "/api/v2/workflows/<workflow_id>/enrollment-decisions"),
          ("GET", "/api/v2/contacts/<contact_id>"), ("PUT", "/api/v2/contacts/<contact_id>"),
          ("GET", "/api/v2/triggers/<workflow_id>"), ("POST", "/api/v2/triggers/<workflow_id>"),
          ("PUT", "/api/v2/triggers/<workflow_id>/<trigger_id>"),
          ("DELETE", "/api/v2/triggers/<workflow_id>/<trigger_id>"),
          *((m, f"/api/v2/config/{c}-templates/<template_id>") for m in ("GET", "PUT", "DELETE")
            for c in ("email", "sms")),
          *((m, "/api/v2/webhooks/<endpoint_id>") for m in ("GET", "PATCH", "PUT", "DELETE")),
          ("POST", "/api/v2/webhooks/<endpoint_id>/rotate-secret"),
          ("GET", "/api/v2/webhooks/<endpoint_id>/deliveries"),
          ("POST", "/api/v2/webhooks/<endpoint_id>/test"), ("GET", "/api/v2/webhooks/deliveries/<delivery_id>"),
          ("POST", "/api/v2/webhooks/deliveries/<delivery_id>/replay")}


def routes_with_an_id(app):
    """Every (method, rule) of /api/v2 that addresses one row by id."""
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v2/") and set(rule.arguments) - NOT_AN_ID \
                and not rule.endpoint.startswith("api-docs") and rule.rule not in PUBLIC:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, rule.rule


def call(client, method, rule, ids: dict, headers):
    """Call the route with each URL argument replaced by ids[argument] (in URL order)."""
    url = re.sub(r"<([^>]+)>", lambda m: ids[m.group(1)], rule)
    body = BODIES.get((method, rule), {}) if method in MUTATING else None
    return client.open(url, method=method, headers={**headers, "X-Request-ID": "tenancy"}, json=body)


def test_the_id_routes_are_the_ones_this_file_knows(app):
    """A new endpoint that takes an id is covered by the test below; this fails to make someone look at it."""
    assert set(routes_with_an_id(app)) == ROUTES


@pytest.fixture
def rows(org, staff, foreign_workflow, outsider):
    """One row of each addressable kind in each organization: {"ours": {arg: id}, "theirs": {arg: id}}."""
    from atlas.models import MessageTemplate, WebhookDelivery, WorkflowTrigger

    def make(organization, workflow, user):
        run = Execution(organization_id=organization.id, workflow_id=workflow.id, version=1, status="failed")
        contact = factories.make_contact(organization, first_name="Original")
        trigger = WorkflowTrigger(organization_id=organization.id, workflow_id=workflow.id, trigger_type="manual",
                                  name="Original", config={})
        template = MessageTemplate(organization_id=organization.id, channel="email", name="Original",
                                   subject="Hi", body="Hello")
        endpoint, _ = factories.make_webhook(organization, name="Original", workflow_id=workflow.id)
        delivery = WebhookDelivery(organization_id=organization.id, endpoint_id=endpoint.id, outcome="accepted",
                                   payload={"email": "x@example.com"}, headers={})
        db.session.add_all([run, trigger, template, delivery])
        db.session.commit()
        return {"workflow_id": workflow.id, "execution_id": run.id, "job_id": run.id, "contact_id": contact.id,
                "trigger_id": trigger.id, "template_id": template.id, "endpoint_id": endpoint.id,
                "delivery_id": delivery.id}

    ours = make(org, factories.make_workflow(org, staff, name="Our own"), staff)
    return {"ours": ours, "theirs": make(foreign_workflow.organization_id and
                                         db.session.get(Organization, foreign_workflow.organization_id),
                                         foreign_workflow, outsider)}


def test_every_id_route_answers_another_organization_s_id_exactly_as_a_missing_one(
        app, client, member, foreign_workflow, rows):
    _, owner_headers = member("owner")  # the strongest role, so no call stops at a permission check
    before = (foreign_workflow.name, foreign_workflow.status, foreign_workflow.version, foreign_workflow.archived_at)
    missing = {arg: missing_id() for arg in NOT_FOUND}
    for method, rule in routes_with_an_id(app):
        args = re.findall(r"<([^>]+)>", rule)
        # every id theirs; then our own parents with only the last id theirs (our workflow, their execution)
        for ids, code in ((rows["theirs"], NOT_FOUND[args[0]]), ({**rows["ours"], args[-1]: rows["theirs"][args[-1]]},
                                                                   NOT_FOUND[args[-1]])):
            foreign = call(client, method, rule, ids, owner_headers)
            absent = call(client, method, rule, {**ids, **{a: missing[a] for a in args if ids[a] != rows["ours"][a]}},
                          owner_headers)
            assert_error(foreign, 404, code)
            assert without_timestamp(foreign) == without_timestamp(absent), (method, rule)
            assert foreign.headers["Content-Length"] == absent.headers["Content-Length"]

    db.session.expire_all()
    row = db.session.get(Workflow, foreign_workflow.id)
    assert (row.name, row.status, row.version, row.archived_at) == before
    from atlas.models import Contact, MessageTemplate, WebhookDelivery, WebhookEndpoint, WorkflowTrigger

    theirs = rows["theirs"]
    assert db.session.get(WebhookEndpoint, theirs["endpoint_id"]).name == "Original"
    assert db.session.query(WebhookDelivery).filter_by(endpoint_id=theirs["endpoint_id"]).count() == 1
    assert db.session.get(Contact, theirs["contact_id"]).first_name == "Original"
    assert db.session.get(WorkflowTrigger, theirs["trigger_id"]).name == "Original"
    assert db.session.get(MessageTemplate, theirs["template_id"]).name == "Original"
    assert db.session.get(Execution, theirs["execution_id"]).status == "failed"


def test_a_member_of_both_organizations_reaches_a_row_only_through_its_own_organization(
        client, org, staff, foreign_workflow, other_org):
    db.session.add(Membership(user_id=staff.id, organization_id=other_org.id, role="staff"))
    db.session.commit()
    as_ours, as_theirs = factories.headers(staff, org), factories.headers(staff, other_org)

    assert_error(client.get(f"/api/v2/workflows/{foreign_workflow.id}", headers=as_ours), 404, "WORKFLOW_NOT_FOUND")
    assert client.get(f"/api/v2/workflows/{foreign_workflow.id}", headers=as_theirs).status_code == 200
    assert client.get("/api/v2/workflows", headers=as_ours).json["workflows"] == []


def test_an_organization_the_caller_is_not_in_looks_like_one_that_does_not_exist(client, staff, other_org):
    headers = {**factories.headers(staff), "X-Request-ID": "org-probe"}

    foreign = client.get("/api/v2/workflows", headers={**headers, "X-Organization-ID": other_org.id})
    missing = client.get("/api/v2/workflows", headers={**headers, "X-Organization-ID": missing_id()})

    error = assert_error(foreign, 403, "ORGANIZATION_ACCESS_DENIED")
    assert error["message"] == "You are not a member of this organization."
    assert without_timestamp(foreign) == without_timestamp(missing)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_the_organization_header_is_required(client, staff, value):
    headers = factories.headers(staff)
    if value is not None:
        headers["X-Organization-ID"] = value

    error = assert_error(client.get("/api/v2/workflows", headers=headers), 400, "ORGANIZATION_REQUIRED")
    assert error["message"] == "Send the organization's id in the X-Organization-ID header."


def test_lists_never_show_another_organization_s_workflows_or_filters(client, org, staff, staff_headers,
                                                                      foreign_workflow, other_org, outsider):
    factories.make_workflow(org, staff, name="Our welcome", category="Onboarding", tags=["ours"])
    archived = factories.make_workflow(other_org, outsider, name="Rival archived", category="Old", tags=["rival-old"])
    client.delete(f"/api/v2/workflows/{archived.id}", headers=factories.headers(outsider, other_org))

    listed = client.get("/api/v2/workflows", headers=staff_headers).json
    assert [w["name"] for w in listed["workflows"]] == ["Our welcome"]
    assert listed["pagination"]["total"] == 1
    assert listed["filters"] == {"categories": ["Onboarding"], "tags": ["ours"], "statuses": ["draft"]}
    for query in ("search=rival", "search=poach", "tags=rival-only", "category=Espionage", "status=archived",
                  "tags=rival-old,ours&status=archived", "limit=100&sortBy=name"):
        names = [w["name"] for w in client.get(f"/api/v2/workflows?{query}", headers=staff_headers).json["workflows"]]
        assert not any(name.startswith("Rival") for name in names), query


def test_names_are_unique_per_organization_only(client, staff_headers, foreign_workflow):
    response = client.post("/api/v2/workflows", headers=staff_headers,
                           json=factories.workflow_body(name=foreign_workflow.name))

    assert response.status_code == 201


def test_audit_logs_never_show_another_organization_s_entries(client, org, member, outsider_headers,
                                                              foreign_workflow, other_org, outsider):
    _, admin_headers = member("admin")
    client.post("/api/v2/workflows", headers=outsider_headers, json=factories.workflow_body(name="Theirs"))
    client.put(f"/api/v2/workflows/{foreign_workflow.id}", headers=outsider_headers, json={"description": "x"})
    client.post("/api/v2/auth/token", json={"email": outsider.email, "password": factories.PASSWORD})
    client.post("/api/v2/workflows", headers=admin_headers, json=factories.workflow_body(name="Ours"))

    ours = client.get("/api/v2/audit-logs?limit=100", headers=admin_headers).json["auditLogs"]
    theirs = client.get("/api/v2/audit-logs?limit=100", headers=outsider_headers).json["auditLogs"]

    assert [e["action"] for e in ours] == ["workflow.create"]
    assert {e["organizationId"] for e in ours} == {org.id}
    assert {e["organizationId"] for e in theirs} == {other_org.id}
    assert {e["action"] for e in theirs} == {"workflow.create", "workflow.update", "auth.login"}
    filtered = client.get(f"/api/v2/audit-logs?userId={outsider.id}", headers=admin_headers).json
    assert filtered["auditLogs"] == [] and filtered["pagination"]["total"] == 0
