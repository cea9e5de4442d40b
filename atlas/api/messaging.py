"""/api/v2: Message templates, the outbox, action configuration and inbound SMS."""
from flask_smorest import Blueprint

blp = Blueprint("messaging", __name__, url_prefix="/api/v2", description="Message templates, the outbox, action configuration and inbound SMS")
