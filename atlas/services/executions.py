"""Execution use-cases: start (commit, then enqueue), cancel, list with analytics, details, events for waiting runs."""
from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from atlas import realtime
from atlas.core import engine
from atlas.core.engine import RunState
from atlas.core.validation import estimate_performance, has_errors
from atlas.errors import AtlasError, Conflict, NotFound
from atlas.extensions import cache, db
from atlas.models import TERMINAL, Execution, ExecutionStatus, ExecutionStep, WorkflowStatus
from atlas.models.base import new_id, utcnow
from atlas.services import contacts, queue, runner
from atlas.services.pagination import paginate
from atlas.services.tenancy import scoped
from atlas.services.workflows import check_definition, get_workflow, step_timings


class ExecutionNotFound(NotFound):
    code, message = "EXECUTION_NOT_FOUND", "Execution not found."


class QueueFull(AtlasError):
    status, code = 503, "QUEUE_FULL"
    message = "The execution queue is full; nothing was started. Retry in a little while."


def start_execution(org_id: str, user_id: str | None, workflow_id: str, *, trigger_data: dict, input_data: dict,
                    priority: int = 5, scheduled_at: datetime | None = None, context: dict | None = None,
                    test_mode: bool = False, idempotency_key: str | None = None) -> tuple[Execution, bool]:
    """Commit a new run, then hand it to the workers. Returns (execution, created); a repeated key returns the first."""
    workflow = get_workflow(org_id, workflow_id)
    if idempotency_key:
        earlier = _run_with_key(org_id, workflow.id, idempotency_key)
        if earlier is not None:
            return earlier, False
    version, definition = runnable_definition(workflow, test_mode)
    if queue.depth() >= current_app.config["ATLAS_MAX_QUEUE_DEPTH"]:
        raise QueueFull()
    execution = _new_run(org_id, user_id, workflow.id, version, definition, input_data, trigger_data=trigger_data,
                         context=context, priority=priority, test_mode=test_mode, scheduled_at=scheduled_at,
                         idempotency_key=idempotency_key)
    execution_id, job_id = execution.id, execution.job_id
    db.session.add(execution)
    try:
        db.session.commit()
    except IntegrityError:  # the same key, committed by a concurrent request
        db.session.rollback()
        return _run_with_key(org_id, workflow_id, idempotency_key), False
    future = scheduled_at if scheduled_at and scheduled_at > utcnow() else None
    queue.enqueue_run(execution_id, priority, job_id, at=future)
    return execution, True


MAX_BATCH = 500  # runs one batch request may start


def start_executions(org_id: str, user_id: str | None, workflow_id: str, runs: list[dict], *, priority: int = 5,
                     scheduled_at: datetime | None = None, test_mode: bool = False,
                     idempotency_key: str | None = None) -> tuple[list[Execution], bool]:
    """Start many runs of one workflow at once (enroll a list of contacts): one commit for every row and job id,
    then one Redis round trip for every job. All or nothing; a repeated key returns the first batch's runs."""
    workflow = get_workflow(org_id, workflow_id)
    keys = [f"{idempotency_key}#{i}" for i in range(len(runs))] if idempotency_key else [None] * len(runs)
    if idempotency_key:
        earlier = _batch_with_key(org_id, workflow.id, idempotency_key)
        if earlier:
            return earlier, False
    version, definition = runnable_definition(workflow, test_mode)
    if queue.depth() + len(runs) > current_app.config["ATLAS_MAX_QUEUE_DEPTH"]:
        raise QueueFull()
    now = utcnow()
    made = [_new_run(org_id, user_id, workflow.id, version, definition, run["input_data"],
                     trigger_data=run["trigger_data"], context=run.get("context"), priority=priority,
                     test_mode=test_mode, scheduled_at=scheduled_at, idempotency_key=key, created_at=now)
            for run, key in zip(runs, keys)]
    db.session.add_all(made)
    try:
        db.session.commit()
    except IntegrityError:  # the same key, committed by a concurrent request
        db.session.rollback()
        return _batch_with_key(org_id, workflow.id, idempotency_key), False
    future = scheduled_at if scheduled_at and scheduled_at > utcnow() else None
    queue.enqueue_runs([(e.id, priority, e.job_id) for e in made], at=future)
    return made, True


def _new_run(org_id: str, user_id: str | None, workflow_id: str, version: int, definition: dict | None,
             input_data: dict, *, trigger_data: dict, context: dict | None, priority: int, test_mode: bool,
             scheduled_at: datetime | None, idempotency_key: str | None, created_at: datetime | None = None):
    """A queued run with its id and its first job's id, not yet added to the session (the caller commits it)."""
    contact_id, contact = contacts.for_run(org_id, input_data)
    execution = Execution(id=new_id(), organization_id=org_id, workflow_id=workflow_id, version=version,
                          definition=definition, priority=priority, test_mode=test_mode, contact=contact,
                          contact_id=contact_id, trigger_data=trigger_data, input_data=input_data,
                          context=context or {}, scheduled_at=scheduled_at, idempotency_key=idempotency_key,
                          created_by=user_id, status=ExecutionStatus.QUEUED, created_at=created_at or utcnow())
    runner.next_job(execution)  # named before the one commit: the row and its job id land together
    return execution


def _batch_with_key(org_id: str, workflow_id: str, key: str) -> list[Execution]:
    """The runs an earlier batch with this Idempotency-Key started, in their order."""
    first = _run_with_key(org_id, workflow_id, f"{key}#0")
    if first is None:
        return []
    rows = db.session.scalars(scoped(Execution, org_id).where(
        Execution.workflow_id == workflow_id,
        Execution.idempotency_key.like(f"{_escape_like(key)}#%", escape="\\"))).all()
    mine = [e for e in rows if e.idempotency_key.rsplit("#", 1)[0] == key]  # not those of a key "<key>#..."
    return sorted(mine, key=lambda e: int(e.idempotency_key.rsplit("#", 1)[1]))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _run_with_key(org_id: str, workflow_id: str, key: str) -> Execution | None:
    """The run an earlier request with this Idempotency-Key started; the key cannot answer for another workflow."""
    earlier = db.session.scalar(scoped(Execution, org_id).where(Execution.idempotency_key == key))
    if earlier is not None and earlier.workflow_id != workflow_id:
        raise Conflict("This Idempotency-Key was already used to run another workflow; send a new key.",
                       code="IDEMPOTENCY_KEY_REUSED")
    return earlier


def runnable_definition(workflow, test_mode: bool) -> tuple[int, dict | None]:
    """Live runs use the published version; a test run tries the definition as it is now being edited."""
    if not test_mode:
        if workflow.status != WorkflowStatus.ACTIVE:
            raise Conflict(f"The workflow is {workflow.status}; activate it to run it, or run it in test mode.",
                           code="WORKFLOW_NOT_ACTIVE")
        return workflow.version, None
    definition, issues = check_definition(workflow.workflow_data, workflow.trigger_type)
    if has_errors(issues):
        raise AtlasError("The workflow has errors, so it cannot run; fix the errors listed in validation.",
                         code="INVALID_WORKFLOW_DATA", status=422, validation=issues)
    return workflow.version, definition.to_dict()


def cancel_execution(org_id: str, workflow_id: str, execution_id: str) -> Execution:
    """Stop a run that has not finished; a finished one is left as it is (409)."""
    execution = get_execution(org_id, workflow_id, execution_id)
    now = utcnow()
    result = db.session.execute(update(Execution).where(
        Execution.id == execution.id, Execution.status.not_in(TERMINAL)).values(
        status=ExecutionStatus.CANCELLED, finished_at=now, resume_at=None, correlation_key=None))
    db.session.commit()
    if result.rowcount != 1:
        raise Conflict(f"The execution already {execution.status}; there is nothing to cancel.",
                       code="EXECUTION_FINISHED")
    db.session.refresh(execution)
    realtime.publish([(execution.workflow_id, "execution_cancelled", {"executionId": execution.id,
                                                                      "status": execution.status})])
    return execution


def get_execution(org_id: str, workflow_id: str, execution_id: str) -> Execution:
    """A run of this workflow of the organization (WORKFLOW_NOT_FOUND first, then EXECUTION_NOT_FOUND)."""
    get_workflow(org_id, workflow_id)
    execution = db.session.scalar(scoped(Execution, org_id).where(
        Execution.id == execution_id, Execution.workflow_id == workflow_id))
    if execution is None:
        raise ExecutionNotFound()
    return execution


def list_executions(org_id: str, workflow_id: str, *, status=None, start_date=None, end_date=None, page=1,
                    limit=20) -> tuple[list[Execution], dict, dict]:
    """One page of the workflow's runs, newest first; analytics over every run in the dates (whatever the status)."""
    get_workflow(org_id, workflow_id)
    query = scoped(Execution, org_id).where(Execution.workflow_id == workflow_id)
    if start_date:
        query = query.where(Execution.created_at >= start_date)
    if end_date:
        query = query.where(Execution.created_at < end_date)
    analytics = _analytics(query)
    if status:
        query = query.where(Execution.status == status)
    rows, pagination = paginate(query.order_by(Execution.created_at.desc(), Execution.id), page, limit)
    return rows, pagination, analytics


def _analytics(query) -> dict:
    """Totals, success rate, mean duration and failure reasons of live (not test) runs."""
    runs = query.where(Execution.test_mode.is_(False)).subquery()
    total, completed, failed, avg = db.session.execute(select(
        func.count(), func.count().filter(runs.c.status == ExecutionStatus.COMPLETED),
        func.count().filter(runs.c.status == ExecutionStatus.FAILED),
        func.avg(runs.c.duration_ms).filter(runs.c.status == ExecutionStatus.COMPLETED))).one()
    reasons = db.session.execute(select(runs.c.error_code, func.count(), func.max(runs.c.error))
                                 .where(runs.c.status == ExecutionStatus.FAILED)
                                 .group_by(runs.c.error_code).order_by(func.count().desc())).all()
    finished = completed + failed
    return {"total_executions": total, "success_rate": round(completed / finished, 4) if finished else None,
            "avg_execution_time": round(avg, 2) if avg is not None else None,
            "failure_reasons": [{"code": code, "count": count, "example": example} for code, count, example in reasons]}


def execution_details(org_id: str, workflow_id: str, execution_id: str) -> dict:
    """The run, its step attempts in order, a timeline, performance and its log."""
    execution = get_execution(org_id, workflow_id, execution_id)
    step_rows = list(db.session.scalars(select(ExecutionStep).where(ExecutionStep.execution_id == execution.id)
                                        .order_by(ExecutionStep.started_at, ExecutionStep.id)))
    timeline = [{"at": execution.created_at, "event": "queued", "node_id": None}]
    timeline += [{"at": s.finished_at, "event": f"step_{s.status}", "node_id": s.node_id} for s in step_rows]
    if execution.finished_at:
        timeline.append({"at": execution.finished_at, "event": execution.status, "node_id": None})
    active = sum(s.duration_ms for s in step_rows)
    performance = {"total_duration_ms": execution.duration_ms, "active_ms": round(active, 3),
                   "step_count": len(step_rows),
                   "queue_delay_ms": _ms(execution.started_at, execution.created_at)}
    debug = {"state": execution.state, "jobId": execution.job_id, "enqueues": execution.enqueue_count,
             "resumeAt": execution.resume_at.isoformat() if execution.resume_at else None,
             "waitEvent": execution.wait_event}
    return {"execution": execution, "steps": step_rows, "timeline": timeline, "performance": performance,
            "logs": execution.logs, "debug_info": debug}


def _ms(later, earlier) -> float | None:
    return round((later - earlier).total_seconds() * 1000, 3) if later and earlier else None


def deliver_event(org_id: str, event: str, contact_id: str, payload: dict) -> list[str]:
    """An event for a contact: runs waiting for it go on along their event branch; runs whose goal it is (by event,
    or by a condition that now holds, e.g. the contact became a member) jump there, even in the middle of a wait."""
    resumed = []
    waiting = db.session.scalars(scoped(Execution, org_id).where(
        Execution.contact_id == contact_id, Execution.status == ExecutionStatus.WAITING).with_for_update()).all()
    now = utcnow()
    for execution in waiting:
        definition = runner.definition_of(execution)
        state = RunState.from_dict(execution.state) if execution.state else engine.start(definition)
        contact = contacts.current_data(org_id, contact_id, execution.contact)
        goal, how = engine.goal_for_event(definition, event), "event"
        if goal is None or goal in state.path:
            goal, how = engine.goal_by_condition(definition, state, trigger=execution.trigger_data, contact=contact,
                                                 now=now), "condition"
        if goal is not None and goal not in state.path:
            state = runner.abandon_wait(execution, definition, state, goal, how)
        elif execution.correlation_key == runner.correlation_key(event, contact_id) and state.waiting:
            state = runner.end_wait(execution, definition, state, branch="event", received=payload)
        else:
            continue
        execution.state, execution.status = state.to_dict(), ExecutionStatus.QUEUED
        execution.resume_at = execution.wait_event = execution.correlation_key = None
        runner.deliver(execution)
        resumed.append(execution.id)
    return resumed


ESTIMATE_TTL = 300  # seconds an estimate is reused: it is computed from a week of step timings, not per request


def estimate_for(workflow_id: str, org_id: str, version: int) -> float | None:
    """Active milliseconds a run of this version takes: the last week's step timings where there are any, else the
    stated defaults. Cached for a few minutes, so starting a run does not read the workflow's whole history."""
    key = f"atlas:estimate:{workflow_id}:{version}"
    cached = cache.get(key)
    if cached is not None:
        return cached["ms"]
    workflow = get_workflow(org_id, workflow_id)
    definition, _ = check_definition(workflow.workflow_data, workflow.trigger_type)
    estimate = estimate_performance(definition, step_timings(workflow.id))["estimated_duration_ms"]
    cache.set(key, {"ms": estimate}, timeout=ESTIMATE_TTL)
    return estimate
