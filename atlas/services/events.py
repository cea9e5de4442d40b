"""Events: what happened to a contact, reported by the CRM and other systems (record_event) or by Atlas itself (emit).

An event is applied to the CRM records it describes (a lead becomes a contact, a booking changes status, a
membership starts...), persisted, committed, then evaluated against every active workflow's trigger
(enrollment.evaluate_event) and delivered to runs waiting for it (executions.deliver_event).

Internal events caused by workflows can cause further events (a tag added by a run fires tag_added, whose workflow
removes a tag...). Each nested dispatch in this process counts one level; from MAX_DEPTH on, events are still stored
but evaluate nothing, and the log says so.
"""
from __future__ import annotations

import contextvars
import importlib
import logging
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from atlas.errors import ValidationFailed
from atlas.extensions import cache, db
from atlas.models import (
    Booking,
    ClassSession,
    Contact,
    ContactMembership,
    ContactStatus,
    EnrollmentDecision,
    Event,
    Form,
    FormSubmission,
    LeadSource,
    Payment,
    PlanStatus,
)
from atlas.models.base import new_id, utcnow
from atlas.services import contacts
from atlas.services.tenancy import scoped

log = logging.getLogger(__name__)

TRIGGERING = ("lead_created", "form_submitted", "tag_added", "tag_removed", "class_booked", "class_missed",
              "booking_cancelled", "membership_expiring", "membership_cancelled", "payment_failed", "birthday",
              "webhook")
AWAITABLE = ("class_attended", "membership_started", "payment_succeeded", "contact_updated", "contact_unsubscribed",
             "status_changed", "sms_received")
EVENT_TYPES = TRIGGERING + AWAITABLE
CREATES_CONTACT = ("lead_created", "form_submitted")
CONTACTLESS = ("webhook",)
BOOKING_STATUS = {"class_booked": "booked", "class_missed": "no_show", "booking_cancelled": "cancelled",
                  "class_attended": "attended"}
MAX_DEPTH = 3
ANSWER_TTL = 7 * 24 * 3600  # seconds a repeated idempotency key still gets the first answer's resumed runs
_DEPTH = contextvars.ContextVar("atlas_event_depth", default=0)


def check_type(event_type: str) -> None:
    """422 UNKNOWN_EVENT_TYPE, listing the valid types, for anything else."""
    if event_type not in EVENT_TYPES:
        raise ValidationFailed(f"Unknown event type {str(event_type)[:64]!r}; valid types: {', '.join(EVENT_TYPES)}.",
                               code="UNKNOWN_EVENT_TYPE", details={"validTypes": list(EVENT_TYPES)},
                               validation=[{"field": "type", "message": "Unknown event type."}])


def record_event(org_id: str, event_type: str, *, contact_id: str | None = None, contact: dict | None = None,
                 payload: dict | None = None, source: str | None = None, occurred_at: datetime | None = None,
                 idempotency_key: str | None = None, depth: int | None = None) -> dict:
    """Apply an event to the CRM, persist it and start what it starts; a repeated key returns the first answer."""
    check_type(event_type)
    if idempotency_key:
        earlier = _by_key(org_id, idempotency_key)
        if earlier is not None:
            return _again(org_id, earlier)
    payload = dict(payload or {})
    contact = contacts.snake_keys(contact) if contact else None
    tags = contacts.check_tags((contact or {}).get("tags") or [])
    try:
        person = _resolve(org_id, event_type, contact_id, contact, payload)
        status_change = apply_facts(org_id, event_type, person, payload, occurred_at)
    except Exception:
        db.session.rollback()  # nothing of a refused event stays in the session
        raise
    event = Event(id=new_id(), organization_id=org_id, type=event_type, contact_id=person.id if person else None,
                  payload=payload, source=source, idempotency_key=idempotency_key,
                  occurred_at=_aware(occurred_at) or utcnow(), received_at=utcnow())
    db.session.add(event)
    try:
        db.session.commit()
    except IntegrityError:  # the same key, committed by a concurrent request: everything here is rolled back
        db.session.rollback()
        earlier = _by_key(org_id, idempotency_key) if idempotency_key else None
        if earlier is None:
            raise
        return _again(org_id, earlier)
    answer = _dispatch(org_id, event, depth)
    _follow_up(org_id, person, status_change, tags, source, answer["depth"])
    return {**answer, "contact": person}


def emit(org_id: str, event_type: str, contact_id: str | None, payload: dict, *, source: str | None = None,
         depth: int | None = None) -> dict:
    """An internal event (tag added, status changed, unsubscribed...): persist, evaluate, deliver; no CRM records."""
    event = Event(id=new_id(), organization_id=org_id, type=event_type, contact_id=contact_id, payload=payload,
                  source=source, occurred_at=utcnow(), received_at=utcnow())
    db.session.add(event)
    db.session.commit()
    return _dispatch(org_id, event, depth)


# --- dispatch ------------------------------------------------------------------------------------------------------

def _dispatch(org_id: str, event: Event, depth: int | None) -> dict:
    """Triggers, then waiting runs, for a committed event; nothing beyond MAX_DEPTH nested dispatches."""
    level = max(depth or 0, _DEPTH.get())
    answer = {"event": event, "decisions": [], "resumed": [], "duplicate": False, "depth": level, "skipped": None}
    if level >= MAX_DEPTH:
        log.warning("event %s (%s) not evaluated: %d nested events deep, the limit is %d", event.id, event.type,
                    level, MAX_DEPTH)
        answer["skipped"] = f"Not evaluated: caused by {level} nested events (the limit is {MAX_DEPTH})."
        return answer
    token = _DEPTH.set(level + 1)
    try:
        answer["decisions"] = _evaluate(org_id, event)
        answer["resumed"] = _deliver(org_id, event)
    finally:
        _DEPTH.reset(token)
    event.enrolled = sum(1 for d in answer["decisions"] if d.outcome == "enrolled")
    db.session.commit()
    if event.idempotency_key:
        cache.set(_answer_key(event.id), answer["resumed"], timeout=ANSWER_TTL)
    return answer


def _evaluate(org_id: str, event: Event) -> list:
    """enrollment.evaluate_event, when the enrollment service provides it."""
    try:
        module = importlib.import_module("atlas.services.enrollment")
    except ModuleNotFoundError as exc:
        if exc.name != "atlas.services.enrollment":
            raise
        return []
    evaluate = getattr(module, "evaluate_event", None)
    return list(evaluate(org_id, event) or []) if evaluate else []


def _deliver(org_id: str, event: Event) -> list[str]:
    """Runs of this contact waiting for this event go on; runs whose goal it is jump there."""
    from atlas.services import executions

    if not event.contact_id:
        return []
    return executions.deliver_event(org_id, event.type, event.contact_id, dict(event.payload or {}))


def _follow_up(org_id: str, person: Contact | None, status_change: dict | None, tags: list[str], source, depth) -> None:
    """What the event changed beyond itself, reported as internal events one level deeper."""
    if person is None:
        return
    if status_change:
        emit(org_id, "status_changed", person.id, status_change, source=source, depth=depth + 1)
    if tags:
        contacts.add_tags(org_id, person.id, tags, source=source, depth=depth + 1)


def _by_key(org_id: str, key: str) -> Event | None:
    return db.session.scalar(scoped(Event, org_id).where(Event.idempotency_key == key))


def _again(org_id: str, event: Event) -> dict:
    """The first answer for a repeated idempotency key: its decisions and resumed runs; nothing starts again."""
    decisions = list(db.session.scalars(scoped(EnrollmentDecision, org_id).where(
        EnrollmentDecision.event_id == event.id).order_by(EnrollmentDecision.created_at)))
    person = db.session.get(Contact, event.contact_id) if event.contact_id else None
    resumed = cache.get(_answer_key(event.id)) or []
    return {"event": event, "contact": person, "decisions": decisions, "resumed": resumed, "duplicate": True,
            "depth": 0, "skipped": None}


def _answer_key(event_id: str) -> str:
    return f"atlas:event:{event_id}:resumed"


# --- the contact ---------------------------------------------------------------------------------------------------

def _resolve(org_id: str, event_type: str, contact_id: str | None, data: dict | None, payload: dict):
    """The event's contact: by id, or by email then phone, created for a new lead or form submission."""
    if contact_id and data:
        raise _bad("AMBIGUOUS_CONTACT", "contact", "Send contactId or contact, not both.")
    if contact_id:
        return contacts.get_contact(org_id, contact_id)
    if not data:
        if event_type in CONTACTLESS:
            return None
        raise _bad("CONTACT_REQUIRED", "contactId", "Name the contact: contactId, or contact with an email or phone.")
    data = {k: v for k, v in data.items() if k != "tags"}
    if not data.get("email") and not data.get("phone"):
        raise _bad("CONTACT_IDENTIFIER_REQUIRED", "contact", "contact needs an email or a phone to be matched.")
    found = contacts.find_contact(org_id, email=data.get("email"), phone=data.get("phone"))
    if found is not None:
        _fill_blanks(org_id, found, data)
        return found
    if event_type not in CREATES_CONTACT:
        raise _bad("UNKNOWN_CONTACT", "contact", f"No contact has this email or phone; only "
                                                 f"{' and '.join(CREATES_CONTACT)} events create contacts.")
    data["lead_source"] = _lead_source(org_id, data.get("lead_source") or payload.get("leadSource"))
    person = contacts.build_contact(org_id, data)
    person.id = new_id()
    db.session.add(person)
    return person


def _fill_blanks(org_id: str, person: Contact, data: dict) -> None:
    """A known contact keeps its values; the event only fills in what was empty."""
    standard, custom = contacts.split_changes(org_id, data)
    for name, value in standard.items():
        if value not in (None, "") and getattr(person, name) in (None, "") and name not in ("status",):
            setattr(person, name, value)
    values = dict(person.custom_fields or {})
    person.custom_fields = {**{k: v for k, v in custom.items() if v is not None}, **values}


def _lead_source(org_id: str, value) -> str | None:
    """A defined lead source's key when the value names one (by key or name), else the value as sent."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()[:64]
    key = db.session.scalar(select(LeadSource.key).where(LeadSource.organization_id == org_id).where(
        (LeadSource.key == text) | (func.lower(LeadSource.name) == text.lower())))
    return key or text


# --- the CRM records an event describes ----------------------------------------------------------------------------

def apply_facts(org_id: str, event_type: str, person: Contact | None, payload: dict, occurred_at) -> dict | None:
    """Store what the event says happened (uncommitted); returns the contact's status change, if any."""
    if person is None:
        return None
    db.session.flush()
    if event_type == "form_submitted" and payload.get("formId"):
        _form_submission(org_id, person, payload)
    elif event_type in BOOKING_STATUS and payload.get("classSessionId"):
        _booking(org_id, person, event_type, payload)
    elif event_type in ("membership_started", "membership_cancelled"):
        return _membership(org_id, person, event_type, payload, occurred_at)
    elif event_type in ("payment_failed", "payment_succeeded"):
        _payment(org_id, person, event_type, payload)
    return None


def _form_submission(org_id: str, person: Contact, payload: dict) -> None:
    form = db.session.scalar(scoped(Form, org_id).where(Form.id == str(payload["formId"])))
    if form is not None:
        fields = payload.get("fields") if isinstance(payload.get("fields"), dict) else \
            {k: v for k, v in payload.items() if k != "formId"}
        db.session.add(FormSubmission(organization_id=org_id, form_id=form.id, contact_id=person.id, data=fields))
        payload.setdefault("formName", form.name)


def _booking(org_id: str, person: Contact, event_type: str, payload: dict) -> None:
    session = db.session.scalar(scoped(ClassSession, org_id).where(ClassSession.id == str(payload["classSessionId"])))
    if session is None:
        return
    booking = db.session.scalar(scoped(Booking, org_id).where(Booking.class_session_id == session.id,
                                                              Booking.contact_id == person.id))
    if booking is None:
        booking = Booking(id=new_id(), organization_id=org_id, class_session_id=session.id, contact_id=person.id)
        db.session.add(booking)
    booking.status = BOOKING_STATUS[event_type]
    payload.setdefault("bookingId", booking.id)
    payload.setdefault("className", session.name)
    payload.setdefault("startsAt", session.starts_at.isoformat())


def _membership(org_id: str, person: Contact, event_type: str, payload: dict, occurred_at) -> dict | None:
    """Start or cancel a plan; the contact becomes a member, or a former member when no plan is left active."""
    mine = scoped(ContactMembership, org_id).where(ContactMembership.contact_id == person.id)
    named = payload.get("membershipId")
    chosen = list(db.session.scalars(mine.where(ContactMembership.id == str(named)))) if named else []
    if event_type == "membership_started":
        plan = chosen[0] if chosen else _new_plan(org_id, person, payload, occurred_at)
        plan.status = PlanStatus.ACTIVE
        payload.setdefault("membershipId", plan.id)
        target = ContactStatus.MEMBER.value
    else:
        chosen = chosen or list(db.session.scalars(mine.where(ContactMembership.status == PlanStatus.ACTIVE)))
        for plan in chosen:
            plan.status = PlanStatus.CANCELLED
        db.session.flush()
        still = db.session.scalar(select(func.count()).select_from(
            mine.where(ContactMembership.status == PlanStatus.ACTIVE).subquery()))
        if still or person.status != ContactStatus.MEMBER:
            return None
        target = ContactStatus.FORMER_MEMBER.value
    if person.status == target:
        return None
    change, person.status = {"from": person.status, "to": target}, target
    return change


def _new_plan(org_id: str, person: Contact, payload: dict, occurred_at) -> ContactMembership:
    started = _date(payload.get("startedOn"), "data.startedOn") or (_aware(occurred_at) or utcnow()).date()
    plan = ContactMembership(id=new_id(), organization_id=org_id, contact_id=person.id,
                             plan=str(payload.get("plan") or "Membership")[:120], started_on=started,
                             expires_on=_date(payload.get("expiresOn"), "data.expiresOn"))
    db.session.add(plan)
    return plan


def _payment(org_id: str, person: Contact, event_type: str, payload: dict) -> None:
    """A payment row when the event gives an amount (`amount` in units, or `amountCents`)."""
    cents = _cents(payload)
    if cents is None:
        return
    currency = str(payload.get("currency") or "USD").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise _bad("INVALID_EVENT_DATA", "data.currency", "currency must be a three-letter code such as USD.")
    failed = event_type == "payment_failed"
    reason = payload.get("failureReason") or payload.get("reason")
    db.session.add(Payment(organization_id=org_id, contact_id=person.id, amount_cents=cents, currency=currency,
                           status="failed" if failed else "succeeded",
                           description=str(payload.get("description"))[:200] if payload.get("description") else None,
                           failure_reason=str(reason)[:200] if failed and reason else None))


def _cents(payload: dict) -> int | None:
    if payload.get("amountCents") is not None:
        value = payload["amountCents"]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 10**11:
            raise _bad("INVALID_EVENT_DATA", "data.amountCents", "amountCents must be a whole number of cents.")
        return value
    if payload.get("amount") is None:
        return None
    try:
        amount = Decimal(str(payload["amount"]))
        ok = (not isinstance(payload["amount"], bool) and amount.is_finite() and 0 <= amount < 10**9
              and amount == amount.quantize(Decimal("0.01")))
    except InvalidOperation:
        ok = False
    if not ok:
        raise _bad("INVALID_EVENT_DATA", "data.amount", "amount must be a non-negative number with at most 2 decimals.")
    return int(amount * 100)


def _date(value, field: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _bad("INVALID_EVENT_DATA", field, f"{field.split('.')[-1]} must be a date as YYYY-MM-DD.")


def _aware(moment: datetime | None) -> datetime | None:
    """A timestamp with a zone (a naive one is taken as UTC)."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _bad(code: str, field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, details={"field": field},
                            validation=[{"field": field, "message": message}])
