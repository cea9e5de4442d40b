"""What starts runs: recorded events, a workflow's extra triggers, scheduled fires and the enrollment decision log."""
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from atlas.extensions import db
from atlas.models.base import OrgScoped, UTCDateTime, id_column, utcnow


class Event(OrgScoped, db.Model):
    """Something that happened to a contact, reported by the CRM or another system (POST /api/v2/events)."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("organization_id", "idempotency_key", name="uq_event_idempotency"),
                      Index("ix_event_org_received", "organization_id", "received_at"))

    id: Mapped[str] = id_column()
    type: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("contacts.id", ondelete="SET NULL"),
                                                   index=True)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    source: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enrolled: Mapped[int] = mapped_column(default=0)


class WorkflowTrigger(OrgScoped, db.Model):
    """A further trigger of a workflow (the workflow's own triggerType/triggerConfig is its primary trigger)."""

    __tablename__ = "workflow_triggers"

    id: Mapped[str] = id_column()
    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    trigger_type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    schedule_type: Mapped[str] = mapped_column(String(16), default="immediate")  # immediate|scheduled|recurring|cron
    cron_expression: Mapped[str | None] = mapped_column(String(120))
    webhook_config: Mapped[dict | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(36), ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TriggerFire(OrgScoped, db.Model):
    """One occurrence of a scheduled or date-based trigger; the unique key makes it fire once across processes."""

    __tablename__ = "trigger_fires"
    __table_args__ = (UniqueConstraint("workflow_id", "trigger_key", "occurrence", name="uq_trigger_fire"),)

    id: Mapped[str] = id_column()
    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    trigger_key: Mapped[str] = mapped_column(String(64))  # "primary" or a WorkflowTrigger id
    occurrence: Mapped[str] = mapped_column(String(120))  # e.g. 2026-11-26T09:00 or 2026-11-26:<contact id>
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    execution_id: Mapped[str | None] = mapped_column(String(36))


class EnrollmentDecision(OrgScoped, db.Model):
    """One evaluation of an event against one workflow's trigger, matched or not, and why."""

    __tablename__ = "enrollment_decisions"
    __table_args__ = (Index("ix_decision_workflow_contact", "workflow_id", "contact_id", "created_at"),
                      Index("ix_decision_org_created", "organization_id", "created_at"))

    id: Mapped[str] = id_column()
    workflow_id: Mapped[str] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="CASCADE"))
    contact_id: Mapped[str | None] = mapped_column(String(36), index=True)
    event_id: Mapped[str | None] = mapped_column(String(36), index=True)  # a repeated event answers from these
    event_type: Mapped[str] = mapped_column(String(64))
    trigger_key: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    execution_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
