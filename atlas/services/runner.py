"""Running executions: claim, advance with the engine, persist, schedule; the reconciler; events for waiting runs.

The database is the source of truth. A worker claims a run with a conditional UPDATE (so two deliveries of the same
job run it once), holds a lease while it works, and commits the steps and the new state in one short transaction.
Whatever Redis loses, reconcile() finds in the database and delivers again.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, insert, or_, select, update

from atlas import realtime
from atlas.core import engine, steps
from atlas.core.definition import WorkflowDefinition
from atlas.core.engine import Outcome, RunState
from atlas.extensions import db
from atlas.models import Execution, ExecutionStatus, ExecutionStep, Workflow, WorkflowVersion
from atlas.models.base import utcnow
from atlas.services import contacts, effects, queue

log = logging.getLogger(__name__)
_DEFINITIONS: OrderedDict = OrderedDict()  # (workflow id, version) -> parsed definition; versions are immutable
_SIDE_EFFECTS: dict = {}  # (workflow id, version) -> whether a step has side effects
_CACHE_SIZE = 512


class RunCancelled(Exception):
    """Raised by a checkpoint when the run was cancelled meanwhile; carries what ran so far."""

    def __init__(self, records: list, state: RunState):
        super().__init__("the run was cancelled")
        self.records, self.state = records, state


def definition_of(execution: Execution) -> WorkflowDefinition:
    """The definition the run executes: its own copy (test runs of drafts) or its published version."""
    if execution.definition is not None:
        return WorkflowDefinition.from_dict(execution.definition)
    key = (execution.workflow_id, execution.version)
    if key not in _DEFINITIONS:
        data = db.session.scalar(select(WorkflowVersion.workflow_data).where(
            WorkflowVersion.workflow_id == execution.workflow_id, WorkflowVersion.version == execution.version))
        _DEFINITIONS[key] = WorkflowDefinition.from_dict(data)
        if len(_DEFINITIONS) > _CACHE_SIZE:
            _DEFINITIONS.popitem(last=False)
    return _DEFINITIONS[key]


def deliver(execution: Execution, at=None) -> None:
    """Commit the execution with a fresh deterministic job id, then enqueue that job."""
    next_job(execution)
    db.session.commit()
    queue.enqueue_run(execution.id, execution.priority, execution.job_id, at=at)


def next_job(execution: Execution) -> str:
    """Name the execution's next delivery (run-<id>-<n>); the caller commits before enqueueing it."""
    execution.enqueue_count = (execution.enqueue_count or 0) + 1
    execution.job_id = f"run-{execution.id}-{execution.enqueue_count}"
    return execution.job_id


def _claim(execution_id: str, worker: str) -> Execution | None:
    """Take the run if it is queued (and due), due after a wait, or running on an expired lease; None otherwise.

    The claim is not committed: the transaction it opens holds the run's row (PostgreSQL) or the write lock (SQLite)
    until the first commit, which is the outcome for a run without side effects, or the checkpoint before a step
    with side effects. A cancellation waits for it, and nobody else can take the run meanwhile.
    """
    claimed = db.session.execute(
        update(Execution).where(Execution.id == execution_id, _runnable(utcnow()))
        .values(status=ExecutionStatus.RUNNING, lease_until=_lease_until(), worker=worker[:120])
        .returning(Execution), execution_options={"synchronize_session": False}).scalar_one_or_none()
    if claimed is None:
        db.session.rollback()
    return claimed


def _lease_until():
    """How long a worker holds a run: past the job timeout (RQ stops the job by then), plus a grace for clock skew."""
    config = current_app.config
    return utcnow() + timedelta(seconds=config["ATLAS_JOB_TIMEOUT"] + config["ATLAS_LEASE_GRACE_SECONDS"])


def _runnable(now):
    """Runs a worker may take now."""
    return or_(and_(Execution.status == ExecutionStatus.QUEUED,
                    or_(Execution.scheduled_at.is_(None), Execution.scheduled_at <= now)),
               and_(Execution.status == ExecutionStatus.WAITING, Execution.resume_at <= now),
               and_(Execution.status == ExecutionStatus.RUNNING, Execution.lease_until < now))


def reconcile(limit: int = 500) -> int:
    """Deliver again every run that should be with a worker but whose job Redis does not hold; safe in parallel.

    Queued runs whose job is gone, runs whose worker died (lease expired) and waits that are due: a Redis restart
    with an empty dataset, or a worker killed mid-run, loses nothing. Returns how many were delivered.
    """
    grace = utcnow() - timedelta(seconds=current_app.config["ATLAS_RECONCILE_SECONDS"])
    candidates = db.session.scalars(select(Execution).where(_runnable(grace), or_(
        Execution.status != ExecutionStatus.QUEUED, Execution.created_at < grace)).limit(limit)).all()
    delivered = 0
    for execution in candidates:
        # A run whose worker died is still running, and Redis says its job started: only a delivery waiting counts.
        orphaned = execution.status == ExecutionStatus.RUNNING
        if execution.job_id and queue.job_pending(execution.job_id, started=not orphaned):
            continue
        deliver(execution)
        delivered += 1
    db.session.commit()
    return delivered


def run_batch(execution_ids: list[str], worker: str = "") -> list[str]:
    """Run together, in one transaction, those of these runs whose definition has no step with side effects: one
    claim, one insert of every step row, one commit, one pipeline of live events. Returns the ids of the other runs,
    for run_execution one by one. If anything goes wrong nothing is committed and every id is returned."""
    pure = _pure(execution_ids)
    if not pure:
        return list(execution_ids)
    try:
        rows, live, later = _advance_batch(pure, worker)
        if rows:
            db.session.execute(insert(ExecutionStep), rows)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("a batch of %d runs failed; running them one by one", len(pure))
        return list(execution_ids)
    realtime.publish(live)
    for execution_id, priority, job_id, at in later:
        queue.enqueue_run(execution_id, priority, job_id, at=at)
    return [i for i in execution_ids if i not in set(pure)]


def _pure(execution_ids: list[str]) -> list[str]:
    """The runs whose definition (their version's, or their own for a test of a draft) has no side-effect step."""
    rows = db.session.execute(select(Execution.id, Execution.workflow_id, Execution.version, Execution.definition)
                              .where(Execution.id.in_(execution_ids))).all()  # a JSON null is no SQL NULL
    db.session.rollback()  # a read: the claim below opens the write transaction
    return [row.id for row in rows if row.definition is None and not _has_side_effects(row.workflow_id, row.version)]


def _has_side_effects(workflow_id: str, version: int) -> bool:
    """Whether the version has a step with side effects (or of an unknown type: such a run goes alone). Versions
    are immutable, so the answer is kept beside the parsed definition."""
    key = (workflow_id, version)
    if key not in _SIDE_EFFECTS:
        definition = definition_of(Execution(workflow_id=workflow_id, version=version, definition=None))
        known = {t.key: t for t in steps.all_types()}
        _SIDE_EFFECTS[key] = any(n.type not in known or known[n.type].side_effects for n in definition.nodes)
        if len(_SIDE_EFFECTS) > _CACHE_SIZE:
            _SIDE_EFFECTS.pop(next(iter(_SIDE_EFFECTS)))
    return _SIDE_EFFECTS[key]


def _advance_batch(execution_ids: list[str], worker: str):
    """Claim and advance the runs in this transaction; the step rows, live events and later deliveries to make."""
    now = utcnow()
    claimed = db.session.execute(
        update(Execution).where(Execution.id.in_(execution_ids), _runnable(now))
        .values(status=ExecutionStatus.RUNNING, lease_until=_lease_until(), worker=worker[:120])
        .returning(Execution), execution_options={"synchronize_session": False}).scalars().all()
    rows, live, later, finished = [], [], [], {}
    for execution in claimed:
        definition = definition_of(execution)
        state = RunState.from_dict(execution.state) if execution.state else engine.start(definition)
        if state.waiting:
            state = end_wait(execution, definition, state)
        if execution.started_at is None:
            live.append(_event(execution, "execution_started", version=execution.version,
                               testMode=execution.test_mode))
            execution.started_at = now
        contact = contacts.current_data(execution.organization_id, execution.contact_id, execution.contact)
        outcome = engine.advance(definition, state, trigger=execution.trigger_data, contact=contact,
                                 execution_id=execution.id, test_mode=execution.test_mode)
        rows += step_rows(execution, outcome.records)
        live += [_step_event(execution, r) for r in outcome.records]
        if apply_outcome(execution, outcome, utcnow()):
            finished[execution.workflow_id] = finished.get(execution.workflow_id, 0) + 1
        if execution.status == ExecutionStatus.WAITING and outcome.resume_at is not None:
            later.append((execution.id, execution.priority, next_job(execution), outcome.resume_at))
        live.append(_outcome_event(execution))
    for workflow_id, runs in finished.items():
        _count_run(workflow_id, utcnow(), runs)
    return rows, live, later


def run_execution(execution_id: str, worker: str = "") -> str | None:
    """Advance one run as far as it goes now; returns its new status, or None if it was not ours to run."""
    execution = _claim(execution_id, worker)
    if execution is None:
        return None
    definition = definition_of(execution)
    state = RunState.from_dict(execution.state) if execution.state else engine.start(definition)
    if state.waiting:
        state = end_wait(execution, definition, state)
    status, outcome = advance_once(execution, definition, state, row_held=True)
    if status == ExecutionStatus.WAITING and outcome.resume_at is not None:
        deliver(execution, at=outcome.resume_at)
    return status


def advance_once(execution: Execution, definition: WorkflowDefinition, state: RunState, *,
                 row_held: bool = False) -> tuple[str, Outcome]:
    """Advance a claimed run until it stops, committing steps and state and publishing live events as it goes.

    `row_held`: this transaction still holds the run's row from the claim, so no cancellation can have come in
    before the first commit.
    """
    held = [row_held]
    live = [_event(execution, "execution_started", version=execution.version, testMode=execution.test_mode)] \
        if execution.started_at is None else []
    execution.started_at = execution.started_at or utcnow()
    saved: list[int] = [0]

    def checkpoint(records, current_state):
        _save_steps(execution, records[saved[0]:])
        live.extend(_step_event(execution, r) for r in records[saved[0]:])
        saved[0] = len(records)
        execution.state = current_state.to_dict()
        execution.lease_until = _lease_until()
        cancelled = _status_for_update(execution.id) == ExecutionStatus.CANCELLED
        db.session.commit()  # also ends the transaction: none stays open while a step with side effects runs
        held[0] = False
        realtime.publish(live)
        live.clear()
        if cancelled:
            raise RunCancelled(records, current_state)

    try:
        contact = contacts.current_data(execution.organization_id, execution.contact_id, execution.contact)
        outcome = engine.advance(definition, state, trigger=execution.trigger_data, contact=contact,
                                 execution_id=execution.id, test_mode=execution.test_mode, checkpoint=checkpoint,
                                 effects=effects.for_execution(execution))
    except RunCancelled as stop:  # cancelled while it ran: no further step with side effects runs
        outcome = Outcome(ExecutionStatus.CANCELLED, stop.state, stop.records)
    _save_steps(execution, outcome.records[saved[0]:])
    live.extend(_step_event(execution, r) for r in outcome.records[saved[0]:])
    status, event = _save_outcome(execution, outcome, row_held=held[0])
    realtime.publish([*live, event])
    return status, outcome


def _event(execution: Execution, name: str, **data) -> tuple[str, str, dict]:
    """A live event about this run, for its workflow's stream."""
    return execution.workflow_id, name, {"executionId": execution.id, **data}


def _step_event(execution: Execution, record) -> tuple[str, str, dict]:
    return _event(execution, "step_completed", nodeId=record.node_id, stepType=record.step_type,
                  status=record.status, attempt=record.attempt, branch=record.branch, output=record.output,
                  error=record.error, durationMs=round(record.duration_ms, 3))


def _outcome_event(execution: Execution) -> tuple[str, str, dict]:
    """execution_completed / _failed / _waiting / _cancelled, with what a page needs to show it."""
    return _event(execution, f"execution_{execution.status}", status=execution.status,
                  durationMs=execution.duration_ms, error=execution.error, errorCode=execution.error_code,
                  failedNode=execution.failed_node, currentNode=execution.current_node,
                  resumeAt=execution.resume_at.isoformat() if execution.resume_at else None)


def end_wait(execution: Execution, definition: WorkflowDefinition, state: RunState, *, branch: str | None = None,
             received: dict | None = None) -> RunState:
    """The wait is over: its step row is completed (with what arrived) and the run moves out along its branch."""
    resumed = engine.resume(definition, state, branch=branch, received=received)
    _close_wait(execution, state.current, "completed", branch or state.waiting_branch, resumed.outputs[state.current])
    return resumed


def abandon_wait(execution: Execution, definition: WorkflowDefinition, state: RunState, goal_id: str,
                 how: str = "event") -> RunState:
    """A goal (its event, or its condition now holding) pulls the run away from its wait: the wait's step row says
    it was skipped."""
    if state.waiting:
        _close_wait(execution, state.current, "skipped", None, state.outputs.get(state.current))
    return engine.jump_to_goal(definition, state, goal_id, how)


def _close_wait(execution: Execution, node_id: str, status: str, branch: str | None, output: dict | None) -> None:
    step = db.session.scalar(select(ExecutionStep).where(
        ExecutionStep.execution_id == execution.id, ExecutionStep.node_id == node_id,
        ExecutionStep.status == "waiting").order_by(ExecutionStep.attempt.desc()))
    if step is not None:
        now = utcnow()
        step.status, step.branch, step.output, step.finished_at = status, branch, output, now
        step.duration_ms = (now - step.started_at).total_seconds() * 1000


def _save_steps(execution: Execution, records: list) -> None:
    """Insert step rows in one statement, and a log line for each."""
    if records:
        db.session.execute(insert(ExecutionStep), step_rows(execution, records))


def step_rows(execution: Execution, records: list) -> list[dict]:
    """The execution_steps rows of these attempts; the run's log gets a line for each."""
    execution.logs = [*execution.logs, *({"at": r.finished_at.isoformat(), "level": _level(r), "nodeId": r.node_id,
                                          "message": _log_message(r)} for r in records)]
    return [{"organization_id": execution.organization_id, "execution_id": execution.id, "node_id": r.node_id,
             "step_type": r.step_type, "attempt": r.attempt, "status": r.status, "input": r.input,
             "output": r.output, "branch": r.branch, "error": r.error, "error_code": r.error_code,
             "started_at": r.started_at, "finished_at": r.finished_at, "duration_ms": r.duration_ms}
            for r in records]


def _level(record) -> str:
    return {"failed": "error", "retrying": "warning"}.get(record.status, "info")


def _log_message(record) -> str:
    if record.error:
        return f"{record.node_id} ({record.step_type}) attempt {record.attempt} {record.status}: {record.error}"
    branch = f" -> {record.branch}" if record.branch else ""
    return f"{record.node_id} ({record.step_type}) {record.status}{branch} in {record.duration_ms:.1f} ms"


def _save_outcome(execution: Execution, outcome: Outcome, *, row_held: bool = False) -> tuple[str, tuple]:
    """Write the run's new status and state (a cancellation that came in meanwhile wins); returns the status and
    the live event, both taken before the commit expires the row's attributes (no reload afterwards)."""
    current = ExecutionStatus.RUNNING if row_held else _status_for_update(execution.id)
    if current == ExecutionStatus.CANCELLED:
        execution.state, execution.current_node = outcome.state.to_dict(), outcome.state.current
        execution.lease_until, execution.worker = None, None
        execution.status = ExecutionStatus.CANCELLED  # already so in the database; this copy was loaded before
        event = _outcome_event(execution)
        db.session.commit()
        return ExecutionStatus.CANCELLED, event
    if apply_outcome(execution, outcome, utcnow()):
        _count_run(execution.workflow_id, execution.finished_at)
    status, event = execution.status, _outcome_event(execution)
    db.session.commit()
    return status, event


def apply_outcome(execution: Execution, outcome: Outcome, now) -> bool:
    """Set the run's new status and state on its row (not committed); True when a live run finished (to count)."""
    execution.state, execution.current_node = outcome.state.to_dict(), outcome.state.current
    execution.lease_until, execution.worker = None, None
    execution.resume_at, execution.wait_event, execution.correlation_key = outcome.resume_at, None, None
    if outcome.status in ("completed", "failed"):
        execution.status = ExecutionStatus(outcome.status)
        execution.finished_at = now
        execution.duration_ms = (now - execution.started_at).total_seconds() * 1000
        execution.error, execution.error_code, execution.failed_node = outcome.error, outcome.error_code, \
            outcome.failed_node
        return not execution.test_mode
    execution.status = ExecutionStatus.WAITING  # for time or an event, or to retry a step later
    execution.error, execution.error_code = outcome.error, outcome.error_code
    if outcome.wait_event:
        execution.wait_event = outcome.wait_event
        execution.correlation_key = correlation_key(outcome.wait_event, execution.contact_id)
    return False


def _status_for_update(execution_id: str) -> str:
    """The run's status as committed, its row locked until the commit (a cancellation cannot slip in between)."""
    return db.session.scalar(select(Execution.status).where(Execution.id == execution_id).with_for_update())


def _count_run(workflow_id: str, now, runs: int = 1) -> None:
    db.session.execute(update(Workflow).where(Workflow.id == workflow_id).values(
        usage_count=Workflow.usage_count + runs, last_run_at=now))


def correlation_key(event: str, contact_id: str | None) -> str | None:
    """What an awaited event is matched on: its type and the run's contact."""
    return f"{event}:{contact_id}" if contact_id else None
