"""The gym's records: contacts and what describes them (tags, custom fields, lead sources, forms)."""
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from atlas.extensions import db
from atlas.models.base import OrgScoped, UTCDateTime, id_column, utcnow


class ContactStatus(StrEnum):
    """Where a person is in the gym's funnel."""

    LEAD = "lead"
    TRIAL = "trial"
    MEMBER = "member"
    FORMER_MEMBER = "former_member"
    LOST = "lost"


class Contact(OrgScoped, db.Model):
    """A lead or member of one organization."""

    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contact_org_created", "organization_id", "created_at"),
                      Index("ix_contact_org_email", "organization_id", "email"),
                      Index("ix_contact_org_phone", "organization_id", "phone"))

    id: Mapped[str] = id_column()
    first_name: Mapped[str] = mapped_column(String(80), default="")
    last_name: Mapped[str] = mapped_column(String(80), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=ContactStatus.LEAD)
    lead_source: Mapped[str | None] = mapped_column(String(64))
    owner_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("users.id", ondelete="SET NULL"))
    timezone: Mapped[str | None] = mapped_column(String(64))
    birthday: Mapped[date | None] = mapped_column(Date)
    email_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    custom_fields: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    tag_rows: Mapped[list["ContactTag"]] = relationship(
        cascade="all, delete-orphan", order_by="ContactTag.tag", lazy="selectin")

    @property
    def tags(self) -> list[str]:
        """The contact's tags, sorted."""
        return [row.tag for row in self.tag_rows]

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ContactTag(OrgScoped, db.Model):
    """One tag on one contact."""

    __tablename__ = "contact_tags"
    __table_args__ = (UniqueConstraint("contact_id", "tag", name="uq_contact_tag"),)

    id: Mapped[str] = id_column()
    contact_id: Mapped[str] = mapped_column(String(36), ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    tag: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomField(OrgScoped, db.Model):
    """A field the gym adds to its contacts (e.g. goal, injury notes); values live in Contact.custom_fields."""

    __tablename__ = "custom_fields"
    __table_args__ = (UniqueConstraint("organization_id", "key", name="uq_custom_field_key"),)

    id: Mapped[str] = id_column()
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(120))
    field_type: Mapped[str] = mapped_column(String(16), default="text")  # text | number | date | boolean | select
    options: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LeadSource(OrgScoped, db.Model):
    """Where leads come from (website, Instagram, walk-in, referral)."""

    __tablename__ = "lead_sources"
    __table_args__ = (UniqueConstraint("organization_id", "key", name="uq_lead_source_key"),)

    id: Mapped[str] = id_column()
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Form(OrgScoped, db.Model):
    """A form on the gym's website or kiosk (free trial, contact us)."""

    __tablename__ = "forms"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(120))
    fields: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FormSubmission(OrgScoped, db.Model):
    """One filled-in form."""

    __tablename__ = "form_submissions"

    id: Mapped[str] = id_column()
    form_id: Mapped[str] = mapped_column(String(36), ForeignKey("forms.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("contacts.id", ondelete="SET NULL"),
                                                   index=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


Index("uq_lead_source_name", LeadSource.organization_id, func.lower(LeadSource.name), unique=True)
