"""Workflow use-cases: list, create, read, update, archive."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError

from atlas import realtime
from atlas.core.definition import DefinitionError, WorkflowDefinition
from atlas.core.triggers import workflow_issues
from atlas.core.validation import estimate_performance, has_errors, validate
from atlas.errors import Conflict, InvalidWorkflowData, WorkflowNotFound, camelcase
from atlas.extensions import db
from atlas.models import Execution, ExecutionStep, Workflow, WorkflowStatus, WorkflowTag, WorkflowVersion
from atlas.models.base import utcnow
from atlas.services.pagination import paginate
from atlas.services.tenancy import get_scoped, scoped

SORT_COLUMNS = {
    "name": func.lower(Workflow.name),
    "created_at": Workflow.created_at,
    "last_run_at": Workflow.last_run_at,
    "usage_count": Workflow.usage_count,
}


@dataclass
class SaveResult:
    """What create and update return besides the workflow itself."""

    workflow: Workflow
    issues: list[dict]
    estimate: dict
    migration_warnings: list[str] = field(default_factory=list)


def list_workflows(org_id: str, *, status=None, category=None, search=None, tags=None, page=1, limit=20,
                   sort_by="created_at", sort_order="desc") -> tuple[list[Workflow], dict]:
    """One page of the organization's workflows; archived ones only when asked for by status."""
    query = scoped(Workflow, org_id)
    query = query.where(Workflow.status == status) if status else query.where(Workflow.status != "archived")
    if category:
        query = query.where(Workflow.category == category)
    if search:
        needle = search.strip().lower()
        query = query.where(or_(func.lower(Workflow.name).contains(needle, autoescape=True),
                                func.lower(Workflow.description).contains(needle, autoescape=True)))
    if tags:
        query = query.where(exists().where(WorkflowTag.workflow_id == Workflow.id, WorkflowTag.tag.in_(tags)))
    column = SORT_COLUMNS[sort_by]
    ordered = column.asc() if sort_order == "asc" else column.desc()
    query = query.order_by(ordered.nulls_last(), Workflow.id)
    return paginate(query, page, limit)


def list_filters(org_id: str) -> dict:
    """Categories and tags of the organization's workflows that are not archived, and the statuses in use."""
    live = (Workflow.organization_id == org_id, Workflow.status != WorkflowStatus.ARCHIVED)
    categories = db.session.scalars(select(Workflow.category).distinct().where(
        *live, Workflow.category.is_not(None)).order_by(Workflow.category))
    tags = db.session.scalars(select(WorkflowTag.tag).distinct().join(Workflow, Workflow.id == WorkflowTag.workflow_id)
                              .where(*live).order_by(WorkflowTag.tag))
    present = set(db.session.scalars(select(Workflow.status).distinct().where(Workflow.organization_id == org_id)))
    return {"categories": list(categories), "tags": list(tags),
            "statuses": [s.value for s in WorkflowStatus if s.value in present]}


def get_workflow(org_id: str, workflow_id: str) -> Workflow:
    """A workflow of the organization, archived included; WORKFLOW_NOT_FOUND otherwise."""
    return get_scoped(Workflow, org_id, workflow_id, WorkflowNotFound)


def workflow_details(org_id: str, workflow_id: str) -> dict:
    """The details response. Executions arrive with the engine; until then the run sections are truthfully empty."""
    workflow = get_workflow(org_id, workflow_id)
    trigger = {"trigger_type": workflow.trigger_type, "config": workflow.trigger_config, "source": "workflow"}
    analytics = {"total_executions": 0, "successful_executions": 0, "failed_executions": 0, "success_rate": None,
                 "avg_execution_time_ms": None, "last_run_at": workflow.last_run_at}
    performance = {"basis": "none", "avg_duration_ms": None, "p95_duration_ms": None, "runs_measured": 0}
    return {"workflow": workflow, "triggers": [trigger], "variables": [], "analytics": analytics,
            "recent_executions": [], "performance": performance}


def validate_workflow(org_id: str, workflow_id: str, workflow_data: dict | None = None) -> dict:
    """Validate the workflow's own definition, or a candidate one, without saving anything."""
    workflow = get_workflow(org_id, workflow_id)
    definition, issues = check_definition(workflow.workflow_data if workflow_data is None else workflow_data,
                                          workflow.trigger_type)
    issues += workflow_issues(workflow.trigger_type, workflow.trigger_config, workflow.settings)
    by = {severity: [i for i in issues if i["severity"] == severity] for severity in ("error", "warning", "suggestion")}
    return {"is_valid": not by["error"], "errors": by["error"], "warnings": by["warning"],
            "suggestions": by["suggestion"],
            "estimated_performance": estimate_performance(definition, step_timings(workflow.id))}


HISTORY_WINDOW = timedelta(days=7)


def step_timings(workflow_id: str) -> dict[str, float]:
    """Mean milliseconds per step type over the workflow's runs of the last week (the estimates' history)."""
    return dict(db.session.execute(select(ExecutionStep.step_type, func.avg(ExecutionStep.duration_ms))
                                   .join(Execution, Execution.id == ExecutionStep.execution_id)
                                   .where(Execution.workflow_id == workflow_id,
                                          ExecutionStep.started_at >= utcnow() - HISTORY_WINDOW)
                                   .group_by(ExecutionStep.step_type)).all())


def check_definition(data, trigger_type: str | None) -> tuple[WorkflowDefinition, list[dict]]:
    """Parse and validate workflowData; a malformed document raises INVALID_WORKFLOW_DATA."""
    try:
        definition = WorkflowDefinition.from_dict(data)
    except DefinitionError as exc:
        raise InvalidWorkflowData(f"workflowData is malformed: {exc}", validation=exc.issues)
    return definition, validate(definition, trigger_type=trigger_type)


def create_workflow(org_id: str, user_id: str | None, data: dict) -> SaveResult:
    """Create a workflow (draft unless asked active, and only active when it has no errors)."""
    definition, issues = check_definition(data["workflow_data"], data["trigger_type"])
    issues += workflow_issues(data["trigger_type"], data.get("trigger_config", {}), data.get("settings", {}))
    _ensure_activatable(data.get("status"), issues)
    _ensure_name_free(org_id, data["name"])
    workflow = Workflow(
        organization_id=org_id, name=data["name"], description=data.get("description"),
        category=data.get("category"), status=data.get("status", WorkflowStatus.DRAFT),
        workflow_data=definition.to_dict(), trigger_type=data["trigger_type"],
        trigger_config=data.get("trigger_config", {}), settings=data.get("settings", {}),
        template_id=data.get("template_id"), created_by=user_id, version=1)
    _set_tags(workflow, data.get("tags", []))
    db.session.add(workflow)
    _publish_if_active(workflow, user_id)
    _commit_unique_name()
    return SaveResult(workflow, issues, estimate_performance(definition))


def update_workflow(org_id: str, user_id: str | None, workflow_id: str, changes: dict) -> SaveResult:
    """Apply a partial update; an edited live definition becomes a new version."""
    workflow = get_workflow(org_id, workflow_id)
    definition, issues = check_definition(changes.get("workflow_data", workflow.workflow_data),
                                          changes.get("trigger_type", workflow.trigger_type))
    issues += workflow_issues(*(changes.get(key, getattr(workflow, key))
                                for key in ("trigger_type", "trigger_config", "settings")))
    new_status = changes.get("status", workflow.status)
    if new_status != workflow.status or any(key in changes for key in VERSIONED):
        _ensure_activatable(new_status, issues)
    renamed = "name" in changes and changes["name"] != workflow.name
    unarchived = workflow.status == WorkflowStatus.ARCHIVED and new_status != WorkflowStatus.ARCHIVED
    if renamed or unarchived:
        _ensure_name_free(org_id, changes.get("name", workflow.name), exclude_id=workflow.id)
    warnings = _apply_changes(workflow, changes, definition)
    _publish_if_active(workflow, user_id)
    _commit_unique_name()
    realtime.publish([(workflow.id, "workflow_updated", {"workflowId": workflow.id, "version": workflow.version,
                                                         "status": workflow.status, "name": workflow.name})])
    return SaveResult(workflow, issues, estimate_performance(definition), warnings)


def archive_workflow(org_id: str, workflow_id: str) -> tuple[Workflow, str]:
    """Soft delete: the workflow is archived and leaves the default list. Returns it and its previous status."""
    workflow = get_workflow(org_id, workflow_id)
    previous = workflow.status
    if workflow.status != WorkflowStatus.ARCHIVED:
        workflow.status = WorkflowStatus.ARCHIVED
        workflow.archived_at = utcnow()
        db.session.commit()
    return workflow, previous


def executions_in_flight(workflow: Workflow) -> int:
    """Live runs of this workflow not yet finished (queued, running or waiting)."""
    from atlas.models import TERMINAL, Execution

    return db.session.scalar(select(func.count()).select_from(Execution).where(
        Execution.workflow_id == workflow.id, Execution.test_mode.is_(False), Execution.status.not_in(TERMINAL)))


# What a published version freezes: a change to any of these on a live workflow makes a new version.
VERSIONED = ("workflow_data", "trigger_type", "trigger_config", "settings")


def _apply_changes(workflow: Workflow, changes: dict, definition: WorkflowDefinition) -> list[str]:
    """Copy changed fields onto the row; returns migration warnings for a live definition change."""
    warnings: list[str] = []
    if "workflow_data" in changes:
        changes = {**changes, "workflow_data": definition.to_dict()}
    changed = [key for key in VERSIONED if key in changes and changes[key] != getattr(workflow, key)]
    if changed and _is_published(workflow):
        workflow.version += 1
        fields = ", ".join(camelcase(key) for key in changed)
        warnings.append(
            f"{fields} changed, so this is now version {workflow.version}. New runs use version "
            f"{workflow.version}; the {executions_in_flight(workflow)} run(s) in flight keep running "
            f"version {workflow.version - 1} to the end.")
    for key in ("name", "description", "category", *VERSIONED):
        if key in changes:
            setattr(workflow, key, changes[key])
    if "tags" in changes:
        _set_tags(workflow, changes["tags"])
    if "status" in changes and changes["status"] != workflow.status:
        warnings.extend(_status_warnings(workflow.status, changes["status"]))
        workflow.status = changes["status"]
        workflow.archived_at = utcnow() if workflow.status == WorkflowStatus.ARCHIVED else None
    return warnings


def _status_warnings(old: str, new: str) -> list[str]:
    """What a status change means for triggers."""
    if new == WorkflowStatus.PAUSED:
        return ["The workflow is paused: its trigger starts no new runs until it is activated again."]
    if new == WorkflowStatus.ARCHIVED:
        return ["The workflow is archived: its trigger starts no new runs and it leaves the default list."]
    if new == WorkflowStatus.ACTIVE and old != WorkflowStatus.ACTIVE:
        return ["The workflow is active: its trigger starts runs from now on."]
    return []


def _is_published(workflow: Workflow) -> bool:
    """Whether the workflow's current version number has been snapshotted (it went live)."""
    if workflow.id is None:
        return False
    return db.session.scalar(select(exists().where(
        WorkflowVersion.workflow_id == workflow.id, WorkflowVersion.version == workflow.version)))


def _publish_if_active(workflow: Workflow, user_id: str | None) -> None:
    """An active workflow always has an immutable snapshot of its current version."""
    if workflow.status != WorkflowStatus.ACTIVE:
        return
    db.session.flush()
    if not _is_published(workflow):
        db.session.add(WorkflowVersion(
            organization_id=workflow.organization_id, workflow_id=workflow.id, version=workflow.version,
            workflow_data=workflow.workflow_data, trigger_type=workflow.trigger_type,
            trigger_config=workflow.trigger_config, settings=workflow.settings, created_by=user_id))


def _set_tags(workflow: Workflow, tags: list[str]) -> None:
    """Replace the workflow's tags with this de-duplicated list."""
    wanted = sorted({t.strip() for t in tags if t.strip()})
    kept = [row for row in workflow.tag_rows if row.tag in wanted]
    have = {row.tag for row in kept}
    workflow.tag_rows = kept + [WorkflowTag(organization_id=workflow.organization_id, tag=t)
                                for t in wanted if t not in have]


def _ensure_activatable(status: str | None, issues: list[dict]) -> None:
    """A workflow with errors can be saved as a draft but not activated."""
    if status == WorkflowStatus.ACTIVE and has_errors(issues):
        raise InvalidWorkflowData("The workflow has errors, so it cannot be activated; save it as a draft "
                                  "or fix the errors listed in validation.", validation=issues)


def _ensure_name_free(org_id: str, name: str, exclude_id: str | None = None) -> None:
    """Names are unique among an organization's workflows that are not archived."""
    query = scoped(Workflow, org_id).where(func.lower(Workflow.name) == name.lower(),
                                           Workflow.status != WorkflowStatus.ARCHIVED)
    if exclude_id:
        query = query.where(Workflow.id != exclude_id)
    if db.session.scalar(query) is not None:
        raise _name_taken(name)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"A workflow named {name!r} already exists in this organization.",
                    code="WORKFLOW_NAME_TAKEN", details={"field": "name"})


def _commit_unique_name() -> None:
    """Commit; a concurrent save of the same name loses with 409 instead of a 500."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("Another workflow with this name was saved at the same time.", code="WORKFLOW_NAME_TAKEN",
                       details={"field": "name"})
