"""/api/v2: Contacts."""
from flask_smorest import Blueprint

blp = Blueprint(" the CRM's leads and members:contacts", __name__, url_prefix="/api/v2", description="Contacts")
