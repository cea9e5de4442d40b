"""/api/v2/actions/definitions and the published definition format: what the builder and clients build with."""
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields

from atlas.api.context import PUBLIC, access
from atlas.api.schemas import CamelSchema
from atlas.core import steps
from atlas.core.schema import WORKFLOW_DEFINITION_SCHEMA

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
    return {"actions": actions, "categories": categories, "custom_actions": [], "integrations": []}


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
