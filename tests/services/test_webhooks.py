"""services/webhooks.py: endpoints with encrypted secrets, rotation with a grace period, origins, statistics from one
GROUP BY query, deliveries, and the signed examples (run for real against a local server)."""
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select, text
from standardwebhooks.webhooks import Webhook

from atlas.core import signing
from atlas.errors import ValidationFailed, WorkflowNotFound
from atlas.extensions import db
from atlas.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from atlas.models.base import utcnow
from atlas.services import secrets
from atlas.services import webhooks as service
from tests import factories


def add_delivery(endpoint, outcome, reason=None, **fields) -> WebhookDelivery:
    """A committed delivery row, as the receiver records one."""
    row = WebhookDelivery(organization_id=endpoint.organization_id, endpoint_id=endpoint.id, outcome=outcome,
                          reason=reason, **fields)
    db.session.add(row)
    db.session.commit()
    return row


def sign_with_library(secret: str, body: str, when: datetime) -> tuple[str, int, str]:
    """(message id, timestamp, signature header) from the standardwebhooks package."""
    msg_id = "msg_library"
    return msg_id, int(when.timestamp()), Webhook(secret).sign(msg_id, when, body)


class QueryCounter:
    """Counts the SELECT statements the database sees while active."""

    def __init__(self):
        self.statements = []

    def __enter__(self):
        event.listen(db.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(db.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            self.statements.append(statement)


# --- create, update, delete ----------------------------------------------------------------------------------

def test_create_stores_the_secret_only_encrypted(org, staff):
    endpoint, secret = service.create_endpoint(org.id, staff.id, {"name": "Website form"})

    assert secret.startswith("whsec_") and len(signing.key_of(secret)) == signing.KEY_BYTES
    stored = db.session.execute(text("SELECT secret_encrypted FROM webhook_endpoints WHERE id = :id"),
                                {"id": endpoint.id}).scalar_one()
    assert secret not in stored and secret[len("whsec_"):] not in stored
    assert secrets.decrypt(stored) == secret
    assert (endpoint.name, endpoint.active, endpoint.allowed_origins, endpoint.filter_conditions, endpoint.rate_limit,
            endpoint.created_by) == ("Website form", True, [], [], None, staff.id)
    assert service.secret_preview(endpoint) == secret[:10] + "…"


def test_each_endpoint_gets_its_own_secret(org, staff):
    _, first = service.create_endpoint(org.id, staff.id, {"name": "A"})
    _, second = service.create_endpoint(org.id, staff.id, {"name": "B"})
    assert first != second


def test_the_workflow_must_be_one_of_the_organization_s(org, staff):
    other = factories.make_org("Elsewhere")
    foreign = factories.make_workflow(other)

    with pytest.raises(WorkflowNotFound):
        service.create_endpoint(org.id, staff.id, {"name": "A", "workflow_id": foreign.id})
    own = factories.make_workflow(org, staff)
    endpoint, _ = service.create_endpoint(org.id, staff.id, {"name": "A", "workflow_id": own.id})
    assert endpoint.workflow_id == own.id


def test_update_changes_only_the_fields_given(org, staff):
    workflow = factories.make_workflow(org, staff)
    endpoint, secret = service.create_endpoint(org.id, staff.id, {"name": "A", "workflow_id": workflow.id,
                                                                  "rate_limit": 30})
    service.update_endpoint(org.id, endpoint.id, {"name": "B", "allowed_origins": ["https://Gym.example"]})

    db.session.expire_all()
    endpoint = service.get_endpoint(org.id, endpoint.id)
    assert (endpoint.name, endpoint.workflow_id, endpoint.rate_limit, endpoint.allowed_origins) == (
        "B", workflow.id, 30, ["https://gym.example"])
    assert service.valid_secrets(endpoint, utcnow()) == [secret]
    service.update_endpoint(org.id, endpoint.id, {"workflow_id": None})
    assert service.get_endpoint(org.id, endpoint.id).workflow_id is None


def test_delete_removes_the_endpoint_its_deliveries_and_message_ids(org):
    endpoint, _ = factories.make_webhook(org)
    delivery = add_delivery(endpoint, "accepted", message_id="m1")
    db.session.add(WebhookMessage(endpoint_id=endpoint.id, message_id="m1", delivery_id=delivery.id))
    db.session.commit()

    service.delete_endpoint(org.id, endpoint.id)

    assert db.session.scalars(select(WebhookEndpoint)).all() == []
    assert db.session.scalars(select(WebhookDelivery)).all() == []
    assert db.session.scalars(select(WebhookMessage)).all() == []
    with pytest.raises(service.WebhookNotFound):
        service.get_endpoint(org.id, endpoint.id)


def test_another_organization_s_endpoint_and_delivery_are_not_found(org):
    other = factories.make_org("Elsewhere")
    endpoint, _ = factories.make_webhook(other)
    delivery = add_delivery(endpoint, "accepted")

    for call in (lambda: service.get_endpoint(org.id, endpoint.id),
                 lambda: service.update_endpoint(org.id, endpoint.id, {"name": "Mine now"}),
                 lambda: service.delete_endpoint(org.id, endpoint.id),
                 lambda: service.rotate_secret(org.id, endpoint.id),
                 lambda: service.statistics(org.id, endpoint.id),
                 lambda: service.list_deliveries(org.id, endpoint.id)):
        with pytest.raises(service.WebhookNotFound):
            call()
    with pytest.raises(service.WebhookDeliveryNotFound):
        service.get_delivery(org.id, delivery.id)
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).name != "Mine now"


# --- origins, transform and filter ---------------------------------------------------------------------------

@pytest.mark.parametrize("given, stored", [
    ("https://www.example.com", "https://www.example.com"),
    ("HTTPS://WWW.Example.COM", "https://www.example.com"),
    ("https://example.com:443", "https://example.com"),
    ("http://example.com:80", "http://example.com"),
    ("http://localhost:8080", "http://localhost:8080"),
    ("https://[::1]:8443", "https://[::1]:8443"),
])
def test_origins_are_stored_as_a_browser_sends_them(given, stored):
    assert service.normalized_origins([given]) == [stored]


@pytest.mark.parametrize("bad", [
    "example.com", "https://example.com/", "https://example.com/form", "https://example.com?x=1",
    "https://example.com#top", "ftp://example.com", "https://", "https://*.example.com", "https://user@example.com",
    "https://example.com:99999", "https://example.com:port", "null", "", "https://" + "a" * 260 + ".com",
])
def test_an_origin_with_a_path_or_another_shape_is_refused_naming_it(bad):
    with pytest.raises(ValidationFailed) as caught:
        service.normalized_origins(["https://fine.example", bad])
    assert caught.value.code == "INVALID_ORIGIN"
    assert caught.value.validation[0]["field"] == "allowedOrigins.1" and caught.value.details == {"origin": bad}


def test_repeated_origins_are_kept_once():
    assert service.normalized_origins(["https://a.example", "https://A.example:443"]) == ["https://a.example"]


def test_transform_and_filter_are_checked_with_every_problem(org, staff):
    with pytest.raises(ValidationFailed) as caught:
        service.create_endpoint(org.id, staff.id, {"name": "A", "transform": {"mappings": [
            {"to": "email"}, {"to": "x", "expression": "foo[["}]}})
    assert caught.value.code == "INVALID_TRANSFORM" and len(caught.value.validation) == 2
    assert {v["field"] for v in caught.value.validation} == {"transformPayload"}

    with pytest.raises(ValidationFailed) as caught:
        service.create_endpoint(org.id, staff.id, {"name": "A", "filter_conditions": [
            {"field": "trigger.body.plan", "operator": "no_such_operator", "value": 1}]})
    assert caught.value.code == "INVALID_FILTER"
    assert db.session.scalars(select(WebhookEndpoint)).all() == []


def test_a_single_filter_condition_is_stored_as_a_list_of_one(org, staff):
    rule = {"field": "trigger.body.plan", "operator": "equals", "value": "gold"}
    endpoint, _ = service.create_endpoint(org.id, staff.id, {"name": "A", "filter_conditions": rule,
                                                             "transform": {"mappings": [
                                                                 {"to": "plan", "from": "data.plan"}]}})
    assert endpoint.filter_conditions == [rule] and endpoint.transform["mappings"][0]["to"] == "plan"


# --- secrets and rotation ------------------------------------------------------------------------------------

def test_rotation_keeps_the_old_secret_valid_for_the_grace_period(org):
    endpoint, old = factories.make_webhook(org)
    before = utcnow()

    endpoint, new = service.rotate_secret(org.id, endpoint.id, 3600)

    assert new != old and secrets.decrypt(endpoint.secret_encrypted) == new
    expires = service.previous_secret_expires_at(endpoint)
    assert before + timedelta(seconds=3600) <= expires <= utcnow() + timedelta(seconds=3600)
    assert service.valid_secrets(endpoint, utcnow()) == [new, old]
    assert service.valid_secrets(endpoint, expires - timedelta(seconds=1)) == [new, old]
    assert service.valid_secrets(endpoint, expires + timedelta(seconds=1)) == [new]
    assert service.valid_secrets(endpoint, expires.timestamp() + 1) == [new]  # Unix seconds work too
    stored = db.session.execute(text("SELECT secret_encrypted, previous_secret_encrypted FROM webhook_endpoints"))
    assert not any(s in column for column in stored.one() for s in (old, new))


def test_both_secrets_verify_library_signatures_during_the_grace_and_only_the_new_one_after(org):
    endpoint, old = factories.make_webhook(org)
    endpoint, new = service.rotate_secret(org.id, endpoint.id, 600)
    body, now = '{"email": "jane@example.com"}', datetime.now(timezone.utc)

    for secret in (old, new):
        msg_id, ts, signature = sign_with_library(secret, body, now)
        assert signing.verify(service.valid_secrets(endpoint, now), msg_id, str(ts), signature, body.encode(),
                              now.timestamp()) == ts
    later = now + timedelta(seconds=601)
    msg_id, ts, signature = sign_with_library(old, body, later)
    with pytest.raises(signing.SignatureError) as caught:
        signing.verify(service.valid_secrets(endpoint, later), msg_id, str(ts), signature, body.encode(),
                       later.timestamp())
    assert caught.value.code == "WEBHOOK_SIGNATURE_INVALID"
    msg_id, ts, signature = sign_with_library(new, body, later)
    assert signing.verify(service.valid_secrets(endpoint, later), msg_id, str(ts), signature, body.encode(),
                          later.timestamp()) == ts


def test_rotation_without_a_grace_uses_the_configured_one_and_zero_drops_the_old_secret_at_once(app_ctx, org):
    endpoint, old = factories.make_webhook(org)
    endpoint, new = service.rotate_secret(org.id, endpoint.id)
    grace = app_ctx.config["ATLAS_WEBHOOK_SECRET_GRACE_SECONDS"]
    assert abs((service.previous_secret_expires_at(endpoint) - utcnow()).total_seconds() - grace) < 60

    endpoint, newest = service.rotate_secret(org.id, endpoint.id, 0)
    assert service.valid_secrets(endpoint, utcnow()) == [newest]
    assert endpoint.previous_secret_encrypted is None and service.previous_secret_expires_at(endpoint) is None


def test_a_second_rotation_keeps_only_the_secret_it_replaced(org):
    endpoint, first = factories.make_webhook(org)
    endpoint, second = service.rotate_secret(org.id, endpoint.id, 600)
    endpoint, third = service.rotate_secret(org.id, endpoint.id, 600)
    assert service.valid_secrets(endpoint, utcnow()) == [third, second]


# --- statistics ----------------------------------------------------------------------------------------------

def test_statistics_count_every_outcome_and_rejection_reason(org):
    form, _ = factories.make_webhook(org, name="Form")
    stripe, _ = factories.make_webhook(org, name="Stripe")
    newest = utcnow()
    for _ in range(3):
        add_delivery(form, "accepted", received_at=newest - timedelta(minutes=5))
    add_delivery(form, "filtered")
    add_delivery(form, "duplicate")
    add_delivery(form, "rejected", "WEBHOOK_SIGNATURE_INVALID")
    add_delivery(form, "rejected", "WEBHOOK_SIGNATURE_INVALID", received_at=newest)
    add_delivery(form, "rejected", "WEBHOOK_TIMESTAMP_STALE")
    add_delivery(form, "accepted", test_mode=True, received_at=newest + timedelta(hours=1))  # a test: not counted
    add_delivery(stripe, "rejected", "WEBHOOK_RATE_LIMITED")
    add_delivery(stripe, "accepted")

    stats = service.statistics(org.id, form.id)
    assert {k: v for k, v in stats.items() if k != "lastReceivedAt"} == {
        "received": 8, "accepted": 3, "filtered": 1, "duplicates": 1, "rejectedTotal": 3,
        "rejected": {"WEBHOOK_SIGNATURE_INVALID": 2, "WEBHOOK_TIMESTAMP_STALE": 1}}
    assert stats["lastReceivedAt"] >= newest and stats["lastReceivedAt"] < newest + timedelta(minutes=30)
    overall = service.statistics(org.id)
    assert (overall["received"], overall["accepted"], overall["rejectedTotal"]) == (10, 4, 4)
    assert overall["rejected"] == {"WEBHOOK_RATE_LIMITED": 1, "WEBHOOK_SIGNATURE_INVALID": 2,
                                   "WEBHOOK_TIMESTAMP_STALE": 1}
    assert service.statistics(factories.make_org("Empty").id) == {
        "received": 0, "accepted": 0, "filtered": 0, "duplicates": 0, "rejected": {}, "rejectedTotal": 0,
        "lastReceivedAt": None}


def test_the_list_s_statistics_come_from_one_group_by_query(org):
    endpoints = [factories.make_webhook(org)[0] for _ in range(5)]
    for endpoint in endpoints:
        add_delivery(endpoint, "accepted")
        add_delivery(endpoint, "rejected", "WEBHOOK_SIGNATURE_MISSING")
    org_id, ids = org.id, [e.id for e in endpoints]
    db.session.expire_all()

    with QueryCounter() as counter:
        overall, per = service.statistics_by_endpoint(org_id)
    assert len(counter.statements) == 1 and "GROUP BY" in counter.statements[0].upper()
    assert overall["received"] == 10 and all(per[i]["received"] == 2 for i in ids)

    with QueryCounter() as counter:
        listed = service.endpoint_views(org_id)
    assert len(counter.statements) <= 3  # endpoints, counts, workflow names: not one per endpoint
    assert [w["statistics"]["rejected"] for w in listed["webhooks"]] == [{"WEBHOOK_SIGNATURE_MISSING": 1}] * 5


# --- deliveries ----------------------------------------------------------------------------------------------

def test_deliveries_page_newest_first_and_filter_by_outcome(org):
    endpoint, _ = factories.make_webhook(org)
    other, _ = factories.make_webhook(org)
    start = utcnow()
    made = [add_delivery(endpoint, "accepted" if i % 2 else "rejected", received_at=start + timedelta(seconds=i))
            for i in range(5)]
    add_delivery(other, "accepted")

    rows, total = service.list_deliveries(org.id, endpoint.id, page=1, limit=2)
    assert total == 5 and [r.id for r in rows] == [made[4].id, made[3].id]
    rows, total = service.list_deliveries(org.id, endpoint.id, page=3, limit=2)
    assert [r.id for r in rows] == [made[0].id]
    rows, total = service.list_deliveries(org.id, endpoint.id, outcome="accepted")
    assert total == 2 and [r.id for r in rows] == [made[3].id, made[1].id]
    assert service.get_delivery(org.id, made[2].id).outcome == "rejected"


# --- the signed examples, run for real -----------------------------------------------------------------------

def _verify_recorded(request: dict, secret: str) -> dict:
    """The request a script sent verifies with the standardwebhooks package and with our own signer."""
    headers = {k.lower(): v for k, v in request["headers"].items()}
    body = request["body"]
    Webhook(secret).verify(body, headers)
    signing.verify([secret], headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"], body,
                   datetime.now(timezone.utc).timestamp())
    assert headers["content-type"] == "application/json"
    return json.loads(body)


def _pointed_at(script: str, prefix: str, url: str) -> str:
    """The script with its URL line replaced (the example targets Atlas; the test targets the local server)."""
    lines = [f"{prefix}{url!r}" if line.startswith(prefix) else line for line in script.splitlines()]
    assert lines != script.splitlines()
    return "\n".join(lines)


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl")
def test_the_curl_example_signs_correctly_when_run_in_a_shell(org, server):
    endpoint, secret = factories.make_webhook(org)
    instructions = service.test_instructions(endpoint, secret)
    assert service.endpoint_url(endpoint) in instructions["curl"] and secret in instructions["curl"]

    script = _pointed_at(instructions["curl"], "URL=", server.url("/echo"))
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "NO_PROXY": "*", "no_proxy": "*"})

    assert done.returncode == 0, done.stderr
    [request] = server.requests
    assert _verify_recorded(request, secret) == json.loads(service.SAMPLE_BODY)


def test_the_python_example_signs_with_standardwebhooks_when_run(org, server):
    endpoint, secret = factories.make_webhook(org)
    instructions = service.test_instructions(endpoint, secret)
    assert "from standardwebhooks.webhooks import Webhook" in instructions["python"]

    script = _pointed_at(instructions["python"], "URL = ", server.url("/echo"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "NO_PROXY": "*", "no_proxy": "*"})

    assert done.returncode == 0 and done.stdout.startswith("200"), done.stderr
    [request] = server.requests
    assert _verify_recorded(request, secret) == json.loads(service.SAMPLE_BODY)
