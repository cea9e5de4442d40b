"""/api/v2/config/actions, email and SMS template CRUD, the outbox and the inbound SMS webhook."""
import sys
import types
from datetime import timedelta

import pytest

from atlas.extensions import db
from atlas.models import Contact, Message, MessageTemplate
from atlas.models.base import utcnow
from atlas.services import messaging
from tests import factories
from tests.api.helpers import assert_error, missing_id, validation

EMAIL = "/api/v2/config/email-templates"
SMS = "/api/v2/config/sms-templates"
WELCOME = {"name": "Welcome", "subject": "Welcome, {{ contact.first_name }}!",
           "body": "See you at {{ trigger.class }}."}


def create(client, headers, url=EMAIL, **body):
    response = client.post(url, json=body or WELCOME, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["template"]


@pytest.fixture
def foreign_template(other_org):
    template = MessageTemplate(organization_id=other_org.id, channel="email", name="Rival", subject="s", body="b")
    db.session.add(template)
    db.session.commit()
    return template


# --- /config/actions ---------------------------------------------------------------------------------------------

def test_config_actions_lists_steps_templates_and_providers(client, staff_headers, app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", "smtp://127.0.0.1:2525")
    monkeypatch.setitem(app.config, "SMS_PROVIDER_URL", None)
    create(client, staff_headers)
    create(client, staff_headers, SMS, name="Reminder", body="Class at 6, {{ contact.first_name }}")

    body = client.get("/api/v2/config/actions", headers=staff_headers).get_json()

    definitions = client.get("/api/v2/actions/definitions", headers=staff_headers).get_json()["actions"]
    assert body["availableActions"] == definitions
    send_sms = next(a for a in body["availableActions"] if a["type"] == "send_sms")
    assert send_sms["category"] == "communication" and send_sms["sideEffects"] is True
    assert [t["name"] for t in body["emailTemplates"]] == ["Welcome"]
    assert body["smsTemplates"][0]["variables"] == ["contact.first_name"]
    assert body["integrations"] == [
        {"key": "smtp", "name": "Email (SMTP)", "channel": "email", "configured": True},
        {"key": "sms", "name": "SMS (HTTP provider)", "channel": "sms", "configured": False}]
    assert body["customActions"] == []


# --- template CRUD -----------------------------------------------------------------------------------------------

def test_email_template_crud(client, staff_headers):
    template = create(client, staff_headers)
    assert template["channel"] == "email" and template["variables"] == ["contact.first_name", "trigger.class"]
    url = f"{EMAIL}/{template['id']}"
    assert client.get(url, headers=staff_headers).get_json()["template"] == template

    updated = client.put(url, json={"name": "Welcome v2"}, headers=staff_headers).get_json()["template"]
    assert updated["name"] == "Welcome v2" and updated["body"] == WELCOME["body"]
    assert [t["name"] for t in client.get(EMAIL, headers=staff_headers).get_json()["templates"]] == ["Welcome v2"]

    deleted = client.delete(url, headers=staff_headers).get_json()
    assert deleted == {"success": True, "deletedTemplate": {"id": template["id"], "name": "Welcome v2"}}
    assert_error(client.get(url, headers=staff_headers), 404, "TEMPLATE_NOT_FOUND")


def test_names_are_unique_per_channel_ignoring_case(client, staff_headers):
    first = create(client, staff_headers)
    error = assert_error(client.post(EMAIL, json={**WELCOME, "name": "  WELCOME "}, headers=staff_headers), 409,
                         "TEMPLATE_NAME_TAKEN")
    assert "Welcome" in error["message"] or "WELCOME" in error["message"]
    create(client, staff_headers, SMS, name="welcome", body="hi")  # another channel: fine
    other = create(client, staff_headers, **{**WELCOME, "name": "Other"})
    assert_error(client.put(f"{EMAIL}/{other['id']}", json={"name": "welcome"}, headers=staff_headers), 409,
                 "TEMPLATE_NAME_TAKEN")
    # renaming a template to its own name in another case is not a clash
    assert client.put(f"{EMAIL}/{first['id']}", json={"name": "WELCOME"}, headers=staff_headers).status_code == 200


def test_a_template_that_does_not_compile_is_refused_with_its_line(client, staff_headers):
    response = client.post(EMAIL, json={**WELCOME, "body": "Hello\n{% if contact.first_name %}no end"},
                           headers=staff_headers)
    error = assert_error(response, 422, "INVALID_TEMPLATE")
    assert error["details"] == {"field": "body", "line": 2} and "line 2" in error["message"]

    response = client.post(SMS, json={"name": "Leak", "body": "{{ config.SECRET_KEY }}"}, headers=staff_headers)
    error = assert_error(response, 422, "INVALID_TEMPLATE")
    assert "config.SECRET_KEY cannot be read" in error["message"]


def test_a_failed_update_changes_nothing(client, staff_headers):
    template = create(client, staff_headers)
    url = f"{EMAIL}/{template['id']}"
    assert_error(client.put(url, json={"name": "New", "body": "{{ broken"}, headers=staff_headers), 422,
                 "INVALID_TEMPLATE")
    assert client.get(url, headers=staff_headers).get_json()["template"]["name"] == "Welcome"


def test_an_sms_body_over_1600_characters_is_refused(client, staff_headers):
    response = client.post(SMS, json={"name": "Essay", "body": "x" * 1601}, headers=staff_headers)
    assert_error(response, 422, "SMS_TOO_LONG")
    assert create(client, staff_headers, SMS, name="Fits", body="x" * 1600)["body"] == "x" * 1600


def test_missing_fields_are_validation_errors(client, staff_headers):
    assert validation(client.post(EMAIL, json={"name": "No subject", "body": "b"}, headers=staff_headers)) == {
        "subject": "Missing data for required field."}
    assert "name" in validation(client.post(SMS, json={"name": "  ", "body": "b"}, headers=staff_headers))
    assert "subject" in validation(client.post(SMS, json={"name": "n", "body": "b", "subject": "s"},
                                               headers=staff_headers))


def test_another_organizations_template_is_not_found(client, staff_headers, foreign_template):
    url = f"{EMAIL}/{foreign_template.id}"
    missing = f"{EMAIL}/{missing_id()}"
    for method, body in (("get", None), ("put", {"name": "Mine now"}), ("delete", None)):
        foreign = getattr(client, method)(url, json=body, headers=staff_headers)
        absent = getattr(client, method)(missing, json=body, headers=staff_headers)
        first = assert_error(foreign, 404, "TEMPLATE_NOT_FOUND")
        second = assert_error(absent, 404, "TEMPLATE_NOT_FOUND")
        assert first["message"].replace(foreign_template.id, "?") == second["message"].replace(
            missing.rsplit("/", 1)[1], "?")
    assert db.session.get(MessageTemplate, foreign_template.id).name == "Rival"
    assert client.get(EMAIL, headers=staff_headers).get_json()["templates"] == []


def test_an_sms_template_is_not_found_through_the_email_endpoint(client, staff_headers):
    template = create(client, staff_headers, SMS, name="Reminder", body="hi")
    assert_error(client.get(f"{EMAIL}/{template['id']}", headers=staff_headers), 404, "TEMPLATE_NOT_FOUND")


def test_viewers_read_but_do_not_write(client, member, staff_headers):
    template = create(client, staff_headers)
    _, viewer = member("viewer")
    assert client.get(EMAIL, headers=viewer).status_code == 200
    assert_error(client.post(EMAIL, json=WELCOME, headers=viewer), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(client.delete(f"{EMAIL}/{template['id']}", headers=viewer), 403, "INSUFFICIENT_PERMISSIONS")


def test_a_template_in_use_cannot_be_deleted(client, staff_headers, org, staff):
    template = create(client, staff_headers, SMS, name="Reminder", body="hi")
    flow = {"schemaVersion": 1, "nodes": [{"id": "t", "type": "send_sms", "config": {"templateId": template["id"]}}],
            "edges": []}
    factories.make_workflow(org, staff, name="Class reminder", workflow_data=flow)
    error = assert_error(client.delete(f"{SMS}/{template['id']}", headers=staff_headers), 409, "TEMPLATE_IN_USE")
    assert error["details"] == {"workflows": ["Class reminder"]}


# --- the outbox --------------------------------------------------------------------------------------------------

def _message(org, contact=None, **fields):
    data = {"channel": "sms", "to_address": "+15550100", "body": "Hi", "status": "sent"}
    data.update(fields)
    row = Message(organization_id=org.id, contact_id=contact.id if contact else None, **data)
    db.session.add(row)
    db.session.commit()
    return row


def test_the_outbox_lists_newest_first_with_filters(client, staff_headers, org, other_org):
    sarah = factories.make_contact(org)
    old = _message(org, sarah, created_at=utcnow() - timedelta(hours=1))
    unsent = _message(org, None, status="not_sent", channel="email", to_address="a@b.c", subject="S",
                      error="No email provider is configured")
    _message(other_org, None, body="theirs")

    body = client.get("/api/v2/outbox", headers=staff_headers).get_json()
    assert [m["id"] for m in body["messages"]] == [unsent.id, old.id]
    assert body["pagination"] == {"total": 2, "page": 1, "limit": 20, "totalPages": 1}
    first = body["messages"][0]
    assert first["status"] == "not_sent" and first["to"] == "a@b.c" and first["error"].startswith("No email")

    def ids(**query):
        return [m["id"] for m in client.get("/api/v2/outbox", query_string=query,
                                             headers=staff_headers).get_json()["messages"]]

    assert ids(status="sent") == [old.id] and ids(channel="email") == [unsent.id]
    assert ids(contactId=sarah.id) == [old.id] and ids(limit=1, page=2) == [old.id]


def test_outbox_query_errors(client, staff_headers):
    assert "limit" in validation(client.get("/api/v2/outbox?limit=101", headers=staff_headers))
    assert "status" in validation(client.get("/api/v2/outbox?status=lost", headers=staff_headers))
    assert "channel" in validation(client.get("/api/v2/outbox?channel=fax", headers=staff_headers))


# --- inbound SMS -------------------------------------------------------------------------------------------------

@pytest.fixture
def emitted(monkeypatch):
    """What the messaging service reports to the events service (a stand-in while that module is missing)."""
    calls = []
    try:
        from atlas.services import events
    except ImportError:
        events = types.ModuleType("atlas.services.events")
        monkeypatch.setitem(sys.modules, "atlas.services.events", events)
        monkeypatch.setattr("atlas.services.events", events, raising=False)
    monkeypatch.setattr(events, "emit", lambda *args: calls.append(args), raising=False)
    return calls


def inbound(client, org, body, sender="+1 (555) 0100", token=None):
    token = token if token is not None else messaging.inbound_token(org.id)
    return client.post(f"/api/v2/sms/inbound?org={org.id}&token={token}",
                       data={"From": sender, "Body": body, "To": "+15559990000", "MessageSid": "SM1"})


def test_stop_opts_the_contact_out_and_start_back_in(client, org, emitted):
    sarah = factories.make_contact(org, phone="+15550100")
    response = inbound(client, org, "  stop ")
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == messaging_api_twiml()
    db.session.expire_all()
    assert db.session.get(Contact, sarah.id).sms_opt_out is True
    assert emitted == [(org.id, "contact_unsubscribed", sarah.id,
                        {"channel": "sms", "from": "+1 (555) 0100", "to": "+15559990000", "body": "  stop "})]

    inbound(client, org, "START")
    db.session.expire_all()
    assert db.session.get(Contact, sarah.id).sms_opt_out is False


@pytest.mark.parametrize("word", ["STOPALL", "unsubscribe", "Cancel", "END", "quit"])
def test_every_stop_word_opts_out(client, org, word, emitted):
    sarah = factories.make_contact(org, phone="+15550100")
    inbound(client, org, word)
    db.session.expire_all()
    assert db.session.get(Contact, sarah.id).sms_opt_out is True


def test_another_reply_is_recorded_as_sms_received(client, org, emitted):
    sarah = factories.make_contact(org, phone="+15550100")
    assert inbound(client, org, "Can I bring a friend?").status_code == 200
    db.session.expire_all()
    assert db.session.get(Contact, sarah.id).sms_opt_out is False
    assert [call[1] for call in emitted] == ["sms_received"]


def test_a_stop_only_touches_the_organization_whose_url_it_came_to(client, org, other_org, emitted):
    ours = factories.make_contact(org, phone="+15550100")
    theirs = factories.make_contact(other_org, phone="+15550100")
    inbound(client, org, "STOP")
    db.session.expire_all()
    assert db.session.get(Contact, ours.id).sms_opt_out and not db.session.get(Contact, theirs.id).sms_opt_out


def test_a_bad_or_missing_token_is_403(client, org, other_org, emitted):
    sarah = factories.make_contact(org, phone="+15550100")
    assert_error(inbound(client, org, "STOP", token="nope"), 403, "INVALID_INBOUND_TOKEN")
    assert_error(inbound(client, org, "STOP", token=messaging.inbound_token(other_org.id)), 403,
                 "INVALID_INBOUND_TOKEN")
    assert_error(client.post("/api/v2/sms/inbound", data={"From": "+15550100", "Body": "STOP"}), 403,
                 "INVALID_INBOUND_TOKEN")
    db.session.expire_all()
    assert db.session.get(Contact, sarah.id).sms_opt_out is False and emitted == []


def test_an_inbound_post_without_a_sender_is_422(client, org, emitted):
    assert_error(inbound(client, org, "STOP", sender=""), 422, "VALIDATION_FAILED")


def messaging_api_twiml() -> str:
    from atlas.api.messaging import EMPTY_TWIML

    return EMPTY_TWIML


def test_a_stop_is_stored_as_a_contact_unsubscribed_event_by_the_events_service(client, org):
    from atlas.models import Event

    sarah = factories.make_contact(org, phone="+15550100")
    inbound(client, org, "STOP")
    inbound(client, org, "What time is spin?")
    db.session.expire_all()
    events = db.session.query(Event).filter_by(organization_id=org.id, contact_id=sarah.id).all()
    assert sorted(e.type for e in events) == ["contact_unsubscribed", "sms_received"]
