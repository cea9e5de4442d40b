"""/api/v2: Events."""
from flask_smorest import Blueprint

blp = Blueprint(" what happened to contacts, reported by the CRM and other systems:events", __name__, url_prefix="/api/v2", description="Events")
