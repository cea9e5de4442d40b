"""Contacts: the CRM's leads and members, and the shape runs see them in (the `contact` root of templates)."""
from __future__ import annotations

from atlas.extensions import db
from atlas.models import Contact


def contact_data(contact: Contact) -> dict:
    """What conditions and templates read as `contact`: every field, tags and custom fields."""
    return {"id": contact.id, "first_name": contact.first_name, "last_name": contact.last_name,
            "name": contact.name, "email": contact.email, "phone": contact.phone, "status": contact.status,
            "lead_source": contact.lead_source, "owner_id": contact.owner_id, "timezone": contact.timezone,
            "birthday": contact.birthday.isoformat() if contact.birthday else None,
            "email_opt_out": contact.email_opt_out, "sms_opt_out": contact.sms_opt_out, "tags": contact.tags,
            "custom": dict(contact.custom_fields or {}), "created_at": contact.created_at.isoformat()}


def current_data(org_id: str, contact_id: str | None, fallback: dict) -> dict:
    """The contact as it is now, for a run about to advance; the run's snapshot if it is not a CRM contact."""
    if not contact_id:
        return fallback
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.organization_id != org_id:
        return fallback
    return contact_data(contact)
