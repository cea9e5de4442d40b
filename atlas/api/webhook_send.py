"""/api/v2/webhooks/send: an outgoing webhook, signed with the organization's secret, retried, SSRF-guarded."""
from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError, fields, validate, validates_schema

from atlas.api.context import ORG, access
from atlas.api.schemas import CamelSchema
from atlas.services import signing_secrets
from atlas.services import webhook_send as service

blp = Blueprint("webhook_send", __name__, url_prefix="/api/v2/webhooks",
                description="Sending webhooks: signed outgoing requests")

METHODS = ("GET", "POST", "PUT", "DELETE")


class RetryConfig(CamelSchema):
    max_attempts = fields.Integer(load_default=3, validate=validate.Range(min=1, max=5))
    backoff = fields.String(load_default="exponential", validate=validate.OneOf(("fixed", "exponential")))
    initial_delay_ms = fields.Integer(load_default=500, validate=validate.Range(min=0, max=30_000))
    max_delay_ms = fields.Integer(load_default=5000, validate=validate.Range(min=0, max=30_000))

    @validates_schema
    def delays_in_order(self, data, **kwargs):
        """maxDelayMs caps initialDelayMs, so it cannot be the smaller one."""
        if data.get("max_delay_ms", 0) < data.get("initial_delay_ms", 0):
            raise ValidationError("maxDelayMs must be at least initialDelayMs.", "maxDelayMs")


class SendWebhookRequest(CamelSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2048))
    method = fields.String(load_default="POST", validate=validate.OneOf(METHODS))
    headers = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=256)),
                          values=fields.String(validate=validate.Length(max=8192)), load_default=dict,
                          validate=validate.Length(max=50))
    payload = fields.Dict(allow_none=True, load_default=None)
    timeout = fields.Float(allow_none=True, load_default=None,
                           validate=validate.Range(min=0, min_inclusive=False, max=30))
    retry_config = fields.Nested(RetryConfig, allow_none=True, load_default=None)

    @validates_schema
    def no_body_on_get(self, data, **kwargs):
        """A GET carries no body, so it has no payload to sign."""
        if data.get("method") == "GET" and data.get("payload") is not None:
            raise ValidationError("A GET webhook carries no payload; use POST or PUT.", "payload")


class WebhookTiming(CamelSchema):
    dns = fields.Float(allow_none=True)
    connect = fields.Float(allow_none=True)
    total = fields.Float()


class SendAttemptError(CamelSchema):
    code = fields.String()
    message = fields.String()


class SendAttempt(CamelSchema):
    attempt = fields.Integer()
    status = fields.Integer(allow_none=True)
    error = fields.Nested(SendAttemptError, allow_none=True)
    retryable = fields.Boolean()
    timestamp = fields.Integer(metadata={"description": "the webhook-timestamp this attempt was signed with"})
    delay_ms = fields.Integer(metadata={"description": "the wait before the next attempt"})
    timing = fields.Nested(WebhookTiming)


class SendWebhookResponse(CamelSchema):
    success = fields.Boolean()
    response_status = fields.Integer(allow_none=True)
    response_body = fields.Raw(allow_none=True)
    truncated = fields.Boolean()
    timing = fields.Nested(WebhookTiming)
    attempts = fields.List(fields.Nested(SendAttempt))
    webhook_id = fields.String()
    error = fields.Nested(SendAttemptError, allow_none=True)
    elapsed_ms = fields.Float()


class SigningSecretResponse(CamelSchema):
    secret = fields.String()
    created_at = fields.DateTime()
    previous_secret_expires_at = fields.DateTime(allow_none=True, metadata={
        "description": "after a rotation: until when the previous secret also signs (two signatures per webhook)"})
    scheme = fields.String()
    headers = fields.List(fields.String())


class RotateSigningSecretRequest(CamelSchema):
    grace_period_seconds = fields.Integer(strict=True, validate=validate.Range(min=0, max=7 * 24 * 3600),
                                          load_default=None, metadata={
                                              "description": "how long the previous secret also signs; default "
                                                             "ATLAS_WEBHOOK_SECRET_GRACE_SECONDS, 0 ends it at once"})


@blp.route("/send")
class SendWebhook(MethodView):
    @blp.arguments(SendWebhookRequest)
    @blp.response(200, SendWebhookResponse)
    def post(self, body):
        """Send a signed webhook (Standard Webhooks) through the SSRF guard, with retries and backoff"""
        g.audit_action = "webhook.send"
        return service.send(g.organization.id, url=body["url"], method=body["method"], headers=body["headers"],
                            payload=body["payload"], timeout=body["timeout"], retry=body["retry_config"])


def _secret_answer(info: dict) -> dict:
    return {**info, "scheme": "standard-webhooks",
            "headers": ["webhook-id", "webhook-timestamp", "webhook-signature"]}


@blp.route("/signing-secret")
@access(ORG, role="admin")
class SigningSecret(MethodView):
    @blp.response(200, SigningSecretResponse)
    def get(self):
        """The organization's outgoing signing secret, for receivers to verify its webhooks (admin)"""
        return _secret_answer(signing_secrets.secret_info(g.organization.id))


@blp.route("/signing-secret/rotate")
@access(ORG, role="admin")
class RotateSigningSecret(MethodView):
    @blp.arguments(RotateSigningSecretRequest)
    @blp.response(200, SigningSecretResponse)
    def post(self, body):
        """Replace the outgoing signing secret; the previous one also signs during the grace period (admin)"""
        g.audit_action = "webhook.signing_secret.rotate"
        signing_secrets.rotate_signing_secret(g.organization.id, body["grace_period_seconds"])
        return _secret_answer(signing_secrets.secret_info(g.organization.id))
