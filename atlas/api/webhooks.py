"""/api/v2/webhooks: incoming webhook endpoints, their statistics, secrets and deliveries."""
from flask_smorest import Blueprint

blp = Blueprint("webhooks", __name__, url_prefix="/api/v2/webhooks",
                description="Webhook endpoints: signed URLs other systems post to, and their deliveries")
