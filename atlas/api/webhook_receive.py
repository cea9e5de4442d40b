"""/api/v2/webhooks/receive/{endpointId} (signed, no token) and /api/v2/webhooks/{endpointId}/test."""
from flask_smorest import Blueprint

blp = Blueprint("webhook_receive", __name__, url_prefix="/api/v2/webhooks",
                description="Receiving webhooks: the signed endpoint and its test")
