"""Request and response schemas of /api/v2/contacts and /api/v2/events.

Formats (email, phone, time zone, birthday, status, custom fields) are checked by services/contacts.py, which
answers each with its own code (INVALID_EMAIL, INVALID_PHONE, ...); the schemas check shapes and types.
"""
from datetime import timezone

from marshmallow import fields, validate
from webargs.fields import DelimitedList

from atlas.api.schemas import CamelSchema, PageQuery, PaginationSchema
from atlas.models import ContactStatus

STATUSES = [s.value for s in ContactStatus]


def _text(limit: int, **kwargs):
    return fields.String(allow_none=True, validate=validate.Length(max=limit), **kwargs)


class ContactListQuery(PageQuery):
    search = fields.String(validate=validate.Length(max=200),
                           metadata={"description": "Matches name, email or phone (case-insensitive)."})
    tags = DelimitedList(fields.String(validate=validate.Length(min=1, max=64)),
                         metadata={"description": "Comma-separated; matches contacts having all of them."})
    status = fields.String(validate=validate.OneOf(STATUSES))


class ContactFields(CamelSchema):
    """The writable fields of a contact; every one optional (PUT changes only what is sent)."""

    first_name = _text(80)
    last_name = _text(80)
    email = _text(254, metadata={"format": "email"})
    phone = _text(40, metadata={"description": "International form, e.g. +15551234567 (spaces and dashes are "
                                               "removed)."})
    status = fields.String(metadata={"enum": STATUSES})
    lead_source = _text(64)
    owner_id = _text(36, metadata={"description": "A user of this organization."})
    timezone = _text(64, metadata={"description": "An IANA time zone such as America/New_York."})
    birthday = fields.String(allow_none=True, metadata={"format": "date"})
    email_opt_out = fields.Boolean()
    sms_opt_out = fields.Boolean()
    tags = fields.List(fields.String(), metadata={"description": "On PUT, replaces the contact's tags."})
    custom_fields = fields.Dict(keys=fields.String(), metadata={
        "description": "Values by custom field key; on PUT merged into the contact's, null removes a key."})


class ContactSchema(CamelSchema):
    id = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    name = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    status = fields.String()
    lead_source = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    timezone = fields.String(allow_none=True)
    birthday = fields.Date(allow_none=True)
    email_opt_out = fields.Boolean()
    sms_opt_out = fields.Boolean()
    tags = fields.List(fields.String())
    custom_fields = fields.Dict()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ContactListResponse(CamelSchema):
    contacts = fields.List(fields.Nested(ContactSchema))
    pagination = fields.Nested(PaginationSchema)


class EventRequest(CamelSchema):
    type = fields.String(required=True, validate=validate.Length(min=1, max=64),
                         metadata={"example": "class_missed"})
    contact_id = fields.String(validate=validate.Length(min=1, max=36))
    contact = fields.Nested(ContactFields, metadata={
        "description": "Instead of contactId: matched by email, then phone; lead_created and form_submitted "
                       "create the contact when none matches."})
    data = fields.Dict(load_default=dict, metadata={"description": "The event's payload (formId, classSessionId, "
                                                                   "plan, amount...)."})
    occurred_at = fields.AwareDateTime(default_timezone=timezone.utc, metadata={
        "description": "ISO 8601; without a zone, UTC. Default: now."})
    source = fields.String(validate=validate.Length(min=1, max=64), metadata={"example": "crm"})
    idempotency_key = fields.String(validate=validate.Length(min=1, max=200), metadata={
        "description": "A repeat returns the first answer with duplicate true (the Idempotency-Key header too)."})


class Enrollment(CamelSchema):
    workflow_id = fields.String()
    outcome = fields.String()
    reason = fields.String()
    execution_id = fields.String(allow_none=True)


class EventResponse(CamelSchema):
    event_id = fields.String()
    contact_id = fields.String(allow_none=True)
    duplicate = fields.Boolean()
    enrollments = fields.List(fields.Nested(Enrollment))
    resumed_executions = fields.List(fields.String())
