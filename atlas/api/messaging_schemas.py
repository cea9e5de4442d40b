"""Schemas for message templates, the outbox, /config/actions and the inbound SMS webhook."""
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from atlas.api.actions import ActionDefinition
from atlas.api.schemas import CamelSchema, PageQuery, PaginationSchema, Trimmed
from atlas.core.storable import storable
from atlas.models import MessageStatus

CHANNELS = ("email", "sms")
BODY_MAX = 50_000  # an SMS template's own limit (1,600) is checked by the service, with its own error code


def _storable_text(value: str) -> bool:
    """Text PostgreSQL can store (a provider's form is not checked by the API's JSON hook)."""
    if not storable(value):
        raise ValidationError("Contains a NUL character or an unpaired surrogate.")
    return True


# --- templates ---------------------------------------------------------------------------------------------------

class EmailTemplateCreate(CamelSchema):
    name = Trimmed(required=True, validate=validate.Length(max=120))
    subject = Trimmed(required=True, validate=validate.Length(max=200))
    body = fields.String(required=True, validate=validate.Length(min=1, max=BODY_MAX))


class EmailTemplateUpdate(CamelSchema):
    name = Trimmed(validate=validate.Length(max=120))
    subject = Trimmed(validate=validate.Length(max=200))
    body = fields.String(validate=validate.Length(min=1, max=BODY_MAX))


class SmsTemplateCreate(CamelSchema):
    name = Trimmed(required=True, validate=validate.Length(max=120))
    body = fields.String(required=True, validate=validate.Length(min=1, max=BODY_MAX))


class SmsTemplateUpdate(CamelSchema):
    name = Trimmed(validate=validate.Length(max=120))
    body = fields.String(validate=validate.Length(min=1, max=BODY_MAX))


class MessageTemplateSchema(CamelSchema):
    id = fields.String()
    name = fields.String()
    channel = fields.String()
    subject = fields.String(allow_none=True)
    body = fields.String()
    variables = fields.List(fields.String(), metadata={"description": "The data paths the template reads"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class TemplateListResponse(CamelSchema):
    templates = fields.List(fields.Nested(MessageTemplateSchema))


class TemplateResponse(CamelSchema):
    template = fields.Nested(MessageTemplateSchema)


class DeletedTemplate(CamelSchema):
    id = fields.String()
    name = fields.String()


class DeleteTemplateResponse(CamelSchema):
    success = fields.Boolean()
    deleted_template = fields.Nested(DeletedTemplate)


# --- /config/actions ---------------------------------------------------------------------------------------------

class Integration(CamelSchema):
    key = fields.String()
    name = fields.String()
    channel = fields.String()
    configured = fields.Boolean()


class ActionConfigResponse(CamelSchema):
    available_actions = fields.List(fields.Nested(ActionDefinition))
    email_templates = fields.List(fields.Nested(MessageTemplateSchema))
    sms_templates = fields.List(fields.Nested(MessageTemplateSchema))
    integrations = fields.List(fields.Nested(Integration))
    custom_actions = fields.List(fields.Dict())


# --- the outbox --------------------------------------------------------------------------------------------------

class OutboxQuery(PageQuery):
    status = fields.String(validate=validate.OneOf([s.value for s in MessageStatus]))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    contact_id = fields.String(validate=validate.Length(max=36))


class OutboxMessage(CamelSchema):
    id = fields.String()
    channel = fields.String()
    contact_id = fields.String(allow_none=True)
    execution_id = fields.String(allow_none=True)
    node_id = fields.String(allow_none=True)
    to = fields.String(attribute="to_address", allow_none=True)
    subject = fields.String(allow_none=True)
    body = fields.String()
    status = fields.String()
    provider = fields.String(allow_none=True)
    provider_id = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    test_mode = fields.Boolean()
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)


class OutboxResponse(CamelSchema):
    messages = fields.List(fields.Nested(OutboxMessage))
    pagination = fields.Nested(PaginationSchema)


# --- inbound SMS (a provider's form post, in the provider's field names) ----------------------------------------

class InboundQuery(Schema):
    org = fields.String(load_default="", validate=validate.Length(max=64))
    token = fields.String(load_default="", validate=validate.Length(max=128))


class InboundSms(Schema):
    class Meta:
        unknown = EXCLUDE  # providers send many more fields (MessageSid, NumMedia, ...)

    sender = fields.String(data_key="From", load_default="", validate=[validate.Length(max=32), _storable_text])
    body = fields.String(data_key="Body", load_default="", validate=[validate.Length(max=1600), _storable_text])
    to = fields.String(data_key="To", load_default=None, validate=[validate.Length(max=32), _storable_text])
