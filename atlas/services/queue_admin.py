"""The execution queue as an organization sees it: status, jobs, and retrying failed runs from their failed step.

The database is the source of truth, so counts and job lists come from executions (a job is an execution's
delivery; its id in this API is the execution id); workers come from RQ.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from atlas.errors import Conflict
from atlas.extensions import db
from atlas.models import Execution, ExecutionStatus, Workflow
from atlas.models.base import utcnow
from atlas.services import queue, runner
from atlas.services.executions import ExecutionNotFound
from atlas.services.pagination import paginate
from atlas.services.tenancy import scoped

JOB_STATUSES = {"queued": [ExecutionStatus.QUEUED, ExecutionStatus.WAITING], "processing": [ExecutionStatus.RUNNING],
                "completed": [ExecutionStatus.COMPLETED], "failed": [ExecutionStatus.FAILED]}
THROUGHPUT_WINDOW = timedelta(minutes=5)


def status(org_id: str) -> dict:
    """Counts of the organization's runs by queue state, the workers, and the wait estimated from throughput."""
    counts = dict(db.session.execute(select(Execution.status, func.count()).where(
        Execution.organization_id == org_id).group_by(Execution.status)).all())
    queued = counts.get(ExecutionStatus.QUEUED, 0)
    per_second = _throughput(org_id)
    return {"total_jobs": sum(counts.values()), "processing_jobs": counts.get(ExecutionStatus.RUNNING, 0),
            "queued_jobs": queued, "waiting_jobs": counts.get(ExecutionStatus.WAITING, 0),
            "failed_jobs": counts.get(ExecutionStatus.FAILED, 0), "workers": queue.workers(),
            "throughput_per_second": round(per_second, 3),
            "estimated_wait_time": _wait_ms(queued, per_second)}


def _wait_ms(queued: int, per_second: float) -> int | None:
    """How long the queued runs take at the measured rate; None when runs wait but nothing finished lately."""
    if not queued:
        return 0
    return round(queued / per_second * 1000) if per_second else None


def _throughput(org_id: str) -> float:
    """Runs finished per second over the last few minutes (measured, not assumed)."""
    since = utcnow() - THROUGHPUT_WINDOW
    finished = db.session.scalar(select(func.count()).where(
        Execution.organization_id == org_id, Execution.finished_at >= since))
    return finished / THROUGHPUT_WINDOW.total_seconds()


def jobs(org_id: str, *, status=None, priority=None, workflow_id=None, page=1, limit=20) -> tuple[list, dict, dict]:
    """The organization's runs as queue jobs, newest first, with statistics over the same filters."""
    query = select(Execution, Workflow.name).join(Workflow, Workflow.id == Execution.workflow_id).where(
        Execution.organization_id == org_id)
    if priority is not None:
        query = query.where(Execution.priority == priority)
    if workflow_id:
        query = query.where(Execution.workflow_id == workflow_id)
    matching = query.subquery()
    by_status = dict(db.session.execute(select(matching.c.status, func.count()).group_by(matching.c.status)).all())
    if status:
        query = query.where(Execution.status.in_(JOB_STATUSES[status]))
    rows, pagination = paginate(query.order_by(Execution.created_at.desc(), Execution.id), page, limit, tuples=True)
    statistics = {name: sum(by_status.get(s, 0) for s in members) for name, members in JOB_STATUSES.items()}
    return [_job(execution, name) for execution, name in rows], statistics, pagination


def _job(execution: Execution, workflow_name: str) -> dict:
    return {"job_id": execution.id, "execution_id": execution.id, "rq_job_id": execution.job_id,
            "workflow_id": execution.workflow_id, "workflow_name": workflow_name,
            "status": next(k for k, v in JOB_STATUSES.items() if execution.status in v)
            if execution.status != ExecutionStatus.CANCELLED else "cancelled",
            "priority": execution.priority, "queue": queue.queue_name(execution.priority),
            "deliveries": execution.enqueue_count, "failed_node": execution.failed_node, "error": execution.error,
            "error_code": execution.error_code, "created_at": execution.created_at,
            "started_at": execution.started_at, "finished_at": execution.finished_at}


def retry(org_id: str, job_id: str, *, reset_retry_count: bool = False, new_priority: int | None = None) -> dict:
    """Run a failed execution again from its failed step; the steps that succeeded are not repeated."""
    execution = db.session.scalar(scoped(Execution, org_id).where(Execution.id == job_id))
    if execution is None:
        raise ExecutionNotFound()
    if execution.status != ExecutionStatus.FAILED:
        raise Conflict(f"Only failed runs can be retried; this one is {execution.status}.", code="NOT_RETRYABLE")
    _requeue(execution, reset_retry_count, new_priority)
    runner.deliver(execution)
    return {"success": True, "new_job_id": execution.job_id, "execution_id": execution.id,
            "estimated_start_time": utcnow() + timedelta(milliseconds=_queued_wait_ms(org_id))}


def _queued_wait_ms(org_id: str) -> int:
    """The expected wait before a run just queued starts (0 when it cannot be measured)."""
    queued = db.session.scalar(select(func.count()).where(Execution.organization_id == org_id,
                                                          Execution.status == ExecutionStatus.QUEUED))
    return _wait_ms(queued, _throughput(org_id)) or 0


def _requeue(execution: Execution, reset_retry_count: bool, new_priority: int | None) -> None:
    """Back to queued at the failed step, with a fresh set of attempts when asked."""
    state = dict(execution.state or {})
    if reset_retry_count:  # a fresh retry budget; attempt numbers go on counting
        state["spent"] = {**state.get("spent", {}), **state.get("attempts", {})}
    execution.state, execution.status = state, ExecutionStatus.QUEUED
    execution.priority = new_priority or execution.priority
    execution.error = execution.error_code = execution.finished_at = execution.duration_ms = None
    execution.logs = [*execution.logs, {"at": utcnow().isoformat(), "level": "info", "nodeId": execution.failed_node,
                                        "message": f"retried from step {execution.failed_node}"}]


def bulk_retry(org_id: str, *, workflow_id: str | None = None, since: datetime, until: datetime,
               error_code: str | None = None, reset_retry_count: bool = True, limit: int = 1000) -> dict:
    """Retry every failed run of a window (and workflow, and failure reason): the fix after a provider outage."""
    query = scoped(Execution, org_id).where(Execution.status == ExecutionStatus.FAILED,
                                            Execution.finished_at >= since, Execution.finished_at < until)
    if workflow_id:
        query = query.where(Execution.workflow_id == workflow_id)
    if error_code:
        query = query.where(Execution.error_code == error_code)
    retried = []
    for execution in db.session.scalars(query.order_by(Execution.finished_at).limit(limit)).all():
        _requeue(execution, reset_retry_count, None)
        runner.deliver(execution)
        retried.append(execution.id)
    return {"retried": len(retried), "execution_ids": retried}
