"""The audit log: every mutating API call and every sign-in, readable at GET /audit-logs by admins and owners."""
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
from sqlalchemy import select

from atlas.extensions import db
from atlas.models import AuditLog, Membership
from tests import factories
from tests.api.helpers import assert_error, validation

IP = {"REMOTE_ADDR": "203.0.113.50"}


@pytest.fixture
def admin(member):
    return member("admin")


def entries(client, headers, query=""):
    response = client.get(f"/api/v2/audit-logs?limit=100{query}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["auditLogs"]


def test_each_workflow_change_is_recorded_with_who_what_where_and_when(client, org, staff, staff_headers, admin):
    _, admin_headers = admin
    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    created = client.post("/api/v2/workflows", headers={**staff_headers, "X-Request-ID": "req-create"},
                          json=factories.workflow_body(name="Welcome"), environ_base=IP)
    workflow_id = created.json["workflow"]["id"]
    client.put(f"/api/v2/workflows/{workflow_id}", headers={**staff_headers, "X-Request-ID": "req-update"},
               json={"description": "Edited"}, environ_base=IP)
    client.delete(f"/api/v2/workflows/{workflow_id}", headers={**staff_headers, "X-Request-ID": "req-archive"},
                  environ_base=IP)

    logged = entries(client, admin_headers)

    assert [(e["action"], e["requestId"], e["statusCode"]) for e in logged] == [
        ("workflow.archive", "req-archive", 200), ("workflow.update", "req-update", 200),
        ("workflow.create", "req-create", 201)]  # newest first
    for entry in logged:
        assert set(entry) == {"id", "organizationId", "userId", "action", "targetType", "targetId", "statusCode",
                              "requestId", "ip", "details", "createdAt"}
        assert (entry["organizationId"], entry["userId"], entry["ip"]) == (org.id, staff.id, "203.0.113.50")
        assert (entry["targetType"], entry["targetId"]) == ("workflow", workflow_id)
        assert started <= datetime.fromisoformat(entry["createdAt"]) <= datetime.now(timezone.utc)


def test_reading_leaves_no_entry(client, org, staff, staff_headers, admin):
    _, admin_headers = admin
    workflow = factories.make_workflow(org, staff)
    client.get("/api/v2/workflows", headers=staff_headers)
    client.get(f"/api/v2/workflows/{workflow.id}", headers=staff_headers)
    client.get("/api/v2/me", headers=staff_headers)

    assert entries(client, admin_headers) == []


def test_a_failed_change_is_recorded_with_its_status_and_nothing_else_persists(client, staff_headers, admin):
    _, admin_headers = admin
    client.post("/api/v2/workflows", headers=staff_headers, json={"name": "Incomplete"})
    client.put("/api/v2/workflows/does-not-exist", headers=staff_headers, json={"name": "x"})

    logged = entries(client, admin_headers)

    assert [(e["action"], e["statusCode"], e["targetId"]) for e in logged] == [
        ("PUT /api/v2/workflows/<workflow_id>", 404, "does-not-exist"), ("POST /api/v2/workflows", 422, None)]
    assert client.get("/api/v2/workflows", headers=staff_headers).json["workflows"] == []


def test_a_change_to_an_odd_id_is_recorded_with_what_the_column_can_hold(client, staff_headers, admin):
    _, admin_headers = admin
    client.delete(f"/api/v2/workflows/{'x' * 100}", headers=staff_headers)
    client.delete("/api/v2/workflows/a%00b", headers=staff_headers)

    logged = entries(client, admin_headers)

    assert [(e["statusCode"], e["targetId"]) for e in logged] == [(422, None), (404, "x" * 64)]


def test_a_refused_change_by_a_viewer_is_recorded(client, member, admin):
    viewer, viewer_headers = member("viewer")
    _, admin_headers = admin
    client.post("/api/v2/workflows", headers=viewer_headers, json=factories.workflow_body())

    [entry] = entries(client, admin_headers)
    assert (entry["userId"], entry["statusCode"]) == (viewer.id, 403)


def test_each_sign_in_is_recorded_in_each_of_the_user_s_organizations(client, org, other_org, admin):
    user, admin_headers = admin
    db.session.add(Membership(user_id=user.id, organization_id=other_org.id, role="owner"))
    db.session.commit()

    client.post("/api/v2/auth/token", json={"email": user.email, "password": factories.PASSWORD},
                headers={"X-Request-ID": "req-login"}, environ_base=IP)

    for org_id in (org.id, other_org.id):
        [entry] = entries(client, {**admin_headers, "X-Organization-ID": org_id})
        assert (entry["action"], entry["userId"], entry["targetId"]) == ("auth.login", user.id, user.id)
        assert (entry["requestId"], entry["ip"], entry["details"]) == ("req-login", "203.0.113.50", {"channel": "api"})


def test_a_sign_in_by_a_user_of_no_organization_is_still_recorded(client):
    loner = factories.make_user(email="loner@example.com")

    client.post("/api/v2/auth/token", json={"email": "loner@example.com", "password": factories.PASSWORD})

    [row] = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.login"))
    assert (row.user_id, row.organization_id) == (loner.id, None)


def test_a_failed_sign_in_is_recorded_without_the_password_and_in_no_organization(client, staff, admin):
    _, admin_headers = admin
    client.post("/api/v2/auth/token", json={"email": staff.email.upper(), "password": "hunter2-guess"},
                environ_base=IP)

    [row] = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.login_failed"))
    assert (row.organization_id, row.user_id, row.status_code, row.ip) == (None, None, 401, "203.0.113.50")
    assert row.details == {"email": staff.email, "channel": "api"}
    assert entries(client, admin_headers) == []


def test_sign_up_is_recorded_for_the_new_organization(client):
    response = client.post("/api/v2/auth/signup", json={"email": "new@gym.example", "password": "long enough pw",
                                                        "name": "Nia", "organizationName": "New Gym"})
    org_id = response.json["organizations"][0]["id"]
    headers = {"Authorization": f"Bearer {response.json['token']['accessToken']}", "X-Organization-ID": org_id}

    [entry] = entries(client, headers)
    assert (entry["action"], entry["targetType"], entry["targetId"]) == ("auth.signup", "organization", org_id)


def test_the_log_filters_by_action_user_and_time(client, org, staff, staff_headers, admin):
    admin_user, admin_headers = admin
    client.post("/api/v2/workflows", headers=staff_headers, json=factories.workflow_body())
    client.post("/api/v2/workflows", headers=admin_headers, json=factories.workflow_body())
    workflow_id = client.get("/api/v2/workflows", headers=staff_headers).json["workflows"][0]["id"]
    client.delete(f"/api/v2/workflows/{workflow_id}", headers=staff_headers)
    now = quote(datetime.now(timezone.utc).isoformat())
    hour_ago = quote((datetime.now(timezone.utc) - timedelta(hours=1)).isoformat())

    assert len(entries(client, admin_headers, "&action=workflow.create")) == 2
    assert {e["action"] for e in entries(client, admin_headers, f"&userId={staff.id}")} == {
        "workflow.create", "workflow.archive"}
    assert [e["userId"] for e in entries(client, admin_headers, f"&userId={admin_user.id}")] == [admin_user.id]
    assert len(entries(client, admin_headers, f"&since={hour_ago}")) == 3
    assert entries(client, admin_headers, f"&until={hour_ago}") == []
    assert entries(client, admin_headers, f"&since={now}") == []


def test_the_log_is_paginated(client, staff_headers, admin):
    _, admin_headers = admin
    for _ in range(3):
        client.post("/api/v2/workflows", headers=staff_headers, json=factories.workflow_body())

    response = client.get("/api/v2/audit-logs?limit=2&page=2", headers=admin_headers)

    assert len(response.json["auditLogs"]) == 1
    assert response.json["pagination"] == {"total": 3, "page": 2, "limit": 2, "totalPages": 2}


@pytest.mark.parametrize("query, field, message", [
    ("since=2026-01-01T00:00:00", "since", "Not a valid aware datetime."),
    ("since=0001-01-01T00:00:00%2B14:00", "since", "Use a time between 1970 and 9998."),  # UTC would overflow
    ("until=9999-12-31T23:59:59-14:00", "until", "Use a time between 1970 and 9998."),
    ("limit=101", "limit", "limit must be between 1 and 100."),
    ("page=0", "page", "page must be between 1 and 1000000."),
    ("page=99999999999999999999", "page", "page must be between 1 and 1000000."),
])
def test_the_log_s_query_is_validated(client, admin, query, field, message):
    _, admin_headers = admin

    assert validation(client.get(f"/api/v2/audit-logs?{query}", headers=admin_headers)) == {field: message}


def test_the_log_cannot_be_written_through_the_api(client, admin):
    _, admin_headers = admin

    assert_error(client.post("/api/v2/audit-logs", headers=admin_headers, json={}), 405, "METHOD_NOT_ALLOWED")
