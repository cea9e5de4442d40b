"""What happens at the gym: class sessions and bookings, memberships (plans) and payments."""
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from atlas.extensions import db
from atlas.models.base import OrgScoped, UTCDateTime, id_column, utcnow


class BookingStatus(StrEnum):
    BOOKED = "booked"
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class ClassSession(OrgScoped, db.Model):
    """One scheduled class (Monday 7:00 HIIT with Sam)."""

    __tablename__ = "class_sessions"
    __table_args__ = (Index("ix_class_session_org_starts", "organization_id", "starts_at"),)

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(120))
    coach: Mapped[str | None] = mapped_column(String(120))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    capacity: Mapped[int | None] = mapped_column(Integer)


class Booking(OrgScoped, db.Model):
    """A contact's place in a class session."""

    __tablename__ = "bookings"

    id: Mapped[str] = id_column()
    class_session_id: Mapped[str] = mapped_column(String(36), ForeignKey("class_sessions.id", ondelete="CASCADE"),
                                                  index=True)
    contact_id: Mapped[str] = mapped_column(String(36), ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=BookingStatus.BOOKED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PlanStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class ContactMembership(OrgScoped, db.Model):
    """A contact's gym membership (plan, status, dates); not to be confused with a user's Membership of an org."""

    __tablename__ = "contact_memberships"
    __table_args__ = (Index("ix_contact_membership_org_expires", "organization_id", "expires_on"),)

    id: Mapped[str] = id_column()
    contact_id: Mapped[str] = mapped_column(String(36), ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    plan: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default=PlanStatus.ACTIVE)
    started_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Payment(OrgScoped, db.Model):
    """A charge to a contact, succeeded or failed."""

    __tablename__ = "payments"

    id: Mapped[str] = id_column()
    contact_id: Mapped[str] = mapped_column(String(36), ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    status: Mapped[str] = mapped_column(String(16))  # succeeded | failed
    description: Mapped[str | None] = mapped_column(String(200))
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
