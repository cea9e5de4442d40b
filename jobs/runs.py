"""RQ entry point for runs: takes an execution id, loads, advances. The app is built once per worker.

One RQ job per run costs the worker about as much in RQ's own bookkeeping (dequeue, job fetch, started registry,
heartbeat, success handling: some 70 Redis commands) as the run itself. So a run job, once it has run its own run,
drains further run jobs waiting in Atlas's queues (highest priority first) and runs them in the same job: each is
popped from RQ's queue list and its job hash deleted before its run starts. A worker that dies meanwhile loses only
deliveries, never runs: the database still says queued (or running on a lease that expires), and the reconciler
delivers them again, exactly as when Redis loses a job. The drain is bounded in runs and in time, well inside the job
timeout, so priorities and the worker's heartbeat keep their meaning.
"""
import logging
import re
import time

from flask import current_app
from rq import Queue, get_current_job

from jobs import get_app

log = logging.getLogger(__name__)
RUN_JOB_ID = re.compile(r"^run-(?P<execution>[0-9a-f-]{36})-\d+$")
DRAIN_RUNS = 500  # runs one job may take over, at most
DRAIN_SECONDS = 1.0  # and for at most this long, so a higher-priority job waits at most about this
DRAIN_BATCH = 25  # job ids popped from a queue at once


def run_execution(execution_id: str) -> str | None:
    """Advance one execution as far as it goes now, then the run jobs waiting behind it."""
    from atlas.services.runner import run_execution as advance

    job = get_current_job()
    worker = (job.worker_name or "") if job else ""
    with get_app().app_context():
        status = advance(execution_id, worker=worker)
        if job is not None and current_app.config["ATLAS_DRAIN_RUNS"]:
            drain(job.connection, worker)
        return status


def drain(connection, worker: str) -> int:
    """Run the run jobs waiting in Atlas's queues, highest priority first, within the bounds; returns how many."""
    from atlas.services.runner import run_batch
    from atlas.services.runner import run_execution as advance

    done, deadline = 0, time.monotonic() + DRAIN_SECONDS
    while done < DRAIN_RUNS and time.monotonic() < deadline:
        execution_ids = take(connection, min(DRAIN_BATCH, DRAIN_RUNS - done))
        if not execution_ids:
            break
        batched = len(execution_ids)
        execution_ids = run_batch(execution_ids, worker)  # those without side effects, together
        done += batched - len(execution_ids)
        for execution_id in execution_ids:
            try:
                advance(execution_id, worker=worker)
            except Exception:  # this run stays queued or leased in the database; the reconciler delivers it again
                log.exception("drained run %s failed; the reconciler will deliver it again", execution_id)
                from atlas.extensions import db

                db.session.rollback()
            done += 1
    return done


def take(connection, count: int) -> list[str]:
    """Pop up to `count` run jobs from the highest-priority queue that has any, delete their job hashes, and return
    their execution ids; anything that is not a run job goes back to the head of its queue."""
    for name in current_app.config["ATLAS_QUEUES"]:
        key = Queue(name, connection=connection).key
        popped = [i.decode() if isinstance(i, bytes) else i for i in connection.lpop(key, count) or []]
        if not popped:
            continue
        runs = [(job_id, m.group("execution")) for job_id in popped if (m := RUN_JOB_ID.match(job_id))]
        others = [job_id for job_id in popped if not RUN_JOB_ID.match(job_id)]
        pipe = connection.pipeline(transaction=False)
        if others:
            pipe.lpush(key, *reversed(others))
        for job_id, _ in runs:
            pipe.delete(f"rq:job:{job_id}")
        pipe.execute()
        if runs:
            return [execution_id for _, execution_id in runs]
    return []
