"""The webhooks page through Flask's test client: the list and its counters, create with the secret shown once,
errors beside fields, an endpoint's delivery log with every outcome, replay, the test form, viewers and tenancy."""
import html
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from atlas.extensions import db
from atlas.models import WebhookDelivery, WebhookEndpoint
from atlas.models.base import utcnow
from atlas.services import executions, secrets
from tests import factories
from tests.conftest import make_app
from tests.web.test_pages import sign_in

HTMX = {"HX-Request": "true"}


@pytest.fixture
def signed_in(client, org, staff):
    sign_in(client, staff, org)
    return client


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Free trial welcome", status="active")


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def deliver(org, endpoint, outcome: str, **fields) -> WebhookDelivery:
    """A recorded delivery, as the receiver would have written it."""
    delivery = WebhookDelivery(organization_id=org.id, endpoint_id=endpoint.id, outcome=outcome,
                               headers={"webhook-id": fields.get("message_id", "msg_1")}, **fields)
    db.session.add(delivery)
    db.session.commit()
    return delivery


def field_error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page)
    return html.unescape(match.group(1)) if match else None


def stat(page: str, name: str) -> str:
    return re.search(rf'data-stat="{name}">([^<]*)<', page).group(1).strip()


# The list

def test_the_empty_state_explains_webhooks_for_a_gym_and_offers_to_create_one(signed_in):
    page = text(signed_in.get("/webhooks"))
    assert "<h1>Webhooks</h1>" in page and "No webhooks yet" in page
    assert "Your website's trial form or booking widget can start a workflow" in page
    assert 'href="/webhooks/new"' in page and "Create a webhook" in page
    assert '<a href="/webhooks" aria-current="page">Webhooks</a>' in page  # the main nav


def test_the_list_shows_each_endpoint_with_its_url_workflow_and_counters(signed_in, org, workflow):
    endpoint, _ = factories.make_webhook(org, name="Website trial form", workflow_id=workflow.id)
    paused, _ = factories.make_webhook(org, name="Booking widget", active=False)
    deliver(org, endpoint, "accepted")
    deliver(org, endpoint, "filtered", detail="trigger.body.form was Contact us")
    deliver(org, endpoint, "duplicate")
    for code in ("WEBHOOK_SIGNATURE_INVALID", "WEBHOOK_SIGNATURE_INVALID", "WEBHOOK_TIMESTAMP_STALE"):
        deliver(org, endpoint, "rejected", reason=code)
    deliver(org, endpoint, "accepted", test_mode=True)  # test deliveries are not counted
    page = text(signed_in.get("/webhooks"))
    assert "Website trial form" in page and "Booking widget" in page and "Paused" in page
    assert f"http://localhost/api/v2/webhooks/receive/{endpoint.id}" in page
    assert 'data-copy="url-' + endpoint.id + '"' in page
    assert f'href="/workflows/{workflow.id}/executions">Free trial welcome</a>' in page
    card = page[page.index(f'data-endpoint-id="{endpoint.id}"'):]
    assert [stat(card, s) for s in ("received", "accepted", "filtered", "duplicates", "rejected")] == \
           ["6", "1", "1", "1", "3"]
    assert "2 wrong signature, 1 timestamp too old or new" in card
    assert "less than a minute ago" in card
    assert f'hx-get="/webhooks/{endpoint.id}/counters' in card and 'hx-trigger="every 5s"' in card


def test_the_counters_fragment_answers_alone_and_offers_new_deliveries_on_the_endpoint_page(signed_in, org):
    endpoint, _ = factories.make_webhook(org)
    deliver(org, endpoint, "accepted", received_at=utcnow() - timedelta(minutes=3))
    response = signed_in.get(f"/webhooks/{endpoint.id}/counters", headers=HTMX)
    body = text(response)
    assert response.status_code == 200 and "<html" not in body and stat(body, "received") == "1"
    assert "3 minutes ago" in body and "new deliver" not in body
    deliver(org, endpoint, "rejected", reason="WEBHOOK_SIGNATURE_MISSING")
    deliver(org, endpoint, "accepted")
    body = text(signed_in.get(f"/webhooks/{endpoint.id}/counters?seen=1", headers=HTMX))
    assert stat(body, "received") == "3" and "1 no signature" in body and "Show 2 new deliveries" in body
    assert f'hx-get="/webhooks/{endpoint.id}/counters?seen=1"' in body  # it keeps polling with the same count


# Creating

def test_create_shows_the_secret_and_signed_examples_once(signed_in, org, workflow):
    form = signed_in.get("/webhooks/new")
    assert form.status_code == 200 and f'<option value="{workflow.id}" >Free trial welcome</option>' in text(form)
    response = signed_in.post("/webhooks/new", data={
        "name": "Website trial form", "workflow_id": workflow.id, "allowed_origins": "https://www.irontemple.example",
        "rate_limit": "120", "transform": '{"mappings": [{"to": "email", "from": "data.email"}]}',
        "filter_conditions": ""})
    page = text(response)
    endpoint = db.session.scalars(select(WebhookEndpoint)).one()
    secret = secrets.decrypt(endpoint.secret_encrypted)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "You will not see this secret again." in page
    assert f'<code id="secret-value" class="wh-value">{secret}</code>' in page
    assert 'data-copy="secret-value"' in page and 'data-copy="example-curl"' in page
    assert page.count(secret) >= 3  # the field, the curl and the Python example
    assert "curl -sS -X POST" in page and "from standardwebhooks.webhooks import Webhook" in page
    assert (endpoint.name, endpoint.workflow_id, endpoint.rate_limit) == ("Website trial form", workflow.id, 120)
    assert endpoint.allowed_origins == ["https://www.irontemple.example"]
    assert endpoint.transform == {"mappings": [{"to": "email", "from": "data.email"}]}
    assert secret not in text(signed_in.get("/webhooks"))
    detail = text(signed_in.get(f"/webhooks/{endpoint.id}"))
    assert secret not in detail and secret[:10] + "…" in detail


@pytest.mark.parametrize("fields, field, message", [
    ({"name": ""}, "name", "Give the endpoint a name"),
    ({"rate_limit": "lots"}, "rate_limit", "Write a whole number"),
    ({"transform": "{not json"}, "transform", "This is not valid JSON"),
    ({"filter_conditions": '"everyone"'}, "filter_conditions", "Write a JSON list"),
    ({"filter_conditions": '[{"field": "trigger.body.x", "operator": "nearly"}]'}, "filter_conditions",
     "Condition 1, operator: 'nearly' is not an operator"),
    ({"rate_limit": "0"}, "rate_limit", "Write a whole number"),
    ({"allowed_origins": "www.example.com/path"}, "allowed_origins", "“www.example.com/path”: Not a valid origin"),
    ({"transform": '{"mappings": [{"to": "email"}]}'}, "transform", "Mapping 1 must have exactly one of from"),
])
def test_a_refused_form_keeps_what_was_typed_and_shows_the_error_beside_its_field(signed_in, fields, field, message):
    data = {"name": "Website trial form", "rate_limit": "", "transform": "", "filter_conditions": "", **fields}
    response = signed_in.post("/webhooks/new", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "Please correct the fields marked below." in page
    assert field_error(page, field).startswith(message) and f'aria-describedby="{field}-error"' in page
    assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0
    assert 'value="Website trial form"' in page or not data["name"]


def test_a_workflow_of_another_organization_is_refused_beside_the_picker(signed_in, org):
    rival_workflow = factories.make_workflow(factories.make_org("Rival"), name="Theirs")
    response = signed_in.post("/webhooks/new", data={"name": "Form", "workflow_id": rival_workflow.id})
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "workflow_id").startswith("That workflow no longer exists")


# One endpoint

def test_the_endpoint_page_shows_every_outcome_with_runs_payloads_and_reasons(signed_in, org, workflow):
    endpoint, _ = factories.make_webhook(org, name="Website trial form", workflow_id=workflow.id)
    run, _ = executions.start_execution(org.id, None, workflow.id, trigger_data={}, input_data={})
    now = utcnow()
    deliver(org, endpoint, "accepted", message_id="msg_acc", payload={"email": "sarah@example.com"},
            processed_payload={"email": "sarah@example.com", "source": "website"}, execution_ids=[run.id],
            workflow_ids=[workflow.id], received_at=now - timedelta(minutes=4))
    deliver(org, endpoint, "filtered", payload={"form": "Contact us"}, processed_payload={"form": "Contact us"},
            detail="trigger.body.form is Contact us, expected Free trial week", received_at=now - timedelta(minutes=3))
    deliver(org, endpoint, "duplicate", payload={"email": "sarah@example.com"}, received_at=now - timedelta(minutes=2))
    deliver(org, endpoint, "rejected", reason="WEBHOOK_SIGNATURE_INVALID", detail="No signature matched.",
            received_at=now - timedelta(minutes=1))
    deliver(org, endpoint, "accepted", payload={"email": "test@example.com"}, test_mode=True, received_at=now)
    page = text(signed_in.get(f"/webhooks/{endpoint.id}"))
    assert "<h1>Website trial form</h1>" in page
    outcomes = re.findall(r'<span class="badge badge-wh-(\w+)">', page)
    assert outcomes == ["accepted", "rejected", "duplicate", "filtered", "accepted"]  # newest first
    assert f'href="/workflows/{workflow.id}/executions/{run.id}">Free trial welcome</a>' in page
    assert "Wrong signature: No signature matched." in page and "Not stored" in page
    assert "Filter not met: trigger.body.form is Contact us, expected Free trial week" in page
    assert "Same webhook-id as an earlier delivery" in page and '<span class="tag">Test</span>' in page
    assert '"source": "website"' in page and "msg_acc" in page and "4 minutes ago" in page
    assert page.count("Replay…") == 4  # not for the rejected one: its body was not kept
    assert "5 deliveries" in page
    only = text(signed_in.get(f"/webhooks/{endpoint.id}?outcome=rejected",
                              headers={**HTMX, "HX-Target": "delivery-log"}))
    assert "<html" not in only and re.findall(r'badge-wh-(\w+)"', only) == ["rejected"]
    assert 'hx-swap-oob="true"' in only  # the counters learn what the log now shows


def test_the_delivery_log_pages_newest_first(signed_in, org):
    endpoint, _ = factories.make_webhook(org)
    start = utcnow() - timedelta(hours=1)
    for n in range(27):
        deliver(org, endpoint, "accepted", message_id=f"msg_{n:02d}", received_at=start + timedelta(minutes=n))
    first = text(signed_in.get(f"/webhooks/{endpoint.id}"))
    assert "Page 1 of 2 · 27 deliveries" in first and "msg_26" in first and "msg_01" not in first
    second = text(signed_in.get(f"/webhooks/{endpoint.id}?page=2"))
    assert "msg_01" in second and "msg_00" in second and "msg_26" not in second


def test_settings_save_and_errors_come_back_beside_the_field(signed_in, org, workflow):
    endpoint, _ = factories.make_webhook(org, name="Old name")
    saved = signed_in.post(f"/webhooks/{endpoint.id}/settings", data={
        "name": "Booking widget", "workflow_id": workflow.id,
        "allowed_origins": "https://book.example\nhttps://a.example",
        "rate_limit": "30", "transform": "", "filter_conditions": ""})
    assert saved.status_code == 303
    db.session.refresh(endpoint)
    assert (endpoint.name, endpoint.workflow_id, endpoint.rate_limit, endpoint.active) == \
           ("Booking widget", workflow.id, 30, False)  # the box was not ticked: paused
    assert endpoint.allowed_origins == ["https://book.example", "https://a.example"]
    assert "Settings saved." in text(signed_in.get(saved.headers["Location"]))
    refused = signed_in.post(f"/webhooks/{endpoint.id}/settings", data={"name": "", "active": "on"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and field_error(page, "name").startswith("Give the endpoint a name")
    db.session.refresh(endpoint)
    assert endpoint.name == "Booking widget"


def test_rotating_shows_the_new_secret_once_and_the_old_one_keeps_working(signed_in, org):
    endpoint, old = factories.make_webhook(org)
    response = signed_in.post(f"/webhooks/{endpoint.id}/rotate", data={"grace": "3600"})
    page = text(response)
    db.session.refresh(endpoint)
    new = secrets.decrypt(endpoint.secret_encrypted)
    assert new != old and f'<code id="secret-value" class="wh-value">{new}</code>' in page
    assert "You will not see this secret again." in page
    assert response.headers["Cache-Control"] == "no-store" and "The previous secret also works until" in page
    assert secrets.decrypt(endpoint.previous_secret_encrypted) == old
    assert new not in text(signed_in.get(f"/webhooks/{endpoint.id}"))


def test_delete_removes_the_endpoint_after_confirmation(signed_in, org):
    endpoint, _ = factories.make_webhook(org, name="Old form")
    page = text(signed_in.get(f"/webhooks/{endpoint.id}"))
    assert "Delete “Old form” and its delivery log?" in page
    response = signed_in.post(f"/webhooks/{endpoint.id}/delete")
    assert response.status_code == 303 and response.headers["Location"] == "/webhooks"
    assert "Webhook “Old form” deleted." in text(signed_in.get("/webhooks"))
    assert db.session.get(WebhookEndpoint, endpoint.id) is None


# Replay and test

def test_replay_as_a_test_adds_a_new_delivery_at_the_top(signed_in, org, workflow):
    endpoint, _ = factories.make_webhook(org, workflow_id=workflow.id)
    original = deliver(org, endpoint, "accepted", payload={"email": "sarah@example.com"},
                       processed_payload={"email": "sarah@example.com"}, received_at=utcnow() - timedelta(hours=1))
    response = signed_in.post(f"/webhooks/{endpoint.id}/deliveries/{original.id}/replay", data={"mode": "test"},
                              headers={**HTMX, "HX-Target": "delivery-log"})
    body = text(response)
    assert response.status_code == 200 and "<html" not in body and "Replayed" in body
    newest = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.received_at.desc())).first()
    assert newest.id != original.id and newest.replay_of == original.id and newest.test_mode
    ids = re.findall(r'data-delivery-id="([^"]+)"', body)
    assert ids == [newest.id, original.id]
    plain = signed_in.post(f"/webhooks/{endpoint.id}/deliveries/{original.id}/replay", data={"mode": "live"})
    assert plain.status_code == 303 and "Replayed live." in text(signed_in.get(plain.headers["Location"]))
    live = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.received_at.desc())).first()
    assert live.replay_of == original.id and not live.test_mode


def test_replaying_another_endpoints_delivery_is_a_404(signed_in, org):
    endpoint, _ = factories.make_webhook(org)
    other, _ = factories.make_webhook(org)
    delivery = deliver(org, other, "accepted", payload={"a": 1})
    assert signed_in.post(f"/webhooks/{endpoint.id}/deliveries/{delivery.id}/replay").status_code == 404


def test_the_test_form_shows_the_processed_payload_the_workflows_and_every_step(signed_in, org, workflow):
    endpoint, _ = factories.make_webhook(org, workflow_id=workflow.id,
                                         transform={"mappings": [{"to": "email", "from": "data.email"},
                                                                 {"to": "source", "value": "website"}]})
    page = text(signed_in.get(f"/webhooks/{endpoint.id}"))
    assert '"firstName": "Sarah"' in page  # the sample the form starts with
    payload = json.dumps({"data": {"email": "sarah@example.com"}})
    response = signed_in.post(f"/webhooks/{endpoint.id}/test", data={"payload": payload, "headers": ""},
                              headers=HTMX)
    body = text(response)
    assert response.status_code == 200 and "<html" not in body and 'id="webhook-test"' in body
    assert re.search(r'"source": "website"', body) and '"email": "sarah@example.com"' in body
    steps = re.findall(r'<span class="wh-check-step">([^<]+)</span> <span class="wh-check-status">(\w+)</span>', body)
    assert steps and all(status in ("passed", "failed", "skipped") for _, status in steps)
    assert "Free trial welcome" in body and "It started 1 test run." in body


def test_the_test_form_shows_bad_json_beside_the_field(signed_in, org):
    endpoint, _ = factories.make_webhook(org)
    response = signed_in.post(f"/webhooks/{endpoint.id}/test", data={"payload": "[1, 2]", "headers": "no colon"},
                              headers=HTMX)
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and field_error(body, "payload").startswith("Write a JSON object")
    assert field_error(body, "headers").startswith("Write each header as Name: value")


# Who may do what

def test_viewers_look_but_cannot_change_and_the_posts_refuse(client, org):
    viewer = factories.make_user(org, "viewer")
    sign_in(client, viewer, org)
    endpoint, _ = factories.make_webhook(org, name="Website trial form")
    delivery = deliver(org, endpoint, "accepted", payload={"email": "a@example.com"})
    assert "Ask a staff member" not in text(client.get("/webhooks"))
    page = text(client.get(f"/webhooks/{endpoint.id}"))
    assert "Website trial form" in page and "needs the staff role" in page.replace("need the staff", "needs the staff")
    assert "Rotate secret" not in page and "Delete…" not in page and "Replay…" not in page
    assert "Send test delivery" not in page and "<fieldset class=\"wh-fieldset\" disabled>" in page
    assert client.get("/webhooks/new").status_code == 403
    for path, data in [("/webhooks/new", {"name": "x"}), (f"/webhooks/{endpoint.id}/settings", {"name": "x"}),
                       (f"/webhooks/{endpoint.id}/rotate", {}), (f"/webhooks/{endpoint.id}/delete", {}),
                       (f"/webhooks/{endpoint.id}/test", {"payload": "{}"}),
                       (f"/webhooks/{endpoint.id}/deliveries/{delivery.id}/replay", {"mode": "test"})]:
        assert client.post(path, data=data).status_code == 403, path
    db.session.refresh(endpoint)
    assert endpoint.name == "Website trial form"
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


def test_another_organizations_endpoint_is_a_404_page(signed_in):
    rival = factories.make_org("Rival")
    foreign, _ = factories.make_webhook(rival, name="Their secret form")
    delivery = deliver(rival, foreign, "accepted", payload={"a": 1})
    for path in (f"/webhooks/{foreign.id}", f"/webhooks/{foreign.id}/counters"):
        response = signed_in.get(path)
        assert response.status_code == 404 and "Their secret form" not in response.get_data(as_text=True)
    for path in (f"/webhooks/{foreign.id}/settings", f"/webhooks/{foreign.id}/rotate", f"/webhooks/{foreign.id}/delete",
                 f"/webhooks/{foreign.id}/test", f"/webhooks/{foreign.id}/deliveries/{delivery.id}/replay"):
        assert signed_in.post(path, data={"name": "x", "payload": "{}"}).status_code == 404, path
    assert "Their secret form" not in text(signed_in.get("/webhooks"))
    assert db.session.get(WebhookEndpoint, foreign.id).name == "Their secret form"


def test_signed_out_visitors_go_to_login_and_polling_is_sent_there_too(client, org):
    endpoint, _ = factories.make_webhook(org)
    assert "/login" in client.get("/webhooks").headers["Location"]
    polled = client.get(f"/webhooks/{endpoint.id}/counters", headers=HTMX)
    assert polled.status_code == 401 and "/login" in polled.headers["HX-Redirect"]


def test_the_forms_carry_the_csrf_token(app_ctx, database_url, redis_server, org, staff):
    protected = make_app(database_url, redis_server.url, WTF_CSRF_ENABLED=True)
    try:
        client = protected.test_client()
        sign_in(client, staff, org)
        db.session.remove()  # end this test's transaction: SQLite has one writer
        page = client.get("/webhooks/new").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert client.post("/webhooks/new", data={"name": "Form"}).status_code == 400
        assert client.post("/webhooks/new", data={"name": "Form", "csrf_token": token}).status_code == 200
    finally:
        with protected.app_context():
            db.engine.dispose()
