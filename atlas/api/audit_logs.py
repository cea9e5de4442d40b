"""/api/v2/audit-logs: who did what (admins and owners)."""
from datetime import datetime, timezone

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from atlas.api.context import ORG, access
from atlas.api.schemas import CamelSchema, PageQuery, PaginationSchema
from atlas.services import audit

blp = Blueprint("audit_logs", __name__, url_prefix="/api/v2/audit-logs", description="Audit log")


# Converting a time near year 1 or 9999 to UTC overflows; nothing is logged outside these years anyway.
MOMENT = validate.Range(min=datetime(1970, 1, 1, tzinfo=timezone.utc), max=datetime(9999, 1, 1, tzinfo=timezone.utc),
                        error="Use a time between 1970 and 9998.")


class AuditQuery(PageQuery):
    action = fields.String(validate=validate.Length(max=120))
    user_id = fields.String(validate=validate.Length(max=36))
    since = fields.AwareDateTime(default_timezone=None, validate=MOMENT)
    until = fields.AwareDateTime(default_timezone=None, validate=MOMENT)


class AuditEntry(CamelSchema):
    id = fields.String()
    organization_id = fields.String()
    user_id = fields.String(allow_none=True)
    action = fields.String()
    target_type = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    status_code = fields.Integer(allow_none=True)
    request_id = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    details = fields.Dict()
    created_at = fields.DateTime()


class AuditListResponse(CamelSchema):
    audit_logs = fields.List(fields.Nested(AuditEntry))
    pagination = fields.Nested(PaginationSchema)


@blp.route("")
@access(ORG, role="admin")
class AuditLogs(MethodView):
    @blp.arguments(AuditQuery, location="query")
    @blp.response(200, AuditListResponse)
    def get(self, query):
        """The organization's audit entries, newest first"""
        rows, pagination = audit.list_logs(g.organization.id, **query)
        return {"audit_logs": rows, "pagination": pagination}
