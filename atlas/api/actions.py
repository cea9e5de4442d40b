"""/api/v2/actions/definitions and the published definition format: what the builder and clients build with."""
from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields

from atlas.api.context import ORG, PUBLIC, access
from atlas.api.schemas import CamelSchema
from atlas.core import steps
from atlas.core.schema import WORKFLOW_DEFINITION_SCHEMA
from atlas.services import action_tests, audit, messaging

blp = Blueprint("actions", __name__, url_prefix="/api/v2", description="Step types (actions) and the definition format")

CATEGORIES = {
    "control": ("Flow control", "Branch, split, wait and finish."),
    "communication": ("Messages", "Email and SMS to contacts, notifications to staff."),
    "crm": ("CRM", "Tags, fields, owners, tasks and lead status."),
    "integration": ("Integrations", "Webhooks and other workflows."),
}


class RetryPolicy(CamelSchema):
    max_attempts = fields.Integer()
    backoff_seconds = fields.Float()
    max_backoff_seconds = fields.Float()


class ActionDefinition(CamelSchema):
    type = fields.String()
    category = fields.String()
    name = fields.String()
    description = fields.String()
    icon = fields.String()
    config_schema = fields.Dict()
    output_schema = fields.Dict()
    side_effects = fields.Boolean()
    retry_policy = fields.Nested(RetryPolicy)
    terminal = fields.Boolean()
    branching = fields.Boolean()


class ActionCategory(CamelSchema):
    key = fields.String()
    name = fields.String()
    description = fields.String()
    count = fields.Integer()


class ActionDefinitionsResponse(CamelSchema):
    actions = fields.List(fields.Nested(ActionDefinition))
    categories = fields.List(fields.Nested(ActionCategory))
    custom_actions = fields.List(fields.Dict())
    integrations = fields.List(fields.Dict())


def _catalogue() -> dict:
    """Every registered step type and the categories in use."""
    types = steps.all_types()
    used = [key for key in CATEGORIES if any(t.category == key for t in types)]
    categories = [{"key": key, "name": CATEGORIES[key][0], "description": CATEGORIES[key][1],
                   "count": sum(1 for t in types if t.category == key)} for key in used]
    actions = [t.describe() for t in types]
    return {"actions": actions, "categories": categories, "custom_actions": [],
            "integrations": messaging.integrations()}


@blp.route("/actions/definitions")
class ActionDefinitions(MethodView):
    @blp.response(200, ActionDefinitionsResponse)
    def get(self):
        """The step types a workflow can use, with their config schemas"""
        return _catalogue()


@blp.route("/schemas/workflow-definition.json")
@access(PUBLIC)
class DefinitionSchema(MethodView):
    @blp.response(200)
    def get(self):
        """The workflowData format as a JSON Schema (draft 2020-12)"""
        return WORKFLOW_DEFINITION_SCHEMA


class TestActionRequest(CamelSchema):
    config = fields.Dict(load_default=dict, metadata={"description": "The step's config, as in a workflow node"})
    input_data = fields.Dict(load_default=dict, metadata={
        "description": "trigger, contact (or contactId of a contact of the organization), vars, steps"})
    mock_mode = fields.Boolean(load_default=True, metadata={"description": "Record instead of sending (default)"})


class ActionLog(CamelSchema):
    at = fields.String()
    level = fields.String()
    message = fields.String()


class ActionPerformance(CamelSchema):
    duration_ms = fields.Float()


class ActionError(CamelSchema):
    code = fields.String()
    message = fields.String()
    retryable = fields.Boolean()


class TestActionResponse(CamelSchema):
    success = fields.Boolean()
    output = fields.Dict()
    logs = fields.List(fields.Nested(ActionLog))
    performance = fields.Nested(ActionPerformance)
    error = fields.Nested(ActionError, allow_none=True)


@blp.route("/actions/test/<action_type>")
@access(ORG, safe=("POST",))
class TestAction(MethodView):
    @blp.arguments(TestActionRequest)
    @blp.response(200, TestActionResponse)
    def post(self, body, action_type):
        """Run one action with a config and sample data; mockMode (default) records instead of sending"""
        result = action_tests.run_test(g.organization.id, g.membership, action_type, body["config"],
                                       body["input_data"], mock=body["mock_mode"])
        if not body["mock_mode"]:  # the view is `safe` for mock runs; a live one changed things, so it is audited
            audit.record("action.test", organization_id=g.organization.id, user_id=g.user.id, target_type="action",
                         target_id=action_type[:64], status_code=200, request_id=g.request_id,
                         ip=request.remote_addr, details={"success": result["success"]})
        return result
