"""Test runs: the workflow as it is being edited, run at once in the request, waits fast-forwarded, nothing sent.

A test run is an ordinary execution flagged test_mode (so it has steps, a log and a detail page, streams live to
the builder, and stays out of analytics), advanced inline instead of through the queue. Time waits end at once;
a wait for an event takes its `event` branch when testData.events names that event, else its `timeout` branch.
"""
from __future__ import annotations

import time

from atlas.core import engine
from atlas.extensions import db
from atlas.models import Execution, ExecutionStatus, ExecutionStep
from atlas.models.base import utcnow
from atlas.services import contacts, runner
from atlas.services.executions import runnable_definition
from atlas.services.workflows import get_workflow

MAX_SLICES = 100  # waits fast-forwarded in one test run


def run_test(org_id: str, user_id: str | None, workflow_id: str, test_data: dict, *, step_by_step: bool = False,
             mock_external_services: bool = True) -> dict:
    """Run the workflow once in test mode and return every step's result, the timings and the log."""
    workflow = get_workflow(org_id, workflow_id)
    version, definition_data = runnable_definition(workflow, test_mode=True)
    contact_id, contact = contacts.for_run(org_id, test_data)
    execution = Execution(organization_id=org_id, workflow_id=workflow.id, version=version,
                          definition=definition_data, test_mode=True, status=ExecutionStatus.RUNNING,
                          trigger_data=dict(test_data.get("trigger") or {}), contact=contact, contact_id=contact_id,
                          input_data={"testData": test_data, "mockExternalServices": mock_external_services},
                          created_by=user_id)
    db.session.add(execution)
    db.session.commit()
    definition = runner.definition_of(execution)
    started = time.perf_counter()
    state = engine.start(definition)
    for _ in range(MAX_SLICES):
        status, outcome = runner.advance_once(execution, definition, state)
        if status != ExecutionStatus.WAITING:
            break
        state = _fast_forward(execution, definition, outcome, test_data.get("events") or {})
    return _report(execution, time.perf_counter() - started, step_by_step)


def _fast_forward(execution: Execution, definition, outcome, events: dict) -> engine.RunState:
    """End the wait now: an awaited event named in testData.events arrives, any other wait times out."""
    state = outcome.state
    if outcome.wait_event is not None and outcome.wait_event in events:
        state = runner.end_wait(execution, definition, state, branch="event", received=events[outcome.wait_event])
    elif state.waiting:
        state = runner.end_wait(execution, definition, state)
    execution.status, execution.resume_at = ExecutionStatus.RUNNING, None
    db.session.commit()
    return state


def _report(execution: Execution, elapsed: float, step_by_step: bool) -> dict:
    """The TestWorkflowResponse: one result per step attempt, in order (with the variables after it, step by step)."""
    rows = db.session.query(ExecutionStep).filter(ExecutionStep.execution_id == execution.id) \
        .order_by(ExecutionStep.started_at, ExecutionStep.id).all()
    results = [{"node_id": r.node_id, "step_type": r.step_type, "status": r.status, "attempt": r.attempt,
                "input": r.input, "output": r.output, "branch": r.branch, "error": r.error,
                "duration_ms": r.duration_ms} for r in rows]
    if step_by_step:
        variables: dict = {}
        for result in results:
            if result["step_type"] == "set_variable" and result["status"] == "completed":
                variables = {**variables, result["output"]["name"]: result["output"]["value"]}
            result["variables"] = variables
    performance = {"total_ms": round(elapsed * 1000, 3), "steps_ms": round(sum(r.duration_ms for r in rows), 3),
                   "step_count": len(rows), "status": execution.status, "finished_at": execution.finished_at or utcnow()}
    return {"test_execution_id": execution.id, "status": execution.status, "error": execution.error,
            "results": results, "performance": performance, "logs": execution.logs}
