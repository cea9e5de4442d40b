"""POST /api/v2/events: the CRM reports what happened; contacts are matched or created, runs waiting for the event
resume, a repeated idempotency key starts nothing, and every refusal has its own code."""
from sqlalchemy import func, select

from atlas.extensions import db
from atlas.models import ClassSession, Contact, Event, Execution
from atlas.models.base import utcnow
from atlas.services import contacts, executions
from jobs.worker import run_worker
from tests import factories
from tests.api.helpers import assert_error, missing_id, without_timestamp

URL = "/api/v2/events"
ANSWER_KEYS = {"eventId", "contactId", "duplicate", "enrollments", "resumedExecutions"}


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def work():
    db.session.commit()
    run_worker(burst=True)
    db.session.expire_all()


def test_a_lead_becomes_a_contact_and_the_answer_is_202(client, staff_headers, org):
    body = {"type": "lead_created", "source": "website",
            "contact": {"firstName": "Sarah", "lastName": "Lee", "email": "sarah@example.com", "phone": "+15550102030",
                        "leadSource": "website", "tags": ["trial"]},
            "data": {"campaign": "spring"}, "occurredAt": "2026-03-01T09:30:00+01:00"}
    response = client.post(URL, json=body, headers=staff_headers)
    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    assert set(answer) == ANSWER_KEYS and answer["duplicate"] is False
    assert isinstance(answer["enrollments"], list) and answer["resumedExecutions"] == []
    contact = db.session.get(Contact, answer["contactId"])
    assert (contact.name, contact.lead_source, contact.tags, contact.organization_id) == (
        "Sarah Lee", "website", ["trial"], org.id)
    event = db.session.get(Event, answer["eventId"])
    assert (event.type, event.payload, event.source) == ("lead_created", {"campaign": "spring"}, "website")
    assert event.occurred_at.isoformat() == "2026-03-01T08:30:00+00:00"


def test_an_unknown_type_is_422_listing_the_valid_ones(client, staff_headers, org):
    contact = factories.make_contact(org)
    error = assert_error(client.post(URL, json={"type": "class_skipped", "contactId": contact.id},
                                     headers=staff_headers), 422, "UNKNOWN_EVENT_TYPE")
    assert "class_missed" in error["details"]["validTypes"] and "class_missed" in error["message"]
    assert count(Event) == 0


def test_refusals_about_the_contact_have_their_own_codes(client, staff_headers, org):
    contact = factories.make_contact(org)
    cases = [({"type": "class_missed", "contact": {"email": "ghost@example.com"}}, 422, "UNKNOWN_CONTACT"),
             ({"type": "class_missed"}, 422, "CONTACT_REQUIRED"),
             ({"type": "class_missed", "contactId": contact.id, "contact": {"email": contact.email}}, 422,
              "AMBIGUOUS_CONTACT"),
             ({"type": "lead_created", "contact": {"firstName": "Nameless"}}, 422, "CONTACT_IDENTIFIER_REQUIRED"),
             ({"type": "lead_created", "contact": {"email": "not-an-email"}}, 422, "INVALID_EMAIL"),
             ({"type": "lead_created", "contact": {"email": "a@b.co", "nickname": "x"}}, 422, "VALIDATION_FAILED"),
             ({"type": "payment_failed", "contactId": contact.id, "data": {"amount": "lots"}}, 422,
              "INVALID_EVENT_DATA"),
             ({"type": "class_missed", "contactId": missing_id()}, 404, "CONTACT_NOT_FOUND")]
    for body, status, code in cases:
        assert_error(client.post(URL, json=body, headers=staff_headers), status, code)
    assert count(Event) == 0 and count(Contact) == 1


def test_another_organizations_contact_answers_exactly_like_a_missing_one(client, staff_headers, other_org):
    foreign = factories.make_contact(other_org)
    missing = client.post(URL, json={"type": "class_missed", "contactId": missing_id()}, headers=staff_headers)
    theirs = client.post(URL, json={"type": "class_missed", "contactId": foreign.id}, headers=staff_headers)
    assert_error(missing, 404, "CONTACT_NOT_FOUND")
    assert_error(theirs, 404, "CONTACT_NOT_FOUND")
    assert without_timestamp(missing).replace(missing.headers["X-Request-ID"].encode(), b"") == \
        without_timestamp(theirs).replace(theirs.headers["X-Request-ID"].encode(), b"")
    assert count(Event) == 0


def test_matching_by_email_never_reaches_another_organization(client, staff_headers, other_org):
    factories.make_contact(other_org, email="shared@example.com")
    assert_error(client.post(URL, json={"type": "class_missed", "contact": {"email": "shared@example.com"}},
                             headers=staff_headers), 422, "UNKNOWN_CONTACT")


def test_a_waiting_run_resumes_when_its_event_arrives_and_a_repeat_starts_nothing(client, staff_headers, org, staff):
    person = factories.make_contact(org, first_name="Sarah")
    data = {"nodes": [{"id": "await", "type": "wait_for_event", "config": {
        "event": "class_booked", "timeout": {"amount": 3, "unit": "days"}}},
        {"id": "thanks", "type": "set_variable",
         "config": {"name": "cls", "value": "{{ steps.await.output.received.className }}"}},
        {"id": "bye", "type": "end", "config": {}}],
        "edges": [{"source": "await", "target": "thanks", "branch": "event"},
                  {"source": "await", "target": "bye", "branch": "timeout"}]}
    workflow = factories.make_workflow(org, staff, name="Win-back", status="active", workflow_data=data)
    execution, _ = executions.start_execution(org.id, None, workflow.id, trigger_data={},
                                              input_data={"contact": contacts.contact_data(person)})
    work()
    session = ClassSession(organization_id=org.id, name="Spin at 7", starts_at=utcnow())
    db.session.add(session)
    db.session.commit()

    body = {"type": "class_booked", "contactId": person.id, "data": {"classSessionId": session.id}}
    headers = {**staff_headers, "Idempotency-Key": "booking-123"}
    first = client.post(URL, json=body, headers=headers)
    assert first.status_code == 202 and first.get_json()["resumedExecutions"] == [execution.id]
    work()
    done = db.session.get(Execution, execution.id)
    assert done.status == "completed" and done.state["variables"] == {"cls": "Spin at 7"}

    second, _ = executions.start_execution(org.id, None, workflow.id, trigger_data={},
                                           input_data={"contact": contacts.contact_data(person)})
    work()
    again = client.post(URL, json={**body, "idempotencyKey": "booking-123"}, headers=staff_headers)
    assert again.status_code == 202
    assert again.get_json() == {**first.get_json(), "duplicate": True}
    assert db.session.get(Execution, second.id).status == "waiting"  # the repeat resumed nothing
    assert count(Event) == 1 and count(Execution) == 2


def test_the_header_and_the_body_key_must_agree(client, staff_headers, org):
    contact = factories.make_contact(org)
    response = client.post(URL, json={"type": "class_missed", "contactId": contact.id, "idempotencyKey": "a"},
                           headers={**staff_headers, "Idempotency-Key": "b"})
    assert_error(response, 422, "IDEMPOTENCY_KEY_MISMATCH")
    assert_error(client.post(URL, json={"type": "class_missed", "contactId": contact.id},
                             headers={**staff_headers, "Idempotency-Key": " "}), 422, "VALIDATION_FAILED")


def test_viewers_cannot_report_events(client, member, org):
    _, viewer = member("viewer")
    contact = factories.make_contact(org)
    assert_error(client.post(URL, json={"type": "class_missed", "contactId": contact.id}, headers=viewer), 403,
                 "INSUFFICIENT_PERMISSIONS")


def test_an_event_enrolls_the_contact_and_a_repeated_key_starts_no_second_run(client, staff_headers, org, staff):
    workflow = factories.make_workflow(org, staff, name="Welcome", status="active", trigger_type="lead_created",
                                       settings={"reenrollment": "always", "oneActiveRunPerContact": False})
    body = {"type": "lead_created", "contact": {"email": "new@example.com"}, "idempotencyKey": "lead-1"}
    first = client.post(URL, json=body, headers=staff_headers).get_json()
    [enrollment] = first["enrollments"]
    assert (enrollment["workflowId"], enrollment["outcome"]) == (workflow.id, "enrolled") and enrollment["reason"]
    run = db.session.get(Execution, enrollment["executionId"])
    assert run.contact_id == first["contactId"] and run.workflow_id == workflow.id
    again = client.post(URL, json=body, headers=staff_headers).get_json()
    assert again == {**first, "duplicate": True}
    assert count(Execution) == 1 and count(Event) == 1
    client.post(URL, json={**body, "idempotencyKey": "lead-2"}, headers=staff_headers)
    assert count(Execution) == 2  # a new key is a new event (the workflow re-enrolls always)
