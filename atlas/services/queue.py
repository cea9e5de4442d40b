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
TEST_JOB = "jobs.tests.run_test"


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
            q.enqueue_at(at, RUN_JOB, execution_id, job_id=job_id, job_timeout=timeout, result_ttl=0,
                         failure_ttl=86400)
        else:  # result_ttl=0: the run's outcome lives in the database; RQ forgets a finished job at once
            q.enqueue(RUN_JOB, execution_id, job_id=job_id, job_timeout=timeout, result_ttl=0, failure_ttl=86400)
    except RedisError:
        log.warning("could not enqueue %s; the reconciler will", execution_id, exc_info=True)
        return False
    return True


def enqueue_test(execution_id: str) -> bool:
    """Hand a prepared test run to the workers ahead of ordinary runs (someone watches it); False if Redis is out."""
    high = current_app.config["ATLAS_QUEUES"][0]
    try:
        queue(high).enqueue(TEST_JOB, execution_id, job_id=f"test-{execution_id}",
                            job_timeout=current_app.config["ATLAS_JOB_TIMEOUT"], result_ttl=0, failure_ttl=86400)
    except RedisError:
        log.warning("could not enqueue test run %s", execution_id, exc_info=True)
        return False
    return True


def enqueue_runs(runs: list[tuple[str, int, str]], at: datetime | None = None) -> bool:
    """enqueue_run for many committed executions (id, priority, job id) in one Redis round trip."""
    timeout, client = current_app.config["ATLAS_JOB_TIMEOUT"], redis_holder.client
    if at is not None:
        return all(enqueue_run(execution_id, priority, job_id, at=at) for execution_id, priority, job_id in runs)
    try:
        with client.pipeline() as pipe:
            for execution_id, priority, job_id in runs:
                q = queue(queue_name(priority))
                q.enqueue_many([Queue.prepare_data(RUN_JOB, (execution_id,), job_id=job_id, timeout=timeout,
                                                   result_ttl=0, failure_ttl=86400)], pipeline=pipe)
            pipe.execute()
    except RedisError:
        log.warning("could not enqueue %d runs; the reconciler will", len(runs), exc_info=True)
        return False
    return True


def job_pending(job_id: str, started: bool = True) -> bool:
    """Whether Redis still holds this job waiting to run (queued, scheduled, deferred; and started if `started`)."""
    try:
        job = Job.fetch(job_id, connection=redis_holder.client)
    except (NoSuchJobError, RedisError):
        return False
    waiting = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
    return job.get_status(refresh=False) in (waiting | {JobStatus.STARTED} if started else waiting)


def position(priority: int, job_id: str) -> int | None:
    """The job's place in its priority's queue (1: next); None when it is not there (scheduled, run) or Redis is out."""
    try:  # searched from the tail, where a new job is: no scan of a deep queue
        index = redis_holder.client.lpos(queue(queue_name(priority)).key, job_id, rank=-1)
    except RedisError:
        return None
    return None if index is None else index + 1


def depth() -> int:
    """Jobs waiting in every Atlas queue; 0 when Redis cannot say (the run is kept and the reconciler delivers it)."""
    pipe = redis_holder.client.pipeline(transaction=False)  # one round trip for every queue
    for name in current_app.config["ATLAS_QUEUES"]:
        pipe.llen(queue(name).key)
    try:
        return sum(pipe.execute())
    except RedisError:
        return 0


def workers() -> list[dict]:
    """The RQ workers registered in Redis, as RQ reports them."""
    from rq import Worker

    try:
        found = Worker.all(connection=redis_holder.client)
    except RedisError:
        return []
    return [{"name": w.name, "state": w.get_state(), "current_job": w.get_current_job_id(),
             "last_heartbeat": w.last_heartbeat, "successful_jobs": w.successful_job_count,
             "failed_jobs": w.failed_job_count, "queues": w.queue_names(), "hostname": w.hostname, "pid": w.pid}
            for w in sorted(found, key=lambda w: w.name)]
