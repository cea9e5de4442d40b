"""Request and response schemas of the webhook endpoints API (/api/v2/webhooks)."""
from marshmallow import fields, validate

from atlas.api.schemas import CamelSchema, PageQuery, PaginationSchema, Trimmed
from atlas.services.webhooks import MAX_GRACE_SECONDS, OUTCOMES

RATE_LIMIT = validate.Range(min=1, max=10_000, error="rateLimit must be between 1 and 10000 deliveries per minute.")
GRACE = validate.Range(min=0, max=MAX_GRACE_SECONDS,
                       error=f"gracePeriodSeconds must be between 0 and {MAX_GRACE_SECONDS} (7 days).")


class WebhookStatistics(CamelSchema):
    """Deliveries counted by outcome (test-mode deliveries are not counted)."""

    received = fields.Integer(metadata={"description": "every delivery recorded, whatever its outcome"})
    accepted = fields.Integer()
    filtered = fields.Integer(metadata={"description": "accepted but stopped by filterConditions"})
    duplicates = fields.Integer(metadata={"description": "a webhook-id already accepted within 24 h"})
    rejected = fields.Dict(keys=fields.String(), values=fields.Integer(),
                           metadata={"description": "rejections by error code, e.g. WEBHOOK_SIGNATURE_INVALID"})
    rejected_total = fields.Integer(attribute="rejectedTotal")
    last_received_at = fields.DateTime(attribute="lastReceivedAt", allow_none=True)


class WorkflowWebhook(CamelSchema):
    id = fields.String()
    name = fields.String()
    workflow_id = fields.String(allow_none=True)
    workflow_name = fields.String(allow_none=True)
    endpoint_url = fields.String(metadata={"description": "POST signed deliveries here"})
    allowed_origins = fields.List(fields.String())
    rate_limit = fields.Integer(metadata={"description": "the limit in force, deliveries per minute: the endpoint's "
                                                         "own, or ATLAS_WEBHOOK_RATE_LIMIT when it sets none"})
    rate_limit_is_default = fields.Boolean(metadata={"description": "true when rateLimit is the installation's "
                                                                    "default (the endpoint sets none)"})
    transform_payload = fields.Dict(allow_none=True)
    filter_conditions = fields.List(fields.Dict())
    active = fields.Boolean()
    secret_preview = fields.String(metadata={"description": "the secret's first characters, e.g. whsec_abcd…"})
    previous_secret_expires_at = fields.DateTime(allow_none=True, metadata={
        "description": "until when the secret replaced by the last rotation still verifies"})
    last_received_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    statistics = fields.Nested(WebhookStatistics)


class WebhookListResponse(CamelSchema):
    webhooks = fields.List(fields.Nested(WorkflowWebhook))
    statistics = fields.Nested(WebhookStatistics, metadata={"description": "the whole organization's"})


class CreateWebhookRequest(CamelSchema):
    name = Trimmed(required=True, validate=validate.Length(max=120))
    workflow_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))
    allowed_origins = fields.List(fields.String(validate=validate.Length(min=1, max=255)), metadata={
        "description": "origins (scheme://host[:port]) a browser may post from; empty allows every origin"})
    rate_limit = fields.Integer(allow_none=True, strict=True, validate=RATE_LIMIT,
                                metadata={"description": "deliveries per minute; null for the default"})
    transform_payload = fields.Dict(allow_none=True, attribute="transform",
                                    metadata={"description": "{mappings: [{to, from | expression | value, "
                                                             "default}], keepOriginal} (docs/webhooks.md)"})
    filter_conditions = fields.Raw(allow_none=True, metadata={
        "description": "a list of conditions in the engine's format (a single object counts as a list of one)"})
    active = fields.Boolean()


class UpdateWebhookRequest(CreateWebhookRequest):
    name = Trimmed(validate=validate.Length(max=120))


class TestInstructionHeader(CamelSchema):
    name = fields.String()
    description = fields.String()


class WebhookTestInfo(CamelSchema):
    curl = fields.String(metadata={"description": "a bash script: openssl signs, curl posts"})
    python = fields.String(metadata={"description": "a Python script signing with the standardwebhooks package"})
    headers = fields.List(fields.Nested(TestInstructionHeader))
    notes = fields.List(fields.String())


class CreateWebhookResponse(CamelSchema):
    webhook = fields.Nested(WorkflowWebhook)
    endpoint_url = fields.String()
    secret_key = fields.String(metadata={"description": "the plain secret: shown only here and on rotation"})
    test_instructions = fields.Nested(WebhookTestInfo)


class RotateSecretRequest(CamelSchema):
    grace_period_seconds = fields.Integer(allow_none=True, strict=True, validate=GRACE, metadata={
        "description": "how long the old secret keeps verifying; ATLAS_WEBHOOK_SECRET_GRACE_SECONDS when omitted"})


class RotateSecretResponse(CamelSchema):
    webhook = fields.Nested(WorkflowWebhook)
    secret_key = fields.String()
    previous_secret_expires_at = fields.DateTime(allow_none=True)
    test_instructions = fields.Nested(WebhookTestInfo)


class DeliveryQuery(PageQuery):
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))


class WebhookDeliverySchema(CamelSchema):
    id = fields.String()
    endpoint_id = fields.String()
    message_id = fields.String(allow_none=True)
    outcome = fields.String()
    reason = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)
    headers = fields.Dict()
    payload = fields.Raw(allow_none=True)
    processed_payload = fields.Raw(allow_none=True)
    execution_ids = fields.List(fields.String())
    workflow_ids = fields.List(fields.String())
    test_mode = fields.Boolean()
    replay_of = fields.String(allow_none=True)
    original_delivery_id = fields.String(allow_none=True)
    remote_addr = fields.String(allow_none=True)
    processing_ms = fields.Float()
    received_at = fields.DateTime()


class DeliveryListResponse(CamelSchema):
    deliveries = fields.List(fields.Nested(WebhookDeliverySchema))
    pagination = fields.Nested(PaginationSchema)
