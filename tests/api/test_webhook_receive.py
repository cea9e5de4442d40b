"""POST /api/v2/webhooks/receive/{id}: signed deliveries (standardwebhooks and our signer), every rejection with its
own code and recorded reason, duplicates, rotation grace, transform and filter, one transaction with the runs; the
test endpoint and replays."""
import json
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from atlas.core import signing
from atlas.extensions import db, redis_holder
from atlas.models import EnrollmentDecision, Event, Execution, WebhookDelivery, WebhookMessage
from atlas.models.base import utcnow
from atlas.services import webhook_receive, webhooks
from tests import factories
from tests.api.helpers import assert_error, missing_id

GREET = {"schemaVersion": 1, "nodes": [{"id": "hello", "type": "set_variable", "config": {
    "name": "greeting", "value": "Hi {{ trigger.body.email }}"}}], "edges": []}
BODY = {"type": "lead.created", "email": "jane@example.com", "plan": "gold"}


def url(endpoint_id: str) -> str:
    return f"/api/v2/webhooks/receive/{endpoint_id}"


def signed(secret: str, raw: bytes, *, msg_id: str | None = None, when: int | None = None,
           library: bool = True) -> dict:
    """The three Standard Webhooks headers, from the standardwebhooks package (default) or our signer."""
    msg_id = msg_id or f"msg_{time.time_ns()}"
    when = int(time.time()) if when is None else when
    if library:
        signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(when, timezone.utc), raw.decode())
        return {"webhook-id": msg_id, "webhook-timestamp": str(when), "webhook-signature": signature}
    return signing.headers(secret, msg_id, when, raw)


def deliver(client, endpoint, secret, body=BODY, *, extra: dict | None = None, **signing_options):
    """POST a signed delivery (body: a dict, sent as JSON, or raw bytes)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **signed(secret, raw, **signing_options), **(extra or {})}
    return client.post(url(endpoint.id), data=raw, headers=headers)


def rows(model, *where):
    db.session.expire_all()
    return list(db.session.scalars(select(model).where(*where)))


@pytest.fixture
def listener(org, staff):
    """An active workflow with a webhook trigger on every endpoint."""
    return factories.make_workflow(org, staff, name="Webhook greeter", trigger_type="webhook", trigger_config={},
                                   status="active", workflow_data=GREET)


@pytest.fixture
def hook(org, listener):
    return factories.make_webhook(org)


# --- accepted ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("library", [True, False], ids=["standardwebhooks", "our signer"])
def test_a_signed_delivery_starts_the_listening_workflow_in_one_transaction(client, org, listener, hook, library):
    endpoint, secret = hook

    response = deliver(client, endpoint, secret, library=library, msg_id="msg_1")

    assert response.status_code == 200, response.json
    answer = response.json
    assert answer["success"] is True and answer["workflowsTriggered"] == [listener.id]
    assert isinstance(answer["processingTime"], float) and answer["deliveryId"]
    [delivery] = rows(WebhookDelivery)
    assert (delivery.id, delivery.outcome, delivery.message_id, delivery.test_mode) == (
        answer["deliveryId"], "accepted", "msg_1", False)
    assert delivery.payload == BODY and delivery.processed_payload == BODY
    assert delivery.headers["webhook-id"] == "msg_1" and "webhook-signature" not in delivery.headers
    [run] = rows(Execution)
    assert delivery.execution_ids == [run.id] and delivery.workflow_ids == [listener.id]
    assert run.status == "queued" and not run.test_mode
    assert run.trigger_data["body"] == BODY and run.trigger_data["endpointId"] == endpoint.id
    assert run.trigger_data["deliveryId"] == delivery.id and run.trigger_data["type"] == "webhook"
    assert redis_holder.client.exists(f"rq:job:{run.job_id}")  # enqueued after the commit
    [event] = rows(Event)
    assert event.type == "webhook" and event.enrolled == 1 and event.payload["body"] == BODY
    [decision] = rows(EnrollmentDecision)
    assert (decision.outcome, decision.execution_id, decision.event_id) == ("enrolled", run.id, event.id)
    [message] = rows(WebhookMessage)
    assert (message.endpoint_id, message.message_id, message.delivery_id) == (endpoint.id, "msg_1", delivery.id)


def test_the_run_is_for_the_contact_the_email_names(client, org, listener, hook):
    endpoint, secret = hook
    jane = factories.make_contact(org, first_name="Jane", email="jane@example.com")

    assert deliver(client, endpoint, secret, {"email": "  JANE@example.com "}).status_code == 200

    [run] = rows(Execution)
    [event] = rows(Event)
    assert run.contact_id == jane.id == event.contact_id and run.contact["first_name"] == "Jane"


def test_contact_id_names_the_contact_and_another_organization_s_is_ignored(client, org, listener, hook):
    endpoint, secret = hook
    jane = factories.make_contact(org, first_name="Jane")
    theirs = factories.make_contact(factories.make_org("Rival"), first_name="Rex")

    deliver(client, endpoint, secret, {"contactId": jane.id})
    deliver(client, endpoint, secret, {"contactId": theirs.id})

    assert sorted(r.contact_id or "" for r in rows(Execution)) == sorted(["", jane.id])


def test_the_endpoint_s_own_workflow_starts_whatever_its_trigger(client, org, staff):
    own = factories.make_workflow(org, staff, name="Own", trigger_type="lead_created", status="active",
                                  workflow_data=GREET)
    elsewhere = factories.make_workflow(org, staff, name="Other endpoint", trigger_type="webhook",
                                        trigger_config={"endpointId": missing_id()}, status="active",
                                        workflow_data=GREET)
    endpoint, secret = factories.make_webhook(org, workflow_id=own.id)

    answer = deliver(client, endpoint, secret).json

    assert answer["workflowsTriggered"] == [own.id]
    assert {r.workflow_id for r in rows(Execution)} == {own.id}
    assert [d.workflow_id for d in rows(EnrollmentDecision)] == [own.id]  # a listener elsewhere is not asked
    assert elsewhere.id not in answer["workflowsTriggered"]


def test_a_delivery_nobody_listens_to_is_accepted_and_starts_nothing(client, org):
    endpoint, secret = factories.make_webhook(org)

    answer = deliver(client, endpoint, secret).json

    assert answer["success"] is True and answer["workflowsTriggered"] == []
    assert [d.outcome for d in rows(WebhookDelivery)] == ["accepted"] and rows(Execution) == []


# --- rejections ----------------------------------------------------------------------------------------------------

def _missing(client, endpoint, secret):
    return client.post(url(endpoint.id), data=json.dumps(BODY), headers={"Content-Type": "application/json"})


def _bad_signature(client, endpoint, secret):
    return deliver(client, endpoint, signing.new_secret())


def _past(client, endpoint, secret):
    return deliver(client, endpoint, secret, when=int(time.time()) - 6 * 60)


def _future(client, endpoint, secret):
    return deliver(client, endpoint, secret, when=int(time.time()) + 6 * 60)


def _not_integer(client, endpoint, secret):
    raw = json.dumps(BODY).encode()
    headers = {**signing.headers(secret, "msg_x", int(time.time()), raw), "webhook-timestamp": "soon"}
    return client.post(url(endpoint.id), data=raw, headers=headers)


def _origin(client, endpoint, secret):
    return deliver(client, endpoint, secret, extra={"Origin": "https://evil.example"})


def _oversize(client, endpoint, secret):
    return deliver(client, endpoint, secret, {"blob": "x" * (256 * 1024)})


def _malformed(client, endpoint, secret):
    return deliver(client, endpoint, secret, b'{"email": ')


def _array(client, endpoint, secret):
    return deliver(client, endpoint, secret, b'[{"email": "jane@example.com"}]')


def _bare(client, endpoint, secret):
    return deliver(client, endpoint, secret, b'"hello"')


REJECTIONS = {
    "missing headers": (_missing, 401, "WEBHOOK_SIGNATURE_MISSING"),
    "bad signature": (_bad_signature, 401, "WEBHOOK_SIGNATURE_INVALID"),
    "stale, past": (_past, 401, "WEBHOOK_TIMESTAMP_STALE"),
    "stale, future": (_future, 401, "WEBHOOK_TIMESTAMP_STALE"),
    "non-integer timestamp": (_not_integer, 401, "WEBHOOK_TIMESTAMP_INVALID"),
    "disallowed origin": (_origin, 403, "WEBHOOK_ORIGIN_NOT_ALLOWED"),
    "oversize": (_oversize, 413, "WEBHOOK_PAYLOAD_TOO_LARGE"),
    "malformed JSON": (_malformed, 400, "WEBHOOK_PAYLOAD_INVALID"),
    "a JSON array": (_array, 400, "WEBHOOK_PAYLOAD_INVALID"),
    "a bare value": (_bare, 400, "WEBHOOK_PAYLOAD_INVALID"),
}


@pytest.mark.parametrize("send, status, code", REJECTIONS.values(), ids=REJECTIONS.keys())
def test_each_rejection_has_its_code_starts_nothing_and_is_counted(client, org, listener, send, status, code):
    endpoint, secret = factories.make_webhook(org, allowed_origins=["https://www.irontemple.example"])

    error = assert_error(send(client, endpoint, secret), status, code)

    assert error["message"]
    [delivery] = rows(WebhookDelivery)
    assert (delivery.outcome, delivery.reason, delivery.detail) == ("rejected", code, error["message"])
    assert delivery.payload is None and delivery.execution_ids == []  # the body is not kept
    assert rows(Execution) == [] and rows(Event) == [] and rows(WebhookMessage) == []
    assert webhooks.statistics(org.id, endpoint.id)["rejected"] == {code: 1}


def test_an_allowed_origin_and_no_origin_are_accepted(client, org, listener):
    endpoint, secret = factories.make_webhook(org, allowed_origins=["https://www.irontemple.example"])

    assert deliver(client, endpoint, secret, extra={"Origin": "https://WWW.irontemple.example:443"}).status_code == 200
    assert deliver(client, endpoint, secret).status_code == 200


def test_an_unknown_endpoint_is_404_counted_in_redis_only(client, org):
    response = client.post(url(missing_id()), data=b"{}", headers={"Content-Type": "application/json"})

    assert_error(response, 404, "WEBHOOK_NOT_FOUND")
    assert rows(WebhookDelivery) == [] and webhook_receive.unknown_endpoint_count() == 1


def test_an_inactive_endpoint_is_404_and_recorded(client, org, listener):
    endpoint, secret = factories.make_webhook(org, active=False)

    error = assert_error(deliver(client, endpoint, secret), 404, "WEBHOOK_NOT_FOUND")

    assert "inactive" in error["message"]
    assert [(d.outcome, d.reason) for d in rows(WebhookDelivery)] == [("rejected", "WEBHOOK_NOT_FOUND")]
    assert rows(Execution) == []


def test_past_the_endpoint_s_rate_limit_is_429_with_retry_after_and_recorded(client, org, listener):
    endpoint, secret = factories.make_webhook(org, rate_limit=2)
    for _ in range(2):
        assert deliver(client, endpoint, secret).status_code == 200

    response = deliver(client, endpoint, secret)

    error = assert_error(response, 429, "WEBHOOK_RATE_LIMITED")
    assert 0 < int(response.headers["Retry-After"]) <= 60 and error["details"]["limit"] == 2
    assert len(rows(Execution)) == 2
    assert webhooks.statistics(org.id, endpoint.id)["rejected"] == {"WEBHOOK_RATE_LIMITED": 1}
    other, other_secret = factories.make_webhook(org, rate_limit=2)  # the limit is per endpoint
    assert deliver(client, other, other_secret).status_code == 200


def test_the_app_s_default_limits_do_not_throttle_senders(build_app, org, listener):
    endpoint, secret = factories.make_webhook(org, rate_limit=1000)
    endpoint = SimpleNamespace(id=endpoint.id)
    db.session.remove()
    tiny = build_app(RATELIMIT_DEFAULT="2 per minute").test_client()

    statuses = [deliver(tiny, endpoint, secret).status_code for _ in range(5)]

    assert statuses == [200] * 5


# --- duplicates and rotation ---------------------------------------------------------------------------------------

def test_a_repeated_webhook_id_gets_the_first_answer_and_starts_nothing(client, org, listener, hook):
    endpoint, secret = hook
    first = deliver(client, endpoint, secret, msg_id="msg_again").json

    again = deliver(client, endpoint, secret, msg_id="msg_again", library=False)

    assert again.status_code == 200
    answer = again.json
    assert answer["duplicate"] is True and answer["workflowsTriggered"] == first["workflowsTriggered"] == [listener.id]
    assert answer["originalDeliveryId"] == first["deliveryId"] != answer["deliveryId"]
    assert len(rows(Execution)) == 1 and len(rows(Event)) == 1
    duplicate = db.session.get(WebhookDelivery, answer["deliveryId"])
    assert (duplicate.outcome, duplicate.original_delivery_id, duplicate.execution_ids) == (
        "duplicate", first["deliveryId"], [])
    assert webhooks.statistics(org.id, endpoint.id)["duplicates"] == 1


def test_a_webhook_id_older_than_a_day_is_new_again(client, org, listener, hook):
    endpoint, secret = hook
    deliver(client, endpoint, secret, msg_id="msg_old")
    [message] = rows(WebhookMessage)
    message.received_at = utcnow() - timedelta(hours=25)
    db.session.commit()

    answer = deliver(client, endpoint, secret, msg_id="msg_old").json

    assert "duplicate" not in answer and len(rows(Execution)) == 2


def test_a_rejected_webhook_id_can_be_sent_again(client, org, listener, hook):
    endpoint, secret = hook
    assert deliver(client, endpoint, secret, b"[]", msg_id="msg_retry").status_code == 400

    assert deliver(client, endpoint, secret, msg_id="msg_retry").json["workflowsTriggered"] == [listener.id]


def test_the_old_secret_verifies_during_its_grace_period_only(client, org, listener, hook):
    endpoint, old = hook
    endpoint, new = webhooks.rotate_secret(org.id, endpoint.id, grace_seconds=3600)

    assert deliver(client, endpoint, old).status_code == 200
    assert deliver(client, endpoint, new).status_code == 200
    endpoint.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    assert_error(deliver(client, endpoint, old), 401, "WEBHOOK_SIGNATURE_INVALID")
    assert deliver(client, endpoint, new).status_code == 200


def test_a_signature_list_with_the_old_and_the_new_key_verifies(client, org, listener, hook):
    endpoint, old = hook
    endpoint, new = webhooks.rotate_secret(org.id, endpoint.id, grace_seconds=0)
    raw = json.dumps(BODY).encode()
    when = int(time.time())
    both = f"{signing.sign(old, 'msg_two', when, raw)} {signing.sign(new, 'msg_two', when, raw)}"

    response = client.post(url(endpoint.id), data=raw, headers={
        "webhook-id": "msg_two", "webhook-timestamp": str(when), "webhook-signature": both})

    assert response.status_code == 200


# --- transform and filter ------------------------------------------------------------------------------------------

TRANSFORM = {"mappings": [{"to": "email", "from": "data.customer.email"},
                          {"to": "plan", "expression": "data.items[0].plan", "default": "basic"}]}
FILTER = [{"field": "trigger.body.plan", "operator": "in", "value": ["gold", "platinum"]}]


def test_the_transformed_payload_is_what_the_run_reads(client, org, listener):
    endpoint, secret = factories.make_webhook(org, transform=TRANSFORM, filter_conditions=FILTER)
    body = {"data": {"customer": {"email": "jane@example.com"}, "items": [{"plan": "gold"}]}}

    answer = deliver(client, endpoint, secret, body).json

    assert answer["workflowsTriggered"] == [listener.id]
    [delivery] = rows(WebhookDelivery)
    assert delivery.payload == body and delivery.processed_payload == {"email": "jane@example.com", "plan": "gold"}
    [run] = rows(Execution)
    assert run.trigger_data["body"] == {"email": "jane@example.com", "plan": "gold"}


def test_a_filtered_delivery_is_accepted_not_triggered_with_the_failing_condition(client, org, listener):
    endpoint, secret = factories.make_webhook(org, transform=TRANSFORM, filter_conditions=FILTER)

    response = deliver(client, endpoint, secret, {"data": {"customer": {"email": "jane@example.com"}}})

    assert response.status_code == 200
    answer = response.json
    assert answer["success"] is True and answer["workflowsTriggered"] == []
    assert answer["filtered"]["reason"] == "filterConditions[0] failed: trigger.body.plan is one of ['gold', " \
                                           "'platinum'] (it was 'basic')."
    [delivery] = rows(WebhookDelivery)
    assert (delivery.outcome, delivery.detail) == ("filtered", answer["filtered"]["reason"])
    assert delivery.processed_payload == {"email": "jane@example.com", "plan": "basic"}
    assert rows(Execution) == [] and rows(Event) == []
    assert len(rows(WebhookMessage)) == 1  # a retry of it is a duplicate
    assert deliver(client, endpoint, secret, msg_id=delivery.message_id).json["filtered"] == answer["filtered"]


# --- the test endpoint ---------------------------------------------------------------------------------------------

def test_the_test_endpoint_logs_each_step_and_starts_test_runs(client, org, staff_headers, listener):
    endpoint, _ = factories.make_webhook(org, transform={"mappings": [{"to": "email", "from": "lead.email"}]})

    response = client.post(f"/api/v2/webhooks/{endpoint.id}/test", headers=staff_headers,
                           json={"payload": {"lead": {"email": "jane@example.com"}}})

    assert response.status_code == 200, response.json
    answer = response.json
    assert answer["success"] is True and answer["processedPayload"] == {"email": "jane@example.com"}
    assert [(log["step"], log["status"]) for log in answer["logs"]] == [
        ("verification", "skipped"), ("origin", "skipped"), ("transform", "passed"), ("filter", "skipped"),
        ("trigger", "passed")]
    assert answer["triggeredWorkflows"] == [listener.id]
    [run] = rows(Execution)
    assert answer["executionIds"] == [run.id] and run.test_mode
    assert run.trigger_data["body"] == {"email": "jane@example.com"}
    [delivery] = rows(WebhookDelivery)
    assert delivery.test_mode and delivery.outcome == "accepted"
    assert rows(EnrollmentDecision) == []  # a test leaves no decision
    assert webhooks.statistics(org.id, endpoint.id)["received"] == 0


def test_the_test_endpoint_checks_a_signature_when_one_is_sent(client, org, staff_headers, listener, hook):
    endpoint, secret = hook
    payload = {"email": "jane@example.com"}
    good = signed(secret, json.dumps(payload, separators=(",", ":")).encode())
    bad = signed(signing.new_secret(), json.dumps(payload).encode())
    test = f"/api/v2/webhooks/{endpoint.id}/test"

    passed = client.post(test, headers=staff_headers, json={"payload": payload, "headers": good}).json
    failed = client.post(test, headers=staff_headers, json={"payload": payload, "headers": bad}).json

    assert passed["logs"][0]["status"] == "passed" and passed["success"] is True
    assert failed["success"] is False and failed["triggeredWorkflows"] == []
    assert failed["logs"][0]["status"] == "failed" and "WEBHOOK_SIGNATURE_INVALID" in failed["logs"][0]["message"]
    assert [log["status"] for log in failed["logs"][2:]] == ["skipped"] * 3


def test_the_test_endpoint_names_the_failing_filter(client, org, staff_headers, listener):
    endpoint, _ = factories.make_webhook(org, filter_conditions=FILTER)

    answer = client.post(f"/api/v2/webhooks/{endpoint.id}/test", headers=staff_headers,
                         json={"payload": {"plan": "silver"}}).json

    statuses = {log["step"]: (log["status"], log["message"]) for log in answer["logs"]}
    assert statuses["filter"][0] == "failed" and "trigger.body.plan is one of" in statuses["filter"][1]
    assert statuses["trigger"][0] == "skipped" and answer["executionIds"] == []


def test_the_test_endpoint_needs_staff_and_hides_other_organizations(client, org, member, outsider_headers):
    endpoint, _ = factories.make_webhook(org)
    _, viewer = member("viewer")
    test = f"/api/v2/webhooks/{endpoint.id}/test"

    assert_error(client.post(test, headers=viewer, json={"payload": {}}), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(client.post(test, headers=outsider_headers, json={"payload": {}}), 404, "WEBHOOK_NOT_FOUND")
    assert_error(client.post(test, json={"payload": {}}), 401, "UNAUTHENTICATED")


# --- replay --------------------------------------------------------------------------------------------------------

def test_a_replay_is_a_new_delivery_in_test_mode_unless_live(client, org, staff_headers, listener, hook):
    endpoint, secret = hook
    first = deliver(client, endpoint, secret).json["deliveryId"]
    replay = f"/api/v2/webhooks/deliveries/{first}/replay"

    tested = client.post(replay, headers=staff_headers, json={})
    live = client.post(replay, headers=staff_headers, json={"live": True})

    assert tested.status_code == 201 and live.status_code == 201
    assert (tested.json["replayOf"], tested.json["testMode"], tested.json["outcome"]) == (first, True, "accepted")
    assert (live.json["replayOf"], live.json["testMode"]) == (first, False)
    runs = {r.id: r for r in rows(Execution)}
    assert len(runs) == 3 and runs[tested.json["executionIds"][0]].test_mode
    assert not runs[live.json["executionIds"][0]].test_mode
    assert redis_holder.client.exists(f"rq:job:{runs[live.json['executionIds'][0]].job_id}")


def test_a_rejected_delivery_cannot_be_replayed_and_another_org_s_is_missing(client, org, staff_headers,
                                                                            outsider_headers, hook):
    endpoint, secret = hook
    deliver(client, endpoint, signing.new_secret())
    [rejected] = rows(WebhookDelivery)
    replay = f"/api/v2/webhooks/deliveries/{rejected.id}/replay"

    assert_error(client.post(replay, headers=staff_headers, json={}), 409, "WEBHOOK_REPLAY_UNAVAILABLE")
    assert_error(client.post(replay, headers=outsider_headers, json={}), 404, "WEBHOOK_DELIVERY_NOT_FOUND")
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
