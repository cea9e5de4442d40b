"""/api/v2/workflows: the seed's section 1, Workflows CRUD."""
from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from atlas.api import workflow_schemas as s
from atlas.api.context import ORG, access
from atlas.services import workflows as service

blp = Blueprint("workflows", __name__, url_prefix="/api/v2/workflows", description="Workflows CRUD")


def _audit(action: str, workflow) -> None:
    g.audit_action, g.audit_target = action, ("workflow", workflow.id)


@blp.route("")
class Workflows(MethodView):
    @blp.arguments(s.WorkflowListQuery, location="query")
    @blp.response(200, s.WorkflowListResponse)
    def get(self, query):
        """List the organization's workflows"""
        rows, pagination = service.list_workflows(g.organization.id, **query)
        return {"workflows": rows, "pagination": pagination, "filters": service.list_filters(g.organization.id)}

    @blp.arguments(s.CreateWorkflowRequest)
    @blp.response(201, s.CreateWorkflowResponse)
    def post(self, body):
        """Create a workflow"""
        result = service.create_workflow(g.organization.id, g.user.id, body)
        _audit("workflow.create", result.workflow)
        return {"workflow": result.workflow, "validation_results": result.issues,
                "estimated_performance": result.estimate}


@blp.route("/<workflow_id>")
class WorkflowById(MethodView):
    @blp.response(200, s.WorkflowDetailsResponse)
    def get(self, workflow_id):
        """A workflow with its triggers, variables, analytics and recent executions"""
        return service.workflow_details(g.organization.id, workflow_id)

    @blp.arguments(s.UpdateWorkflowRequest)
    @blp.response(200, s.UpdateWorkflowResponse)
    def put(self, body, workflow_id):
        """Update a workflow (partial: only the fields sent change)"""
        result = service.update_workflow(g.organization.id, g.user.id, workflow_id, body)
        _audit("workflow.update", result.workflow)
        return {"workflow": result.workflow, "validation_results": result.issues,
                "migration_warnings": result.migration_warnings}

    @blp.response(200, s.DeleteWorkflowResponse)
    def delete(self, workflow_id):
        """Archive a workflow (soft delete)"""
        workflow, previous = service.archive_workflow(g.organization.id, workflow_id)
        _audit("workflow.archive", workflow)
        archived = {"id": workflow.id, "name": workflow.name, "status": workflow.status,
                    "previous_status": previous, "archived_at": workflow.archived_at}
        return {"success": True, "archived_workflow": archived,
                "affected_executions": service.executions_in_flight(workflow)}


@blp.route("/<workflow_id>/validate")
@access(ORG, safe=("POST",))
class ValidateWorkflow(MethodView):
    @blp.arguments(s.ValidateWorkflowRequest)
    @blp.response(200, s.ValidateWorkflowResponse)
    def post(self, body, workflow_id):
        """Validate the saved definition, or a candidate one, without saving"""
        return service.validate_workflow(g.organization.id, workflow_id, body.get("workflow_data"))
