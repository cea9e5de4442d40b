"""Persistence: one module per aggregate, all imported here so Alembic sees every table."""
from atlas.models.accounts import Membership, Organization, Role, User
from atlas.models.audit import AuditLog
from atlas.models.execution import TERMINAL, Execution, ExecutionStatus, ExecutionStep
from atlas.models.workflow import Workflow, WorkflowStatus, WorkflowTag, WorkflowVersion

__all__ = ["TERMINAL", "AuditLog", "Execution", "ExecutionStatus", "ExecutionStep", "Membership", "Organization", "Role", "User", "Workflow", "WorkflowStatus",
           "WorkflowTag", "WorkflowVersion"]
