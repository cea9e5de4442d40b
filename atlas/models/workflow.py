"""Workflows, their tags and their immutable versions."""
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from atlas.extensions import db
from atlas.models.base import OrgScoped, UTCDateTime, id_column, utcnow


class WorkflowStatus(StrEnum):
    """Where a workflow is in its life."""

    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class Workflow(OrgScoped, db.Model):
    """A named automation owned by an organization; its definition lives in workflow_data."""

    __tablename__ = "workflows"
    __table_args__ = (Index("ix_workflow_org_status_created", "organization_id", "status", "created_at"),)

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=WorkflowStatus.DRAFT)
    workflow_data: Mapped[dict] = mapped_column(JSON, default=dict)
    trigger_type: Mapped[str] = mapped_column(String(64))
    trigger_config: Mapped[dict] = mapped_column(JSON, default=dict)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    template_id: Mapped[str | None] = mapped_column(String(36))
    usage_count: Mapped[int] = mapped_column(Integer, default=0)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(36), ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tag_rows: Mapped[list["WorkflowTag"]] = relationship(
        cascade="all, delete-orphan", order_by="WorkflowTag.tag", lazy="selectin")

    @property
    def tags(self) -> list[str]:
        """The workflow's tags, sorted."""
        return [row.tag for row in self.tag_rows]


# Names are unique, ignoring case, among an organization's workflows that are not archived.
Index("uq_workflow_live_name", Workflow.organization_id, func.lower(Workflow.name), unique=True,
      sqlite_where=text("status != 'archived'"), postgresql_where=text("status != 'archived'"))


class WorkflowTag(OrgScoped, db.Model):
    """One tag on one workflow; a table of its own so that tag filters work on every database."""

    __tablename__ = "workflow_tags"
    __table_args__ = (UniqueConstraint("workflow_id", "tag", name="uq_workflow_tag"),)

    id: Mapped[str] = id_column()
    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    tag: Mapped[str] = mapped_column(String(64), index=True)


class WorkflowVersion(OrgScoped, db.Model):
    """An immutable snapshot of a workflow's definition; executions run one version."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "version", name="uq_workflow_version"),)

    id: Mapped[str] = id_column()
    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    workflow_data: Mapped[dict] = mapped_column(JSON)
    trigger_type: Mapped[str] = mapped_column(String(64))
    trigger_config: Mapped[dict] = mapped_column(JSON)
    settings: Mapped[dict] = mapped_column(JSON)
    change_summary: Mapped[list | None] = mapped_column(JSON)  # what publishing it changed, in words (the builder)
    created_by: Mapped[str | None] = mapped_column(String(36), ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
