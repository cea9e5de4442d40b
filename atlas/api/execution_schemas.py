"""Request and response schemas of workflow execution (the seed's section 2)."""
from marshmallow import fields, validate

from atlas.api.schemas import CamelSchema, PageQuery, PaginationSchema
from atlas.models import ExecutionStatus

STATUSES = [s.value for s in ExecutionStatus]


class ExecuteWorkflowRequest(CamelSchema):
    input_data = fields.Dict(load_default=dict, metadata={
        "description": "inputData.contactId names a CRM contact (the run reads it as it is at each step); "
                       "inputData.contact gives a contact as a snapshot instead"})
    trigger_data = fields.Dict(load_default=dict)
    priority = fields.Integer(load_default=5, validate=validate.Range(min=1, max=10))
    scheduled_at = fields.AwareDateTime(allow_none=True)
    context = fields.Dict(load_default=dict)
    test_mode = fields.Boolean(load_default=False)


class BatchRun(CamelSchema):
    input_data = fields.Dict(load_default=dict, metadata={"description": "as in execute: contactId or contact"})
    trigger_data = fields.Dict(load_default=dict)
    context = fields.Dict(load_default=dict)


class ExecuteBatchRequest(CamelSchema):
    runs = fields.List(fields.Nested(BatchRun), required=True, validate=validate.Length(min=1, max=500),
                       metadata={"description": "1 to 500 runs, each for one contact"})
    priority = fields.Integer(load_default=5, validate=validate.Range(min=1, max=10))
    scheduled_at = fields.AwareDateTime(allow_none=True)
    test_mode = fields.Boolean(load_default=False)


class BatchStarted(CamelSchema):
    execution_id = fields.String()
    status = fields.String()


class ExecuteBatchResponse(CamelSchema):
    executions = fields.List(fields.Nested(BatchStarted), metadata={"description": "in the order of the runs sent"})
    queued = fields.Integer()
    estimated_duration = fields.Float(allow_none=True, metadata={"description": "milliseconds of active time, each"})


class ExecuteWorkflowResponse(CamelSchema):
    execution_id = fields.String()
    status = fields.String(metadata={"enum": ["queued", "started"]})
    estimated_duration = fields.Float(allow_none=True, metadata={"description": "milliseconds of active time"})
    queue_position = fields.Integer(allow_none=True)


class ExecutionQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(STATUSES))
    start_date = fields.AwareDateTime()
    end_date = fields.AwareDateTime()


class ExecutionSchema(CamelSchema):
    id = fields.String()
    workflow_id = fields.String()
    version = fields.Integer()
    status = fields.String()
    priority = fields.Integer()
    test_mode = fields.Boolean()
    contact_id = fields.String(allow_none=True)
    trigger_data = fields.Dict()
    input_data = fields.Dict()
    context = fields.Dict()
    current_node = fields.String(allow_none=True)
    resume_at = fields.DateTime(allow_none=True)
    wait_event = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    failed_node = fields.String(allow_none=True)
    scheduled_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    duration_ms = fields.Float(allow_none=True)
    created_by = fields.String(allow_none=True)


class FailureReason(CamelSchema):
    code = fields.String(allow_none=True)
    count = fields.Integer()
    example = fields.String(allow_none=True)


class ExecutionAnalytics(CamelSchema):
    total_executions = fields.Integer()
    success_rate = fields.Float(allow_none=True)
    avg_execution_time = fields.Float(allow_none=True, metadata={"description": "milliseconds"})
    failure_reasons = fields.List(fields.Nested(FailureReason))


class ExecutionHistoryResponse(CamelSchema):
    executions = fields.List(fields.Nested(ExecutionSchema))
    analytics = fields.Nested(ExecutionAnalytics)
    pagination = fields.Nested(PaginationSchema)


class ExecutionStepSchema(CamelSchema):
    id = fields.String()
    node_id = fields.String()
    step_type = fields.String()
    attempt = fields.Integer()
    status = fields.String()
    input = fields.Dict()
    output = fields.Dict(allow_none=True)
    branch = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    started_at = fields.DateTime()
    finished_at = fields.DateTime()
    duration_ms = fields.Float()


class TimelineEntry(CamelSchema):
    at = fields.DateTime()
    event = fields.String()
    node_id = fields.String(allow_none=True)


class ExecutionPerformance(CamelSchema):
    total_duration_ms = fields.Float(allow_none=True)
    active_ms = fields.Float()
    step_count = fields.Integer()
    queue_delay_ms = fields.Float(allow_none=True)


class ExecutionDetailsResponse(CamelSchema):
    execution = fields.Nested(ExecutionSchema)
    steps = fields.List(fields.Nested(ExecutionStepSchema))
    timeline = fields.List(fields.Nested(TimelineEntry))
    performance = fields.Nested(ExecutionPerformance)
    logs = fields.List(fields.Dict())
    debug_info = fields.Dict()


class TestWorkflowRequest(CamelSchema):
    test_data = fields.Dict(required=True, metadata={
        "description": "{trigger: {...}, contact: {...}, events: {eventType: payload}}: events named here arrive "
                       "at wait_for_event steps; other waits end at once"})
    step_by_step = fields.Boolean(load_default=False, metadata={"description": "add the run's variables after "
                                                                              "each step to its result"})
    mock_external_services = fields.Boolean(load_default=True)


class TestExecutionResult(CamelSchema):
    node_id = fields.String()
    step_type = fields.String()
    status = fields.String()
    attempt = fields.Integer()
    input = fields.Dict()
    output = fields.Dict(allow_none=True)
    branch = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    duration_ms = fields.Float()
    variables = fields.Dict()


class TestPerformance(CamelSchema):
    total_ms = fields.Float()
    steps_ms = fields.Float()
    step_count = fields.Integer()
    status = fields.String()
    finished_at = fields.DateTime()


class TestWorkflowResponse(CamelSchema):
    test_execution_id = fields.String()
    status = fields.String()
    error = fields.String(allow_none=True)
    results = fields.List(fields.Nested(TestExecutionResult))
    performance = fields.Nested(TestPerformance)
    logs = fields.List(fields.Dict())
