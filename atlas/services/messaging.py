"""Messaging: the send_email / send_sms / notify_staff effect handlers, the outbox, provider status, inbound SMS.

Sending one message, in order (each step commits before the next can fail):
  1. A row with this idempotency key already in the outbox and settled (sent, not_sent, suppressed, mocked) is the
     answer: a replay after a crash never sends twice. A queued or failed row is sent again under the same key.
  2. The contact policy (consent, frequency caps, quiet hours): a skip is stored as a suppressed row, a defer is
     answered with deferUntil (the step defers); both leave a decision in the log.
  3. The row is committed as queued, then handed to the provider; it becomes sent (with the provider's id) or
     failed (with the error). An outage raises a retryable StepError; a refusal a permanent one.
With no provider configured the row is not_sent; in a test run with mocked services it is mocked.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from atlas.core import templating
from atlas.core.steps.base import StepError
from atlas.core.steps.messaging import SMS_MAX_CHARS
from atlas.errors import AtlasError
from atlas.extensions import db
from atlas.models import Contact, Message, MessageStatus, Organization, StaffNotification
from atlas.models.base import utcnow
from atlas.services import auth, contacts, effects, policy, templates
from atlas.services.pagination import paginate
from atlas.services.providers import Outgoing, ProviderError, adapter
from atlas.services.tenancy import scoped

log = logging.getLogger(__name__)
SETTLED = {MessageStatus.SENT, MessageStatus.NOT_SENT, MessageStatus.SUPPRESSED, MessageStatus.MOCKED}
PROVIDERS = {"email": ("smtp", "Email (SMTP)", "SMTP_URL"), "sms": ("sms", "SMS (HTTP provider)", "SMS_PROVIDER_URL")}
CHANNEL_NAMES = {"email": "email", "sms": "SMS"}
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "UNSTOP"}


@effects.handler("send_email")
def send_email(ctx: effects.EffectContext, params: dict) -> dict:
    """Email the contact (see the module docstring for the order of things)."""
    return deliver(ctx, "email", params)


@effects.handler("send_sms")
def send_sms(ctx: effects.EffectContext, params: dict) -> dict:
    """Text the contact (see the module docstring for the order of things)."""
    return deliver(ctx, "sms", params)


def deliver(ctx: effects.EffectContext, channel: str, params: dict) -> dict:
    """One message through the outbox: idempotent by params["idempotency_key"]."""
    key = params.get("idempotency_key") or None
    row = _by_key(ctx.org_id, key)
    if row is not None and row.status in SETTLED:
        return result(row)
    if row is None:
        row = _admit(ctx, channel, params, key)
        if isinstance(row, dict):
            return row
        if row.status in SETTLED:  # a concurrent attempt with the same key got there first
            return result(row)
    return _send(row, params.get("fromName"))


def _by_key(org_id: str, key: str | None) -> Message | None:
    """The outbox row an earlier attempt with this idempotency key left, if any."""
    if not key:
        return None
    return db.session.scalar(scoped(Message, org_id).where(Message.idempotency_key == key))


def _admit(ctx: effects.EffectContext, channel: str, params: dict, key: str | None) -> Message | dict:
    """Compose the message and ask the policy: a queued row to send, or the answer when it is not sent now."""
    crm = _crm_contact(ctx)
    row = _new_row(ctx, channel, params, key, crm)
    verdict = _verdict(ctx, contacts.contact_data(crm) if crm else dict(params.get("contact") or {}), row)
    if verdict.action == policy.SKIP:
        row.status, row.error = MessageStatus.SUPPRESSED, verdict.reason
        policy.record(ctx, verdict, f"send_{channel}", channel=channel, node_id=row.node_id)
        return {**_commit(row), "rule": verdict.rule}
    if verdict.action == policy.DEFER and not ctx.mock:
        policy.record(ctx, verdict, f"send_{channel}", channel=channel, node_id=row.node_id)
        db.session.commit()
        return {"deferUntil": verdict.until.isoformat(), "reason": verdict.reason, "rule": verdict.rule}
    if ctx.mock:  # a test run shows what would happen, the policy's verdict included, and sends nothing
        row.status = MessageStatus.MOCKED
        answer = _commit(row)
        return {**answer, "policy": verdict.to_dict()} if verdict.action != policy.SEND else answer
    if row.provider is None:
        row.status = MessageStatus.NOT_SENT
        row.error = (f"No {CHANNEL_NAMES[channel]} provider is configured ({PROVIDERS[channel][2]} is not set); "
                     "the message was not sent.")
        return _commit(row)
    return _store(row)


def _new_row(ctx: effects.EffectContext, channel: str, params: dict, key: str | None, crm: Contact | None) -> Message:
    """The outbox row for this message, rendered and queued (not yet added to the session)."""
    subject, body = _compose(ctx.org_id, channel, params)
    to = str(params.get("to") or "").strip() or None
    if to and len(to) > 254:
        raise StepError(f"The recipient is {len(to)} characters long; an address has at most 254.",
                        code="INVALID_RECIPIENT")
    return Message(organization_id=ctx.org_id, contact_id=crm.id if crm else None, execution_id=ctx.execution_id,
                   node_id=params.get("nodeId"), channel=channel, to_address=to,
                   subject=subject, body=body, status=MessageStatus.QUEUED, idempotency_key=key,
                   test_mode=ctx.test_mode, provider=_provider_name(channel))


def _verdict(ctx: effects.EffectContext, contact: dict, row: Message) -> policy.Verdict:
    """The policy's verdict; a message with nowhere to go is suppressed before the policy is asked."""
    if not row.to_address:
        what = "email address" if row.channel == "email" else "phone number"
        return policy.Verdict(policy.SKIP, reason=f"The contact has no {what}.", rule="no_address")
    return policy.check(ctx.org_id, contact, row.channel, utcnow())


def _compose(org_id: str, channel: str, params: dict) -> tuple[str | None, str]:
    """(subject, body): the stored template rendered against the run's data, or the step's rendered inline text."""
    if params.get("templateId"):
        try:
            template = templates.get_template(org_id, channel, params["templateId"])
        except templates.TemplateNotFound as exc:
            raise StepError(exc.message, code="TEMPLATE_NOT_FOUND") from None
        data = params.get("data") or {}
        subject = templating.render(template.subject, data) if template.subject else None
        body = templating.render(template.body, data)
    else:
        subject, body = params.get("subject"), params.get("body") or ""
    if channel == "sms" and len(body) > SMS_MAX_CHARS:
        raise StepError(f"The SMS is {len(body):,} characters long; at most {SMS_MAX_CHARS:,} can be sent.",
                        code="SMS_TOO_LONG")
    if channel == "email":
        subject = " ".join((subject or "").split())[:200]  # a header: one line
    return subject, body


def _crm_contact(ctx: effects.EffectContext) -> Contact | None:
    """The run's contact when it is a CRM contact of the organization."""
    contact = db.session.get(Contact, ctx.contact_id) if ctx.contact_id else None
    return contact if contact is not None and contact.organization_id == ctx.org_id else None


def _provider_name(channel: str) -> str | None:
    """The channel's provider when one is configured."""
    module = adapter(channel)
    return module.NAME if module.configured(current_app.config) else None


def _store(row: Message) -> Message:
    """Commit the row; if a concurrent attempt stored the same key first, that row instead."""
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _by_key(row.organization_id, row.idempotency_key)
    return row


def _commit(row: Message) -> dict:
    """Commit a settled row and answer with it (or with the row a concurrent attempt stored)."""
    return result(_store(row))


def _send(row: Message, from_name: str | None) -> dict:
    """Hand a committed queued (or earlier failed) row to its provider and record how it went."""
    module, config = adapter(row.channel), current_app.config
    if not module.configured(config):
        row.status = MessageStatus.NOT_SENT
        row.error = f"No {CHANNEL_NAMES[row.channel]} provider is configured any more."
        return _commit(row)
    outgoing = Outgoing(to=row.to_address, body=row.body, subject=row.subject, from_name=from_name,
                        idempotency_key=row.idempotency_key or row.id)
    db.session.commit()  # no transaction stays open while the provider is called
    try:
        provider_id = module.send(config, outgoing)
    except ProviderError as exc:
        row.status, row.error, row.provider = MessageStatus.FAILED, exc.message, module.NAME
        db.session.commit()
        raise StepError(exc.message, code="PROVIDER_UNAVAILABLE" if exc.retryable else "PROVIDER_REFUSED",
                        retryable=exc.retryable) from None
    row.status, row.provider, row.provider_id, row.error, row.sent_at = (
        MessageStatus.SENT, module.NAME, provider_id, None, utcnow())
    db.session.commit()
    return result(row)


def result(row: Message) -> dict:
    """A message as the step's output."""
    answer = {"messageId": row.id, "status": row.status, "to": row.to_address, "provider": row.provider,
              "providerId": row.provider_id}
    if row.status in (MessageStatus.NOT_SENT, MessageStatus.SUPPRESSED, MessageStatus.FAILED) and row.error:
        answer["reason"] = row.error
    return answer


@effects.handler("notify_staff")
def notify_staff(ctx: effects.EffectContext, params: dict) -> dict:
    """Leave a note for one member of staff (or all); once per idempotency key; nothing in a mocked test run."""
    key = params.get("idempotency_key") or None
    user_id = params.get("userId") or None
    if user_id and auth.membership(user_id, ctx.org_id) is None:
        raise StepError(f"User {user_id!r} is not a member of this organization.", code="USER_NOT_FOUND")
    if ctx.mock:
        return {"notificationId": None, "status": "mocked", "userId": user_id}
    existing = db.session.scalar(scoped(StaffNotification, ctx.org_id).where(
        StaffNotification.idempotency_key == key)) if key else None
    if existing is None:
        crm = _crm_contact(ctx)
        existing = StaffNotification(organization_id=ctx.org_id, user_id=user_id, contact_id=crm.id if crm else None,
                                     message=params.get("message") or "", execution_id=ctx.execution_id,
                                     idempotency_key=key)
        db.session.add(existing)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            existing = db.session.scalar(select(StaffNotification).where(StaffNotification.idempotency_key == key))
    return {"notificationId": existing.id, "status": "created", "userId": existing.user_id}


# --- the outbox and providers ----------------------------------------------------------------------------------

def list_outbox(org_id: str, *, status: str | None = None, channel: str | None = None,
                contact_id: str | None = None, page: int = 1, limit: int = 20) -> tuple[list[Message], dict]:
    """One page of the outbox, newest first."""
    query = scoped(Message, org_id)
    for column, value in ((Message.status, status), (Message.channel, channel), (Message.contact_id, contact_id)):
        if value:
            query = query.where(column == value)
    return paginate(query.order_by(Message.created_at.desc(), Message.id), page, limit)


def contact_names(org_id: str, rows: list[Message]) -> dict[str, str]:
    """{contact id: name} for the messages' contacts."""
    ids = {row.contact_id for row in rows if row.contact_id}
    if not ids:
        return {}
    found = db.session.scalars(scoped(Contact, org_id).where(Contact.id.in_(ids)))
    return {contact.id: contact.name or contact.email or contact.phone or contact.id for contact in found}


def integrations() -> list[dict]:
    """The providers as /config/actions lists them."""
    config = current_app.config
    return [{"key": key, "name": name, "channel": channel, "configured": adapter(channel).configured(config)}
            for channel, (key, name, _setting) in PROVIDERS.items()]


def provider_status(org_id: str) -> list[dict]:
    """Each provider: configured or not, the setting that configures it, this organization's last send and error."""
    out = []
    for provider in integrations():
        last = {status: db.session.scalar(scoped(Message, org_id).where(
            Message.channel == provider["channel"], Message.status == status).order_by(
            Message.created_at.desc()).limit(1)) for status in (MessageStatus.SENT, MessageStatus.FAILED)}
        failed = last[MessageStatus.FAILED]
        out.append({**provider, "setting": PROVIDERS[provider["channel"]][2],
                    "last_sent_at": last[MessageStatus.SENT].sent_at if last[MessageStatus.SENT] else None,
                    "last_error": failed.error if failed else None,
                    "last_error_at": failed.created_at if failed else None})
    return out


# --- inbound SMS (STOP / START replies) ------------------------------------------------------------------------

def inbound_token(org_id: str) -> str:
    """The secret in the organization's inbound SMS webhook URL: HMAC(SECRET_KEY, org id)."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, f"sms-inbound:{org_id}".encode(), hashlib.sha256).hexdigest()[:40]


def verify_inbound(org_id: str, token: str) -> Organization:
    """The organization, if the token is its inbound token; 403 INVALID_INBOUND_TOKEN otherwise."""
    valid = bool(org_id and token) and hmac.compare_digest(inbound_token(org_id), token)
    org = db.session.get(Organization, org_id) if valid else None
    if org is None:
        raise AtlasError("The inbound SMS URL's org and token do not match; copy it from the messaging settings.",
                         code="INVALID_INBOUND_TOKEN", status=403)
    return org


def receive_sms(org_id: str, sender: str, body: str, to: str | None = None) -> dict:
    """A reply from a phone: STOP words opt its contacts out of SMS, START words back in; anything else is recorded."""
    word = body.strip().upper()
    matched = contacts_with_phone(org_id, sender)
    action = "opted_out" if word in STOP_WORDS else "opted_in" if word in START_WORDS else "received"
    for contact in matched:
        if action != "received":
            contact.sms_opt_out = action == "opted_out"
    db.session.commit()
    event = {"opted_out": "contact_unsubscribed", "received": "sms_received"}.get(action)
    for contact in matched if event else []:
        _emit(org_id, event, contact.id, {"channel": "sms", "from": sender, "to": to, "body": body[:1600]})
    return {"action": action, "contacts": [contact.id for contact in matched]}


def _digits(phone: str | None) -> str:
    """'+1 (555) 0100' -> '15550100'."""
    return re.sub(r"\D", "", phone or "")


def contacts_with_phone(org_id: str, phone: str) -> list[Contact]:
    """The organization's contacts with this number, however it was written (+1 555-0100 == +15550100)."""
    digits = _digits(phone)
    if len(digits) < 4:
        return []
    candidates = db.session.scalars(scoped(Contact, org_id).where(Contact.phone.like(f"%{digits[-4:]}")))
    return [contact for contact in candidates if _digits(contact.phone) == digits]


def _emit(org_id: str, event_type: str, contact_id: str, payload: dict) -> None:
    """Report the event through the events service when it exists; the opt-out is already committed either way."""
    try:
        from atlas.services import events
    except ImportError:
        return
    emit = getattr(events, "emit", None)
    if emit is None:
        return
    try:
        emit(org_id, event_type, contact_id, payload)
    except Exception:  # the consent change stands; a provider retrying the webhook would not help
        db.session.rollback()
        log.exception("emitting %s for contact %s failed", event_type, contact_id)
