"""The builder's editing model: a draft per workflow, saved at every change, with undo, publish, versions, restore.

The draft is apart from what is live: staff edit it freely (it may be incomplete, and its validation issues come back
with every change), and publishing copies it onto the workflow through workflows.update_workflow, which makes a new
immutable version of a live workflow. Every change names the draft revision it was made on (base_revision); a change
made on a stale revision is refused with DRAFT_CONFLICT instead of overwriting someone else's work.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from atlas.core import edits
from atlas.core.definition import DefinitionError, WorkflowDefinition
from atlas.core.triggers import workflow_issues
from atlas.errors import AtlasError, Conflict, InvalidWorkflowData, NotFound, ValidationFailed
from atlas.extensions import db
from atlas.models import Organization, User, Workflow, WorkflowStatus, WorkflowVersion
from atlas.models.base import utcnow
from atlas.models.drafts import WorkflowDraft, WorkflowDraftRevision
from atlas.services import workflows
from atlas.services.tenancy import scoped

MAX_REVISIONS = 200  # history entries kept per workflow; the oldest go first
FIELDS = ("definition", "trigger_type", "trigger_config", "settings")
LIVE = {"definition": "workflow_data", "trigger_type": "trigger_type", "trigger_config": "trigger_config",
        "settings": "settings"}
EDITS = {"insert": edits.insert_step, "delete": edits.delete_step, "rename": edits.rename_step,
         "duplicate": edits.duplicate_step, "move": edits.move_step, "set_config": edits.set_config}


class DraftConflict(AtlasError):
    """Someone saved the draft after this client loaded it."""

    status, code, message = 409, "DRAFT_CONFLICT", "The draft changed since you loaded it; reload to see the newest."


class VersionNotFound(NotFound):
    code, message = "VERSION_NOT_FOUND", "Version not found."


@dataclass
class Draft:
    """The draft as the builder shows it. Send `revision` back as base_revision with the next change."""

    workflow_id: str
    definition: dict
    trigger_type: str
    trigger_config: dict
    settings: dict
    revision: int
    position: int  # the history entry shown (moves back on undo)
    can_undo: bool
    can_redo: bool
    undo_summary: str | None  # what undo would take back, e.g. "Added step 'Wait 10 minutes'"
    redo_summary: str | None
    updated_by: str | None  # the name of who changed it last
    updated_by_id: str | None
    updated_at: datetime | None
    dirty: bool  # differs from the live workflow
    _issues: list[dict] | None = field(default=None, repr=False)

    @property
    def issues(self) -> list[dict]:
        """Errors, warnings and suggestions, each with its node_id: worked out when first asked for."""
        if self._issues is None:
            self._issues = draft_issues(self)
        return self._issues


@dataclass
class VersionInfo:
    """One published version in the version list."""

    version: int
    published_at: datetime
    published_by: str | None
    published_by_id: str | None
    changes: list[str]
    is_current: bool


# --- reading -----------------------------------------------------------------------------------------------------

def get_draft(org_id: str, workflow_id: str) -> Draft:
    """The workflow's draft; a workflow never edited in the builder starts it from itself at revision 0."""
    workflow, row = _load(org_id, workflow_id)
    return _view(workflow, row)


def draft_issues(draft: Draft) -> list[dict]:
    """Validation of a draft: its definition, trigger and settings, every issue at once."""
    key = json.dumps([draft.definition, draft.trigger_type, draft.trigger_config, draft.settings], sort_keys=True,
                     default=str)
    return [dict(issue) for issue in _issues_of(key)]


@lru_cache(maxsize=64)
def _issues_of(key: str) -> tuple[dict, ...]:
    """The issues of one (definition, trigger type, trigger config, settings), remembered: validation is a pure
    function of them, and the builder asks again for the same draft (an edit reads the draft it changes, undo and
    redo go back to drafts seen before)."""
    definition, trigger_type, trigger_config, settings = json.loads(key)
    _, issues = workflows.check_definition(definition, trigger_type)
    return tuple(issues + workflow_issues(trigger_type, trigger_config, settings))


# --- changing ----------------------------------------------------------------------------------------------------

def save_draft(org_id: str, user_id: str | None, workflow_id: str, *, base_revision: int, summary: str,
               definition: dict | None = None, trigger_type: str | None = None, trigger_config: dict | None = None,
               settings: dict | None = None) -> Draft:
    """Save a change (None leaves a part as it is) as a new history entry; an incomplete draft is saved too."""
    changes = _clean(definition=definition, trigger_type=trigger_type, trigger_config=trigger_config,
                     settings=settings)
    summary = _clean_summary(summary)
    _check_revision_type(base_revision)
    try:
        workflow, row = _load(org_id, workflow_id, lock=True)
        _check_base(org_id, user_id, row, base_revision)
        if any(getattr(row, key) != value for key, value in changes.items()):  # else no history entry
            _append(workflow, row, user_id, summary, changes)
        view = _view(workflow, row)
        db.session.commit()
    except IntegrityError:  # a concurrent first save or history entry won the race
        db.session.rollback()
        raise DraftConflict()
    return view


def apply_edit(org_id: str, user_id: str | None, workflow_id: str, *, base_revision: int, action: str,
               **params) -> Draft:
    """Apply one canvas action (insert, delete, rename, duplicate, move, set_config) to the draft and save it."""
    edit = EDITS.get(action)
    if edit is None:
        raise ValidationFailed(f"{action!r} is not an edit; use one of {', '.join(EDITS)}.", code="INVALID_EDIT")
    _check_revision_type(base_revision)
    workflow, row = _load(org_id, workflow_id)
    _check_base(org_id, user_id, row, base_revision)
    try:
        inspect.signature(edit).bind(row.definition, **params)
    except TypeError as exc:
        raise ValidationFailed(f"The {action} edit was given the wrong fields: {exc}.", code="INVALID_EDIT")
    try:
        definition, summary = edit(row.definition, **params)
    except edits.EditError as exc:
        raise ValidationFailed(str(exc), code="INVALID_EDIT")
    return save_draft(org_id, user_id, workflow_id, base_revision=base_revision, summary=summary,
                      definition=definition)


def undo(org_id: str, user_id: str | None, workflow_id: str, base_revision: int) -> Draft:
    """Show the previous history entry (409 NOTHING_TO_UNDO at the start of the history)."""
    return _move(org_id, user_id, workflow_id, base_revision, back=True)


def redo(org_id: str, user_id: str | None, workflow_id: str, base_revision: int) -> Draft:
    """Show the next history entry again (409 NOTHING_TO_REDO when none follows)."""
    return _move(org_id, user_id, workflow_id, base_revision, back=False)


def restore(org_id: str, user_id: str | None, workflow_id: str, version: int, base_revision: int) -> Draft:
    """Copy a published version into the draft as a new history entry."""
    workflow = workflows.get_workflow(org_id, workflow_id)
    snapshot = db.session.scalar(scoped(WorkflowVersion, org_id).where(
        WorkflowVersion.workflow_id == workflow.id, WorkflowVersion.version == version))
    if snapshot is None:
        raise VersionNotFound(f"This workflow has no version {version}.")
    return save_draft(org_id, user_id, workflow_id, base_revision=base_revision, summary=f"Restored version {version}",
                      definition=snapshot.workflow_data, trigger_type=snapshot.trigger_type,
                      trigger_config=snapshot.trigger_config, settings=snapshot.settings)


# --- publishing --------------------------------------------------------------------------------------------------

def publish(org_id: str, user_id: str | None, workflow_id: str,
            base_revision: int) -> tuple[Workflow, WorkflowVersion, list[str]]:
    """Make the draft what runs: refused with every error listed while any remains.

    A live (active or paused) workflow gets a new immutable version and keeps its status; a workflow that was never
    published is activated, because publishing is how a gym manager turns a new workflow on."""
    _check_revision_type(base_revision)
    workflow, row = _load(org_id, workflow_id)
    _check_base(org_id, user_id, row, base_revision)
    if workflow.status == WorkflowStatus.ARCHIVED:
        raise Conflict("This workflow is archived; restore it from the archive before publishing.",
                       code="WORKFLOW_ARCHIVED")
    draft = _view(workflow, row)
    errors = [i for i in draft.issues if i["severity"] == "error"]
    if errors:
        raise InvalidWorkflowData(f"The draft has {len(errors)} error{'s' if len(errors) != 1 else ''} to fix before "
                                  "it can be published; each is listed in validation with its step.",
                                  validation=errors)
    changes = {LIVE[key]: getattr(row, key) for key in FIELDS if getattr(row, key) != getattr(workflow, LIVE[key])}
    summary = _publish_summary(workflow, row)
    if workflow.status == WorkflowStatus.DRAFT:
        changes["status"] = WorkflowStatus.ACTIVE
    elif not changes:
        raise Conflict("The draft is the same as the published version; there is nothing to publish.",
                       code="NOTHING_TO_PUBLISH")
    result = workflows.update_workflow(org_id, user_id, workflow_id, changes)
    return result.workflow, _record_version(result.workflow, user_id, summary), summary


def versions(org_id: str, workflow_id: str) -> list[VersionInfo]:
    """The published versions, newest first: who published each, when, and what it changed."""
    workflow = workflows.get_workflow(org_id, workflow_id)
    rows = db.session.execute(
        select(WorkflowVersion, User.name).outerjoin(User, User.id == WorkflowVersion.created_by)
        .where(WorkflowVersion.organization_id == org_id, WorkflowVersion.workflow_id == workflow.id)
        .order_by(WorkflowVersion.version)).all()
    out, previous = [], None
    for version, name in rows:
        changes = version.change_summary if version.change_summary is not None else _between(previous, version)
        out.append(VersionInfo(version.version, version.created_at, name, version.created_by, changes,
                               version.version == workflow.version))
        previous = version
    return out[::-1]


def _publish_summary(workflow: Workflow, row: WorkflowDraft) -> list[str]:
    """What publishing the draft changes, in words; the first version says so."""
    if not db.session.scalar(select(func.count()).select_from(WorkflowVersion).where(
            WorkflowVersion.workflow_id == workflow.id)):
        count = len(row.definition.get("nodes", []))
        return [f"First version: {count} step{'s' if count != 1 else ''}, started by {row.trigger_type}"]
    before = {LIVE[key]: getattr(workflow, LIVE[key]) for key in FIELDS}
    return edits.change_summary(before, {LIVE[key]: getattr(row, key) for key in FIELDS})


def _between(previous: WorkflowVersion | None, version: WorkflowVersion) -> list[str]:
    """The change summary of a version published outside the builder, worked out from the one before."""
    if previous is None:
        return ["First version"]
    keys = ("workflow_data", "trigger_type", "trigger_config", "settings")
    return edits.change_summary({k: getattr(previous, k) for k in keys}, {k: getattr(version, k) for k in keys})


def _record_version(workflow: Workflow, user_id: str | None, summary: list[str]) -> WorkflowVersion:
    """The version publishing made, with its change summary; a paused workflow's version is snapshotted here."""
    version = db.session.scalar(select(WorkflowVersion).where(
        WorkflowVersion.workflow_id == workflow.id, WorkflowVersion.version == workflow.version))
    if version is None:  # update_workflow snapshots active workflows only
        version = WorkflowVersion(
            organization_id=workflow.organization_id, workflow_id=workflow.id, version=workflow.version,
            workflow_data=workflow.workflow_data, trigger_type=workflow.trigger_type,
            trigger_config=workflow.trigger_config, settings=workflow.settings, created_by=user_id)
        db.session.add(version)
    if version.change_summary is None:
        version.change_summary = summary
    db.session.commit()
    return version


# --- the draft row and its history -------------------------------------------------------------------------------

def _load(org_id: str, workflow_id: str, *, lock: bool = False) -> tuple[Workflow, WorkflowDraft]:
    """The workflow and its draft row; an unsaved row (not in the session) when it has none yet."""
    workflow = workflows.get_workflow(org_id, workflow_id)
    query = scoped(WorkflowDraft, org_id).where(WorkflowDraft.workflow_id == workflow.id)
    if lock:  # the newest committed row, even when this session has read it before
        query = query.with_for_update().execution_options(populate_existing=True)
    row = db.session.scalar(query)
    if row is None:
        row = WorkflowDraft(workflow_id=workflow.id, organization_id=workflow.organization_id, revision=0,
                            position=0, updated_by=None, updated_at=None,
                            **{key: getattr(workflow, LIVE[key]) for key in FIELDS})
    return workflow, row


def _append(workflow: Workflow, row: WorkflowDraft, user_id: str | None, summary: str, changes: dict) -> None:
    """Apply changes to the row and record them as the newest history entry, dropping the redo tail."""
    if row not in db.session:
        db.session.add(row)
        start = f"Started from version {workflow.version}" if workflow.status != WorkflowStatus.DRAFT \
            else "Started from the saved workflow"
        db.session.add(_entry(row, start, workflow.created_by))
    else:
        db.session.execute(delete(WorkflowDraftRevision).where(
            WorkflowDraftRevision.workflow_id == row.workflow_id, WorkflowDraftRevision.revision > row.position))
    for key, value in changes.items():
        setattr(row, key, value)
    _touch(row, user_id)
    row.position = row.revision
    db.session.add(_entry(row, summary, user_id))
    db.session.flush()
    _cap(row.workflow_id)


def _entry(row: WorkflowDraft, summary: str, user_id: str | None) -> WorkflowDraftRevision:
    return WorkflowDraftRevision(organization_id=row.organization_id, workflow_id=row.workflow_id,
                                 revision=row.revision, summary=summary, created_by=user_id,
                                 **{key: getattr(row, key) for key in FIELDS})


def _touch(row: WorkflowDraft, user_id: str | None) -> None:
    """One more change to the draft: the next revision, by user_id, now."""
    row.revision += 1
    row.updated_by = user_id
    row.updated_at = utcnow()


def _cap(workflow_id: str) -> None:
    """Drop the oldest history entries beyond MAX_REVISIONS."""
    cutoff = db.session.scalar(select(WorkflowDraftRevision.revision).where(
        WorkflowDraftRevision.workflow_id == workflow_id).order_by(WorkflowDraftRevision.revision.desc())
        .offset(MAX_REVISIONS).limit(1))
    if cutoff is not None:
        db.session.execute(delete(WorkflowDraftRevision).where(
            WorkflowDraftRevision.workflow_id == workflow_id, WorkflowDraftRevision.revision <= cutoff))


def _move(org_id: str, user_id: str | None, workflow_id: str, base_revision: int, *, back: bool) -> Draft:
    """Undo or redo: show the neighbouring history entry; a change of its own for concurrency."""
    _check_revision_type(base_revision)
    workflow, row = _load(org_id, workflow_id, lock=True)
    _check_base(org_id, user_id, row, base_revision)
    entry = None
    if row in db.session:
        column = WorkflowDraftRevision.revision
        entry = db.session.scalar(select(WorkflowDraftRevision).where(
            WorkflowDraftRevision.workflow_id == row.workflow_id,
            column < row.position if back else column > row.position)
            .order_by(column.desc() if back else column).limit(1))
    if entry is None:
        db.session.rollback()
        word = "undo" if back else "redo"
        raise Conflict(f"There is nothing to {word}.", code=f"NOTHING_TO_{word.upper()}")
    for key in FIELDS:
        setattr(row, key, getattr(entry, key))
    _touch(row, user_id)
    row.position = entry.revision
    view = _view(workflow, row)
    db.session.commit()
    return view


def _view(workflow: Workflow, row: WorkflowDraft) -> Draft:
    """The draft's state and history neighbours, read inside the transaction (issues come after it)."""
    undo_summary = redo_summary = None
    can_undo = can_redo = False
    if row in db.session:
        column = WorkflowDraftRevision.revision
        can_undo = db.session.scalar(select(func.max(column)).where(
            WorkflowDraftRevision.workflow_id == row.workflow_id, column < row.position)) is not None
        here = db.session.execute(select(column, WorkflowDraftRevision.summary).where(
            WorkflowDraftRevision.workflow_id == row.workflow_id, column >= row.position)
            .order_by(column).limit(2)).all()
        undo_summary = here[0].summary if can_undo and here and here[0].revision == row.position else None
        can_redo = any(r.revision > row.position for r in here)
        redo_summary = next((r.summary for r in here if r.revision > row.position), None)
    editor = db.session.get(User, row.updated_by) if row.updated_by else None
    return Draft(workflow_id=workflow.id, revision=row.revision, position=row.position, can_undo=can_undo,
                 can_redo=can_redo, undo_summary=undo_summary, redo_summary=redo_summary,
                 updated_by=editor.name if editor else None, updated_by_id=row.updated_by, updated_at=row.updated_at,
                 dirty=any(getattr(row, key) != getattr(workflow, LIVE[key]) for key in FIELDS),
                 **{key: getattr(row, key) for key in FIELDS})


# --- checks ------------------------------------------------------------------------------------------------------

def _check_base(org_id: str, user_id: str | None, row: WorkflowDraft, base_revision: int) -> None:
    """Refuse a change made on a revision that is no longer the draft's (optimistic concurrency)."""
    if base_revision == row.revision:
        return
    editor = db.session.get(User, row.updated_by) if row.updated_by else None
    details = {"currentRevision": row.revision, "yourRevision": base_revision, "updatedBy": editor.name if editor
               else None, "updatedAt": row.updated_at.isoformat() if row.updated_at else None}
    when = f" at {_local_time(org_id, row.updated_at)}" if row.updated_at else ""
    if editor is not None and editor.id == user_id:
        who = "You saved a newer version of this draft in another window"
    else:
        who = f"{editor.name} saved a newer version of this draft" if editor else "The draft was changed"
    db.session.rollback()
    raise DraftConflict(f"{who}{when}. Reload the builder to see it; your change was not saved.", details=details)


def _local_time(org_id: str, moment: datetime) -> str:
    """A moment as the gym reads it: 14:05 on 26 Nov 2026 (Europe/London)."""
    org = db.session.get(Organization, org_id)
    name = org.timezone if org else "UTC"
    try:
        local = moment.astimezone(ZoneInfo(name))
    except (ZoneInfoNotFoundError, ValueError):
        name, local = "UTC", moment
    return f"{local:%H:%M} on {local.day} {local:%b %Y} ({name})"


def _check_revision_type(base_revision) -> None:
    if not isinstance(base_revision, int) or isinstance(base_revision, bool) or base_revision < 0:
        raise ValidationFailed("baseRevision must be the draft revision the change was made on (a whole number).",
                               details={"field": "baseRevision"})


def _clean(**parts) -> dict:
    """The parts a save changes, checked and normalised; a malformed definition is refused (nothing saved)."""
    changes = {key: value for key, value in parts.items() if value is not None}
    if "definition" in changes:
        try:
            changes["definition"] = WorkflowDefinition.from_dict(changes["definition"]).to_dict()
        except DefinitionError as exc:
            raise InvalidWorkflowData(f"workflowData is malformed: {exc}", validation=exc.issues)
    if "trigger_type" in changes and not (isinstance(changes["trigger_type"], str)
                                          and 0 < len(changes["trigger_type"]) <= 64):
        raise ValidationFailed("triggerType must be a trigger type's name.", details={"field": "triggerType"})
    for key, name in (("trigger_config", "triggerConfig"), ("settings", "settings")):
        if key in changes and not isinstance(changes[key], dict):
            raise ValidationFailed(f"{name} must be an object.", details={"field": name})
    return changes


def _clean_summary(summary) -> str:
    if not isinstance(summary, str) or not summary.strip():
        raise ValidationFailed("A change needs a summary (what it did, e.g. \"Renamed 'Welcome SMS'\").",
                               details={"field": "summary"})
    return summary.strip()[:200]
