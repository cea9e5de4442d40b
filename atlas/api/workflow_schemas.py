"""Request and response schemas of /api/v2/workflows, in the seed's shapes."""
from marshmallow import fields, validate
from webargs.fields import DelimitedList

from atlas.api.schemas import CamelSchema, PageQuery, PaginationSchema, Trimmed
from atlas.models import WorkflowStatus

STATUSES = [s.value for s in WorkflowStatus]
TRIGGER_TYPE = validate.Regexp(r"^[a-z][a-z0-9_.]{0,63}$",
                               error="triggerType must be a lower-case identifier such as lead_created.")
Tag = Trimmed(validate=validate.Length(max=64))
Tags = fields.List(Tag, validate=validate.Length(max=20, error="At most 20 tags."))


class WorkflowListQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(STATUSES))
    category = fields.String(validate=validate.Length(max=64))
    search = fields.String(validate=validate.Length(max=200))
    tags = DelimitedList(fields.String(validate=validate.Length(min=1, max=64)),
                         metadata={"description": "Comma-separated; matches workflows with any of them."})
    sort_by = fields.String(load_default="created_at",
                            validate=validate.OneOf(["name", "created_at", "last_run_at", "usage_count"]))
    sort_order = fields.String(load_default="desc", validate=validate.OneOf(["asc", "desc"]))


class CreateWorkflowRequest(CamelSchema):
    name = Trimmed(required=True, validate=validate.Length(max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    category = Trimmed(allow_none=True, validate=validate.Length(max=64))
    template_id = fields.String(allow_none=True, validate=validate.Length(max=36))
    workflow_data = fields.Dict(required=True)
    trigger_type = fields.String(required=True, validate=TRIGGER_TYPE)
    trigger_config = fields.Dict(load_default=dict)
    settings = fields.Dict(load_default=dict)
    tags = Tags
    status = fields.String(load_default="draft", validate=validate.OneOf(
        ["draft", "active"], error="A new workflow starts as draft or active."))


class UpdateWorkflowRequest(CamelSchema):
    name = Trimmed(validate=validate.Length(max=120))
    description = fields.String(allow_none=True, validate=validate.Length(max=2000))
    category = Trimmed(allow_none=True, validate=validate.Length(max=64))
    workflow_data = fields.Dict()
    trigger_type = fields.String(validate=TRIGGER_TYPE)
    trigger_config = fields.Dict()
    settings = fields.Dict()
    status = fields.String(validate=validate.OneOf(STATUSES))
    tags = Tags


class WorkflowSummary(CamelSchema):
    id = fields.String()
    name = fields.String()
    description = fields.String(allow_none=True)
    category = fields.String(allow_none=True)
    status = fields.String()
    tags = fields.List(fields.String())
    trigger_type = fields.String()
    version = fields.Integer()
    step_count = fields.Function(lambda w: len(w.workflow_data.get("nodes", [])))
    usage_count = fields.Integer()
    last_run_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class WorkflowSchema(WorkflowSummary):
    organization_id = fields.String()
    workflow_data = fields.Dict()
    trigger_config = fields.Dict()
    settings = fields.Dict()
    template_id = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    archived_at = fields.DateTime(allow_none=True)


class ValidationResult(CamelSchema):
    severity = fields.String(metadata={"enum": ["error", "warning", "suggestion"]})
    code = fields.String()
    message = fields.String()
    node_id = fields.String(allow_none=True)
    path = fields.String(metadata={"description": "Where in the node's config, e.g. config.duration.unit"})
    branch = fields.String()
    reference = fields.String(metadata={"description": "The data path that does not resolve"})


class PerformanceEstimate(CamelSchema):
    basis = fields.String(metadata={"description": "history, defaults, or none (no runs yet)"})
    step_count = fields.Integer()
    estimated_duration_ms = fields.Integer(allow_none=True)
    note = fields.String()


class WorkflowFilters(CamelSchema):
    categories = fields.List(fields.String())
    tags = fields.List(fields.String())
    statuses = fields.List(fields.String())


class WorkflowListResponse(CamelSchema):
    workflows = fields.List(fields.Nested(WorkflowSummary))
    pagination = fields.Nested(PaginationSchema)
    filters = fields.Nested(WorkflowFilters)


class CreateWorkflowResponse(CamelSchema):
    workflow = fields.Nested(WorkflowSchema)
    validation_results = fields.List(fields.Nested(ValidationResult))
    estimated_performance = fields.Nested(PerformanceEstimate)


class UpdateWorkflowResponse(CamelSchema):
    workflow = fields.Nested(WorkflowSchema)
    validation_results = fields.List(fields.Nested(ValidationResult))
    migration_warnings = fields.List(fields.String())


class AnalyticsSummary(CamelSchema):
    total_executions = fields.Integer()
    successful_executions = fields.Integer()
    failed_executions = fields.Integer()
    success_rate = fields.Float(allow_none=True)
    avg_execution_time_ms = fields.Float(allow_none=True)
    last_run_at = fields.DateTime(allow_none=True)


class PerformanceMetrics(CamelSchema):
    basis = fields.String()
    avg_duration_ms = fields.Float(allow_none=True)
    p95_duration_ms = fields.Float(allow_none=True)
    runs_measured = fields.Integer()


class WorkflowTrigger(CamelSchema):
    trigger_type = fields.String()
    config = fields.Dict()
    source = fields.String()


class WorkflowDetailsResponse(CamelSchema):
    workflow = fields.Nested(WorkflowSchema)
    triggers = fields.List(fields.Nested(WorkflowTrigger))
    variables = fields.List(fields.Dict())
    analytics = fields.Nested(AnalyticsSummary)
    recent_executions = fields.List(fields.Dict())
    performance = fields.Nested(PerformanceMetrics)


class ValidateWorkflowRequest(CamelSchema):
    workflow_data = fields.Dict(metadata={"description": "A candidate definition; the saved one when absent."})
    test_data = fields.Dict(metadata={"description": "Accepted for the seed's shape; test runs use POST .../test."})


class ValidateWorkflowResponse(CamelSchema):
    is_valid = fields.Boolean()
    errors = fields.List(fields.Nested(ValidationResult))
    warnings = fields.List(fields.Nested(ValidationResult))
    suggestions = fields.List(fields.Nested(ValidationResult))
    estimated_performance = fields.Nested(PerformanceEstimate)


class ArchivedWorkflow(CamelSchema):
    id = fields.String()
    name = fields.String()
    status = fields.String()
    previous_status = fields.String()
    archived_at = fields.DateTime()


class DeleteWorkflowResponse(CamelSchema):
    success = fields.Boolean()
    archived_workflow = fields.Nested(ArchivedWorkflow)
    affected_executions = fields.Integer()
