"""/api/v2/workflows/{id}/execute and .../executions: the seed's section 2, Workflow Execution."""
from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from atlas.api import execution_schemas as s
from atlas.errors import ValidationFailed
from atlas.services import executions as service
from atlas.services import queue, testing

blp = Blueprint("executions", __name__, url_prefix="/api/v2/workflows", description="Workflow execution")


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key.strip()) <= 200:
        raise ValidationFailed("Idempotency-Key must be 1 to 200 characters.",
                               validation=[{"field": "Idempotency-Key", "message": "1 to 200 characters"}])
    return key.strip() if key else None


@blp.route("/<workflow_id>/execute")
class Execute(MethodView):
    @blp.arguments(s.ExecuteWorkflowRequest)
    @blp.response(202, s.ExecuteWorkflowResponse)
    def post(self, body, workflow_id):
        """Start a run (Idempotency-Key makes a repeated request return the first answer)"""
        g.audit_action = "workflow.execute"  # a refused run is recorded under its name too
        execution, _ = service.start_execution(g.organization.id, g.user.id, workflow_id,
                                               idempotency_key=_idempotency_key(), **body)
        g.audit_target = ("execution", execution.id)
        estimate = service.estimate_for(execution.workflow_id, g.organization.id, execution.version)
        return {"execution_id": execution.id, "status": "queued", "estimated_duration": estimate,
                "queue_position": queue.position(execution.priority, execution.job_id)}


@blp.route("/<workflow_id>/execute/batch")
class ExecuteBatch(MethodView):
    @blp.arguments(s.ExecuteBatchRequest)
    @blp.response(202, s.ExecuteBatchResponse)
    def post(self, body, workflow_id):
        """Start many runs at once, e.g. enroll a list of contacts (all or nothing; Idempotency-Key as execute)"""
        g.audit_action = "workflow.execute_batch"
        made, _ = service.start_executions(g.organization.id, g.user.id, workflow_id,
                                           idempotency_key=_idempotency_key(), **body)
        g.audit_target = ("workflow", workflow_id)
        estimate = service.estimate_for(made[0].workflow_id, g.organization.id, made[0].version)
        return {"executions": [{"execution_id": e.id, "status": "queued"} for e in made], "queued": len(made),
                "estimated_duration": estimate}


@blp.route("/<workflow_id>/executions")
class Executions(MethodView):
    @blp.arguments(s.ExecutionQuery, location="query")
    @blp.response(200, s.ExecutionHistoryResponse)
    def get(self, query, workflow_id):
        """The workflow's runs, newest first, with analytics"""
        rows, pagination, analytics = service.list_executions(g.organization.id, workflow_id, **query)
        return {"executions": rows, "analytics": analytics, "pagination": pagination}


@blp.route("/<workflow_id>/executions/<execution_id>")
class ExecutionById(MethodView):
    @blp.response(200, s.ExecutionDetailsResponse)
    def get(self, workflow_id, execution_id):
        """One run: its steps, timeline, performance and log"""
        return service.execution_details(g.organization.id, workflow_id, execution_id)


@blp.route("/<workflow_id>/executions/<execution_id>/cancel")
class CancelExecution(MethodView):
    @blp.response(200, s.ExecutionSchema)
    def post(self, workflow_id, execution_id):
        """Cancel a run that has not finished"""
        g.audit_action = "execution.cancel"  # a refused cancel is recorded under its name too
        execution = service.cancel_execution(g.organization.id, workflow_id, execution_id)
        g.audit_target = ("execution", execution.id)
        return execution


@blp.route("/<workflow_id>/test")
class TestWorkflow(MethodView):
    @blp.arguments(s.TestWorkflowRequest)
    @blp.response(200, s.TestWorkflowResponse)
    def post(self, body, workflow_id):
        """Run the workflow as edited, at once, in test mode (waits fast-forwarded, nothing sent)"""
        result = testing.run_test(g.organization.id, g.user.id, workflow_id, body["test_data"],
                                  step_by_step=body["step_by_step"],
                                  mock_external_services=body["mock_external_services"])
        g.audit_action, g.audit_target = "workflow.test", ("execution", result["test_execution_id"])
        return result
