"""The audit log: record and read."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from atlas.extensions import db
from atlas.models import AuditLog
from atlas.services.pagination import paginate


def record(action: str, *, organization_id=None, user_id=None, target_type=None, target_id=None,
           status_code=None, request_id=None, ip=None, details=None) -> None:
    """Write one audit entry in its own short transaction."""
    db.session.add(AuditLog(action=action, organization_id=organization_id, user_id=user_id,
                            target_type=target_type, target_id=target_id, status_code=status_code,
                            request_id=request_id, ip=(ip or "")[:64] or None, details=details or {}))
    db.session.commit()


def list_logs(org_id: str, *, action: str | None = None, user_id: str | None = None,
              since: datetime | None = None, until: datetime | None = None, page=1, limit=50):
    """The organization's audit entries, newest first."""
    query = select(AuditLog).where(AuditLog.organization_id == org_id)
    if action:
        query = query.where(AuditLog.action == action)
    if user_id:
        query = query.where(AuditLog.user_id == user_id)
    if since:
        query = query.where(AuditLog.created_at >= since)
    if until:
        query = query.where(AuditLog.created_at < until)
    return paginate(query.order_by(AuditLog.created_at.desc(), AuditLog.id), page, limit)
