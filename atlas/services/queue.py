"""Delivering runs to workers through RQ. Redis only delivers: losing a job loses nothing (see reconcile)."""
from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from atlas.extensions import redis_holder

log = logging.getLogger(__name__)
RUN_JOB = "jobs.runs.run_execution"


def queue_name(priority: int) -> str:
    """Priority 8-10 -> high, 4-7 -> default, 1-3 -> low; workers drain high first."""
    high, default, low = current_app.config["ATLAS_QUEUES"]
    return high if priority >= 8 else default if priority >= 4 else low


def queue(name: str) -> Queue:
    return Queue(name, connection=redis_holder.client)


def enqueue_run(execution_id: str, priority: int, job_id: str, at: datetime | None = None) -> bool:
    """Hand a committed execution to the workers, now or at `at` (RQ's scheduler). False if Redis is unreachable."""
    q = queue(queue_name(priority))
    timeout = current_app.config["ATLAS_JOB_TIMEOUT"]
    try:
        if at is not None:
            q.enqueue_at(at, RUN_JOB, execution_id, job_id=job_id, job_timeout=timeout, result_ttl=60,
                         failure_ttl=86400)
        else:
            q.enqueue(RUN_JOB, execution_id, job_id=job_id, job_timeout=timeout, result_ttl=60, failure_ttl=86400)
    except RedisError:
        log.warning("could not enqueue %s; the reconciler will", execution_id, exc_info=True)
        return False
    return True


def job_pending(job_id: str) -> bool:
    """Whether Redis still holds this job waiting to run (queued, scheduled or started)."""
    try:
        job = Job.fetch(job_id, connection=redis_holder.client)
    except (NoSuchJobError, RedisError):
        return False
    return job.get_status(refresh=False) in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED,
                                             JobStatus.DEFERRED)


def position(priority: int) -> int | None:
    """How many jobs wait ahead in the queue this priority maps to (None if Redis cannot say)."""
    try:
        return queue(queue_name(priority)).count
    except RedisError:
        return None


def depth() -> int:
    """Jobs waiting in every Atlas queue; 0 when Redis cannot say (the run is kept and the reconciler delivers it)."""
    try:
        return sum(queue(name).count for name in current_app.config["ATLAS_QUEUES"])
    except RedisError:
        return 0
