"""Effect handlers for the CRM steps: tasks, owners, tags, fields and lead status of the run's contact.

Changes go through atlas.services.contacts (source="workflow"), which commits and reports tag_added, status_changed
and the rest as internal events. In mock mode a handler says what it would do and changes nothing.
"""
from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from atlas.core.steps.base import StepError
from atlas.errors import AtlasError
from atlas.extensions import db, redis_holder
from atlas.models import Contact, Membership, Role, StaffTask
from atlas.services import contacts, effects
from atlas.services.effects import EffectContext
from atlas.services.tenancy import scoped

SOURCE = "workflow"
OWNER_ROLES = (Role.OWNER, Role.ADMIN, Role.STAFF)  # who can own contacts and take tasks; viewers cannot


def contact_action(fn):
    """A handler that needs the run's contact; CRM refusals become permanent StepErrors, a busy database retryable."""

    @functools.wraps(fn)
    def run(ctx: EffectContext, params: dict) -> dict:
        if not ctx.contact_id:
            raise StepError("This run has no contact, so there is no one to act on.", code="NO_CONTACT")
        try:
            return fn(ctx, params)
        except AtlasError as exc:  # CONTACT_NOT_FOUND, INVALID_EMAIL, INVALID_OWNER, ...
            db.session.rollback()
            raise StepError(exc.message, code=exc.code) from exc
        except OperationalError as exc:
            db.session.rollback()
            raise StepError(f"The database was busy: {exc.orig}", code="DATABASE_BUSY", retryable=True) from exc

    return run


def _contact(ctx: EffectContext) -> Contact | None:
    """The run's contact; in mock mode a sample contact that is not in the CRM is fine (None)."""
    if ctx.mock:
        return db.session.scalar(scoped(Contact, ctx.org_id).where(Contact.id == ctx.contact_id))
    return contacts.get_contact(ctx.org_id, ctx.contact_id)


# --- tags --------------------------------------------------------------------------------------------------------

@effects.handler("add_tag")
@contact_action
def add_tag(ctx: EffectContext, params: dict) -> dict:
    """Tag the contact; `changed` is false when the tag was already there."""
    tag = params["tag"]
    if ctx.mock:
        return {"tag": tag, "changed": False, "mock": True}
    added = contacts.add_tags(ctx.org_id, ctx.contact_id, [tag], source=SOURCE, depth=ctx.depth)
    return {"tag": tag, "changed": bool(added)}


@effects.handler("remove_tag")
@contact_action
def remove_tag(ctx: EffectContext, params: dict) -> dict:
    """Untag the contact; `changed` is false when it did not have the tag."""
    tag = params["tag"]
    if ctx.mock:
        return {"tag": tag, "changed": False, "mock": True}
    removed = contacts.remove_tags(ctx.org_id, ctx.contact_id, [tag], source=SOURCE, depth=ctx.depth)
    return {"tag": tag, "changed": bool(removed)}


# --- fields and status -------------------------------------------------------------------------------------------

@effects.handler("update_contact_field")
@contact_action
def update_contact_field(ctx: EffectContext, params: dict) -> dict:
    """Set one standard or custom.<key> field."""
    field, value = params["field"], params["value"]
    if ctx.mock:
        return {"field": field, "value": value, "changed": False, "mock": True}
    return _set(ctx, field, value)


@effects.handler("change_lead_status")
@contact_action
def change_lead_status(ctx: EffectContext, params: dict) -> dict:
    """Move the contact to another status (status_changed is reported when it really changed)."""
    if ctx.mock:
        return {"status": params["status"], "changed": False, "mock": True}
    result = _set(ctx, "status", params["status"])
    return {"status": result["value"], "previous": result["previous"], "changed": result["changed"]}


def _set(ctx: EffectContext, field: str, value) -> dict:
    previous = _current(_contact(ctx), field)
    changed = contacts.set_fields(ctx.org_id, ctx.contact_id, {field: value}, source=SOURCE, depth=ctx.depth)
    return {"field": field, "value": changed[field]["to"] if field in changed else previous,
            "previous": previous, "changed": field in changed}


def _current(contact: Contact, field: str):
    if field.startswith("custom."):
        return (contact.custom_fields or {}).get(field.removeprefix("custom."))
    value = getattr(contact, field)
    return value.isoformat() if hasattr(value, "isoformat") else value


# --- owners ------------------------------------------------------------------------------------------------------

@effects.handler("assign_owner")
@contact_action
def assign_owner(ctx: EffectContext, params: dict) -> dict:
    """Make a user (or the next staff member in turn) the contact's owner."""
    contact = _contact(ctx)
    method = "round_robin" if params["user_id"] == "round_robin" else "user"
    owner_id = next_in_turn(ctx.org_id, advance=not ctx.mock) if method == "round_robin" \
        else _member(ctx.org_id, params["user_id"])
    out = {"ownerId": owner_id, "previousOwnerId": contact.owner_id if contact else None, "method": method}
    if ctx.mock:
        return {**out, "mock": True}
    contacts.set_fields(ctx.org_id, ctx.contact_id, {"owner_id": owner_id}, source=SOURCE, depth=ctx.depth)
    return out


def staff_ids(org_id: str) -> list[str]:
    """The organization's users who can own contacts, in a stable order (when they joined, then id)."""
    return list(db.session.scalars(select(Membership.user_id).where(
        Membership.organization_id == org_id, Membership.role.in_([r.value for r in OWNER_ROLES]))
        .order_by(Membership.created_at, Membership.user_id)))


def next_in_turn(org_id: str, *, advance: bool = True) -> str:
    """The next staff member in the round robin; the turn is an atomic Redis counter per organization."""
    staff = staff_ids(org_id)
    if not staff:
        raise StepError("The organization has no staff to assign in turn.", code="NO_STAFF")
    key = f"atlas:round-robin:{org_id}"
    turn = redis_holder.client.incr(key) if advance else int(redis_holder.client.get(key) or 0) + 1
    return staff[(turn - 1) % len(staff)]


def _member(org_id: str, user_id: str) -> str:
    """A user id that names a staff member (or admin, owner) of the organization; OWNER_NOT_FOUND otherwise."""
    found = db.session.scalar(select(Membership.user_id).where(
        Membership.organization_id == org_id, Membership.user_id == str(user_id),
        Membership.role.in_([r.value for r in OWNER_ROLES])))
    if found is None:
        raise StepError(f"No staff member of this organization has the id {user_id!r}.", code="OWNER_NOT_FOUND")
    return found


# --- tasks -------------------------------------------------------------------------------------------------------

@effects.handler("create_task")
@contact_action
def create_task(ctx: EffectContext, params: dict) -> dict:
    """A staff task about the contact; the same idempotency key never makes a second task."""
    contact = _contact(ctx)
    wanted = params.get("assignee") or "owner"
    assignee = (contact.owner_id if contact else None) if wanted == "owner" else _member(ctx.org_id, wanted)
    out = {"title": params["title"], "assigneeId": assignee, "dueAt": params.get("due_at")}
    if ctx.mock:
        return {**out, "taskId": None, "created": False, "mock": True}
    task, created = _task(ctx, params, assignee)
    return {**out, "taskId": task.id, "assigneeId": task.assignee_id, "created": created}


def _task(ctx: EffectContext, params: dict, assignee: str | None) -> tuple[StaffTask, bool]:
    key = params.get("idempotency_key") or None
    if key:
        earlier = _task_with_key(ctx.org_id, key)
        if earlier is not None:
            return earlier, False
    due = datetime.fromisoformat(params["due_at"]) if params.get("due_at") else None
    task = StaffTask(organization_id=ctx.org_id, contact_id=ctx.contact_id, assignee_id=assignee,
                     title=params["title"], description=params.get("description"), due_at=due,
                     execution_id=ctx.execution_id, idempotency_key=key)
    db.session.add(task)
    try:
        db.session.commit()
    except IntegrityError:  # the same key, committed by a concurrent attempt
        db.session.rollback()
        earlier = _task_with_key(ctx.org_id, key) if key else None
        if earlier is None:
            raise
        return earlier, False
    return task, True


def _task_with_key(org_id: str, key: str) -> StaffTask | None:
    return db.session.scalar(scoped(StaffTask, org_id).where(StaffTask.idempotency_key == key))

