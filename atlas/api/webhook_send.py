"""/api/v2/webhooks/send: an outgoing webhook, signed with the organization's secret, retried, SSRF-guarded."""
from flask_smorest import Blueprint

blp = Blueprint("webhook_send", __name__, url_prefix="/api/v2/webhooks",
                description="Sending webhooks: signed outgoing requests")
