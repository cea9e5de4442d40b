"""Persistence: one module per aggregate, all imported here so Alembic sees every table."""
from atlas.models.accounts import Membership, Organization, Role, User
from atlas.models.audit import AuditLog
from atlas.models.workflow import Workflow, WorkflowStatus, WorkflowTag, WorkflowVersion

__all__ = ["AuditLog", "Membership", "Organization", "Role", "User", "Workflow", "WorkflowStatus",
           "WorkflowTag", "WorkflowVersion"]
