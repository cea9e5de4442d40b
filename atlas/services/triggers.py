"""Trigger use-cases: the catalog, a workflow's triggers (its primary one and extra rows), trigger config options.

A workflow's primary trigger is its own triggerType/triggerConfig (part of its versions, changed with PUT
/api/v2/workflows/{id}); extra triggers are WorkflowTrigger rows managed here, not versioned, in force at once.
"""
from __future__ import annotations

from sqlalchemy import func, select

from atlas.core import schedule as timetable
from atlas.core import triggers as catalog
from atlas.errors import Conflict, NotFound, ValidationFailed
from atlas.extensions import db
from atlas.models import (
    ContactTag,
    CustomField,
    Form,
    LeadSource,
    Organization,
    TriggerFire,
    WebhookEndpoint,
    Workflow,
    WorkflowStatus,
    WorkflowTrigger,
)
from atlas.models.base import utcnow
from atlas.services import decisions, webhooks
from atlas.services.tenancy import get_scoped, scoped
from atlas.services.workflows import get_workflow

PRIMARY = "primary"
CRON_TYPES = ("recurring", "cron")


class TriggerNotFound(NotFound):
    code, message = "TRIGGER_NOT_FOUND", "Trigger not found."


class UnknownTriggerType(ValidationFailed):
    code = "UNKNOWN_TRIGGER_TYPE"


class InvalidTriggerConfig(ValidationFailed):
    code = "INVALID_TRIGGER_CONFIG"


class InvalidCron(ValidationFailed):
    code = "INVALID_CRON_EXPRESSION"


def definitions() -> dict:
    """The catalog as GET /api/v2/triggers/definitions serves it."""
    return {"triggers": [t.describe() for t in catalog.all_types()], "categories": catalog.categories(),
            "custom_triggers": []}


def names() -> dict[str, str]:
    """Trigger type -> its name, for pages that show a workflow's trigger."""
    return {t.key: t.name for t in catalog.all_types()}


def grouped() -> list[tuple[str, list]]:
    """The catalog by category name, for a picker: [(category, [trigger type, ...]), ...]."""
    return [(c["name"], [t for t in catalog.all_types() if t.category == c["key"]]) for c in catalog.categories()
            if c["count"]]


# --- a workflow's triggers ----------------------------------------------------------------------------------------

def workflow_triggers(org_id: str, workflow_id: str) -> dict:
    """The primary trigger first, then the extra ones; the cron-driven ones with their next and last run."""
    workflow = get_workflow(org_id, workflow_id)
    rows = db.session.scalars(scoped(WorkflowTrigger, org_id).where(WorkflowTrigger.workflow_id == workflow.id)
                              .order_by(WorkflowTrigger.created_at, WorkflowTrigger.id)).all()
    listed = [primary_view(workflow), *(row_view(row) for row in rows)]
    return {"triggers": listed, "webhook_endpoints": _webhook_endpoints(org_id, workflow, listed),
            "scheduled_triggers": _scheduled(org_id, workflow, listed)}


def _webhook_endpoints(org_id: str, workflow: Workflow, listed: list[dict]) -> list[dict]:
    """The endpoints whose deliveries reach the workflow: those that start it (their workflowId) and those its
    webhook triggers listen on (a trigger's endpointId, or every endpoint when it names none)."""
    listening = [t["config"] for t in listed if t["trigger_type"] == "webhook"]
    found = []
    for endpoint in webhooks.list_endpoints(org_id):
        by = "workflow" if endpoint.workflow_id == workflow.id else "trigger" if any(
            catalog.listens_on(config, endpoint.id) for config in listening) else None
        if by:
            found.append({"id": endpoint.id, "name": endpoint.name, "endpoint_url": webhooks.endpoint_url(endpoint),
                          "active": endpoint.active, "reaches_by": by})
    return found


def webhook_endpoint_url(org_id: str, row: WorkflowTrigger) -> str | None:
    """The URL of the endpoint a webhook trigger names (its endpointId), if it is one of the organization's."""
    wanted = (row.config or {}).get("endpointId") if row.trigger_type == "webhook" else None
    endpoint = db.session.scalar(scoped(WebhookEndpoint, org_id).where(WebhookEndpoint.id == wanted)) \
        if wanted else None
    return webhooks.endpoint_url(endpoint) if endpoint is not None else None


def primary_view(workflow: Workflow) -> dict:
    """The workflow's own trigger in the shape of a WorkflowTrigger row."""
    kind, config = workflow.trigger_type, workflow.trigger_config or {}
    known = catalog.is_known(kind)
    return {"id": PRIMARY, "workflow_id": workflow.id, "primary": True, "trigger_type": kind,
            "trigger_name": catalog.get(kind).name if known else kind, "config": config,
            "schedule_type": default_schedule_type(kind, config) if known else "immediate",
            "cron_expression": config.get("cronExpression") if kind == "schedule" else None,
            "webhook_config": None, "active": workflow.status == WorkflowStatus.ACTIVE, "last_fired_at": None,
            "next_fire_at": None, "created_at": workflow.created_at, "updated_at": workflow.updated_at}


def row_view(row: WorkflowTrigger) -> dict:
    """An extra trigger as the API shows it."""
    return {"id": row.id, "workflow_id": row.workflow_id, "primary": False, "trigger_type": row.trigger_type,
            "trigger_name": row.name, "config": row.config, "schedule_type": row.schedule_type,
            "cron_expression": row.cron_expression, "webhook_config": row.webhook_config, "active": row.active,
            "last_fired_at": row.last_fired_at, "next_fire_at": row.next_fire_at, "created_at": row.created_at,
            "updated_at": row.updated_at}


def _scheduled(org_id: str, workflow: Workflow, listed: list[dict]) -> list[dict]:
    """Cron and recurring triggers: the next run in the organization's timezone, the last from the fire log."""
    timed = [t for t in listed if t["schedule_type"] in CRON_TYPES]
    if not timed:
        return []
    tz = db.session.get(Organization, org_id).timezone
    fired = dict(db.session.execute(select(TriggerFire.trigger_key, func.max(TriggerFire.fired_at)).where(
        TriggerFire.workflow_id == workflow.id).group_by(TriggerFire.trigger_key)).all())
    now, out = utcnow(), []
    for t in timed:
        last = t["last_fired_at"] or fired.get(t["id"])
        out.append({"trigger_id": t["id"], "cron_expression": t["cron_expression"], "last_run_at": last,
                    "next_run_at": _next_run(t, tz, now)})
    return out


def _next_run(trigger: dict, tz: str, now):
    """When the scheduler fires the trigger next (atlas.core.schedule: the same arithmetic it fires by)."""
    zone = timetable.zone(tz)
    try:
        plan = timetable.parse_schedule(trigger["config"], tz=zone, created_at=trigger["created_at"],
                                       schedule_type=trigger["schedule_type"],
                                       cron_expression=trigger["cron_expression"])
    except timetable.ScheduleError:
        return None
    return timetable.next_occurrence(plan, zone, now)


def default_schedule_type(kind: str, config: dict) -> str:
    """How a trigger of this type fires unless told: events at once, dates daily, schedules by cron."""
    timing = catalog.get(kind).timing
    if timing == catalog.DAILY:
        return "scheduled"
    if timing == catalog.SCHEDULED:
        return "cron" if config.get("scheduleType") == "cron" else "recurring"
    return "immediate"


def allowed_schedule_types(kind: str) -> tuple[str, ...]:
    timing = catalog.get(kind).timing
    return {catalog.DAILY: ("scheduled",), catalog.SCHEDULED: CRON_TYPES}.get(timing, ("immediate",))


def create_trigger(org_id: str, user_id: str | None, workflow_id: str, data: dict) -> tuple[WorkflowTrigger, list]:
    """Add an extra trigger to a workflow; returns it and advice about it (validationResults)."""
    workflow = get_workflow(org_id, workflow_id)
    kind, config, schedule, cron = _checked(data["trigger_type"], data.get("config") or {},
                                            data.get("schedule_type"), data.get("cron_expression"))
    row = WorkflowTrigger(organization_id=org_id, workflow_id=workflow.id, trigger_type=kind,
                          name=data.get("trigger_name") or catalog.get(kind).name, config=config,
                          schedule_type=schedule, cron_expression=cron, webhook_config=data.get("webhook_config"),
                          active=data.get("active", True), created_by=user_id)
    db.session.add(row)
    db.session.commit()
    return row, _advice(workflow, row)


def update_trigger(org_id: str, workflow_id: str, trigger_id: str, changes: dict) -> tuple[WorkflowTrigger, list]:
    """Change an extra trigger; fields not sent keep their value."""
    workflow, row = _extra(org_id, workflow_id, trigger_id)
    kind = changes.get("trigger_type", row.trigger_type)
    config = changes["config"] if "config" in changes else (row.config if kind == row.trigger_type else {})
    kind, config, schedule, cron = _checked(kind, config or {}, changes.get("schedule_type", row.schedule_type
                                            if kind == row.trigger_type else None),
                                            changes.get("cron_expression", row.cron_expression))
    row.trigger_type, row.config, row.schedule_type, row.cron_expression = kind, config, schedule, cron
    for key, column in (("trigger_name", "name"), ("webhook_config", "webhook_config"), ("active", "active")):
        if key in changes:
            setattr(row, column, changes[key])
    db.session.commit()
    return row, _advice(workflow, row)


def delete_trigger(org_id: str, workflow_id: str, trigger_id: str) -> str:
    """Remove an extra trigger; the primary one is changed on the workflow instead."""
    _, row = _extra(org_id, workflow_id, trigger_id)
    db.session.delete(row)
    db.session.commit()
    return trigger_id


def _extra(org_id: str, workflow_id: str, trigger_id: str) -> tuple[Workflow, WorkflowTrigger]:
    """The workflow and one of its extra triggers (WORKFLOW_NOT_FOUND, PRIMARY_TRIGGER, TRIGGER_NOT_FOUND)."""
    workflow = get_workflow(org_id, workflow_id)
    if trigger_id == PRIMARY:
        raise Conflict("The primary trigger is the workflow's own; change it with PUT /api/v2/workflows/"
                       f"{workflow.id} (triggerType, triggerConfig) instead.", code="PRIMARY_TRIGGER")
    row = get_scoped(WorkflowTrigger, org_id, trigger_id, TriggerNotFound)
    if row.workflow_id != workflow.id:
        raise TriggerNotFound()
    return workflow, row


def _checked(kind: str, config: dict, schedule: str | None, cron: str | None) -> tuple[str, dict, str, str | None]:
    """Type, config, schedule type and cron expression, each checked against the catalog; 422 otherwise."""
    if not catalog.is_known(kind):
        names = ", ".join(t.key for t in catalog.all_types())
        raise UnknownTriggerType(f"{kind!r} is not a trigger type; choose one of {names}.",
                                 validation=[{"field": "triggerType", "message": "Unknown trigger type."}])
    config = _schedule_config(config, schedule, cron) if kind == "schedule" else config
    schedule = schedule or default_schedule_type(kind, config)
    if schedule not in allowed_schedule_types(kind):
        allowed = " or ".join(allowed_schedule_types(kind))
        raise InvalidTriggerConfig(f"A {kind} trigger fires {allowed}, not {schedule}.",
                                   details={"path": "scheduleType"},
                                   validation=[{"field": "scheduleType", "message": f"Use {allowed}."}])
    _refuse_bad_cron(cron, "cronExpression")
    if schedule == "cron" and not (cron or config.get("cronExpression")):
        raise InvalidCron(f"A {schedule} trigger needs a cronExpression, e.g. '0 9 * * 1' for Mondays at 09:00.",
                          validation=[{"field": "cronExpression", "message": "Missing for this scheduleType."}])
    _refuse_bad_config(kind, config)
    return kind, config, schedule, (cron or config.get("cronExpression")) if schedule == "cron" else None


def _refuse_bad_cron(cron: str | None, field: str) -> None:
    problem = catalog.check_cron(cron) if cron is not None else None
    if problem:
        raise InvalidCron(problem, details={"path": field}, validation=[{"field": field, "message": problem}])


def _schedule_config(config: dict, schedule: str | None, cron: str | None) -> dict:
    """A schedule trigger's config, completed from the request's scheduleType and cronExpression."""
    filled = dict(config)
    if "scheduleType" not in filled and schedule in CRON_TYPES:
        filled["scheduleType"] = schedule
    if cron and "cronExpression" not in filled and filled.get("scheduleType") == "cron":
        filled["cronExpression"] = cron
    return filled


def _refuse_bad_config(kind: str, config: dict) -> None:
    problems = catalog.check_config(kind, config)
    if not problems:
        return
    cron = next((p for p in problems if p["path"] == "config.cronExpression" and "required" not in p["message"]), None)
    error = InvalidCron if cron else InvalidTriggerConfig
    first = problems[0]
    raise error(f"{first['path']}: {first['message']}", details={"path": first["path"]},
                validation=[{"field": p["path"], "message": p["message"]} for p in problems])


def _advice(workflow: Workflow, row: WorkflowTrigger) -> list[dict]:
    """What the new trigger means in practice, as validation results (warnings and suggestions)."""
    advice = []
    if workflow.status != WorkflowStatus.ACTIVE:
        advice.append(_note("warning", "WORKFLOW_NOT_ACTIVE", f"The workflow is {workflow.status}; this trigger "
                            "starts runs once the workflow is active."))
    if not row.active:
        advice.append(_note("warning", "TRIGGER_INACTIVE", "This trigger is switched off (active: false)."))
    if row.trigger_type == "webhook":
        advice += _webhook_advice(workflow.organization_id, (row.config or {}).get("endpointId"))
    if row.trigger_type == workflow.trigger_type and row.config == (workflow.trigger_config or {}):
        advice.append(_note("warning", "DUPLICATE_TRIGGER", "The workflow's primary trigger already fires on the "
                            "same events with the same settings."))
    return advice


def _webhook_advice(org_id: str, wanted: str | None) -> list[dict]:
    """A webhook trigger with no endpoint to hear: the endpoint it names is not one of ours, or there are none."""
    if wanted:
        known = db.session.scalar(scoped(WebhookEndpoint, org_id).where(WebhookEndpoint.id == wanted))
        return [] if known else [_note("warning", "WEBHOOK_ENDPOINT_NOT_FOUND", f"No webhook endpoint of this "
                                       f"organization has the id {wanted!r}; this trigger hears nothing until one "
                                       "does (GET /api/v2/webhooks lists them).")]
    if db.session.scalar(scoped(WebhookEndpoint, org_id).limit(1)) is None:
        return [_note("suggestion", "WEBHOOK_ENDPOINT_NEEDED", "The organization has no webhook endpoint yet: create "
                      "one on the Webhooks page or with POST /api/v2/webhooks, and this trigger hears its "
                      "deliveries.")]
    return []


def _note(severity: str, code: str, message: str) -> dict:
    return {"severity": severity, "code": code, "message": message, "node_id": None, "path": None}


# --- options for the builder ----------------------------------------------------------------------------------------

def config_options(org_id: str) -> dict:
    """GET /api/v2/config/triggers: the catalog and the organization's lead sources, forms, tags and custom fields."""
    sources = db.session.scalars(scoped(LeadSource, org_id).order_by(func.lower(LeadSource.name))).all()
    forms = db.session.scalars(scoped(Form, org_id).order_by(func.lower(Form.name))).all()
    fields = db.session.scalars(scoped(CustomField, org_id).order_by(func.lower(CustomField.label))).all()
    tags = db.session.execute(select(ContactTag.tag, func.count()).where(ContactTag.organization_id == org_id)
                              .group_by(ContactTag.tag).order_by(func.count().desc(), ContactTag.tag)).all()
    return {"available_triggers": definitions()["triggers"],
            "lead_sources": [{"id": s.id, "key": s.key, "name": s.name} for s in sources],
            "forms_list": [{"id": f.id, "name": f.name, "fields": f.fields} for f in forms],
            "tags_list": [{"tag": tag, "count": count} for tag, count in tags],
            "custom_fields": [{"id": f.id, "key": f.key, "label": f.label, "field_type": f.field_type,
                               "options": f.options} for f in fields]}



def enrollment_decisions(org_id: str, workflow_id: str, *, contact_id=None, outcome=None, page=1, limit=20):
    """One page of a workflow's decision log, newest first (WORKFLOW_NOT_FOUND for another organization's)."""
    workflow = get_workflow(org_id, workflow_id)
    return decisions.list_decisions(org_id, workflow.id, contact_id=contact_id, outcome=outcome, page=page,
                                    limit=limit)
