"""What the builder's selects offer: one organization's templates, tags, forms, lead sources, fields, staff and
workflows."""
from __future__ import annotations

from sqlalchemy import func

from atlas.extensions import db
from atlas.models import (
    ContactTag,
    CustomField,
    Form,
    LeadSource,
    Membership,
    MessageTemplate,
    User,
    Workflow,
    WorkflowStatus,
)
from atlas.services.tenancy import scoped


def options_for(org_id: str) -> dict:
    """Every list the side panel's pickers need, each sorted by name; seven small queries, all org-scoped."""
    templates = db.session.scalars(scoped(MessageTemplate, org_id).order_by(func.lower(MessageTemplate.name))).all()
    return {"email_templates": [_named(t) for t in templates if t.channel == "email"],
            "sms_templates": [_named(t) for t in templates if t.channel == "sms"],
            "tags": _tags(org_id), "forms": [_named(f) for f in _by_name(Form, org_id)],
            "lead_sources": [{"key": s.key, "name": s.name} for s in _by_name(LeadSource, org_id)],
            "custom_fields": [{"key": f.key, "label": f.label, "field_type": f.field_type, "options": f.options}
                              for f in _by_name(CustomField, org_id, CustomField.label)],
            "staff": _staff(org_id), "workflows": _workflows(org_id)}


def _named(row) -> dict:
    return {"id": row.id, "name": row.name}


def _by_name(model, org_id: str, column=None) -> list:
    """The organization's rows of model, ordered by name (case-insensitive)."""
    column = column if column is not None else model.name
    return db.session.scalars(scoped(model, org_id).order_by(func.lower(column), model.id)).all()


def _tags(org_id: str) -> list[str]:
    """The tags on the organization's contacts, most used first."""
    rows = db.session.execute(scoped(ContactTag, org_id).with_only_columns(ContactTag.tag)
                              .group_by(ContactTag.tag).order_by(func.count().desc(), ContactTag.tag)).all()
    return [tag for (tag,) in rows]


def _staff(org_id: str) -> list[dict]:
    """The organization's members, by name."""
    rows = db.session.execute(scoped(Membership, org_id)
                              .with_only_columns(User.id, User.name, User.email, Membership.role)
                              .join(User, Membership.user_id == User.id)
                              .order_by(func.lower(User.name), User.email)).all()
    return [{"id": uid, "name": name, "email": email, "role": role} for uid, name, email, role in rows]


def _workflows(org_id: str) -> list[dict]:
    """The organization's active workflows (the ones a run_workflow step can start)."""
    rows = db.session.execute(scoped(Workflow, org_id).with_only_columns(Workflow.id, Workflow.name)
                              .where(Workflow.status == WorkflowStatus.ACTIVE)
                              .order_by(func.lower(Workflow.name), Workflow.id)).all()  # columns: no tag rows
    return [{"id": wid, "name": name} for wid, name in rows]
