"""/api/v2: Trigger definitions, a workflow's triggers, the enrollment decision log and trigger configuration."""
from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from atlas.api import trigger_schemas as s
from atlas.services import triggers as service

blp = Blueprint("triggers", __name__, url_prefix="/api/v2",
                description="Trigger definitions, a workflow's triggers, the enrollment decision log and trigger "
                            "configuration")


@blp.route("/triggers/definitions")
class TriggerDefinitions(MethodView):
    @blp.response(200, s.TriggerDefinitionsResponse)
    def get(self):
        """The trigger catalog: each type's category, config schema, sample payload and data paths"""
        return service.definitions()


@blp.route("/triggers/<workflow_id>")
class WorkflowTriggers(MethodView):
    @blp.response(200, s.WorkflowTriggersResponse)
    def get(self, workflow_id):
        """A workflow's triggers (the primary one first), webhook endpoints and scheduled triggers"""
        return service.workflow_triggers(g.organization.id, workflow_id)

    @blp.arguments(s.CreateTriggerRequest)
    @blp.response(201, s.CreateTriggerResponse)
    def post(self, body, workflow_id):
        """Add a trigger to a workflow"""
        trigger, advice = service.create_trigger(g.organization.id, g.user.id, workflow_id, body)
        g.audit_action, g.audit_target = "trigger.create", ("trigger", trigger.id)
        return {"trigger": service.row_view(trigger), "validation_results": advice,
                "webhook_endpoint": service.webhook_endpoint_url(g.organization.id, trigger)}


@blp.route("/triggers/<workflow_id>/<trigger_id>")
class WorkflowTriggerById(MethodView):
    @blp.arguments(s.UpdateTriggerRequest)
    @blp.response(200, s.CreateTriggerResponse)
    def put(self, body, workflow_id, trigger_id):
        """Change one of a workflow's extra triggers"""
        trigger, advice = service.update_trigger(g.organization.id, workflow_id, trigger_id, body)
        g.audit_action = "trigger.update"
        return {"trigger": service.row_view(trigger), "validation_results": advice,
                "webhook_endpoint": service.webhook_endpoint_url(g.organization.id, trigger)}

    @blp.response(200, s.DeleteTriggerResponse)
    def delete(self, workflow_id, trigger_id):
        """Remove one of a workflow's extra triggers (the primary one is changed on the workflow)"""
        g.audit_action = "trigger.delete"
        return {"success": True, "trigger_id": service.delete_trigger(g.organization.id, workflow_id, trigger_id)}


@blp.route("/config/triggers")
class TriggerConfig(MethodView):
    @blp.response(200, s.TriggerConfigResponse)
    def get(self):
        """Trigger options for the builder: the catalog, lead sources, forms, tags in use and custom fields"""
        return service.config_options(g.organization.id)


@blp.route("/workflows/<workflow_id>/enrollment-decisions")
class EnrollmentDecisions(MethodView):
    @blp.arguments(s.DecisionQuery, location="query")
    @blp.response(200, s.DecisionListResponse)
    def get(self, query, workflow_id):
        """Why contacts were or were not enrolled: one decision per event evaluated, newest first"""
        rows, pagination = service.enrollment_decisions(g.organization.id, workflow_id, **query)
        return {"decisions": rows, "pagination": pagination}
