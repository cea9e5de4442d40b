"""/api/v2/queue: the seed's Queue Management APIs (a job is an execution's delivery; its id is the execution id)."""
from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from atlas.api.schemas import CamelSchema, PageQuery, PaginationSchema
from atlas.services import queue_admin

blp = Blueprint("queue", __name__, url_prefix="/api/v2/queue", description="Execution queue")


class WorkerStatus(CamelSchema):
    name = fields.String()
    state = fields.String()
    current_job = fields.String(allow_none=True)
    last_heartbeat = fields.DateTime(allow_none=True)
    successful_jobs = fields.Integer()
    failed_jobs = fields.Integer()
    queues = fields.List(fields.String())
    hostname = fields.String(allow_none=True)
    pid = fields.Integer(allow_none=True)


class QueueStatusResponse(CamelSchema):
    total_jobs = fields.Integer()
    processing_jobs = fields.Integer()
    queued_jobs = fields.Integer()
    waiting_jobs = fields.Integer(metadata={"description": "runs sleeping until a time or an event"})
    failed_jobs = fields.Integer()
    workers = fields.List(fields.Nested(WorkerStatus))
    throughput_per_second = fields.Float(metadata={"description": "runs finished per second, last 5 minutes"})
    estimated_wait_time = fields.Integer(allow_none=True, metadata={"description": "milliseconds; null when "
                                                                    "runs are queued but none finished lately"})


class QueueJobsQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(["queued", "processing", "completed", "failed"]))
    priority = fields.Integer(validate=validate.Range(min=1, max=10))
    workflow_id = fields.String(validate=validate.Length(max=36))


class QueueJob(CamelSchema):
    job_id = fields.String()
    execution_id = fields.String()
    rq_job_id = fields.String(allow_none=True)
    workflow_id = fields.String()
    workflow_name = fields.String()
    status = fields.String()
    priority = fields.Integer()
    queue = fields.String()
    deliveries = fields.Integer()
    failed_node = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class QueueStatistics(CamelSchema):
    queued = fields.Integer()
    processing = fields.Integer()
    completed = fields.Integer()
    failed = fields.Integer()


class QueueJobsResponse(CamelSchema):
    jobs = fields.List(fields.Nested(QueueJob))
    statistics = fields.Nested(QueueStatistics)
    pagination = fields.Nested(PaginationSchema)


class RetryJobRequest(CamelSchema):
    reset_retry_count = fields.Boolean(load_default=False)
    new_priority = fields.Integer(validate=validate.Range(min=1, max=10))


class RetryJobResponse(CamelSchema):
    success = fields.Boolean()
    new_job_id = fields.String()
    execution_id = fields.String()
    estimated_start_time = fields.DateTime()


class BulkRetryRequest(CamelSchema):
    workflow_id = fields.String(validate=validate.Length(max=36))
    since = fields.AwareDateTime(required=True)
    until = fields.AwareDateTime(required=True)
    error_code = fields.String(validate=validate.Length(max=64))
    reset_retry_count = fields.Boolean(load_default=True)


class BulkRetryResponse(CamelSchema):
    retried = fields.Integer()
    execution_ids = fields.List(fields.String())


@blp.route("/status")
class Status(MethodView):
    @blp.response(200, QueueStatusResponse)
    def get(self):
        """Runs by queue state, the workers, and the expected wait"""
        return queue_admin.status(g.organization.id)


@blp.route("/jobs")
class Jobs(MethodView):
    @blp.arguments(QueueJobsQuery, location="query")
    @blp.response(200, QueueJobsResponse)
    def get(self, query):
        """The organization's runs as queue jobs, newest first"""
        rows, statistics, pagination = queue_admin.jobs(g.organization.id, **query)
        return {"jobs": rows, "statistics": statistics, "pagination": pagination}


@blp.route("/jobs/<job_id>/retry")
class RetryJob(MethodView):
    @blp.arguments(RetryJobRequest)
    @blp.response(200, RetryJobResponse)
    def post(self, body, job_id):
        """Run a failed job again from its failed step"""
        g.audit_action, g.audit_target = "execution.retry", ("execution", job_id)
        return queue_admin.retry(g.organization.id, job_id, **body)


@blp.route("/retry")
class BulkRetry(MethodView):
    @blp.arguments(BulkRetryRequest)
    @blp.response(200, BulkRetryResponse)
    def post(self, body):
        """Retry every failed run of a time window (optionally one workflow, one failure reason)"""
        g.audit_action = "execution.bulk_retry"
        return queue_admin.bulk_retry(g.organization.id, **body)
