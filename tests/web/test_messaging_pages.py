"""The outbox and messaging settings pages through Flask's test client."""
import html
import re

import pytest

from atlas.extensions import db
from atlas.models import Message, MessageTemplate, Organization
from atlas.services import messaging
from tests import factories
from tests.web.test_pages import field_error, sign_in


@pytest.fixture
def signed_in(client, org, staff):
    sign_in(client, staff, org)
    return client


def _message(org, contact=None, **fields):
    data = {"channel": "sms", "to_address": "+15550100", "body": "Hi Sarah", "status": "sent"}
    data.update(fields)
    row = Message(organization_id=org.id, contact_id=contact.id if contact else None, **data)
    db.session.add(row)
    db.session.commit()
    return row


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


# --- the outbox --------------------------------------------------------------------------------------------------

def test_the_outbox_shows_sent_and_unsent_messages_with_badges_errors_and_contact_links(signed_in, org, other_org):
    sarah = factories.make_contact(org, first_name="Sarah", last_name="Lee")
    _message(org, sarah)
    _message(org, None, channel="email", status="not_sent", subject="Welcome!", to_address="x@example.com",
             error="No email provider is configured (SMTP_URL is not set); the message was not sent.")
    _message(other_org, None, body="Rival secret")

    text = page(signed_in.get("/outbox"))
    assert '<span class="badge badge-message-sent">Sent</span>' in text
    assert '<span class="badge badge-message-not_sent">Not sent</span>' in text
    assert "SMTP_URL is not set" in text and "Welcome!" in text
    assert f'href="/contacts/{sarah.id}">Sarah Lee</a>' in text
    assert "Rival secret" not in text


def test_outbox_filters_answer_with_the_results_fragment(signed_in, org):
    _message(org, None, body="A text")
    _message(org, None, channel="email", subject="An email", body="Mail body")
    response = signed_in.get("/outbox?channel=email", headers={"HX-Request": "true", "HX-Target": "outbox-results"})
    text = page(response)
    assert "<html" not in text and "Mail body" in text and "A text" not in text
    assert "HX-Request" in response.headers["Vary"]


def test_an_empty_outbox_says_so(signed_in):
    assert "No messages yet" in page(signed_in.get("/outbox"))
    assert "No messages match these filters" in page(signed_in.get("/outbox?status=failed"))


def test_pages_need_a_session(client, org):
    assert client.get("/outbox").status_code == 302
    assert client.get("/settings/messaging").status_code == 302


# --- settings ----------------------------------------------------------------------------------------------------

def test_settings_show_providers_templates_and_the_inbound_url(signed_in, org, app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", "smtp://127.0.0.1:2525")
    monkeypatch.setitem(app.config, "SMS_PROVIDER_URL", None)
    db.session.add(MessageTemplate(organization_id=org.id, channel="sms", name="Reminder", body="See you at 6"))
    _message(org, None, status="failed", error="The SMS provider is unavailable (HTTP 503)")
    db.session.commit()

    text = page(signed_in.get("/settings/messaging"))
    smtp_row = re.search(r'<tr data-provider="smtp">.*?</tr>', text, re.S).group(0)
    sms_row = re.search(r'<tr data-provider="sms">.*?</tr>', text, re.S).group(0)
    assert "Configured" in smtp_row and "Not configured" in sms_row
    assert "HTTP 503" in sms_row
    assert "Reminder" in text and "See you at 6" in text
    token = messaging.inbound_token(org.id)
    assert f"/api/v2/sms/inbound?org={org.id}&token={token}" in text


def test_viewers_see_no_inbound_token_and_cannot_edit(client, org):
    viewer = factories.make_user(org, "viewer")
    sign_in(client, viewer, org)
    text = page(client.get("/settings/messaging"))
    assert messaging.inbound_token(org.id) not in text and "Save contact policy" not in text
    assert client.post("/settings/messaging/policy", data={}).status_code == 403
    assert client.get("/settings/messaging/sms/templates/new").status_code == 403


def test_saving_the_contact_policy(signed_in, org):
    response = signed_in.post("/settings/messaging/policy", data={
        "quiet_enabled": "on", "quiet_start": "21:00", "quiet_end": "08:00", "sms_max": "3", "sms_days": "7",
        "email_max": "", "email_days": "", "capped_action": "skip"})
    assert response.status_code == 302
    db.session.expire_all()
    settings = db.session.get(Organization, org.id).settings
    assert settings["quietHours"] == {"enabled": True, "start": "21:00", "end": "08:00"}
    assert settings["frequencyCaps"] == {"sms": {"max": 3, "days": 7}} and settings["cappedAction"] == "skip"
    text = page(signed_in.get("/settings/messaging"))
    assert 'id="sms_max" name="sms_max" inputmode="numeric" size="4" value="3"' in text


def test_a_bad_policy_is_shown_beside_its_field_and_not_saved(signed_in, org):
    response = signed_in.post("/settings/messaging/policy", data={
        "quiet_enabled": "on", "quiet_start": "21:00", "quiet_end": "21:00", "sms_max": "0", "sms_days": "7",
        "capped_action": "defer"})
    assert response.status_code == 422
    text = page(response)
    assert field_error(text, "frequencyCaps-sms-max") == "The number of messages must be 1 to 1000."
    assert field_error(text, "quietHours-end") == "Quiet hours must end at another time than they start."
    db.session.expire_all()
    assert db.session.get(Organization, org.id).settings in ({}, None)


def test_creating_editing_and_deleting_a_template(signed_in, org):
    response = signed_in.post("/settings/messaging/email/templates/new", data={
        "name": "Trial welcome", "subject": "Hi {{ contact.first_name }}", "body": "Welcome to the gym"})
    assert response.status_code == 302
    template = db.session.query(MessageTemplate).one()
    assert (template.channel, template.subject) == ("email", "Hi {{ contact.first_name }}")

    edit = f"/settings/messaging/email/templates/{template.id}"
    assert 'value="Trial welcome"' in signed_in.get(edit).get_data(as_text=True)
    assert signed_in.post(edit, data={"name": "Trial welcome", "subject": "Hello", "body": "New"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(MessageTemplate, template.id).body == "New"

    assert signed_in.post(f"{edit}/delete").status_code == 302
    assert db.session.query(MessageTemplate).count() == 0


def test_template_form_errors_are_shown_beside_their_field(signed_in, org):
    response = signed_in.post("/settings/messaging/sms/templates/new", data={"name": "Bad", "body": "{% if %}"})
    assert response.status_code == 422
    assert "line 1" in field_error(page(response), "body")
    db.session.add(MessageTemplate(organization_id=org.id, channel="sms", name="Taken", body="x"))
    db.session.commit()
    response = signed_in.post("/settings/messaging/sms/templates/new", data={"name": "taken", "body": "hi"})
    assert response.status_code == 422 and "already" in field_error(page(response), "name")


def test_another_organizations_template_is_404(signed_in, other_org):
    template = MessageTemplate(organization_id=other_org.id, channel="sms", name="Theirs", body="x")
    db.session.add(template)
    db.session.commit()
    assert signed_in.get(f"/settings/messaging/sms/templates/{template.id}").status_code == 404
    assert signed_in.post(f"/settings/messaging/sms/templates/{template.id}/delete").status_code == 404
    assert db.session.get(MessageTemplate, template.id) is not None


@pytest.fixture
def other_org(app_ctx):
    return factories.make_org("Rival Barbell Club")
