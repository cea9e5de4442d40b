"""The organization's own webhook signing secret: it signs every outgoing webhook (POST /api/v2/webhooks/send and
the http_request step with `sign`), stored encrypted (OrganizationSecret, kind "webhook_signing"), made on first use.

After a rotation the previous secret signs too, until its grace period ends: each webhook then carries two
signatures (Standard Webhooks allows several), so a receiver still holding the old secret keeps verifying while it
switches to the new one.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy.exc import IntegrityError

from atlas.core import signing
from atlas.extensions import db
from atlas.models import OrganizationSecret
from atlas.services import secrets
from atlas.services.tenancy import scoped

KIND = "webhook_signing"


def signing_secret(org_id: str) -> str:
    """The organization's outgoing signing secret ("whsec_…"), created on first use."""
    return secrets.decrypt(_row(org_id).secret_encrypted)


def signing_keys(org_id: str) -> list[str]:
    """The secrets that sign a webhook now: the current one, then the previous one while its grace lasts."""
    row = _row(org_id)
    previous = [secrets.decrypt(row.previous_secret_encrypted)] if _in_grace(row) else []
    return [secrets.decrypt(row.secret_encrypted), *previous]


def secret_info(org_id: str) -> dict:
    """The secret with when it was made (and until when the previous one still signs), for GET /signing-secret."""
    row = _row(org_id)
    return {"secret": secrets.decrypt(row.secret_encrypted), "created_at": row.created_at,
            "previous_secret_expires_at": row.previous_expires_at if _in_grace(row) else None}


def rotate_signing_secret(org_id: str, grace_seconds: int | None = None) -> str:
    """Make a new secret; the one it replaces also signs for `grace_seconds` (ATLAS_WEBHOOK_SECRET_GRACE_SECONDS by
    default; 0 ends it at once). Returns the new plain secret."""
    row = _row(org_id)
    grace = current_app.config["ATLAS_WEBHOOK_SECRET_GRACE_SECONDS"] if grace_seconds is None else grace_seconds
    now, plain = datetime.now(timezone.utc), signing.new_secret()
    row.previous_secret_encrypted = row.secret_encrypted if grace > 0 else None
    row.previous_expires_at = now + timedelta(seconds=grace) if grace > 0 else None
    row.secret_encrypted, row.created_at = secrets.encrypt(plain), now
    db.session.commit()
    return plain


def _in_grace(row: OrganizationSecret) -> bool:
    """Whether the previous secret still signs."""
    return bool(row.previous_secret_encrypted and row.previous_expires_at
                and row.previous_expires_at > datetime.now(timezone.utc))


def _row(org_id: str) -> OrganizationSecret:
    """The organization's signing-secret row, made on first use (a concurrent first use cannot make two)."""
    return _secret_row(org_id) or _create_secret_row(org_id)


def _secret_row(org_id: str) -> OrganizationSecret | None:
    """The organization's signing-secret row, if it has one yet."""
    return db.session.scalar(scoped(OrganizationSecret, org_id).where(OrganizationSecret.kind == KIND))


def _create_secret_row(org_id: str) -> OrganizationSecret:
    """Insert the secret in a savepoint; when a concurrent first use won (the unique index), take its row."""
    row = OrganizationSecret(organization_id=org_id, kind=KIND, secret_encrypted=secrets.encrypt(signing.new_secret()))
    try:
        with db.session.begin_nested():
            db.session.add(row)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        row = _secret_row(org_id)
    return row
