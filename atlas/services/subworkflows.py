"""Effect handler for the run_workflow step: start another active workflow for the same contact, one level deeper.

A run's depth lives in Execution.context["depth"] (0 for a run started by a trigger or the API). A child run is one
deeper; past ATLAS_MAX_WORKFLOW_DEPTH the step fails with WORKFLOW_DEPTH_EXCEEDED, which is also what stops a
workflow that runs itself. The child's idempotency key is the parent's run and node, so a retry starts no second run.
"""
from __future__ import annotations

from flask import current_app

from atlas.core.steps.base import StepError
from atlas.errors import AtlasError
from atlas.extensions import db
from atlas.models import Workflow, WorkflowStatus
from atlas.services import contacts, effects, executions
from atlas.services.effects import EffectContext
from atlas.services.tenancy import scoped


def check_depth(depth: int) -> int:
    """The child's depth; WORKFLOW_DEPTH_EXCEEDED when it would pass the limit."""
    limit = current_app.config["ATLAS_MAX_WORKFLOW_DEPTH"]
    if depth + 1 > limit:
        raise StepError(f"This run is already {depth} workflow(s) deep; starting another would pass the limit of "
                        f"{limit} (ATLAS_MAX_WORKFLOW_DEPTH).", code="WORKFLOW_DEPTH_EXCEEDED")
    return depth + 1


def _target(org_id: str, workflow_id: str) -> Workflow:
    workflow = db.session.scalar(scoped(Workflow, org_id).where(Workflow.id == str(workflow_id)))
    if workflow is None:
        raise StepError(f"No workflow {workflow_id!r} in this organization.", code="WORKFLOW_NOT_FOUND")
    if workflow.status != WorkflowStatus.ACTIVE:
        raise StepError(f"The workflow {workflow.name!r} is {workflow.status}; only active workflows can be run.",
                        code="WORKFLOW_NOT_ACTIVE")
    return workflow


@effects.handler("run_workflow")
def run_workflow(ctx: EffectContext, params: dict) -> dict:
    """Start the workflow for the run's contact and go on without waiting for it."""
    depth = check_depth(ctx.depth)
    workflow = _target(ctx.org_id, params["workflow_id"])
    out = {"workflowId": workflow.id, "depth": depth}
    if ctx.mock:
        return {**out, "executionId": None, "status": "not_started", "mock": True}
    parent = {"executionId": ctx.execution_id, "workflowId": ctx.workflow_id, "nodeId": params.get("node_id")}
    contact = contacts.current_data(ctx.org_id, ctx.contact_id, {"id": ctx.contact_id} if ctx.contact_id else {})
    key = "subworkflow:" + str(params.get("idempotency_key", "")).rsplit(":", 1)[0]
    try:
        execution, _ = executions.start_execution(
            ctx.org_id, None, workflow.id, trigger_data={**(params.get("trigger") or {}), "parent": parent},
            input_data={"contact": contact, "mockExternalServices": ctx.mock}, test_mode=ctx.test_mode,
            context={"depth": depth, "parentExecutionId": ctx.execution_id, "parentWorkflowId": ctx.workflow_id},
            idempotency_key=key[:200])
    except AtlasError as exc:  # QUEUE_FULL is worth another try later; the rest is not
        raise StepError(exc.message, code=exc.code, retryable=exc.status == 503) from exc
    return {**out, "executionId": execution.id, "status": execution.status}
