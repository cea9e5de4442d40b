"""/api/v2/events: what happened to contacts, reported by the CRM and other systems."""
from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from atlas.api import crm_schemas as s
from atlas.errors import ValidationFailed
from atlas.services import events as service

blp = Blueprint("events", __name__, url_prefix="/api/v2/events",
                description="Events: what happened to contacts, reported by the CRM and other systems")


def _idempotency_key(body: dict) -> str | None:
    """The body's idempotencyKey, else the Idempotency-Key header; both must agree when both are sent."""
    header = request.headers.get("Idempotency-Key")
    if header is not None and not 1 <= len(header.strip()) <= 200:
        raise ValidationFailed("Idempotency-Key must be 1 to 200 characters.",
                               validation=[{"field": "Idempotency-Key", "message": "1 to 200 characters"}])
    key, header = body.get("idempotency_key"), header.strip() if header else None
    if key and header and key != header:
        raise ValidationFailed("The Idempotency-Key header and idempotencyKey differ; send one of them.",
                               code="IDEMPOTENCY_KEY_MISMATCH",
                               validation=[{"field": "idempotencyKey", "message": "differs from the header"}])
    return key or header


@blp.route("")
class Events(MethodView):
    @blp.arguments(s.EventRequest)
    @blp.response(202, s.EventResponse)
    def post(self, body):
        """Report an event: it updates the CRM, enrolls the contact in matching workflows and resumes waiting runs"""
        g.audit_action = "event.record"
        result = service.record_event(
            g.organization.id, body["type"], contact_id=body.get("contact_id"), contact=body.get("contact"),
            payload=body["data"], source=body.get("source") or "api", occurred_at=body.get("occurred_at"),
            idempotency_key=_idempotency_key(body))
        g.audit_target = ("event", result["event"].id)
        return {"event_id": result["event"].id, "contact_id": result["event"].contact_id,
                "duplicate": result["duplicate"], "enrollments": result["decisions"],
                "resumed_executions": result["resumed"]}
