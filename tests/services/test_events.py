"""services/events.py: an event applied to the CRM records it describes, persisted once per idempotency key, and
delivered to waiting runs; internal events from contact changes; the depth guard."""
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from atlas.errors import NotFound, ValidationFailed
from atlas.extensions import db
from atlas.models import (
    Booking,
    ClassSession,
    Contact,
    ContactMembership,
    Event,
    Execution,
    Form,
    FormSubmission,
    LeadSource,
    Payment,
)
from atlas.models.base import utcnow
from atlas.services import contacts, events, executions
from jobs.worker import run_worker
from tests import factories


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def types_of(contact_id) -> list[str]:
    return list(db.session.scalars(select(Event.type).where(Event.contact_id == contact_id)
                                   .order_by(Event.received_at)))


def work():
    """A real worker drains the queues; the test's own transaction ends first (SQLite has one writer)."""
    db.session.commit()
    run_worker(burst=True)
    db.session.expire_all()


# Resolving the contact

def test_lead_created_creates_the_contact_with_its_lead_source_key(org):
    db.session.add(LeadSource(organization_id=org.id, key="instagram", name="Instagram ads"))
    db.session.commit()
    result = events.record_event(org.id, "lead_created", contact={
        "firstName": "Sarah", "email": "Sarah@Example.com", "phone": "+1 555 010 2030", "leadSource": "instagram ADS",
        "tags": ["trial"]}, source="crm")
    person = result["contact"]
    assert (person.email, person.phone, person.lead_source, person.status) == (
        "sarah@example.com", "+15550102030", "instagram", "lead")
    assert result["event"].contact_id == person.id and result["event"].source == "crm"
    assert result["duplicate"] is False and person.tags == ["trial"]
    assert types_of(person.id) == ["lead_created", "tag_added"]


def test_a_known_contact_is_matched_by_email_then_phone_and_only_blanks_are_filled(org):
    known = factories.make_contact(org, first_name="Sarah", email="sarah@example.com", phone=None)
    by_email = events.record_event(org.id, "form_submitted", contact={
        "email": "SARAH@example.com", "first_name": "Sally", "phone": "+15550102030"})
    assert by_email["contact"].id == known.id
    db.session.refresh(known)
    assert (known.first_name, known.phone) == ("Sarah", "+15550102030")
    by_phone = events.record_event(org.id, "class_missed", contact={"phone": "+1-555-010-2030"})
    assert by_phone["contact"].id == known.id and count(Contact) == 1


def test_an_unknown_contact_only_becomes_one_for_leads_and_forms(org):
    with pytest.raises(ValidationFailed) as caught:
        events.record_event(org.id, "class_missed", contact={"email": "ghost@example.com"})
    assert caught.value.code == "UNKNOWN_CONTACT"
    with pytest.raises(ValidationFailed) as caught:
        events.record_event(org.id, "lead_created", contact={"firstName": "No way to match"})
    assert caught.value.code == "CONTACT_IDENTIFIER_REQUIRED"
    with pytest.raises(ValidationFailed) as caught:
        events.record_event(org.id, "lead_created")
    assert caught.value.code == "CONTACT_REQUIRED"
    assert count(Contact) == 0 and count(Event) == 0


def test_another_organizations_contact_id_is_not_found(org, app_ctx):
    other = factories.make_org("Rival")
    foreign = factories.make_contact(other)
    with pytest.raises(NotFound) as caught:
        events.record_event(org.id, "class_missed", contact_id=foreign.id)
    assert caught.value.code == "CONTACT_NOT_FOUND" and count(Event) == 0


def test_an_unknown_type_lists_the_valid_ones(org):
    with pytest.raises(ValidationFailed) as caught:
        events.record_event(org.id, "class_skipped", contact_id="x")
    assert caught.value.code == "UNKNOWN_EVENT_TYPE" and "class_missed" in caught.value.details["validTypes"]


# CRM records

def test_a_form_submission_is_stored_for_a_form_of_the_organization(org):
    form = Form(organization_id=org.id, name="Free trial")
    db.session.add(form)
    db.session.commit()
    result = events.record_event(org.id, "form_submitted", contact={"email": "new@example.com"},
                                 payload={"formId": form.id, "fields": {"goal": "lose weight"}})
    stored = db.session.scalar(select(FormSubmission))
    assert (stored.form_id, stored.contact_id, stored.data) == (form.id, result["contact"].id, {"goal": "lose weight"})
    assert result["event"].payload["formName"] == "Free trial"
    events.record_event(org.id, "form_submitted", contact={"email": "new@example.com"}, payload={"formId": "nope"})
    assert count(FormSubmission) == 1


def test_booking_events_create_then_update_one_booking(org):
    person = factories.make_contact(org)
    session = ClassSession(organization_id=org.id, name="HIIT", starts_at=utcnow() + timedelta(days=1))
    db.session.add(session)
    db.session.commit()
    booked = events.record_event(org.id, "class_booked", contact_id=person.id, payload={"classSessionId": session.id})
    assert booked["event"].payload["className"] == "HIIT" and booked["event"].payload["bookingId"]
    events.record_event(org.id, "class_missed", contact_id=person.id, payload={"classSessionId": session.id})
    bookings = list(db.session.scalars(select(Booking)))
    assert [(b.status, b.contact_id) for b in bookings] == [("no_show", person.id)]


def test_memberships_move_the_contact_to_member_and_to_former_member(org):
    person = factories.make_contact(org)
    events.record_event(org.id, "membership_started", contact_id=person.id,
                        payload={"plan": "Unlimited", "startedOn": "2026-01-01", "expiresOn": "2026-12-31"})
    plan = db.session.scalar(select(ContactMembership))
    assert (plan.plan, plan.status, plan.started_on, plan.expires_on) == (
        "Unlimited", "active", date(2026, 1, 1), date(2026, 12, 31))
    db.session.refresh(person)
    assert person.status == "member"
    events.record_event(org.id, "membership_cancelled", contact_id=person.id)
    db.session.refresh(person)
    db.session.refresh(plan)
    assert (plan.status, person.status) == ("cancelled", "former_member")
    assert types_of(person.id) == ["membership_started", "status_changed", "membership_cancelled", "status_changed"]
    changes = [e.payload for e in db.session.scalars(select(Event).where(Event.type == "status_changed")
                                                     .order_by(Event.received_at))]
    assert changes == [{"from": "lead", "to": "member"}, {"from": "member", "to": "former_member"}]


def test_payments_are_stored_when_an_amount_is_given(org):
    person = factories.make_contact(org)
    events.record_event(org.id, "payment_failed", contact_id=person.id,
                        payload={"amount": 49.99, "currency": "eur", "reason": "card declined"})
    events.record_event(org.id, "payment_succeeded", contact_id=person.id, payload={"amountCents": 4999})
    events.record_event(org.id, "payment_failed", contact_id=person.id, payload={})
    rows = [(p.amount_cents, p.currency, p.status, p.failure_reason) for p in
            db.session.scalars(select(Payment).order_by(Payment.created_at))]
    assert rows == [(4999, "EUR", "failed", "card declined"), (4999, "USD", "succeeded", None)]
    for bad in ({"amount": "lots"}, {"amount": 1.234}, {"amount": "NaN"}, {"amountCents": 1.5}):
        with pytest.raises(ValidationFailed) as caught:
            events.record_event(org.id, "payment_failed", contact_id=person.id, payload=bad)
        assert caught.value.code == "INVALID_EVENT_DATA"
    assert count(Payment) == 2 and count(Event, Event.type == "payment_failed") == 2


# Idempotency

def test_a_repeated_key_returns_the_first_event_and_applies_nothing_again(org):
    first = events.record_event(org.id, "lead_created", contact={"email": "once@example.com"}, idempotency_key="k1")
    again = events.record_event(org.id, "lead_created", contact={"email": "twice@example.com"}, idempotency_key="k1")
    assert again["duplicate"] is True and again["event"].id == first["event"].id
    assert again["contact"].id == first["contact"].id
    assert count(Event) == 1 and count(Contact) == 1


# Contact changes are internal events

def test_tag_changes_emit_one_event_per_tag_actually_changed(org):
    person = factories.make_contact(org, tags=["trial"])
    assert contacts.add_tags(org.id, person.id, ["trial", "hiit", "vip"], source="workflow") == ["hiit", "vip"]
    assert contacts.remove_tags(org.id, person.id, ["vip", "never-had"], source="workflow") == ["vip"]
    rows = list(db.session.scalars(select(Event).order_by(Event.received_at)))
    assert [(e.type, e.payload, e.source) for e in rows] == [
        ("tag_added", {"tag": "hiit", "addedBy": "workflow"}, "workflow"),
        ("tag_added", {"tag": "vip", "addedBy": "workflow"}, "workflow"),
        ("tag_removed", {"tag": "vip", "removedBy": "workflow"}, "workflow")]
    assert person.tags == ["hiit", "trial"]


def test_set_fields_reports_what_changed(org):
    person = factories.make_contact(org, status="lead")
    changed = contacts.set_fields(org.id, person.id, {"status": "trial", "email_opt_out": True, "custom.goal": "run",
                                                      "timezone": "Europe/Berlin"}, source="workflow")
    assert changed == {"status": {"from": "lead", "to": "trial"}, "email_opt_out": {"from": False, "to": True},
                       "timezone": {"from": None, "to": "Europe/Berlin"}, "custom.goal": {"from": None, "to": "run"}}
    assert [(e.type, e.payload) for e in db.session.scalars(select(Event).order_by(Event.received_at))] == [
        ("status_changed", {"from": "lead", "to": "trial"}), ("contact_unsubscribed", {"channel": "email"}),
        ("contact_updated", {"fields": ["timezone", "custom.goal"]})]
    assert contacts.set_fields(org.id, person.id, {"status": "trial"}, source="workflow") == {}
    with pytest.raises(ValidationFailed) as caught:
        contacts.set_fields(org.id, person.id, {"created_at": "2020-01-01"})
    assert caught.value.code == "FIELD_NOT_WRITABLE"


# Waiting runs and the depth guard

def waiting_for(org, staff, person, event="class_booked"):
    """A run of a workflow waiting for `event` for this contact."""
    data = {"nodes": [{"id": "await", "type": "wait_for_event", "config": {
        "event": event, "timeout": {"amount": 3, "unit": "days"}}},
        {"id": "thanks", "type": "set_variable",
         "config": {"name": "cls", "value": "{{ steps.await.output.received.className }}"}},
        {"id": "bye", "type": "end", "config": {}}],
        "edges": [{"source": "await", "target": "thanks", "branch": "event"},
                  {"source": "await", "target": "bye", "branch": "timeout"}]}
    workflow = factories.make_workflow(org, staff, name=f"Await {event}", status="active", workflow_data=data)
    execution, _ = executions.start_execution(org.id, None, workflow.id, trigger_data={},
                                              input_data={"contact": contacts.contact_data(person)})
    work()
    assert db.session.get(Execution, execution.id).status == "waiting"
    return execution


def test_an_event_resumes_the_contacts_waiting_run(org, staff):
    person = factories.make_contact(org)
    execution = waiting_for(org, staff, person)
    session = ClassSession(organization_id=org.id, name="Spin", starts_at=utcnow())
    db.session.add(session)
    db.session.commit()
    result = events.record_event(org.id, "class_booked", contact_id=person.id, payload={"classSessionId": session.id})
    assert result["resumed"] == [execution.id]
    work()
    execution = db.session.get(Execution, execution.id)
    assert execution.status == "completed" and execution.state["variables"] == {"cls": "Spin"}


def test_an_event_too_deep_is_stored_but_starts_nothing(org, staff):
    person = factories.make_contact(org)
    execution = waiting_for(org, staff, person, event="tag_added")
    deep = events.emit(org.id, "tag_added", person.id, {"tag": "x"}, source="workflow", depth=events.MAX_DEPTH)
    assert deep["resumed"] == [] and "limit is 3" in deep["skipped"]
    token = events._DEPTH.set(events.MAX_DEPTH)  # as if three dispatches were already running in this process
    try:
        nested = contacts.add_tags(org.id, person.id, ["y"], source="workflow")
    finally:
        events._DEPTH.reset(token)
    assert nested == ["y"] and db.session.get(Execution, execution.id).status == "waiting"
    assert count(Event, Event.type == "tag_added") == 2
    assert events.emit(org.id, "tag_added", person.id, {"tag": "z"}, depth=2)["resumed"] == [execution.id]


def test_a_tag_added_by_a_workflow_still_evaluates_triggers(org, staff):
    tagged = factories.make_workflow(org, staff, name="VIP welcome", status="active", trigger_type="tag_added",
                                     trigger_config={"tag": "vip"})
    person = factories.make_contact(org)
    contacts.add_tags(org.id, person.id, ["vip"], source="workflow")
    event = db.session.scalar(select(Event).where(Event.type == "tag_added"))
    assert event.enrolled == 1
    run = db.session.scalar(select(Execution).where(Execution.workflow_id == tagged.id))
    assert run.contact_id == person.id
