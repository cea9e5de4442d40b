"""Test runs: the workflow as it is being edited, run at once, waits fast-forwarded, nothing sent.

A test run is an ordinary execution flagged test_mode (so it has steps, a log and a detail page, streams live to
the builder, and stays out of analytics), advanced to its end in one go instead of slice by slice through the queue:
inside the request for the API (run_test), or by a worker for the builder (start_test), whose page follows it live.
Time waits end at once; a wait for an event takes its `event` branch when testData.events names that event, else
its `timeout` branch.
"""
from __future__ import annotations

import time

from atlas.core import engine
from atlas.core.validation import has_errors
from atlas.errors import AtlasError, Conflict, NotFound
from atlas.extensions import db
from atlas.models import TERMINAL, Execution, ExecutionStatus, ExecutionStep
from atlas.models.base import new_id, utcnow
from atlas.services import contacts, queue, runner
from atlas.services.executions import runnable_definition
from atlas.services.workflows import check_definition, get_workflow

MAX_SLICES = 100  # waits fast-forwarded in one test run


def run_test(org_id: str, user_id: str | None, workflow_id: str, test_data: dict, *, step_by_step: bool = False,
             mock_external_services: bool = True, definition: dict | None = None, trigger_type: str | None = None,
             trigger_config: dict | None = None, execution_id: str | None = None) -> dict:
    """Run the workflow once in test mode and return every step's result, the timings and the log.

    `definition`, `trigger_type` and `trigger_config` test those (the builder's draft) instead of the workflow's
    own; `execution_id` names the run in advance, so the builder can follow its live events from the first one.
    """
    execution = prepare_test(org_id, user_id, workflow_id, test_data, mock_external_services=mock_external_services,
                             definition=definition, trigger_type=trigger_type, trigger_config=trigger_config,
                             execution_id=execution_id)
    return advance_test(execution, step_by_step)


def start_test(org_id: str, user_id: str | None, workflow_id: str, test_data: dict, **draft) -> Execution:
    """Prepare a test run and hand it to a worker (the builder): the answer does not wait for its steps, which
    stream live as they finish. Takes run_test's keyword arguments."""
    execution = prepare_test(org_id, user_id, workflow_id, test_data, **draft)
    queue.enqueue_test(execution.id)  # if Redis is out, the run stays as it is and the page says no worker took it
    return execution


def run_queued_test(execution_id: str) -> str | None:
    """A worker's part of start_test: advance the prepared test run to its end; its status (None if it is gone)."""
    execution = db.session.get(Execution, execution_id)
    if execution is None or not execution.test_mode or execution.started_at is not None:
        return None  # gone, not a test, or already taken (a job delivered twice)
    return advance_test(execution)["status"]


def prepare_test(org_id: str, user_id: str | None, workflow_id: str, test_data: dict, *,
                 mock_external_services: bool = True, definition: dict | None = None, trigger_type: str | None = None,
                 trigger_config: dict | None = None, execution_id: str | None = None) -> Execution:
    """The test run, validated and committed, not yet started."""
    workflow = get_workflow(org_id, workflow_id)
    version, definition_data = _definition_to_test(workflow, definition, trigger_type)
    contact_id, contact = contacts.for_run(org_id, test_data)
    if execution_id is not None and db.session.get(Execution, execution_id) is not None:
        raise Conflict("A run with this id exists already; start the test again.", code="TEST_RUN_ID_TAKEN")
    context = {} if trigger_type is None and trigger_config is None else {
        "source": "builder_test", "triggerType": trigger_type or workflow.trigger_type,
        "triggerConfig": trigger_config if trigger_config is not None else workflow.trigger_config}
    execution_id = execution_id or new_id()
    trigger = dict(test_data.get("trigger") or {})
    if context:  # as a trigger's run reads it: the event's type, id and time beside the payload (which wins)
        trigger = {"type": context["triggerType"], "eventId": f"test-{execution_id}",
                   "occurredAt": utcnow().isoformat(), **trigger}
    execution = Execution(id=execution_id, organization_id=org_id, workflow_id=workflow.id,
                          version=version, definition=definition_data, test_mode=True, status=ExecutionStatus.RUNNING,
                          trigger_data=trigger, contact=contact, contact_id=contact_id,
                          input_data={"testData": test_data, "mockExternalServices": mock_external_services},
                          context=context, created_by=user_id)
    db.session.add(execution)
    db.session.commit()
    return execution


def advance_test(execution: Execution, step_by_step: bool = False) -> dict:
    """Run a prepared test run to its end, waits fast-forwarded; the TestWorkflowResponse."""
    test_data = (execution.input_data or {}).get("testData") or {}
    runnable = runner.definition_of(execution)
    started = time.perf_counter()
    state = engine.start(runnable)
    for _ in range(MAX_SLICES):
        status, outcome = runner.advance_once(execution, runnable, state)
        if status != ExecutionStatus.WAITING:
            break
        state = _fast_forward(execution, runnable, outcome, test_data.get("events") or {})
    return _report(execution, time.perf_counter() - started, step_by_step)


def report(org_id: str, execution_id: str) -> dict | None:
    """A test run's TestWorkflowResponse once it has ended; None while it runs (or waits for a worker)."""
    execution = db.session.get(Execution, execution_id)
    if execution is None or execution.organization_id != org_id or not execution.test_mode:
        raise NotFound("No such test run.", code="EXECUTION_NOT_FOUND")
    if execution.status not in TERMINAL:
        return None
    elapsed = ((execution.finished_at or utcnow()) - (execution.started_at or execution.created_at)).total_seconds()
    return _report(execution, elapsed, False)


def _definition_to_test(workflow, definition: dict | None, trigger_type: str | None) -> tuple[int, dict]:
    """The workflow's own definition as edited, or the one given (a draft's), refused while it has errors."""
    if definition is None:
        return runnable_definition(workflow, test_mode=True)
    parsed, issues = check_definition(definition, trigger_type or workflow.trigger_type)
    if has_errors(issues):
        raise AtlasError("The workflow has errors, so it cannot run; fix the errors listed in validation.",
                         code="INVALID_WORKFLOW_DATA", status=422, validation=issues)
    return workflow.version, parsed.to_dict()


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
                   "step_count": len(rows), "status": execution.status,
                   "finished_at": execution.finished_at or utcnow()}
    return {"test_execution_id": execution.id, "status": execution.status, "error": execution.error,
            "results": results, "performance": performance, "logs": execution.logs}
