"""The builder's draft of a workflow, kept apart from what is live, and its undo history."""
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from atlas.extensions import db
from atlas.models.base import OrgScoped, UTCDateTime, id_column, utcnow


class WorkflowDraft(OrgScoped, db.Model):
    """What the builder shows and edits; publishing copies it onto the workflow (a new version when live).

    revision goes up by one on every change (save, undo, redo, restore) and is the token of optimistic
    concurrency; position is the history revision whose snapshot the draft shows (it moves back on undo).
    """

    __tablename__ = "workflow_drafts"

    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"),
                                             primary_key=True)
    definition: Mapped[dict] = mapped_column(JSON)
    trigger_type: Mapped[str] = mapped_column(String(64))
    trigger_config: Mapped[dict] = mapped_column(JSON, default=dict)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer, default=0)
    updated_by: Mapped[str | None] = mapped_column(String(36), ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkflowDraftRevision(OrgScoped, db.Model):
    """One entry of a draft's history: the whole draft after a change, and what the change was."""

    __tablename__ = "workflow_draft_revisions"
    __table_args__ = (UniqueConstraint("workflow_id", "revision", name="uq_workflow_draft_revision"),)

    id: Mapped[str] = id_column()
    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict] = mapped_column(JSON)
    trigger_type: Mapped[str] = mapped_column(String(64))
    trigger_config: Mapped[dict] = mapped_column(JSON, default=dict)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    summary: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(36), ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
