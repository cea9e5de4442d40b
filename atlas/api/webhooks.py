"""/api/v2/webhooks: incoming webhook endpoints, their statistics, secrets and deliveries."""
from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from atlas.api import webhook_schemas as s
from atlas.services import webhooks as service

blp = Blueprint("webhooks", __name__, url_prefix="/api/v2/webhooks",
                description="Webhook endpoints: signed URLs other systems post to, and their deliveries")


def _audit(action: str, endpoint_id: str) -> None:
    """Name the audit entry; call it once the id is known to be a row's (a failure logs the URL's id, cut short)."""
    g.audit_action, g.audit_target = action, ("webhook", endpoint_id)


@blp.route("")
class Webhooks(MethodView):
    @blp.response(200, s.WebhookListResponse)
    def get(self):
        """The organization's webhook endpoints, each with its statistics, and the organization's statistics"""
        return service.endpoint_views(g.organization.id)

    @blp.arguments(s.CreateWebhookRequest)
    @blp.response(201, s.CreateWebhookResponse)
    def post(self, body):
        """Create an endpoint: the answer holds its secret, shown only here, and ready-to-run signed examples"""
        endpoint, secret = service.create_endpoint(g.organization.id, g.user.id, body)
        _audit("webhook.create", endpoint.id)
        return {"webhook": service.one_view(g.organization.id, endpoint),
                "endpoint_url": service.endpoint_url(endpoint), "secret_key": secret,
                "test_instructions": service.test_instructions(endpoint, secret)}


@blp.route("/<endpoint_id>")
class WebhookById(MethodView):
    @blp.response(200, s.WorkflowWebhook)
    def get(self, endpoint_id):
        """One endpoint with its statistics (never its secret)"""
        return service.one_view(g.organization.id, service.get_endpoint(g.organization.id, endpoint_id))

    @blp.arguments(s.UpdateWebhookRequest)
    @blp.response(200, s.WorkflowWebhook)
    def patch(self, body, endpoint_id):
        """Change an endpoint: only the fields sent change"""
        g.audit_action = "webhook.update"
        endpoint = service.update_endpoint(g.organization.id, endpoint_id, body)
        _audit("webhook.update", endpoint.id)
        return service.one_view(g.organization.id, endpoint)

    @blp.arguments(s.CreateWebhookRequest)
    @blp.response(200, s.WorkflowWebhook)
    def put(self, body, endpoint_id):
        """Replace an endpoint's settings: fields not sent return to their defaults (the secret is kept)"""
        g.audit_action = "webhook.update"
        endpoint = service.update_endpoint(g.organization.id, endpoint_id, {**service.DEFAULTS, **body})
        _audit("webhook.update", endpoint.id)
        return service.one_view(g.organization.id, endpoint)

    @blp.response(204)
    def delete(self, endpoint_id):
        """Delete an endpoint and its delivery log; deliveries to it are refused from now on"""
        g.audit_action = "webhook.delete"
        service.delete_endpoint(g.organization.id, endpoint_id)
        _audit("webhook.delete", endpoint_id)


@blp.route("/<endpoint_id>/rotate-secret")
class RotateSecret(MethodView):
    @blp.arguments(s.RotateSecretRequest)
    @blp.response(200, s.RotateSecretResponse)
    def post(self, body, endpoint_id):
        """A new secret, shown only here; the old one keeps verifying until previousSecretExpiresAt"""
        g.audit_action = "webhook.rotate_secret"
        endpoint, secret = service.rotate_secret(g.organization.id, endpoint_id, body.get("grace_period_seconds"))
        _audit("webhook.rotate_secret", endpoint.id)
        return {"webhook": service.one_view(g.organization.id, endpoint), "secret_key": secret,
                "previous_secret_expires_at": service.previous_secret_expires_at(endpoint),
                "test_instructions": service.test_instructions(endpoint, secret)}


@blp.route("/<endpoint_id>/deliveries")
class Deliveries(MethodView):
    @blp.arguments(s.DeliveryQuery, location="query")
    @blp.response(200, s.DeliveryListResponse)
    def get(self, query, endpoint_id):
        """An endpoint's deliveries, newest first, optionally of one outcome"""
        rows, pagination = service.deliveries_page(g.organization.id, endpoint_id, **query)
        return {"deliveries": rows, "pagination": pagination}


@blp.route("/deliveries/<delivery_id>")
class DeliveryById(MethodView):
    @blp.response(200, s.WebhookDeliverySchema)
    def get(self, delivery_id):
        """One delivery: headers, payload as received and processed, outcome and the runs it started"""
        return service.get_delivery(g.organization.id, delivery_id)
