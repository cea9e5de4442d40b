"""Webhooks: signed endpoints other systems post to, every delivery they make, and the organization's signing secret.

Secrets are stored encrypted (atlas.services.secrets, Fernet with ATLAS_ENCRYPTION_KEY); the plain secret is shown
once, when it is created or rotated.
"""
from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from atlas.extensions import db
from atlas.models.base import OrgScoped, UTCDateTime, id_column, utcnow


class WebhookEndpoint(OrgScoped, db.Model):
    """An incoming webhook endpoint: POST /api/v2/webhooks/receive/<id>, signed with its secret."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(120))
    workflow_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("workflows.id", ondelete="SET NULL"),
                                                    index=True)
    allowed_origins: Mapped[list] = mapped_column(JSON, default=list)
    rate_limit: Mapped[int | None] = mapped_column(Integer)  # deliveries per minute; None = the default
    transform: Mapped[dict | None] = mapped_column(JSON)  # transformPayload
    filter_conditions: Mapped[list] = mapped_column(JSON, default=list)  # filterConditions
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)  # still valid until previous_secret_expires_at
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(36), ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookDelivery(OrgScoped, db.Model):
    """One request to an endpoint, whatever became of it: accepted (runs started), filtered, duplicate or rejected."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_delivery_endpoint_received", "endpoint_id", "received_at"),)

    id: Mapped[str] = id_column()
    endpoint_id: Mapped[str] = mapped_column(String(36), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    message_id: Mapped[str | None] = mapped_column(String(200))  # the webhook-id header
    outcome: Mapped[str] = mapped_column(String(16))  # accepted | filtered | duplicate | rejected
    reason: Mapped[str | None] = mapped_column(String(64))  # the error code of a rejection
    detail: Mapped[str | None] = mapped_column(Text)  # in words: why rejected or filtered
    headers: Mapped[dict] = mapped_column(JSON, default=dict)  # the headers that matter
    payload: Mapped[dict | list | None] = mapped_column(JSON)  # the body as received (verified deliveries only)
    processed_payload: Mapped[dict | None] = mapped_column(JSON)  # after transformPayload
    execution_ids: Mapped[list] = mapped_column(JSON, default=list)  # runs it started
    workflow_ids: Mapped[list] = mapped_column(JSON, default=list)  # the workflows they belong to
    test_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    replay_of: Mapped[str | None] = mapped_column(String(36))
    original_delivery_id: Mapped[str | None] = mapped_column(String(36))  # a duplicate's first delivery
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    processing_ms: Mapped[float] = mapped_column(Float, default=0.0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookMessage(db.Model):
    """A webhook-id accepted by an endpoint: the primary key makes a repeated id a duplicate, across processes."""

    __tablename__ = "webhook_messages"

    endpoint_id: Mapped[str] = mapped_column(String(36), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
                                             primary_key=True)
    message_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(36))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class OrganizationSecret(OrgScoped, db.Model):
    """A secret of the organization's own, such as the one that signs its outgoing webhooks (kind "webhook_signing")."""

    __tablename__ = "organization_secrets"
    __table_args__ = (Index("uq_organization_secret_kind", "organization_id", "kind", unique=True),)

    id: Mapped[str] = id_column()
    kind: Mapped[str] = mapped_column(String(32))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)  # also signs until previous_expires_at
    previous_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
