"""Messaging handlers against a real SMTP server (aiosmtpd) and a real HTTP SMS API, both on 127.0.0.1."""
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from atlas.core.steps.base import StepError
from atlas.extensions import db
from atlas.models import EnrollmentDecision, Execution, Message, MessageTemplate, StaffNotification
from atlas.models.base import utcnow
from atlas.services import effects, executions, runner
from atlas.services import messaging as service
from atlas.services.effects import EffectContext
from atlas.services.providers import smtp
from tests import factories
from tests.support.sms_server import SmsServer
from tests.support.smtp import SmtpServer, free_port


@pytest.fixture
def mail(app, monkeypatch):
    """A real SMTP server that the app sends to."""
    with SmtpServer() as server:
        monkeypatch.setitem(app.config, "SMTP_URL", server.url)
        monkeypatch.setitem(app.config, "EMAIL_FROM", "Iron Temple <hello@irontemple.example>")
        yield server


@pytest.fixture
def sms(app, monkeypatch):
    """A real HTTP SMS API that the app posts to, with credentials."""
    with SmsServer() as server:
        for key, value in {"SMS_PROVIDER_URL": server.url, "SMS_ACCOUNT_SID": "AC123", "SMS_AUTH_TOKEN": "s3cret",
                           "SMS_FROM": "+15559990000"}.items():
            monkeypatch.setitem(app.config, key, value)
        yield server


@pytest.fixture
def no_providers(app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    monkeypatch.setitem(app.config, "SMS_PROVIDER_URL", None)


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Trial follow-up")


@pytest.fixture
def sarah(org):
    return factories.make_contact(org, first_name="Sarah", email="sarah@example.com", phone="+15550100")


def context(org, workflow, contact, **kwargs) -> EffectContext:
    return EffectContext(org_id=org.id, execution_id="exec-1", workflow_id=workflow.id, contact_id=contact.id,
                         **kwargs)


def sms_params(key="exec-1:text:1", **extra) -> dict:
    return {"to": "+15550100", "body": "Hi Sarah", "nodeId": "text", "idempotency_key": key, **extra}


def email_params(key="exec-1:mail:1", **extra) -> dict:
    return {"to": "sarah@example.com", "subject": "Welcome", "body": "See you at Spin", "nodeId": "mail",
            "idempotency_key": key, **extra}


def outbox(org) -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(select(Message).where(Message.organization_id == org.id)
                                   .order_by(Message.created_at)))


def decisions(org) -> list[EnrollmentDecision]:
    return list(db.session.scalars(select(EnrollmentDecision).where(EnrollmentDecision.organization_id == org.id)))


# --- delivery ----------------------------------------------------------------------------------------------------

def test_an_email_reaches_the_smtp_server(org, workflow, sarah, mail):
    result = effects.perform(context(org, workflow, sarah), "send_email", email_params(fromName="Coach Kim"))

    assert len(mail.messages) == 1
    received = mail.messages[0]["message"]
    assert received["To"] == "sarah@example.com" and received["Subject"] == "Welcome"
    assert received["From"] == "Coach Kim <hello@irontemple.example>"
    assert received["Idempotency-Key"] == received["X-Atlas-Idempotency-Key"] == "exec-1:mail:1"
    assert received.get_content().strip() == "See you at Spin"
    assert result["status"] == "sent" and result["provider"] == "smtp"
    assert result["providerId"] == received["Message-ID"] == smtp.message_id("exec-1:mail:1", "irontemple.example")
    [row] = outbox(org)
    assert (row.status, row.contact_id, row.channel, row.sent_at is not None) == ("sent", sarah.id, "email", True)


def test_smtp_with_credentials_logs_in(org, workflow, sarah, app, monkeypatch):
    with SmtpServer(auth=("gym", "pa ss")) as server:
        monkeypatch.setitem(app.config, "SMTP_URL", server.url.replace("pa ss", "pa%20ss"))
        effects.perform(context(org, workflow, sarah), "send_email", email_params())
        assert len(server.messages) == 1


def test_an_sms_reaches_the_http_provider_with_the_form_and_basic_auth(org, workflow, sarah, sms):
    result = effects.perform(context(org, workflow, sarah), "send_sms", sms_params())

    [request] = sms.delivered
    assert request["form"] == {"To": "+15550100", "From": "+15559990000", "Body": "Hi Sarah"}
    assert request["auth"] == "AC123:s3cret" and request["headers"]["Idempotency-Key"] == "exec-1:text:1"
    assert result == {"messageId": outbox(org)[0].id, "status": "sent", "to": "+15550100", "provider": "sms",
                      "providerId": request["sid"]}


def test_a_503_then_success_delivers_once_and_a_repeat_is_answered_from_the_outbox(org, workflow, sarah, sms):
    sms.fail_next(1)
    ctx = context(org, workflow, sarah)
    with pytest.raises(StepError) as failure:
        effects.perform(ctx, "send_sms", sms_params())
    assert failure.value.retryable and failure.value.code == "PROVIDER_UNAVAILABLE"
    [row] = outbox(org)
    assert row.status == "failed" and "HTTP 503" in row.error

    first = effects.perform(ctx, "send_sms", sms_params())
    again = effects.perform(ctx, "send_sms", sms_params())

    assert first == again and first["status"] == "sent"
    assert len(sms.requests) == 2 and len(sms.delivered) == 1
    assert [r.status for r in outbox(org)] == ["sent"]


def test_a_row_left_queued_by_a_crash_is_sent_once_under_its_key(org, workflow, sarah, sms):
    db.session.add(Message(organization_id=org.id, contact_id=sarah.id, channel="sms", to_address="+15550100",
                           body="Hi Sarah", status="queued", idempotency_key="exec-1:text:1"))
    db.session.commit()
    ctx = context(org, workflow, sarah)
    effects.perform(ctx, "send_sms", sms_params())
    effects.perform(ctx, "send_sms", sms_params())
    assert len(sms.delivered) == 1 and sms.delivered[0]["headers"]["Idempotency-Key"] == "exec-1:text:1"
    assert [r.status for r in outbox(org)] == ["sent"]


def test_a_permanent_refusal_is_not_retried(org, workflow, sarah, sms):
    sms.refuse_next(400)
    with pytest.raises(StepError) as failure:
        effects.perform(context(org, workflow, sarah), "send_sms", sms_params())
    assert not failure.value.retryable and failure.value.code == "PROVIDER_REFUSED"
    assert "not a valid phone number" in outbox(org)[0].error


def test_an_smtp_recipient_refusal_is_permanent(org, workflow, sarah, mail):
    mail.handler.refuse.add("sarah@example.com")
    with pytest.raises(StepError) as failure:
        effects.perform(context(org, workflow, sarah), "send_email", email_params())
    assert not failure.value.retryable and "550" in failure.value.message
    assert outbox(org)[0].status == "failed"


def test_an_smtp_451_is_retryable(org, workflow, sarah, mail):
    mail.handler.fail_next = 1
    with pytest.raises(StepError) as failure:
        effects.perform(context(org, workflow, sarah), "send_email", email_params())
    assert failure.value.retryable
    effects.perform(context(org, workflow, sarah), "send_email", email_params())
    assert len(mail.messages) == 1


def test_an_smtp_server_that_is_down_is_an_outage(org, workflow, sarah, app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    with pytest.raises(StepError) as failure:
        effects.perform(context(org, workflow, sarah), "send_email", email_params())
    assert failure.value.retryable and "could not be reached" in failure.value.message
    assert outbox(org)[0].status == "failed"


def test_without_a_provider_the_message_stays_in_the_outbox_not_sent(org, workflow, sarah, no_providers):
    result = effects.perform(context(org, workflow, sarah), "send_sms", sms_params())
    assert result["status"] == "not_sent" and result["provider"] is None
    assert "SMS_PROVIDER_URL is not set" in result["reason"]
    [row] = outbox(org)
    assert row.status == "not_sent" and row.sent_at is None and row.body == "Hi Sarah"


def test_a_mocked_test_run_records_and_sends_nothing(org, workflow, sarah, sms):
    ctx = context(org, workflow, sarah, test_mode=True, mock=True)
    result = effects.perform(ctx, "send_sms", sms_params())
    assert result["status"] == "mocked" and sms.requests == []
    assert outbox(org)[0].test_mode is True


def test_a_mocked_test_run_shows_what_the_policy_would_do_without_waiting(org, workflow, sarah, sms):
    now = utcnow()
    org.settings = {"quietHours": {"enabled": True, "start": f"{now - timedelta(hours=1):%H:%M}",
                                   "end": f"{now + timedelta(hours=2):%H:%M}"}}
    db.session.commit()
    result = effects.perform(context(org, workflow, sarah, test_mode=True, mock=True), "send_sms", sms_params())
    assert result["status"] == "mocked" and result["policy"]["action"] == "defer"
    assert result["policy"]["rule"] == "quiet_hours" and decisions(org) == []  # test runs leave no decisions


# --- templates ---------------------------------------------------------------------------------------------------

def test_a_stored_template_is_rendered_by_the_handler(org, workflow, sarah, mail):
    template = MessageTemplate(organization_id=org.id, channel="email", name="Welcome",
                               subject="Welcome, {{ contact.first_name }}", body="Your {{ trigger.class }} awaits")
    db.session.add(template)
    db.session.commit()
    data = {"contact": {"first_name": "Sarah"}, "trigger": {"class": "Spin"}, "vars": {}, "steps": {}}
    effects.perform(context(org, workflow, sarah), "send_email",
                    {"to": "sarah@example.com", "templateId": template.id, "data": data, "idempotency_key": "k"})
    received = mail.messages[0]["message"]
    assert received["Subject"] == "Welcome, Sarah" and received.get_content().strip() == "Your Spin awaits"


def test_another_organizations_template_is_not_found(org, workflow, sarah, other_org_template, mail):
    with pytest.raises(StepError) as failure:
        effects.perform(context(org, workflow, sarah), "send_email",
                        {"to": "sarah@example.com", "templateId": other_org_template.id, "data": {},
                         "idempotency_key": "k"})
    assert failure.value.code == "TEMPLATE_NOT_FOUND" and not failure.value.retryable
    assert mail.messages == [] and outbox(org) == []


@pytest.fixture
def other_org_template(app_ctx):
    rival = factories.make_org("Rival Barbell Club")
    template = MessageTemplate(organization_id=rival.id, channel="email", name="Poach", subject="s", body="b")
    db.session.add(template)
    db.session.commit()
    return template


# --- the contact policy ------------------------------------------------------------------------------------------

def test_an_opted_out_contact_is_suppressed_and_the_decision_log_says_why(org, workflow, sarah, sms):
    sarah.sms_opt_out = True
    db.session.commit()
    result = effects.perform(context(org, workflow, sarah), "send_sms", sms_params())

    assert result["status"] == "suppressed" and result["rule"] == "consent"
    assert sms.requests == [] and outbox(org)[0].status == "suppressed"
    [decision] = decisions(org)
    assert (decision.outcome, decision.contact_id, decision.workflow_id) == ("suppressed", sarah.id, workflow.id)
    assert decision.reason == "The contact has opted out of SMS." and decision.detail["rule"] == "consent"
    assert decision.event_type == "send_sms" and decision.execution_id == "exec-1"


def test_quiet_hours_defer_and_are_logged(org, workflow, sarah, sms):
    now = utcnow()
    org.settings = {"quietHours": {"enabled": True, "start": f"{now - timedelta(hours=1):%H:%M}",
                                   "end": f"{now + timedelta(hours=2):%H:%M}"}}
    db.session.commit()
    result = effects.perform(context(org, workflow, sarah), "send_sms", sms_params())

    assert result["rule"] == "quiet_hours" and result["reason"].startswith("Quiet hours")
    assert timedelta(hours=1) < (datetime.fromisoformat(result["deferUntil"]) - now) <= timedelta(hours=2)
    assert sms.requests == [] and outbox(org) == []
    [decision] = decisions(org)
    assert decision.outcome == "deferred" and decision.detail["until"] == result["deferUntil"]


def _sent_before(org, contact, count, **fields):
    for n in range(count):
        db.session.add(Message(organization_id=org.id, contact_id=contact.id, channel="sms", to_address=contact.phone,
                               body=f"earlier {n}", status=fields.get("status", "sent"),
                               test_mode=fields.get("test_mode", False),
                               created_at=utcnow() - timedelta(days=fields.get("days_ago", 1))))
    db.session.commit()


@pytest.mark.parametrize("action, outcome", [("defer", "deferred"), ("skip", "suppressed")])
def test_the_fourth_sms_in_seven_days_is_capped(org, workflow, sarah, sms, action, outcome):
    org.settings = {"frequencyCaps": {"sms": {"max": 3, "days": 7}}, "cappedAction": action}
    db.session.commit()
    _sent_before(org, sarah, 3)
    result = effects.perform(context(org, workflow, sarah), "send_sms", sms_params())

    assert result["rule"] == "frequency_cap" and sms.requests == []
    assert ("deferUntil" in result) == (action == "defer")
    [decision] = decisions(org)
    assert decision.outcome == outcome and "3 per 7 days" in decision.reason


def test_test_messages_failures_and_old_messages_do_not_count_toward_the_cap(org, workflow, sarah, sms):
    org.settings = {"frequencyCaps": {"sms": {"max": 3, "days": 7}}}
    db.session.commit()
    _sent_before(org, sarah, 2)
    _sent_before(org, sarah, 1, test_mode=True)
    _sent_before(org, sarah, 1, status="failed")
    _sent_before(org, sarah, 1, days_ago=8)
    assert effects.perform(context(org, workflow, sarah), "send_sms", sms_params())["status"] == "sent"


def test_a_contact_without_a_number_is_suppressed(org, workflow, sms):
    nobody = factories.make_contact(org, phone=None)
    result = effects.perform(context(org, workflow, nobody), "send_sms", sms_params(to=None))
    assert result["status"] == "suppressed" and result["reason"] == "The contact has no phone number."


# --- through the runner ------------------------------------------------------------------------------------------

def test_a_run_retries_after_a_503_and_the_provider_gets_one_message(org, staff, sarah, sms):
    flow = {"schemaVersion": 1, "nodes": [{"id": "text", "type": "send_sms",
                                           "config": {"body": "Hi {{ contact.first_name }}, see you at 6!"}}],
            "edges": []}
    workflow = factories.make_workflow(org, staff, status="active", workflow_data=flow)
    execution, _ = executions.start_execution(org.id, None, workflow.id, trigger_data={},
                                              input_data={"contact": {"id": sarah.id}})
    sms.fail_next(1)
    assert runner.run_execution(execution.id) == "waiting"  # a retry is scheduled
    db.session.execute(update(Execution).where(Execution.id == execution.id).values(
        resume_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert runner.run_execution(execution.id) == "completed"

    assert len(sms.delivered) == 1 and sms.delivered[0]["form"]["Body"] == "Hi Sarah, see you at 6!"
    rows = outbox(org)
    assert [(r.status, r.idempotency_key) for r in rows] == [
        ("failed", f"{execution.id}:text:1"), ("sent", f"{execution.id}:text:2")]
    assert runner.run_execution(execution.id) is None  # a finished run is not run again


def test_notify_staff_is_idempotent_and_refuses_strangers(org, workflow, sarah, staff):
    ctx = context(org, workflow, sarah)
    params = {"message": "Sarah booked", "userId": staff.id, "idempotency_key": "exec-1:note:1"}
    first = effects.perform(ctx, "notify_staff", params)
    assert effects.perform(ctx, "notify_staff", params) == first and first["status"] == "created"
    assert db.session.scalar(select(StaffNotification)).contact_id == sarah.id
    stranger = factories.make_user(factories.make_org())
    with pytest.raises(StepError) as failure:
        effects.perform(ctx, "notify_staff", {**params, "userId": stranger.id, "idempotency_key": "x"})
    assert failure.value.code == "USER_NOT_FOUND"


def test_provider_status_shows_configuration_the_last_send_and_the_last_error(org, workflow, sarah, sms, app,
                                                                             monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    sms.fail_next(1)
    with pytest.raises(StepError):
        effects.perform(context(org, workflow, sarah), "send_sms", sms_params())
    effects.perform(context(org, workflow, sarah), "send_sms", sms_params(key="exec-1:text:2"))

    status = {p["key"]: p for p in service.provider_status(org.id)}
    assert status["smtp"]["configured"] is False and status["smtp"]["last_error"] is None
    assert status["sms"]["configured"] is True and status["sms"]["setting"] == "SMS_PROVIDER_URL"
    assert "HTTP 503" in status["sms"]["last_error"] and status["sms"]["last_sent_at"] is not None


def test_a_rendered_recipient_that_is_too_long_fails_the_step(org, workflow, sarah, sms):
    with pytest.raises(StepError) as failure:
        effects.perform(context(org, workflow, sarah), "send_sms", sms_params(to="5" * 300))
    assert failure.value.code == "INVALID_RECIPIENT" and not failure.value.retryable and outbox(org) == []


def test_a_provider_slower_than_the_timeout_is_an_outage(org, workflow, sarah, sms, app, monkeypatch):
    monkeypatch.setitem(app.config, "ATLAS_HTTP_TIMEOUT", 0.2)
    sms.stall = 1.0
    with pytest.raises(StepError) as failure:
        effects.perform(context(org, workflow, sarah), "send_sms", sms_params())
    assert failure.value.retryable and "did not answer within 0.2 seconds" in failure.value.message
