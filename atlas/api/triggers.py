"""/api/v2: Trigger definitions, a workflow's triggers, the enrollment decision log and trigger configuration."""
from flask_smorest import Blueprint

blp = Blueprint("triggers", __name__, url_prefix="/api/v2", description="Trigger definitions, a workflow's triggers, the enrollment decision log and trigger configuration")
