"""/api/v2/webhooks/receive/{endpointId} (signed, no token), /api/v2/webhooks/{endpointId}/test and replay."""
from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields

from atlas.api.context import PUBLIC, access
from atlas.api.schemas import CamelSchema
from atlas.api.webhook_schemas import WebhookDeliverySchema
from atlas.errors import handle_atlas_error
from atlas.extensions import limiter
from atlas.services import webhook_receive as service
from atlas.services import webhook_testing

blp = Blueprint("webhook_receive", __name__, url_prefix="/api/v2/webhooks",
                description="Receiving webhooks: the signed endpoint, its test and replays")


class FilteredSchema(CamelSchema):
    reason = fields.String()


class WebhookReceiveResponse(CamelSchema):
    success = fields.Boolean()
    workflows_triggered = fields.List(fields.String())
    processing_time = fields.Float(metadata={"description": "milliseconds"})
    delivery_id = fields.String()
    duplicate = fields.Boolean(metadata={"description": "a repeated webhook-id: the first delivery's answer"})
    original_delivery_id = fields.String()
    filtered = fields.Nested(FilteredSchema, metadata={"description": "filterConditions did not hold"})


class TestWebhookRequest(CamelSchema):
    payload = fields.Dict(required=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)


class WebhookLog(CamelSchema):
    step = fields.String(metadata={"enum": ["verification", "origin", "transform", "filter", "trigger"]})
    status = fields.String(metadata={"enum": ["passed", "failed", "skipped"]})
    message = fields.String()


class TestWebhookResponse(CamelSchema):
    success = fields.Boolean()
    processed_payload = fields.Dict()
    triggered_workflows = fields.List(fields.String())
    logs = fields.List(fields.Nested(WebhookLog))
    execution_ids = fields.List(fields.String())
    delivery_id = fields.String()


class ReplayRequest(CamelSchema):
    live = fields.Boolean(load_default=False)


@blp.errorhandler(service.WebhookRateLimited)
def _rate_limited(error):
    """The error envelope with Retry-After."""
    response, status = handle_atlas_error(error)
    response.headers["Retry-After"] = str(error.retry_after)
    return response, status


@limiter.request_filter
def _own_rate_limit() -> bool:
    """The receive endpoint is limited per webhook endpoint by the service, not per sender address by default."""
    view = current_app.view_functions.get(request.endpoint or "")
    return getattr(getattr(view, "view_class", view), "atlas_own_rate_limit", False)


@blp.route("/receive/<endpoint_id>")
@access(PUBLIC)
class WebhookReceive(MethodView):
    atlas_form_body = True  # read raw here: the signature is over the exact bytes
    atlas_own_rate_limit = True

    @blp.response(200, WebhookReceiveResponse)
    def post(self, endpoint_id):
        """Receive a delivery signed with the Standard Webhooks scheme (webhook-id, webhook-timestamp,
        webhook-signature); no token: the signature is the credential"""
        cap, length = current_app.config["ATLAS_WEBHOOK_MAX_BYTES"], request.content_length
        body = b"" if length is not None and length > cap else request.stream.read(cap + 1)
        return service.receive(endpoint_id, body, request.headers, request.remote_addr, length=length)


@blp.route("/<endpoint_id>/test")
class WebhookTest(MethodView):
    @blp.arguments(TestWebhookRequest)
    @blp.response(200, TestWebhookResponse)
    def post(self, body, endpoint_id):
        """Send a payload (and headers) through verification, origin, transform, filter and trigger; runs start in
        test mode"""
        g.audit_action, g.audit_target = "webhook.test", ("webhook", endpoint_id)
        return webhook_testing.test_delivery(g.organization.id, g.user.id, endpoint_id, body["payload"],
                                             body["headers"])


@blp.route("/deliveries/<delivery_id>/replay")
class DeliveryReplay(MethodView):
    @blp.arguments(ReplayRequest)
    @blp.response(201, WebhookDeliverySchema)
    def post(self, body, delivery_id):
        """Process a recorded delivery's body again as a new delivery: in test mode, or live"""
        g.audit_action, g.audit_target = "webhook.replay", ("webhook_delivery", delivery_id)
        return webhook_testing.replay(g.organization.id, g.user.id, delivery_id, live=body["live"])
