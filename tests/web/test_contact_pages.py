"""The contacts list and the contact page through Flask's test client: filters and fragments, the page's sections,
staff tagging with htmx (and CSRF), tenancy."""
import html
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from atlas.extensions import db
from atlas.models import (
    Booking,
    ClassSession,
    ContactMembership,
    CustomField,
    Event,
    Message,
)
from atlas.models.base import utcnow
from atlas.services import contacts, decisions, executions
from tests import factories
from tests.conftest import make_app
from tests.web.test_pages import sign_in

HTMX = {"HX-Request": "true", "HX-Target": "contact-results"}


def names(page: str) -> list[str]:
    """The contact names in a rendered list, in display order."""
    return [html.unescape(n) for n in re.findall(r'<a class="contact-name" href="[^"]*">([^<]*)</a>', page)]


@pytest.fixture
def signed_in(client, org, staff):
    sign_in(client, staff, org)
    return client


# The list

def test_the_list_shows_contacts_newest_first_with_filters(signed_in, org):
    factories.make_contact(org, first_name="Ana", last_name="Ortiz", tags=["trial"])
    factories.make_contact(org, first_name="Ben", last_name="Stone", status="member")
    page = signed_in.get("/contacts").get_data(as_text=True)
    assert "<h1>Contacts</h1>" in page and names(page) == ["Ben Stone", "Ana Ortiz"]
    assert '<label for="c-search">Search</label>' in page and 'hx-target="#contact-results"' in page
    assert '<option value="member" >Member</option>' in page


def test_filters_answer_htmx_with_just_the_results(signed_in, org):
    factories.make_contact(org, first_name="Ana", last_name="Ortiz", tags=["trial"])
    factories.make_contact(org, first_name="Ben", last_name="Stone", status="member", tags=["trial", "vip"])
    fragment = signed_in.get("/contacts?search=ortiz", headers=HTMX)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and names(body) == ["Ana Ortiz"] and "HX-Request" in fragment.headers["Vary"]
    assert names(signed_in.get("/contacts?status=member", headers=HTMX).get_data(as_text=True)) == ["Ben Stone"]
    assert names(signed_in.get("/contacts?tag=vip", headers=HTMX).get_data(as_text=True)) == ["Ben Stone"]
    none = signed_in.get("/contacts?search=zzz", headers=HTMX).get_data(as_text=True)
    assert "No contacts match these filters" in none
    assert names(signed_in.get("/contacts?status=bogus&page=abc").get_data(as_text=True)) == ["Ben Stone", "Ana Ortiz"]


def test_the_empty_state_explains_where_contacts_come_from(signed_in):
    page = signed_in.get("/contacts").get_data(as_text=True)
    assert "No contacts yet" in page and "/api/v2/events" in page and 'role="search"' not in page


def test_the_list_pages_through_the_shared_pager(signed_in, org):
    for n in range(23):
        factories.make_contact(org, first_name=f"P{n:02d}")
    page = signed_in.get("/contacts?page=2").get_data(as_text=True)
    assert len(names(page)) == 3 and "Page 2 of 2 · 23 contacts" in page
    assert len(names(signed_in.get("/contacts?page=9").get_data(as_text=True))) == 3  # a stale link: the last page


def test_signed_out_visitors_go_to_login(client):
    response = client.get("/contacts")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# The contact page

def test_the_contact_page_shows_fields_bookings_membership_runs_messages_and_decisions(signed_in, org, staff):
    db.session.add(CustomField(organization_id=org.id, key="goal", label="Training goal"))
    db.session.commit()
    person = factories.make_contact(org, first_name="Sarah", last_name="Lee", email="sarah@example.com",
                                    sms_opt_out=True, custom_fields={"goal": "Run a 10k"}, tags=["trial"],
                                    owner_id=staff.id, birthday=date(1990, 4, 2))
    soon = ClassSession(organization_id=org.id, name="Spin at 7", starts_at=utcnow() + timedelta(days=1))
    gone = ClassSession(organization_id=org.id, name="Yoga flow", starts_at=utcnow() - timedelta(days=3))
    db.session.add_all([soon, gone])
    db.session.flush()
    db.session.add_all([Booking(organization_id=org.id, class_session_id=soon.id, contact_id=person.id),
                        Booking(organization_id=org.id, class_session_id=gone.id, contact_id=person.id,
                                status="no_show"),
                        ContactMembership(organization_id=org.id, contact_id=person.id, plan="Unlimited",
                                          started_on=date(2026, 1, 1)),
                        Message(organization_id=org.id, contact_id=person.id, channel="sms", body="See you at Spin!",
                                status="not_sent", to_address=person.phone)])
    workflow = factories.make_workflow(org, staff, name="Trial nurture", status="active")
    run, _ = executions.start_execution(org.id, None, workflow.id, trigger_data={},
                                        input_data={"contact": contacts.contact_data(person)})
    decisions.record(org.id, workflow.id, contact_id=person.id, event_type="tag_added", outcome="filter_failed",
                     reason="contact.status was lead, expected member")
    db.session.commit()

    page = signed_in.get(f"/contacts/{person.id}").get_data(as_text=True)
    text = html.unescape(page)
    assert "<h1>Sarah Lee</h1>" in page and "Opted out of SMS" in page and "Sam Staff" in page
    assert "<dt>Training goal</dt><dd>Run a 10k</dd>" in text and "2 April 1990" in page
    assert "Spin at 7" in page and "Yoga flow" in page and "No show" in page and "Unlimited" in page
    runs_link = f'/workflows/{workflow.id}/executions/{run.id}'
    assert runs_link in page and "Trial nurture" in page
    assert "See you at Spin!" in page and "Not sent" in page
    assert "Why wasn't this contact enrolled?" in text and "Filter not met" in page
    assert "contact.status was lead, expected member" in page
    order = [page.index(text) for text in ("Upcoming bookings", "Spin at 7", "Past bookings", "Yoga flow")]
    assert order == sorted(order)


def test_another_organizations_contact_is_a_404_page(signed_in, app_ctx):
    rival = factories.make_org("Rival")
    foreign = factories.make_contact(rival, first_name="Secret")
    response = signed_in.get(f"/contacts/{foreign.id}")
    assert response.status_code == 404 and "Secret" not in response.get_data(as_text=True)
    assert signed_in.post(f"/contacts/{foreign.id}/tags", data={"tag": "x"}).status_code == 404
    assert contacts.get_contact(rival.id, foreign.id).tags == []


# Tagging from the page

def test_staff_add_and_remove_a_tag_with_htmx_and_events_are_recorded(signed_in, org):
    person = factories.make_contact(org, tags=["trial"])
    added = signed_in.post(f"/contacts/{person.id}/tags", data={"tag": " vip "}, headers={"HX-Request": "true"})
    body = added.get_data(as_text=True)
    assert added.status_code == 200 and "<html" not in body and 'id="contact-tags"' in body
    assert '<span class="tag">vip</span>' in body and 'aria-label="Remove tag vip"' in body
    removed = signed_in.post(f"/contacts/{person.id}/tags/remove", data={"tag": "trial"},
                             headers={"HX-Request": "true"})
    assert '<span class="tag">trial</span>' not in removed.get_data(as_text=True)
    rows = db.session.scalars(select(Event).where(Event.contact_id == person.id).order_by(Event.received_at))
    assert [(e.type, e.payload["tag"], e.source) for e in rows] == [("tag_added", "vip", "staff"),
                                                                    ("tag_removed", "trial", "staff")]


def test_a_bad_tag_is_shown_next_to_the_field(signed_in, org):
    person = factories.make_contact(org)
    response = signed_in.post(f"/contacts/{person.id}/tags", data={"tag": "x" * 65}, headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="tag-error" role="alert"' in body and 'aria-invalid="true"' in body


def test_a_plain_form_post_redirects_back_with_a_message(signed_in, org):
    person = factories.make_contact(org)
    response = signed_in.post(f"/contacts/{person.id}/tags", data={"tag": "vip"})
    assert response.status_code == 302 and response.headers["Location"] == f"/contacts/{person.id}"
    assert "Tag “vip” added." in signed_in.get(response.headers["Location"]).get_data(as_text=True)


def test_viewers_see_tags_but_cannot_change_them(client, org):
    viewer = factories.make_user(org, "viewer")
    sign_in(client, viewer, org)
    person = factories.make_contact(org, tags=["trial"])
    page = client.get(f"/contacts/{person.id}").get_data(as_text=True)
    assert '<span class="tag">trial</span>' in page and "Add a tag" not in page and "Remove tag" not in page
    assert client.post(f"/contacts/{person.id}/tags", data={"tag": "x"}).status_code == 403
    assert contacts.get_contact(org.id, person.id).tags == ["trial"]


def test_tag_forms_carry_the_csrf_token(app_ctx, database_url, redis_server, org, staff):
    protected = make_app(database_url, redis_server.url, WTF_CSRF_ENABLED=True)
    try:
        client = protected.test_client()
        sign_in(client, staff, org)
        person_id = factories.make_contact(org).id
        db.session.remove()  # end this test's transaction: SQLite has one writer
        page = client.get(f"/contacts/{person_id}").get_data(as_text=True)
        form = page[page.index('class="tag-add"'):]
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        assert client.post(f"/contacts/{person_id}/tags", data={"tag": "vip"}).status_code == 400
        assert client.post(f"/contacts/{person_id}/tags", data={"tag": "vip", "csrf_token": token}).status_code == 302
    finally:
        with protected.app_context():
            db.engine.dispose()
