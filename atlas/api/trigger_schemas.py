"""Request and response schemas of the trigger endpoints, the decision log and GET /api/v2/config/triggers."""
from marshmallow import fields, validate

from atlas.api.schemas import CamelSchema, PageQuery, PaginationSchema, Trimmed
from atlas.api.workflow_schemas import TRIGGER_TYPE, ValidationResult
from atlas.services.decisions import OUTCOMES

SCHEDULE_TYPES = ["immediate", "scheduled", "recurring", "cron"]


class TriggerDefinition(CamelSchema):
    type = fields.String()
    key = fields.String()
    category = fields.String()
    name = fields.String()
    description = fields.String()
    icon = fields.String()
    config_schema = fields.Dict()
    sample_payload = fields.Dict()
    event_type = fields.String()
    date_based = fields.Boolean()
    scheduled = fields.Boolean()
    provides = fields.List(fields.String(), metadata={"description": "trigger.* data paths a run can read"})
    defaults = fields.Dict()


class TriggerCategory(CamelSchema):
    key = fields.String()
    name = fields.String()
    description = fields.String()
    count = fields.Integer()


class TriggerDefinitionsResponse(CamelSchema):
    triggers = fields.List(fields.Nested(TriggerDefinition))
    categories = fields.List(fields.Nested(TriggerCategory))
    custom_triggers = fields.List(fields.Dict())


class TriggerItem(CamelSchema):
    id = fields.String(metadata={"description": "\"primary\" for the workflow's own trigger"})
    workflow_id = fields.String()
    primary = fields.Boolean()
    trigger_type = fields.String()
    trigger_name = fields.String()
    config = fields.Dict()
    schedule_type = fields.String()
    cron_expression = fields.String(allow_none=True)
    webhook_config = fields.Dict(allow_none=True)
    active = fields.Boolean()
    last_fired_at = fields.DateTime(allow_none=True)
    next_fire_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ScheduledTrigger(CamelSchema):
    trigger_id = fields.String()
    cron_expression = fields.String(allow_none=True)
    next_run_at = fields.DateTime(allow_none=True)
    last_run_at = fields.DateTime(allow_none=True)


class TriggerWebhookEndpoint(CamelSchema):
    id = fields.String()
    name = fields.String()
    endpoint_url = fields.String()
    active = fields.Boolean()
    reaches_by = fields.String(metadata={"enum": ["workflow", "trigger"], "description": "workflow: the endpoint "
                                         "starts this workflow (its workflowId); trigger: a webhook trigger of the "
                                         "workflow listens on it"})


class WorkflowTriggersResponse(CamelSchema):
    triggers = fields.List(fields.Nested(TriggerItem))
    webhook_endpoints = fields.List(fields.Nested(TriggerWebhookEndpoint))
    scheduled_triggers = fields.List(fields.Nested(ScheduledTrigger))


class CreateTriggerRequest(CamelSchema):
    trigger_type = fields.String(required=True, validate=TRIGGER_TYPE)
    trigger_name = Trimmed(validate=validate.Length(max=120))
    config = fields.Dict(load_default=dict)
    schedule_type = fields.String(validate=validate.OneOf(SCHEDULE_TYPES))
    cron_expression = fields.String(allow_none=True, validate=validate.Length(max=120))
    webhook_config = fields.Dict(allow_none=True)
    active = fields.Boolean()


class UpdateTriggerRequest(CreateTriggerRequest):
    trigger_type = fields.String(validate=TRIGGER_TYPE)
    config = fields.Dict()


class CreateTriggerResponse(CamelSchema):
    trigger = fields.Nested(TriggerItem)
    webhook_endpoint = fields.String(allow_none=True, metadata={
        "description": "for a webhook trigger naming an endpoint (config.endpointId): that endpoint's URL"})
    validation_results = fields.List(fields.Nested(ValidationResult))


class DeleteTriggerResponse(CamelSchema):
    success = fields.Boolean()
    trigger_id = fields.String()


class LeadSourceOption(CamelSchema):
    id = fields.String()
    key = fields.String()
    name = fields.String()


class FormOption(CamelSchema):
    id = fields.String()
    name = fields.String()
    fields_ = fields.List(fields.Raw(), data_key="fields", attribute="fields")


class TagOption(CamelSchema):
    tag = fields.String()
    count = fields.Integer()


class CustomFieldOption(CamelSchema):
    id = fields.String()
    key = fields.String()
    label = fields.String()
    field_type = fields.String()
    options = fields.List(fields.Raw())


class TriggerConfigResponse(CamelSchema):
    available_triggers = fields.List(fields.Nested(TriggerDefinition))
    lead_sources = fields.List(fields.Nested(LeadSourceOption))
    forms_list = fields.List(fields.Nested(FormOption))
    tags_list = fields.List(fields.Nested(TagOption))
    custom_fields = fields.List(fields.Nested(CustomFieldOption))


class DecisionQuery(PageQuery):
    contact_id = fields.String(validate=validate.Length(min=1, max=64))
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))


class DecisionSchema(CamelSchema):
    id = fields.String()
    workflow_id = fields.String()
    contact_id = fields.String(allow_none=True)
    event_id = fields.String(allow_none=True)
    event_type = fields.String()
    trigger_key = fields.String(allow_none=True)
    outcome = fields.String()
    reason = fields.String()
    detail = fields.Dict()
    execution_id = fields.String(allow_none=True)
    created_at = fields.DateTime()


class DecisionListResponse(CamelSchema):
    decisions = fields.List(fields.Nested(DecisionSchema))
    pagination = fields.Nested(PaginationSchema)
