"""Safe publishing: what happens to a workflow's runs in flight when a new version of it is published.

A run executes one version (Execution.version), and the runner reads that version's definition every time it picks
the run up. So the publisher can choose, for the live (not test) runs not finished yet:

- keep: they finish on the version they started on (nothing changes for them);
- move: a run waiting at a step (or queued and not started yet) moves to the new version and goes on from the same
  step there, its variables, outputs and resume time kept. Steps are matched by id; a step the new version lacks, or
  has as another kind of step, has no match, and runs there finish on their old version. A run a worker is advancing
  at that very moment, or one just woken by an event, also finishes on its old version: it is already past the step.
- exit: they are cancelled, as cancel_execution does, in one UPDATE, with a live event each.
"""
from __future__ import annotations

from sqlalchemy import and_, func, or_, select, update

from atlas import realtime
from atlas.errors import NotFound, ValidationFailed
from atlas.extensions import db
from atlas.models import Execution, ExecutionStatus, WorkflowVersion
from atlas.models.base import utcnow
from atlas.services.workflows import get_workflow

IN_FLIGHT = (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING, ExecutionStatus.WAITING)
CHOICES = ("keep", "move", "exit")
NOT_STARTED = "Not started yet"


def in_flight(org_id: str, workflow_id: str) -> list[dict]:
    """Live runs not finished, grouped by the step each is at: [{node_id, name, type, count, waiting}].

    Runs queued and not started yet are one group with node_id None, first; then the steps in definition order."""
    workflow = get_workflow(org_id, workflow_id)
    return _groups(org_id, workflow.id, below=workflow.version + 1)


def counts(org_id: str, workflow_ids: list[str]) -> dict[str, int]:
    """workflow id -> its live runs not finished (queued, running or waiting; tests left out), in one query."""
    if not workflow_ids:
        return {}
    return dict(db.session.execute(select(Execution.workflow_id, func.count()).where(
        Execution.organization_id == org_id, Execution.workflow_id.in_(workflow_ids), Execution.test_mode.is_(False),
        Execution.status.in_(IN_FLIGHT)).group_by(Execution.workflow_id)).all())


def unmatched(groups: list[dict], workflow_data: dict) -> list[dict]:
    """The groups at a step the new definition lacks (or has as another kind of step): those runs cannot move."""
    types = {n.get("id"): n.get("type") for n in (workflow_data or {}).get("nodes", []) if isinstance(n, dict)}
    return [g for g in groups if g["node_id"] is not None and types.get(g["node_id"]) != g["type"]]


def apply(org_id: str, workflow_id: str, new_version: int, choice: str) -> dict:
    """Carry out the publisher's choice for the runs on versions before new_version.

    Returns {moved, kept, exited, unmatched}: kept counts the runs left on their old version (for "move": those at
    an unmatched step, or past their step right now), unmatched the groups at steps with no match."""
    if choice not in CHOICES:
        raise ValidationFailed(f"{choice!r} is not a choice for runs in flight; use one of {', '.join(CHOICES)}.",
                               details={"field": "choice"})
    workflow = get_workflow(org_id, workflow_id)
    moved = exited = 0
    missing: list[dict] = []
    if choice == "move":
        groups = _groups(org_id, workflow.id, below=new_version)
        missing = unmatched(groups, _version_data(workflow.id, new_version))
        matched = {g["node_id"] for g in groups if g["node_id"] is not None and g not in missing}
        moved = _move(org_id, workflow.id, new_version, matched)
    elif choice == "exit":
        exited = _exit(org_id, workflow.id, new_version)
    kept = db.session.scalar(select(func.count()).where(*_live(org_id, workflow.id, new_version)))
    db.session.commit()
    return {"moved": moved, "kept": kept, "exited": exited, "unmatched": missing}


def _live(org_id: str, workflow_id: str, below: int) -> tuple:
    """The conditions of a live run in flight on a version before `below`."""
    return (Execution.organization_id == org_id, Execution.workflow_id == workflow_id,
            Execution.test_mode.is_(False), Execution.status.in_(IN_FLIGHT), Execution.version < below)


def _groups(org_id: str, workflow_id: str, below: int) -> list[dict]:
    """Runs in flight counted per step (across the versions they run), named after the newest version's step."""
    rows = db.session.execute(
        select(Execution.current_node, Execution.version, func.count(),
               func.count().filter(Execution.status == ExecutionStatus.WAITING))
        .where(*_live(org_id, workflow_id, below)).group_by(Execution.current_node, Execution.version)).all()
    nodes = _nodes(workflow_id, sorted({row.version for row in rows}, reverse=True))
    groups: dict[str | None, dict] = {}
    for node_id, _, count, waiting in rows:
        node = nodes.get(node_id, {}) if node_id else {}
        group = groups.setdefault(node_id, {"node_id": node_id, "name": node.get("name") or node_id or NOT_STARTED,
                                            "type": node.get("type"), "count": 0, "waiting": 0})
        group["count"] += count
        group["waiting"] += waiting
    order = [None, *nodes]
    return sorted(groups.values(), key=lambda g: order.index(g["node_id"]) if g["node_id"] in order else len(order))


def _nodes(workflow_id: str, versions: list[int]) -> dict[str, dict]:
    """Node id -> node of these versions (newest first wins), in the newest version's order."""
    if not versions:
        return {}
    data = dict(db.session.execute(select(WorkflowVersion.version, WorkflowVersion.workflow_data).where(
        WorkflowVersion.workflow_id == workflow_id, WorkflowVersion.version.in_(versions))).all())
    nodes: dict[str, dict] = {}
    for version in versions:
        for node in (data.get(version) or {}).get("nodes", []):
            nodes.setdefault(node["id"], node)
    return nodes


def _version_data(workflow_id: str, version: int) -> dict:
    data = db.session.scalar(select(WorkflowVersion.workflow_data).where(
        WorkflowVersion.workflow_id == workflow_id, WorkflowVersion.version == version))
    if data is None:
        raise NotFound(f"This workflow has no version {version}.", code="VERSION_NOT_FOUND")
    return data


def _move(org_id: str, workflow_id: str, new_version: int, matched: set) -> int:
    """Point the runs waiting at a matched step, or not started, at the new version; one UPDATE."""
    not_started = and_(Execution.status == ExecutionStatus.QUEUED, Execution.started_at.is_(None))
    at_step = and_(Execution.status == ExecutionStatus.WAITING, Execution.current_node.in_(matched))
    result = db.session.execute(update(Execution).where(
        *_live(org_id, workflow_id, new_version), or_(at_step, not_started) if matched else not_started)
        .values(version=new_version), execution_options={"synchronize_session": False})
    return result.rowcount


def _exit(org_id: str, workflow_id: str, new_version: int) -> int:
    """Cancel every run in flight on an older version (as cancel_execution does), then say so live."""
    ids = db.session.scalars(update(Execution).where(*_live(org_id, workflow_id, new_version)).values(
        status=ExecutionStatus.CANCELLED, finished_at=utcnow(), resume_at=None, correlation_key=None)
        .returning(Execution.id), execution_options={"synchronize_session": False}).all()
    db.session.commit()
    realtime.publish([(workflow_id, "execution_cancelled", {"executionId": i, "status": ExecutionStatus.CANCELLED})
                      for i in ids])
    return len(ids)
