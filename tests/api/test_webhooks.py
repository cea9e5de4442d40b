"""/api/v2/webhooks: endpoints (list with statistics, create with the secret shown once, get, update, delete), secret
rotation, the delivery log, validation codes, roles, audit without secrets, and other organizations' ids."""
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from atlas.core import signing
from atlas.extensions import db
from atlas.models import AuditLog, WebhookDelivery, WebhookEndpoint
from atlas.models.base import utcnow
from atlas.services import secrets
from atlas.services import webhooks as service
from tests import factories
from tests.api.helpers import assert_error, missing_id, validation, without_timestamp

WEBHOOK_KEYS = {"id", "name", "workflowId", "workflowName", "endpointUrl", "allowedOrigins", "rateLimit",
                "rateLimitIsDefault", "transformPayload", "filterConditions", "active", "secretPreview",
                "previousSecretExpiresAt", "lastReceivedAt", "createdAt", "updatedAt", "statistics"}
DELIVERY_KEYS = {"id", "endpointId", "messageId", "outcome", "reason", "detail", "headers", "payload",
                 "processedPayload", "executionIds", "workflowIds", "testMode", "replayOf", "originalDeliveryId",
                 "remoteAddr", "processingMs", "receivedAt"}
RULE = {"field": "trigger.body.plan", "operator": "equals", "value": "gold"}


@pytest.fixture
def api(client, staff_headers):
    def call(method, url, **kwargs):
        return getattr(client, method)(f"/api/v2/webhooks{url}", headers=staff_headers, **kwargs)
    return call


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Website lead follow-up")


def create(api, **body):
    body.setdefault("name", "Website form")
    return api("post", "", json=body)


def add_delivery(endpoint, outcome, reason=None, **fields) -> WebhookDelivery:
    row = WebhookDelivery(organization_id=endpoint.organization_id, endpoint_id=endpoint.id, outcome=outcome,
                          reason=reason, **fields)
    db.session.add(row)
    db.session.commit()
    return row


# --- create ----------------------------------------------------------------------------------------------------

def test_create_returns_the_endpoint_its_url_the_secret_and_signed_examples(api, workflow):
    response = create(api, workflowId=workflow.id, allowedOrigins=["https://www.IronTemple.example"], rateLimit=120,
                      transformPayload={"mappings": [{"to": "email", "from": "data.email"}]},
                      filterConditions=[RULE], active=False)

    assert response.status_code == 201, response.json
    assert set(response.json) == {"webhook", "endpointUrl", "secretKey", "testInstructions"}
    webhook, secret = response.json["webhook"], response.json["secretKey"]
    assert set(webhook) == WEBHOOK_KEYS
    assert (webhook["name"], webhook["workflowId"], webhook["workflowName"], webhook["allowedOrigins"],
            webhook["rateLimit"], webhook["rateLimitIsDefault"], webhook["filterConditions"], webhook["active"]) == (
        "Website form", workflow.id, "Website lead follow-up", ["https://www.irontemple.example"], 120, False,
        [RULE], False)
    assert webhook["transformPayload"] == {"mappings": [{"to": "email", "from": "data.email"}]}
    assert response.json["endpointUrl"] == webhook["endpointUrl"] == \
        f"http://localhost/api/v2/webhooks/receive/{webhook['id']}"
    assert secret.startswith("whsec_") and len(signing.key_of(secret)) == 24
    assert webhook["secretPreview"] == secret[:10] + "…" and secret not in json.dumps(webhook)
    assert webhook["statistics"]["received"] == 0 and webhook["previousSecretExpiresAt"] is None
    instructions = response.json["testInstructions"]
    assert set(instructions) == {"curl", "python", "headers", "notes"}
    for example in (instructions["curl"], instructions["python"]):
        assert secret in example and webhook["endpointUrl"] in example
    assert "openssl dgst -sha256 -mac HMAC" in instructions["curl"] and "curl " in instructions["curl"]
    assert [h["name"] for h in instructions["headers"]][:3] == ["webhook-id", "webhook-timestamp",
                                                                "webhook-signature"]


def test_the_secret_is_stored_encrypted_and_never_shown_again(api, client, staff_headers):
    created = create(api).json
    secret, webhook_id = created["secretKey"], created["webhook"]["id"]

    column = db.session.execute(text("SELECT secret_encrypted FROM webhook_endpoints WHERE id = :id"),
                                {"id": webhook_id}).scalar_one()
    assert secret not in column and secrets.decrypt(column) == secret
    for url in ("", f"/{webhook_id}", f"/{webhook_id}/deliveries"):
        response = api("get", url)
        assert response.status_code == 200 and secret not in response.get_data(as_text=True)
    assert secret not in api("patch", f"/{webhook_id}", json={"name": "Renamed"}).get_data(as_text=True)


def test_a_minimal_endpoint_takes_the_defaults(api, app_ctx):
    webhook = create(api, name="  Zapier  ").json["webhook"]

    assert (webhook["name"], webhook["workflowId"], webhook["workflowName"], webhook["allowedOrigins"],
            webhook["transformPayload"], webhook["filterConditions"], webhook["active"]) == (
        "Zapier", None, None, [], None, [], True)
    assert webhook["rateLimit"] == app_ctx.config["ATLAS_WEBHOOK_RATE_LIMIT"] and webhook["rateLimitIsDefault"]


# --- validation ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"name": None}, "name"), ({"name": "   "}, "name"), ({"name": "x" * 121}, "name"), ({"name": 5}, "name"),
    ({"rateLimit": 0}, "rateLimit"), ({"rateLimit": 10001}, "rateLimit"), ({"rateLimit": "fast"}, "rateLimit"),
    ({"rateLimit": 10 ** 30}, "rateLimit"), ({"rateLimit": 2.5}, "rateLimit"),
    ({"allowedOrigins": "https://a.example"}, "allowedOrigins"),
    ({"allowedOrigins": [7]}, "allowedOrigins.0"), ({"transformPayload": []}, "transformPayload"),
    ({"active": "maybe"}, "active"), ({"secretKey": "whsec_mine"}, "secretKey"), ({"workflowId": ""}, "workflowId"),
])
def test_malformed_fields_are_422_naming_the_field(api, body, field):
    body = {"name": "Form", **body}
    if body["name"] is None:
        del body["name"]
    response = api("post", "", json=body)
    assert field in validation(response), response.json
    assert response.json["error"]["code"] == "VALIDATION_FAILED"
    assert db.session.scalars(select(WebhookEndpoint)).all() == []


def test_name_may_be_120_characters_and_rate_limit_1_to_10000(api):
    assert create(api, name="x" * 120, rateLimit=1).status_code == 201
    assert create(api, rateLimit=10000).json["webhook"]["rateLimit"] == 10000


def test_a_bad_origin_is_422_invalid_origin_naming_the_entry(api):
    response = create(api, allowedOrigins=["https://ok.example", "https://bad.example/form"])

    error = assert_error(response, 422, "INVALID_ORIGIN")
    assert "https://bad.example/form" in error["message"] and error["details"] == {"origin": "https://bad.example/form"}
    assert list(validation(response)) == ["allowedOrigins.1"]


def test_bad_transform_and_filter_have_their_own_codes(api):
    response = create(api, transformPayload={"mappings": [{"to": "email"}]})
    assert_error(response, 422, "INVALID_TRANSFORM")
    assert "from" in response.json["validation"][0]["message"]

    response = create(api, filterConditions=[{"field": "trigger.body.plan", "operator": "sounds_like", "value": 1}])
    assert_error(response, 422, "INVALID_FILTER")
    assert_error(create(api, filterConditions=42), 422, "INVALID_FILTER")
    assert_error(create(api, filterConditions=[RULE, "plan is gold"]), 422, "INVALID_FILTER")
    assert_error(create(api, filterConditions=[{"field": "contact.email", "operator": "is_empty"}]), 422,
                 "INVALID_FILTER")


def test_a_single_filter_condition_counts_as_a_list_of_one(api):
    assert create(api, filterConditions=RULE).json["webhook"]["filterConditions"] == [RULE]


def test_the_workflow_must_be_the_organization_s(api, foreign_workflow):
    assert_error(create(api, workflowId=foreign_workflow.id), 404, "WORKFLOW_NOT_FOUND")
    assert_error(create(api, workflowId=missing_id()), 404, "WORKFLOW_NOT_FOUND")
    assert_error(create(api, workflowId="x" * 64), 404, "WORKFLOW_NOT_FOUND")
    assert db.session.scalars(select(WebhookEndpoint)).all() == []


@pytest.mark.parametrize("body", [
    {"filterConditions": [{"all": [{"all": [{"all": [{"all": [{"all": [{"all": [{"all": [{"all": [{"all": [
        {"all": [{"all": [RULE]}]}]}]}]}]}]}]}]}]}]}]},
    {"filterConditions": [{"field": None, "operator": None}]},
    {"filterConditions": [{"any": "x"}]},
    {"transformPayload": {"mappings": [{"to": "", "expression": 5}]}},
    {"transformPayload": {"mappings": "everything", "keepOriginal": "yes"}},
    {"allowedOrigins": ["https://[::1", "http://exa mple.com", "\u00e9://x"]},
    {"workflowId": "\u00e9" * 64},
])
def test_odd_input_is_refused_without_a_500(api, body):
    response = create(api, **body)
    assert response.status_code in (404, 422), response.get_data(as_text=True)
    assert response.json["error"]["code"] != "INTERNAL_ERROR"


# --- list, get, update, delete ---------------------------------------------------------------------------------

def test_list_shows_each_endpoint_with_its_statistics_and_the_organization_s(api, org):
    form, _ = factories.make_webhook(org, name="Form")
    stripe, _ = factories.make_webhook(org, name="Stripe")
    for outcome, reason in (("accepted", None), ("accepted", None), ("filtered", None), ("duplicate", None),
                            ("rejected", "WEBHOOK_SIGNATURE_INVALID"), ("rejected", "WEBHOOK_PAYLOAD_INVALID")):
        add_delivery(form, outcome, reason)
    add_delivery(stripe, "rejected", "WEBHOOK_TIMESTAMP_STALE")
    add_delivery(stripe, "accepted", test_mode=True)

    response = api("get", "")

    assert response.status_code == 200 and set(response.json) == {"webhooks", "statistics"}
    listed = {w["name"]: w for w in response.json["webhooks"]}
    assert listed["Form"]["statistics"] == {
        "received": 6, "accepted": 2, "filtered": 1, "duplicates": 1, "rejectedTotal": 2,
        "rejected": {"WEBHOOK_PAYLOAD_INVALID": 1, "WEBHOOK_SIGNATURE_INVALID": 1},
        "lastReceivedAt": listed["Form"]["lastReceivedAt"]}
    assert listed["Form"]["lastReceivedAt"] is not None
    assert listed["Stripe"]["statistics"]["rejected"] == {"WEBHOOK_TIMESTAMP_STALE": 1}
    assert listed["Stripe"]["statistics"]["received"] == 1  # the test-mode delivery is not counted
    overall = response.json["statistics"]
    assert (overall["received"], overall["accepted"], overall["rejectedTotal"]) == (7, 2, 3)
    assert overall["rejected"]["WEBHOOK_TIMESTAMP_STALE"] == 1


def test_list_holds_only_the_organization_s_endpoints(api, other_org):
    factories.make_webhook(other_org, name="Rival hook")
    mine = create(api).json["webhook"]["id"]
    assert [w["id"] for w in api("get", "").json["webhooks"]] == [mine]


def test_get_shows_one_endpoint(api, org):
    endpoint, secret = factories.make_webhook(org, name="Booking widget", rate_limit=60)
    add_delivery(endpoint, "accepted")

    response = api("get", f"/{endpoint.id}")

    assert response.status_code == 200 and set(response.json) == WEBHOOK_KEYS
    assert (response.json["name"], response.json["rateLimit"], response.json["rateLimitIsDefault"],
            response.json["statistics"]["accepted"]) == ("Booking widget", 60, False, 1)
    assert response.json["secretPreview"] == secret[:10] + "…"


def test_patch_changes_only_what_is_sent(api, workflow):
    webhook = create(api, workflowId=workflow.id, rateLimit=30, filterConditions=[RULE]).json["webhook"]

    response = api("patch", f"/{webhook['id']}", json={"name": "Renamed", "active": False})

    assert response.status_code == 200, response.json
    assert (response.json["name"], response.json["active"], response.json["workflowId"], response.json["rateLimit"],
            response.json["filterConditions"]) == ("Renamed", False, workflow.id, 30, [RULE])
    cleared = api("patch", f"/{webhook['id']}", json={"workflowId": None, "rateLimit": None}).json
    assert (cleared["workflowId"], cleared["rateLimitIsDefault"]) == (None, True)
    assert_error(api("patch", f"/{webhook['id']}", json={"allowedOrigins": ["nope"]}), 422, "INVALID_ORIGIN")
    assert_error(api("patch", f"/{webhook['id']}", json={"name": ""}), 422, "VALIDATION_FAILED")


def test_put_replaces_every_setting_and_keeps_the_secret(api, workflow):
    created = create(api, workflowId=workflow.id, rateLimit=30, allowedOrigins=["https://a.example"]).json
    webhook_id, secret = created["webhook"]["id"], created["secretKey"]

    response = api("put", f"/{webhook_id}", json={"name": "Replaced"})

    assert response.status_code == 200, response.json
    assert (response.json["name"], response.json["workflowId"], response.json["allowedOrigins"],
            response.json["rateLimitIsDefault"], response.json["active"]) == ("Replaced", None, [], True, True)
    assert service.valid_secrets(db.session.get(WebhookEndpoint, webhook_id), utcnow()) == [secret]
    assert "name" in validation(api("put", f"/{webhook_id}", json={"rateLimit": 5}))


def test_delete_answers_204_and_the_endpoint_is_gone(api, org):
    endpoint, _ = factories.make_webhook(org)
    add_delivery(endpoint, "accepted")

    response = api("delete", f"/{endpoint.id}")

    assert response.status_code == 204 and response.get_data() == b""
    assert_error(api("get", f"/{endpoint.id}"), 404, "WEBHOOK_NOT_FOUND")
    assert_error(api("delete", f"/{endpoint.id}"), 404, "WEBHOOK_NOT_FOUND")
    assert db.session.scalars(select(WebhookDelivery)).all() == []


# --- rotation --------------------------------------------------------------------------------------------------

def test_rotation_returns_a_new_secret_and_the_old_one_verifies_until_the_grace_ends(api, org):
    endpoint, old = factories.make_webhook(org)

    response = api("post", f"/{endpoint.id}/rotate-secret", json={"gracePeriodSeconds": 3600})

    assert response.status_code == 200, response.json
    assert set(response.json) == {"webhook", "secretKey", "previousSecretExpiresAt", "testInstructions"}
    new = response.json["secretKey"]
    assert new != old and new.startswith("whsec_") and new in response.json["testInstructions"]["curl"]
    assert response.json["webhook"]["previousSecretExpiresAt"] == response.json["previousSecretExpiresAt"]
    assert response.json["webhook"]["secretPreview"] == new[:10] + "…"
    db.session.expire_all()
    endpoint = db.session.get(WebhookEndpoint, endpoint.id)
    assert service.valid_secrets(endpoint, utcnow()) == [new, old]
    assert service.valid_secrets(endpoint, utcnow() + timedelta(seconds=3601)) == [new]


def test_rotation_without_a_body_uses_the_configured_grace(api, org, app_ctx):
    endpoint, _ = factories.make_webhook(org)

    response = api("post", f"/{endpoint.id}/rotate-secret")

    assert response.status_code == 200, response.json
    grace = app_ctx.config["ATLAS_WEBHOOK_SECRET_GRACE_SECONDS"]
    db.session.expire_all()
    expires = db.session.get(WebhookEndpoint, endpoint.id).previous_secret_expires_at
    assert abs((expires - utcnow()).total_seconds() - grace) < 60


def test_rotation_with_no_grace_drops_the_old_secret_at_once(api, org):
    endpoint, old = factories.make_webhook(org)
    response = api("post", f"/{endpoint.id}/rotate-secret", json={"gracePeriodSeconds": 0})

    assert response.json["previousSecretExpiresAt"] is None
    db.session.expire_all()
    assert service.valid_secrets(db.session.get(WebhookEndpoint, endpoint.id), utcnow()) == [
        response.json["secretKey"]]


@pytest.mark.parametrize("grace", [-1, 7 * 24 * 3600 + 1, "a day", 1.5])
def test_a_grace_outside_0_to_7_days_is_422(api, org, grace):
    endpoint, old = factories.make_webhook(org)
    response = api("post", f"/{endpoint.id}/rotate-secret", json={"gracePeriodSeconds": grace})
    assert "gracePeriodSeconds" in validation(response)
    db.session.expire_all()
    assert service.valid_secrets(db.session.get(WebhookEndpoint, endpoint.id), utcnow()) == [old]


# --- deliveries ------------------------------------------------------------------------------------------------

def test_deliveries_are_paginated_newest_first_and_filter_by_outcome(api, org):
    endpoint, _ = factories.make_webhook(org)
    start = utcnow()
    rows = [add_delivery(endpoint, "accepted" if i % 2 else "rejected", "WEBHOOK_SIGNATURE_INVALID" if i % 2 == 0
                         else None, received_at=start + timedelta(seconds=i), message_id=f"msg_{i}",
                         headers={"webhook-id": f"msg_{i}"}, payload={"n": i}, processed_payload={"n": i},
                         execution_ids=[], workflow_ids=[], remote_addr="127.0.0.1", processing_ms=1.5)
            for i in range(5)]

    response = api("get", f"/{endpoint.id}/deliveries?limit=2&page=1")

    assert response.status_code == 200 and set(response.json) == {"deliveries", "pagination"}
    assert response.json["pagination"] == {"total": 5, "page": 1, "limit": 2, "totalPages": 3}
    first = response.json["deliveries"][0]
    assert set(first) == DELIVERY_KEYS
    assert (first["id"], first["messageId"], first["outcome"], first["payload"], first["remoteAddr"],
            first["processingMs"], first["endpointId"]) == (rows[4].id, "msg_4", "rejected", {"n": 4}, "127.0.0.1",
                                                            1.5, endpoint.id)
    accepted = api("get", f"/{endpoint.id}/deliveries?outcome=accepted").json
    assert [d["id"] for d in accepted["deliveries"]] == [rows[3].id, rows[1].id]
    assert "outcome" in validation(api("get", f"/{endpoint.id}/deliveries?outcome=lost"))
    assert "limit" in validation(api("get", f"/{endpoint.id}/deliveries?limit=101"))


def test_one_delivery_by_id(api, org):
    endpoint, _ = factories.make_webhook(org)
    delivery = add_delivery(endpoint, "duplicate", message_id="msg_1", original_delivery_id=missing_id())

    response = api("get", f"/deliveries/{delivery.id}")

    assert response.status_code == 200 and set(response.json) == DELIVERY_KEYS
    assert (response.json["outcome"], response.json["originalDeliveryId"]) == (
        "duplicate", delivery.original_delivery_id)
    assert_error(api("get", f"/deliveries/{missing_id()}"), 404, "WEBHOOK_DELIVERY_NOT_FOUND")


# --- roles, audit, tenancy -------------------------------------------------------------------------------------

def test_viewers_read_and_staff_change(client, org, member):
    endpoint, _ = factories.make_webhook(org)
    _, viewer = member("viewer")

    assert client.get("/api/v2/webhooks", headers=viewer).status_code == 200
    assert client.get(f"/api/v2/webhooks/{endpoint.id}/deliveries", headers=viewer).status_code == 200
    for method, url, body in (("post", "", {"name": "x"}), ("patch", f"/{endpoint.id}", {"name": "x"}),
                              ("put", f"/{endpoint.id}", {"name": "x"}), ("delete", f"/{endpoint.id}", None),
                              ("post", f"/{endpoint.id}/rotate-secret", {})):
        response = getattr(client, method)(f"/api/v2/webhooks{url}", headers=viewer, json=body)
        assert_error(response, 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(client.get("/api/v2/webhooks"), 401, "UNAUTHENTICATED")


def test_mutations_are_audited_and_the_secret_is_never_in_the_log(api, org):
    created = create(api).json
    webhook_id = created["webhook"]["id"]
    rotated = api("post", f"/{webhook_id}/rotate-secret", json={"gracePeriodSeconds": 60}).json
    api("patch", f"/{webhook_id}", json={"name": "Renamed"})
    api("delete", f"/{webhook_id}")

    entries = db.session.scalars(select(AuditLog).where(AuditLog.organization_id == org.id)
                                 .order_by(AuditLog.created_at)).all()
    assert [(e.action, e.target_type, e.target_id) for e in entries] == [
        ("webhook.create", "webhook", webhook_id), ("webhook.rotate_secret", "webhook", webhook_id),
        ("webhook.update", "webhook", webhook_id), ("webhook.delete", "webhook", webhook_id)]
    everything = json.dumps([{c.name: str(getattr(e, c.name)) for c in AuditLog.__table__.columns} for e in entries])
    for secret in (created["secretKey"], rotated["secretKey"]):
        assert secret not in everything and secret[len("whsec_"):] not in everything


def test_another_organization_s_ids_answer_exactly_like_missing_ones(api, other_org):
    endpoint, _ = factories.make_webhook(other_org, name="Rival hook")
    delivery = add_delivery(endpoint, "accepted")
    routes = [("get", "/{}", None), ("patch", "/{}", {"name": "Mine"}), ("put", "/{}", {"name": "Mine"}),
              ("delete", "/{}", None), ("post", "/{}/rotate-secret", {}), ("get", "/{}/deliveries", None)]

    for method, url, body in routes:
        foreign = api(method, url.format(endpoint.id), json=body)
        missing = api(method, url.format(missing_id()), json=body)
        assert_error(foreign, 404, "WEBHOOK_NOT_FOUND") and assert_error(missing, 404, "WEBHOOK_NOT_FOUND")
        assert without_timestamp(foreign).replace(foreign.headers["X-Request-ID"].encode(), b"") == \
            without_timestamp(missing).replace(missing.headers["X-Request-ID"].encode(), b"")
    assert_error(api("get", f"/deliveries/{delivery.id}"), 404, "WEBHOOK_DELIVERY_NOT_FOUND")
    db.session.expire_all()
    row = db.session.get(WebhookEndpoint, endpoint.id)
    assert row.name == "Rival hook" and row.previous_secret_encrypted is None


def test_odd_ids_in_the_url_are_404_not_500(api):
    for odd in ("x" * 500, "%C3%A9t%C3%A9", "1 OR 1=1", "deliveries", "receive"):
        assert_error(api("get", f"/{odd}"), 404, "WEBHOOK_NOT_FOUND")
        assert_error(api("patch", f"/{odd}", json={"name": "x"}), 404, "WEBHOOK_NOT_FOUND")
        assert_error(api("get", f"/deliveries/{odd}"), 404, "WEBHOOK_DELIVERY_NOT_FOUND")
    for odd in ("x" * 500, "%C3%A9t%C3%A9", "1 OR 1=1"):
        assert_error(api("get", f"/{odd}/deliveries"), 404, "WEBHOOK_NOT_FOUND")
        assert_error(api("post", f"/{odd}/rotate-secret", json={}), 404, "WEBHOOK_NOT_FOUND")
