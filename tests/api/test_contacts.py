"""/api/v2/contacts: list with search, tags and status, create, get, partial update, validation codes, tenancy."""
import pytest
from sqlalchemy import select

from atlas.extensions import db
from atlas.models import Contact, CustomField, Event
from tests import factories
from tests.api.helpers import assert_error, missing_id, without_timestamp

URL = "/api/v2/contacts"
CONTACT_KEYS = {"id", "firstName", "lastName", "name", "email", "phone", "status", "leadSource", "ownerId",
                "timezone", "birthday", "emailOptOut", "smsOptOut", "tags", "customFields", "createdAt", "updatedAt"}


def events_of(contact_id):
    """(type, payload) of the contact's recorded events, in order."""
    rows = db.session.scalars(select(Event).where(Event.contact_id == contact_id).order_by(Event.received_at))
    return [(e.type, e.payload) for e in rows]


def emails(response):
    return [c["email"] for c in response.get_json()["contacts"]]


# Create and read

def test_create_answers_201_with_the_contact_in_camel_case_normalised(client, staff_headers, staff):
    body = {"firstName": " Sarah ", "lastName": "Lee", "email": "Sarah.Lee@Example.COM", "phone": "+1 (555) 010-2030",
            "leadSource": "instagram", "ownerId": staff.id, "timezone": "America/New_York", "birthday": "1990-04-02",
            "tags": ["trial", "trial", "hiit"], "customFields": {"goal": "strength"}}
    response = client.post(URL, json=body, headers=staff_headers)
    assert response.status_code == 201, response.get_json()
    contact = response.get_json()
    assert set(contact) == CONTACT_KEYS
    assert (contact["name"], contact["email"], contact["phone"]) == (
        "Sarah Lee", "sarah.lee@example.com", "+15550102030")
    assert contact["status"] == "lead" and contact["tags"] == ["hiit", "trial"] and contact["birthday"] == "1990-04-02"
    assert contact["customFields"] == {"goal": "strength"} and contact["ownerId"] == staff.id
    assert client.get(f"{URL}/{contact['id']}", headers=staff_headers).get_json() == contact
    assert sorted(events_of(contact["id"]), key=str) == [("tag_added", {"tag": "hiit", "addedBy": "api"}),
                                                           ("tag_added", {"tag": "trial", "addedBy": "api"})]


@pytest.mark.parametrize("body, code, field", [
    ({"email": "not-an-email"}, "INVALID_EMAIL", "email"),
    ({"phone": "555-0102"}, "INVALID_PHONE", "phone"),
    ({"email": "a@b.co", "status": "vip"}, "INVALID_STATUS", "status"),
    ({"email": "a@b.co", "timezone": "Mars/Olympus"}, "INVALID_TIMEZONE", "timezone"),
    ({"email": "a@b.co", "timezone": "../../etc/passwd"}, "INVALID_TIMEZONE", "timezone"),
    ({"email": "a@b.co", "birthday": "02/04/1990"}, "INVALID_BIRTHDAY", "birthday"),
    ({"email": "a@b.co", "birthday": "2999-01-01"}, "INVALID_BIRTHDAY", "birthday"),
    ({"email": "a@b.co", "ownerId": "nobody"}, "INVALID_OWNER", "ownerId"),
    ({"email": "a@b.co", "tags": ["  "]}, "INVALID_TAG", "tags"),
    ({"lastName": ""}, "CONTACT_IDENTITY_REQUIRED", "email"),
])
def test_bad_fields_are_422_with_a_precise_code(client, staff_headers, body, code, field):
    response = client.post(URL, json=body, headers=staff_headers)
    error = assert_error(response, 422, code)
    assert error["details"]["field"] == field and response.get_json()["validation"][0]["field"] == field
    assert db.session.scalar(select(Contact.id)) is None


def test_wrong_types_and_unknown_fields_are_validation_failed(client, staff_headers):
    assert_error(client.post(URL, json={"email": 5}, headers=staff_headers), 422, "VALIDATION_FAILED")
    response = client.post(URL, json={"email": "a@b.co", "nickname": "Al"}, headers=staff_headers)
    assert_error(response, 422, "VALIDATION_FAILED")
    assert response.get_json()["validation"][0]["field"] == "nickname"


def test_custom_fields_must_be_defined_once_the_gym_defines_any(client, staff_headers, org):
    assert client.post(URL, json={"email": "free@b.co", "customFields": {"anything": 1}},
                       headers=staff_headers).status_code == 201
    db.session.add_all([CustomField(organization_id=org.id, key="goal", label="Goal"),
                        CustomField(organization_id=org.id, key="visits", label="Visits", field_type="number")])
    db.session.commit()
    error = assert_error(client.post(URL, json={"email": "a@b.co", "customFields": {"gaol": "x"}},
                                     headers=staff_headers), 422, "UNKNOWN_CUSTOM_FIELD")
    assert error["details"]["field"] == "custom.gaol" and "goal" in error["message"]
    assert_error(client.post(URL, json={"email": "a@b.co", "customFields": {"visits": "many"}},
                             headers=staff_headers), 422, "INVALID_CUSTOM_FIELD_VALUE")
    ok = client.post(URL, json={"email": "a@b.co", "customFields": {"visits": 3}}, headers=staff_headers)
    assert ok.status_code == 201 and ok.get_json()["customFields"] == {"visits": 3}


def test_an_email_belongs_to_one_contact(client, staff_headers, org):
    existing = factories.make_contact(org, email="sam@example.com")
    error = assert_error(client.post(URL, json={"email": "SAM@example.com"}, headers=staff_headers), 409,
                         "CONTACT_EMAIL_TAKEN")
    assert error["details"]["contactId"] == existing.id


# List

def test_list_searches_name_email_and_phone_and_filters_by_all_tags_and_status(client, staff_headers, org):
    factories.make_contact(org, first_name="Sarah", last_name="Connor", email="sarah@example.com",
                           phone="+15550001111", tags=["trial", "hiit"])
    factories.make_contact(org, first_name="Mike", last_name="Sarahson", email="mike@example.com",
                           phone="+15550002222", tags=["trial"], status="member")
    factories.make_contact(org, first_name="Ana", email="ana@example.com", phone="+15550003333")

    def listed(query):
        response = client.get(f"{URL}?{query}", headers=staff_headers)
        assert response.status_code == 200, response.get_json()
        return sorted(emails(response))

    assert listed("search=sarah") == ["mike@example.com", "sarah@example.com"]
    assert listed("search=sarah%20connor") == ["sarah@example.com"]
    assert listed("search=555-000-3333") == ["ana@example.com"]
    assert listed("search=ANA@EXAMPLE") == ["ana@example.com"]
    assert listed("search=100%25") == []  # a wildcard is just a character
    assert listed("tags=trial") == ["mike@example.com", "sarah@example.com"]
    assert listed("tags=trial,hiit") == ["sarah@example.com"]
    assert listed("status=member") == ["mike@example.com"]
    body = client.get(f"{URL}?limit=2&page=2", headers=staff_headers).get_json()
    assert body["pagination"] == {"total": 3, "page": 2, "limit": 2, "totalPages": 2} and len(body["contacts"]) == 1


def test_list_rejects_a_large_limit_and_an_unknown_status(client, staff_headers):
    assert_error(client.get(f"{URL}?limit=101", headers=staff_headers), 422, "VALIDATION_FAILED")
    assert_error(client.get(f"{URL}?status=vip", headers=staff_headers), 422, "VALIDATION_FAILED")


# Update

def test_put_is_partial_and_reports_status_unsubscribe_and_other_fields(client, staff_headers, org):
    contact = factories.make_contact(org, first_name="Sarah", phone="+15550001111", custom_fields={"goal": "cardio"})
    response = client.put(f"{URL}/{contact.id}", json={"status": "trial", "smsOptOut": True, "lastName": "Lee",
                                                       "customFields": {"goal": None, "shoe": 42}},
                          headers=staff_headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["firstName"], body["lastName"], body["phone"], body["status"]) == ("Sarah", "Lee", "+15550001111",
                                                                                   "trial")
    assert body["smsOptOut"] is True and body["customFields"] == {"shoe": 42}
    assert events_of(contact.id) == [
        ("status_changed", {"from": "lead", "to": "trial"}), ("contact_unsubscribed", {"channel": "sms"}),
        ("contact_updated", {"fields": ["last_name", "custom.goal", "custom.shoe"]})]


def test_put_with_tags_replaces_the_set_and_emits_events_for_the_difference(client, staff_headers, org):
    contact = factories.make_contact(org, tags=["trial", "hiit"])
    response = client.put(f"{URL}/{contact.id}", json={"tags": ["hiit", "member"]}, headers=staff_headers)
    assert response.get_json()["tags"] == ["hiit", "member"]
    assert events_of(contact.id) == [("tag_added", {"tag": "member", "addedBy": "api"}),
                                     ("tag_removed", {"tag": "trial", "removedBy": "api"})]
    event = db.session.scalar(select(Event).where(Event.type == "tag_added"))
    assert event.source == "api" and event.organization_id == org.id


def test_put_without_changes_emits_nothing(client, staff_headers, org):
    contact = factories.make_contact(org, first_name="Sarah", tags=["trial"])
    response = client.put(f"{URL}/{contact.id}", json={"firstName": "Sarah", "tags": ["trial"]}, headers=staff_headers)
    assert response.status_code == 200 and events_of(contact.id) == []


def test_put_refuses_a_bad_value_and_changes_nothing(client, staff_headers, org):
    contact = factories.make_contact(org, first_name="Sarah")
    response = client.put(f"{URL}/{contact.id}", json={"firstName": "Sally", "phone": "call me"},
                          headers=staff_headers)
    assert_error(response, 422, "INVALID_PHONE")
    db.session.expire_all()
    assert db.session.get(Contact, contact.id).first_name == "Sarah" and events_of(contact.id) == []


# Tenancy and roles

def test_another_organizations_contact_answers_exactly_like_a_missing_one(client, staff_headers, other_org):
    foreign = factories.make_contact(other_org, email="rival@example.com")
    missing = client.get(f"{URL}/{missing_id()}", headers=staff_headers)
    theirs = client.get(f"{URL}/{foreign.id}", headers=staff_headers)
    assert_error(missing, 404, "CONTACT_NOT_FOUND")
    assert_error(theirs, 404, "CONTACT_NOT_FOUND")
    assert without_timestamp(missing).replace(missing.headers["X-Request-ID"].encode(), b"") == \
        without_timestamp(theirs).replace(theirs.headers["X-Request-ID"].encode(), b"")
    assert_error(client.put(f"{URL}/{foreign.id}", json={"firstName": "Hacked"}, headers=staff_headers), 404,
                 "CONTACT_NOT_FOUND")
    assert emails(client.get(URL, headers=staff_headers)) == []
    db.session.expire_all()
    assert db.session.get(Contact, foreign.id).first_name != "Hacked"


def test_an_email_in_another_organization_is_not_taken(client, staff_headers, other_org):
    factories.make_contact(other_org, email="shared@example.com")
    assert client.post(URL, json={"email": "shared@example.com"}, headers=staff_headers).status_code == 201


def test_viewers_read_but_do_not_write(client, member, org):
    _, viewer = member("viewer")
    contact = factories.make_contact(org)
    assert client.get(f"{URL}/{contact.id}", headers=viewer).status_code == 200
    assert_error(client.post(URL, json={"email": "a@b.co"}, headers=viewer), 403, "INSUFFICIENT_PERMISSIONS")
    assert_error(client.put(f"{URL}/{contact.id}", json={"firstName": "X"}, headers=viewer), 403,
                 "INSUFFICIENT_PERMISSIONS")
