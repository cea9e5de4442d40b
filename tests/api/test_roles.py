"""Roles: owner > admin > staff > viewer. Viewers read, staff and up change workflows, admins and owners audit."""
import re

import pytest

from atlas.extensions import db
from atlas.models import Membership, Workflow
from tests import factories
from tests.api.helpers import assert_error

ROLES = ["owner", "admin", "staff", "viewer"]


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Welcome")


def mutating_routes(app):
    """Every (method, path) of /api/v2 that changes something in an organization, ids filled with `{id}`."""
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if not rule.rule.startswith("/api/v2/") or getattr(getattr(view, "view_class", view), "atlas_access",
                                                            "org") != "org":
            continue
        safe = getattr(getattr(view, "view_class", view), "atlas_safe", ())
        role = getattr(getattr(view, "view_class", view), "atlas_role", None) or "staff"
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"} - set(safe)):
            yield method, re.sub(r"<[^>]+>", "{id}", rule.rule), role


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_workflows(client, member, workflow, role):
    _, headers = member(role)

    assert client.get("/api/v2/workflows", headers=headers).json["pagination"]["total"] == 1
    assert client.get(f"/api/v2/workflows/{workflow.id}", headers=headers).status_code == 200


def test_a_viewer_can_change_nothing(app, client, member, workflow):
    _, headers = member("viewer")
    routes = list(mutating_routes(app))
    assert {m for m, _, _ in routes} == {"POST", "PUT", "PATCH", "DELETE"}
    assert {r for _, _, r in routes} == {"staff", "admin"}  # the organization's secrets need admin

    for method, path, role in routes:
        body = factories.workflow_body() if method == "POST" else {"name": "Renamed"} if method == "PUT" else None
        response = client.open(path.format(id=workflow.id), method=method, headers=headers, json=body)

        error = assert_error(response, 403, "INSUFFICIENT_PERMISSIONS")
        assert error["message"] == f"This action needs the {role} role or higher; your role here is viewer."

    db.session.expire_all()
    assert [(w.name, w.status) for w in db.session.scalars(db.select(Workflow))] == [("Welcome", "draft")]


def test_the_permission_check_comes_before_the_body_is_looked_at(client, member):
    _, headers = member("viewer")

    response = client.post("/api/v2/workflows", headers=headers, data="{", content_type="application/json")

    assert_error(response, 403, "INSUFFICIENT_PERMISSIONS")


@pytest.mark.parametrize("role", ["owner", "admin", "staff"])
def test_staff_and_up_create_update_and_archive(client, member, role):
    _, headers = member(role)

    created = client.post("/api/v2/workflows", headers=headers, json=factories.workflow_body(name="Mine"))
    workflow_id = created.json["workflow"]["id"]
    updated = client.put(f"/api/v2/workflows/{workflow_id}", headers=headers, json={"description": "Edited"})
    archived = client.delete(f"/api/v2/workflows/{workflow_id}", headers=headers)

    assert (created.status_code, updated.status_code, archived.status_code) == (201, 200, 200)


@pytest.mark.parametrize("role, status", [("owner", 200), ("admin", 200), ("staff", 403), ("viewer", 403)])
def test_only_admins_and_owners_read_the_audit_log(client, member, role, status):
    _, headers = member(role)

    response = client.get("/api/v2/audit-logs", headers=headers)

    if status == 200:
        assert response.status_code == 200 and "auditLogs" in response.json
    else:
        error = assert_error(response, 403, "INSUFFICIENT_PERMISSIONS")
        assert error["message"] == f"This action needs the admin role or higher; your role here is {role}."


def test_the_role_is_the_one_in_the_organization_named_by_the_header(client, org, other_org, member, workflow):
    viewer, viewer_headers = member("viewer")
    db.session.add(Membership(user_id=viewer.id, organization_id=other_org.id, role="owner"))
    db.session.commit()

    response = client.put(f"/api/v2/workflows/{workflow.id}", headers=viewer_headers, json={"name": "Renamed"})

    assert_error(response, 403, "INSUFFICIENT_PERMISSIONS")  # an owner elsewhere is still a viewer here


@pytest.mark.parametrize("role", ROLES)
def test_role_ranks(org, role):
    member = Membership(organization_id=org.id, user_id="u", role=role)

    assert [r for r in ROLES if member.allows(r)] == ROLES[ROLES.index(role):]
