"""Executions (one run of one workflow version) and their steps (one attempt of one node each)."""
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from atlas.extensions import db
from atlas.models.base import OrgScoped, UTCDateTime, id_column, utcnow


class ExecutionStatus(StrEnum):
    """Where a run is. The database is the source of truth; Redis only delivers work."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})


class Execution(OrgScoped, db.Model):
    """One run of one version of a workflow, with the state it resumes from."""

    __tablename__ = "executions"
    __table_args__ = (
        UniqueConstraint("organization_id", "idempotency_key", name="uq_execution_idempotency"),
        Index("ix_execution_workflow_created", "workflow_id", "created_at"),
        Index("ix_execution_status_resume", "status", "resume_at"),
    )

    id: Mapped[str] = id_column()
    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # A test run of a draft keeps the definition it ran; published versions are read from workflow_versions.
    definition: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=ExecutionStatus.QUEUED)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    test_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_id: Mapped[str | None] = mapped_column(String(64), index=True)
    contact: Mapped[dict] = mapped_column(JSON, default=dict)
    trigger_data: Mapped[dict] = mapped_column(JSON, default=dict)
    input_data: Mapped[dict] = mapped_column(JSON, default=dict)
    context: Mapped[dict] = mapped_column(JSON, default=dict)
    state: Mapped[dict] = mapped_column(JSON, default=dict)
    current_node: Mapped[str | None] = mapped_column(String(64))
    resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wait_event: Mapped[str | None] = mapped_column(String(64))
    correlation_key: Mapped[str | None] = mapped_column(String(160), index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(String(120))
    job_id: Mapped[str | None] = mapped_column(String(80))
    enqueue_count: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    failed_node: Mapped[str | None] = mapped_column(String(64))
    logs: Mapped[list] = mapped_column(JSON, default=list)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str | None] = mapped_column(String(36))


class ExecutionStep(OrgScoped, db.Model):
    """One attempt of one node: its input, output, outcome and timing."""

    __tablename__ = "execution_steps"
    __table_args__ = (UniqueConstraint("execution_id", "node_id", "attempt", name="uq_execution_step_attempt"),)

    id: Mapped[str] = id_column()
    execution_id: Mapped[str] = mapped_column(String(36), ForeignKey("executions.id", ondelete="CASCADE"),
                                              index=True)
    node_id: Mapped[str] = mapped_column(String(64))
    step_type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16))
    input: Mapped[dict] = mapped_column(JSON, default=dict)
    output: Mapped[dict | None] = mapped_column(JSON)
    branch: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float] = mapped_column(Float)
