"""Contacts: the CRM's leads and members, and the shape runs see them in (the `contact` root of templates).

Every change goes through here, from the API, the pages and workflows (source="workflow") alike, and each one is
reported as an internal event after its commit: tag_added / tag_removed per tag, status_changed,
contact_unsubscribed when an opt-out turns on, contact_updated for the rest.
"""
from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import date

from sqlalchemy import exists, func, or_, select

from atlas.errors import Conflict, NotFound, ValidationFailed
from atlas.extensions import db
from atlas.models import Contact, ContactStatus, ContactTag, CustomField, Membership
from atlas.services.pagination import paginate
from atlas.services.tenancy import get_scoped, scoped

STANDARD_FIELDS = ("first_name", "last_name", "email", "phone", "status", "lead_source", "owner_id", "timezone",
                   "birthday", "email_opt_out", "sms_opt_out")
READ_ONLY = ("id", "name", "created_at", "updated_at", "organization_id")
STATUSES = tuple(s.value for s in ContactStatus)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
MAX_TAGS = 50


class ContactNotFound(NotFound):
    code, message = "CONTACT_NOT_FOUND", "Contact not found."


def camel(name: str) -> str:
    """A field's API name: first_name -> firstName, custom.goal stays."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def invalid(code: str, field: str, message: str) -> ValidationFailed:
    """A 422 naming one field (in the API's camelCase) with a precise code."""
    return ValidationFailed(message, code=code, details={"field": camel(field)},
                            validation=[{"field": camel(field), "message": message}])


def contact_data(contact: Contact) -> dict:
    """What conditions and templates read as `contact`: every field, tags and custom fields."""
    return {"id": contact.id, "first_name": contact.first_name, "last_name": contact.last_name,
            "name": contact.name, "email": contact.email, "phone": contact.phone, "status": contact.status,
            "lead_source": contact.lead_source, "owner_id": contact.owner_id, "timezone": contact.timezone,
            "birthday": contact.birthday.isoformat() if contact.birthday else None,
            "email_opt_out": contact.email_opt_out, "sms_opt_out": contact.sms_opt_out, "tags": contact.tags,
            "custom": dict(contact.custom_fields or {}), "created_at": contact.created_at.isoformat()}


def current_data(org_id: str, contact_id: str | None, fallback: dict) -> dict:
    """The contact as it is now, for a run about to advance; the run's snapshot if it is not a CRM contact."""
    if not contact_id:
        return fallback
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.organization_id != org_id:
        return fallback
    return contact_data(contact)


# --- reading -------------------------------------------------------------------------------------------------------

def for_run(org_id: str, data: dict) -> tuple[str | None, dict]:
    """The contact a run is about, from inputData/testData: `contactId` names a CRM contact (CONTACT_NOT_FOUND
    otherwise); else `contact` is taken as given (a snapshot, e.g. for a contact that lives elsewhere)."""
    if data.get("contactId") is not None:
        contact = get_contact(org_id, str(data["contactId"]))
        return contact.id, contact_data(contact)
    snapshot = dict(data.get("contact") or {})
    return (str(snapshot["id"]) if snapshot.get("id") is not None else None), snapshot


def list_contacts(org_id: str, *, search: str | None = None, tags: list[str] | None = None,
                  status: str | None = None, page: int = 1, limit: int = 20) -> tuple[list[Contact], dict]:
    """One page of contacts, newest first: search over name, email and phone; tags = having all of them."""
    query = scoped(Contact, org_id)
    if status:
        query = query.where(Contact.status == status)
    if search and search.strip():
        needle = search.strip().lower()
        full_name = func.lower(Contact.first_name + " " + Contact.last_name)
        digits = re.sub(r"[^\d+]", "", needle)
        matches = [full_name.contains(needle, autoescape=True),
                   func.lower(Contact.email).contains(needle, autoescape=True)]
        if len(digits.lstrip("+")) >= 3:  # a phone search ignores spaces and dashes, as stored numbers have none
            matches.append(Contact.phone.contains(digits, autoescape=True))
        query = query.where(or_(*matches))
    for tag in dict.fromkeys(tags or []):
        query = query.where(exists().where(ContactTag.contact_id == Contact.id, ContactTag.tag == tag))
    return paginate(query.order_by(Contact.created_at.desc(), Contact.id), page, limit)


def get_contact(org_id: str, contact_id: str) -> Contact:
    """A contact of the organization; CONTACT_NOT_FOUND for a missing or another organization's id."""
    return get_scoped(Contact, org_id, contact_id, ContactNotFound)


def find_contact(org_id: str, *, email: str | None = None, phone: str | None = None) -> Contact | None:
    """The contact with this email, else with this phone (both normalised first), or None."""
    if email:
        found = db.session.scalars(scoped(Contact, org_id).where(Contact.email == normal_email(email))
                                   .order_by(Contact.created_at)).first()
        if found is not None:
            return found
    if phone:
        return db.session.scalars(scoped(Contact, org_id).where(Contact.phone == normal_phone(phone))
                                  .order_by(Contact.created_at)).first()
    return None


def all_tags(org_id: str) -> list[str]:
    """Every tag in use in the organization, sorted."""
    return list(db.session.scalars(select(ContactTag.tag).distinct()
                                   .where(ContactTag.organization_id == org_id).order_by(ContactTag.tag)))


# --- field checks ------------------------------------------------------------------------------------------------

def normal_email(value) -> str | None:
    """A trimmed, lower-cased email address; INVALID_EMAIL otherwise."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if len(text) > 254 or not EMAIL.match(text):
        raise invalid("INVALID_EMAIL", "email", f"{str(value)[:80]!r} is not an email address.")
    return text


def normal_phone(value) -> str | None:
    """An E.164 number (+ and 8 to 15 digits) from common spellings; INVALID_PHONE otherwise."""
    if value is None or value == "":
        return None
    text = re.sub(r"[\s\-().]", "", str(value))
    if text.startswith("00"):
        text = "+" + text[2:]
    if not re.fullmatch(r"\+[1-9]\d{7,14}", text):
        raise invalid("INVALID_PHONE", "phone", f"{str(value)[:40]!r} is not a phone number in international form "
                                                "(+ country code and number, e.g. +15551234567).")
    return text


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(org_id, value):
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in _zones():
        raise invalid("INVALID_TIMEZONE", "timezone", f"{str(value)[:64]!r} is not an IANA time zone "
                                                      "(e.g. America/New_York).")
    return value


def _birthday(org_id, value):
    if value is None or value == "":
        return None
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        raise invalid("INVALID_BIRTHDAY", "birthday", "birthday must be a date as YYYY-MM-DD.")
    if day > date.today() or day.year < 1900:
        raise invalid("INVALID_BIRTHDAY", "birthday", "birthday must be a past date after 1900.")
    return day


def _status(org_id, value):
    if value not in STATUSES:
        raise invalid("INVALID_STATUS", "status", f"status must be one of {', '.join(STATUSES)}.")
    return value


def _owner(org_id, value):
    if value is None or value == "":
        return None
    member = db.session.scalar(select(Membership.user_id).where(
        Membership.organization_id == org_id, Membership.user_id == str(value)))
    if member is None:
        raise invalid("INVALID_OWNER", "owner_id", "ownerId must be the id of a user of this organization.")
    return member


def _text(field: str, limit: int, *, required: bool = False):
    def check(org_id, value):
        if value is None:
            if required:
                raise invalid("INVALID_FIELD_VALUE", field, f"{camel(field)} must be text.")
            return None
        if not isinstance(value, str) or len(value.strip()) > limit:
            raise invalid("INVALID_FIELD_VALUE", field, f"{camel(field)} must be text of at most {limit} characters.")
        return value.strip() if value.strip() or required else None
    return check


def _flag(field: str):
    def check(org_id, value):
        if not isinstance(value, bool):
            raise invalid("INVALID_FIELD_VALUE", field, f"{camel(field)} must be true or false.")
        return value
    return check


CHECKS = {"first_name": _text("first_name", 80, required=True), "last_name": _text("last_name", 80, required=True),
          "email": lambda org_id, v: normal_email(v), "phone": lambda org_id, v: normal_phone(v), "status": _status,
          "lead_source": _text("lead_source", 64), "owner_id": _owner, "timezone": _timezone, "birthday": _birthday,
          "email_opt_out": _flag("email_opt_out"), "sms_opt_out": _flag("sms_opt_out")}


def _custom_value(definition: CustomField | None, key: str, value):
    """A custom field's value checked against its definition's type (anything JSON when undefined)."""
    if value is None or definition is None:
        return value
    kind, field = definition.field_type, f"custom.{key}"
    ok = {"number": isinstance(value, (int, float)) and not isinstance(value, bool),
          "boolean": isinstance(value, bool), "select": value in (definition.options or []),
          "text": isinstance(value, str) and len(value) <= 2000}.get(kind, True)
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            ok = False
    if not ok:
        expected = f"one of {', '.join(map(str, definition.options or []))}" if kind == "select" else f"a {kind}"
        raise invalid("INVALID_CUSTOM_FIELD_VALUE", field, f"The custom field {key} must be {expected}.")
    return value


def _custom_changes(org_id: str, values: dict) -> dict:
    """Custom field values checked: keys must be defined when the organization defines any."""
    definitions = {d.key: d for d in db.session.scalars(scoped(CustomField, org_id))}
    out = {}
    for key, value in values.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", key):
            raise invalid("INVALID_CUSTOM_FIELD_KEY", "custom_fields", f"{str(key)[:64]!r} is not a field key "
                                                                       "(letters, digits, underscores).")
        if definitions and key not in definitions:
            raise invalid("UNKNOWN_CUSTOM_FIELD", f"custom.{key}",
                          f"No custom field {key!r} is defined; defined: {', '.join(sorted(definitions))}.")
        out[key] = _custom_value(definitions.get(key), key, value)
    return out


def snake_keys(data: dict) -> dict:
    """The same change set with camelCase standard names (firstName) in snake_case."""
    by_camel = {camel(name): name for name in (*STANDARD_FIELDS, "custom_fields")}
    return {by_camel.get(key, key): value for key, value in data.items()}


def split_changes(org_id: str, changes: dict) -> tuple[dict, dict]:
    """Checked (standard, custom) values from a change set: standard names (snake or camelCase), `custom_fields`
    (a dict), `custom.<key>`, and any other key as a custom field key."""
    standard, custom = {}, {}
    by_camel = {camel(name): name for name in STANDARD_FIELDS}
    for key, value in changes.items():
        name = by_camel.get(key, key)
        if name in READ_ONLY or camel(name) in {camel(r) for r in READ_ONLY}:
            raise invalid("FIELD_NOT_WRITABLE", name, f"{camel(name)} cannot be changed.")
        if name in ("custom_fields", "customFields", "custom"):
            if not isinstance(value, dict):
                raise invalid("INVALID_FIELD_VALUE", "custom_fields", "customFields must be an object.")
            custom.update(value)
        elif name in STANDARD_FIELDS:
            standard[name] = CHECKS[name](org_id, value)
        else:
            custom[name.removeprefix("custom.")] = value
    return standard, _custom_changes(org_id, custom)


def check_tags(tags) -> list[str]:
    """Trimmed, distinct tags of 1 to 64 characters; INVALID_TAG otherwise."""
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, (list, tuple)) or len(tags) > MAX_TAGS:
        raise invalid("INVALID_TAG", "tags", f"tags must be a list of at most {MAX_TAGS} tags.")
    out = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or len(tag.strip()) > 64:
            raise invalid("INVALID_TAG", "tags", "Each tag must be text of 1 to 64 characters.")
        out.append(tag.strip())
    return list(dict.fromkeys(out))


# --- writing -------------------------------------------------------------------------------------------------------

def create_contact(org_id: str, data: dict, *, source: str | None = "api", depth: int | None = None) -> Contact:
    """Add a contact (fields, custom fields, tags); commits, then reports each tag as tag_added."""
    contact = build_contact(org_id, data)
    db.session.add(contact)
    db.session.commit()
    _report(org_id, contact.id, {}, contact.tags, [], source, depth)
    return contact


def build_contact(org_id: str, data: dict) -> Contact:
    """A checked, unsaved contact (the caller adds and commits it): needs a name, an email or a phone."""
    data = dict(data)
    tags = check_tags(data.pop("tags", None) or [])
    standard, custom = split_changes(org_id, data)
    if not any(standard.get(k) for k in ("first_name", "last_name", "email", "phone")):
        raise invalid("CONTACT_IDENTITY_REQUIRED", "email", "A contact needs a name, an email or a phone.")
    _email_free(org_id, standard.get("email"), None)
    standard.setdefault("status", ContactStatus.LEAD.value)
    contact = Contact(organization_id=org_id, custom_fields={k: v for k, v in custom.items() if v is not None},
                      **{k: ("" if v is None and k in ("first_name", "last_name") else v) for k, v in standard.items()})
    contact.tag_rows = [ContactTag(organization_id=org_id, tag=t) for t in tags]
    return contact


def _email_free(org_id: str, email: str | None, contact_id: str | None) -> None:
    """One contact per email address in an organization (409 CONTACT_EMAIL_TAKEN)."""
    if not email:
        return
    taken = db.session.scalar(select(Contact.id).where(Contact.organization_id == org_id, Contact.email == email,
                                                       Contact.id != (contact_id or "")).limit(1))
    if taken:
        raise Conflict(f"Another contact already has the email {email}.", code="CONTACT_EMAIL_TAKEN",
                       details={"contactId": taken})


def update_contact(org_id: str, contact_id: str, data: dict, *, source: str | None = "api",
                   depth: int | None = None) -> Contact:
    """Partial update; `tags`, when given, replaces the set (tag events for the difference)."""
    contact = get_contact(org_id, contact_id)
    data = dict(data)
    wanted = check_tags(data.pop("tags")) if "tags" in data else None
    changed = _apply(org_id, contact, data)
    added, removed = [], []
    if wanted is not None:
        added = _add(contact, [t for t in wanted if t not in contact.tags])
        removed = _remove(contact, [t for t in contact.tags if t not in wanted])
    db.session.commit()
    _report(org_id, contact.id, changed, added, removed, source, depth)
    return contact


def set_fields(org_id: str, contact_id: str, changes: dict, *, source: str | None = None,
               depth: int | None = None) -> dict:
    """Change standard and custom fields; returns {field: {"from", "to"}} of what actually changed."""
    contact = get_contact(org_id, contact_id)
    changed = _apply(org_id, contact, changes)
    db.session.commit()
    _report(org_id, contact.id, changed, [], [], source, depth)
    return changed


def add_tags(org_id: str, contact_id: str, tags, *, source: str | None = None, depth: int | None = None) -> list[str]:
    """Tag the contact; returns the tags actually added (those it already had are left out)."""
    contact = get_contact(org_id, contact_id)
    added = _add(contact, [t for t in check_tags(tags) if t not in contact.tags])
    db.session.commit()
    _report(org_id, contact.id, {}, added, [], source, depth)
    return added


def remove_tags(org_id: str, contact_id: str, tags, *, source: str | None = None,
                depth: int | None = None) -> list[str]:
    """Untag the contact; returns the tags actually removed."""
    contact = get_contact(org_id, contact_id)
    removed = _remove(contact, [t for t in check_tags(tags) if t in contact.tags])
    db.session.commit()
    _report(org_id, contact.id, {}, [], removed, source, depth)
    return removed


def _add(contact: Contact, tags: list[str]) -> list[str]:
    if len(contact.tag_rows) + len(tags) > MAX_TAGS:
        raise invalid("TOO_MANY_TAGS", "tags", f"A contact can have at most {MAX_TAGS} tags.")
    contact.tag_rows.extend(ContactTag(organization_id=contact.organization_id, tag=t) for t in tags)
    return tags


def _remove(contact: Contact, tags: list[str]) -> list[str]:
    contact.tag_rows = [row for row in contact.tag_rows if row.tag not in tags]
    return tags


def _apply(org_id: str, contact: Contact, changes: dict) -> dict:
    """Set checked values on the contact; returns {field: {"from", "to"}} (JSON values) of real changes."""
    standard, custom = split_changes(org_id, changes)
    if "email" in standard:
        _email_free(org_id, standard["email"], contact.id)
    changed = {}
    for name, value in standard.items():
        if name in ("first_name", "last_name") and value is None:
            value = ""
        if getattr(contact, name) != value:
            changed[name] = {"from": _json(getattr(contact, name)), "to": _json(value)}
            setattr(contact, name, value)
    values = dict(contact.custom_fields or {})
    for key, value in custom.items():
        if values.get(key) != value:
            changed[f"custom.{key}"] = {"from": values.get(key), "to": value}
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
    contact.custom_fields = values
    return changed


def _json(value):
    return value.isoformat() if isinstance(value, date) else value


def _report(org_id: str, contact_id: str, changed: dict, added: list, removed: list, source, depth) -> None:
    """The internal events of a committed change: tags, status, unsubscribes, then the other fields."""
    from atlas.services import events

    def emit(event_type, payload):
        events.emit(org_id, event_type, contact_id, payload, source=source, depth=depth)

    for tag in added:  # addedBy/removedBy let a trigger filter tell staff from workflows
        emit("tag_added", {"tag": tag, "addedBy": source} if source else {"tag": tag})
    for tag in removed:
        emit("tag_removed", {"tag": tag, "removedBy": source} if source else {"tag": tag})
    if "status" in changed:
        emit("status_changed", changed["status"])
    for channel in ("email", "sms"):
        if changed.get(f"{channel}_opt_out", {}).get("to") is True:
            emit("contact_unsubscribed", {"channel": channel})
    rest = [name for name, change in changed.items() if name != "status"
            and not (name.endswith("_opt_out") and change["to"] is True)]
    if rest:
        emit("contact_updated", {"fields": rest})


# --- the contact page --------------------------------------------------------------------------------------------

def overview(org_id: str, contact: Contact, now=None, limit: int = 20) -> dict:
    """What the contact page shows besides the contact: bookings, plans, runs, messages and enrollment decisions."""
    from atlas.models import Booking, ClassSession, ContactMembership, Execution, Message, User, Workflow
    from atlas.models.base import utcnow
    from atlas.services import decisions

    now = now or utcnow()
    bookings = db.session.execute(select(Booking, ClassSession).join(ClassSession, ClassSession.id ==
                                  Booking.class_session_id).where(Booking.organization_id == org_id,
                                  Booking.contact_id == contact.id).order_by(ClassSession.starts_at.desc())).all()
    runs = db.session.execute(select(Execution, Workflow.name).join(Workflow, Workflow.id == Execution.workflow_id)
                              .where(Execution.organization_id == org_id, Execution.contact_id == contact.id)
                              .order_by(Execution.created_at.desc()).limit(limit)).all()
    logged, _ = decisions.list_decisions(org_id, contact_id=contact.id, limit=limit)
    names = dict(db.session.execute(select(Workflow.id, Workflow.name).where(
        Workflow.organization_id == org_id, Workflow.id.in_({d.workflow_id for d in logged}))).all())
    return {"upcoming": [row for row in reversed(bookings) if row[1].starts_at >= now],
            "past": [row for row in bookings if row[1].starts_at < now][:limit],
            "plans": list(db.session.scalars(scoped(ContactMembership, org_id).where(
                ContactMembership.contact_id == contact.id).order_by(ContactMembership.started_on.desc()))),
            "runs": runs, "decisions": [(d, names.get(d.workflow_id, "A deleted workflow")) for d in logged],
            "messages": list(db.session.scalars(scoped(Message, org_id).where(Message.contact_id == contact.id)
                                                .order_by(Message.created_at.desc()).limit(limit))),
            "field_labels": {f.key: f.label for f in db.session.scalars(scoped(CustomField, org_id))},
            "owner": db.session.get(User, contact.owner_id) if contact.owner_id else None}
