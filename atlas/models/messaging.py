"""What workflows send and leave for staff: message templates, the outbox, staff tasks and notifications."""
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from atlas.extensions import db
from atlas.models.base import OrgScoped, UTCDateTime, id_column, utcnow


class MessageTemplate(OrgScoped, db.Model):
    """A reusable email or SMS text (Jinja2, rendered in the sandbox)."""

    __tablename__ = "message_templates"

    id: Mapped[str] = id_column()
    channel: Mapped[str] = mapped_column(String(8))  # email | sms
    name: Mapped[str] = mapped_column(String(120))
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


Index("uq_message_template_name", MessageTemplate.organization_id, MessageTemplate.channel,
      func.lower(MessageTemplate.name), unique=True)


class MessageStatus(StrEnum):
    """Where a message in the outbox is. Nothing is marked sent unless a provider took it."""

    QUEUED = "queued"  # accepted, about to be handed to the provider
    SENT = "sent"  # the provider accepted it (provider_id set)
    NOT_SENT = "not_sent"  # no provider configured: it stays here for staff to see
    FAILED = "failed"  # the provider refused it, or every retry failed
    SUPPRESSED = "suppressed"  # the contact policy stopped it (opt-out, cap)
    MOCKED = "mocked"  # a test run recorded what it would have sent


class Message(OrgScoped, db.Model):
    """One email or SMS in the outbox."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("organization_id", "idempotency_key", name="uq_message_idempotency"),
                      Index("ix_message_contact_channel_created", "contact_id", "channel", "created_at"),
                      Index("ix_message_org_created", "organization_id", "created_at"))

    id: Mapped[str] = id_column()
    contact_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("contacts.id", ondelete="SET NULL"))
    execution_id: Mapped[str | None] = mapped_column(String(36), index=True)
    node_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))
    to_address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.QUEUED)
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[str | None] = mapped_column(String(120))
    error: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    test_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffTask(OrgScoped, db.Model):
    """A to-do for staff (call this lead back), usually created by a workflow."""

    __tablename__ = "staff_tasks"

    id: Mapped[str] = id_column()
    contact_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("contacts.id", ondelete="SET NULL"),
                                                   index=True)
    assignee_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("users.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | done
    execution_id: Mapped[str | None] = mapped_column(String(36))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffNotification(OrgScoped, db.Model):
    """A note for staff in the app (a lead replied, a payment failed); user_id None means every staff member."""

    __tablename__ = "staff_notifications"

    id: Mapped[str] = id_column()
    user_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"))
    contact_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("contacts.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text)
    execution_id: Mapped[str | None] = mapped_column(String(36))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
