"""The Atlas worker: RQ's SimpleWorker (no fork per job) in one app context, with the reconciler beside it."""
import logging
import threading
import time

from flask import current_app
from rq import Queue, SimpleWorker

from atlas.extensions import redis_holder

log = logging.getLogger(__name__)


def run_worker(burst: bool = False) -> None:
    """Drain Atlas's queues highest priority first, with RQ's scheduler for delayed jobs."""
    connection = redis_holder.client
    queues = [Queue(name, connection=connection) for name in current_app.config["ATLAS_QUEUES"]]
    if not burst:
        start_reconciler(current_app._get_current_object())
    SimpleWorker(queues, connection=connection).work(burst=burst, with_scheduler=True,
                                                     logging_level=current_app.config["ATLAS_WORKER_LOG_LEVEL"])


def start_reconciler(app) -> threading.Thread:
    """Every ATLAS_RECONCILE_SECONDS, deliver again what Redis lost, fire due scheduled triggers, forget webhook-ids
    past their 24 hours and (hourly) purge old enrollment decisions: all safe with any number of workers."""
    from atlas.services.decisions import purge_if_due
    from atlas.services.runner import reconcile
    from atlas.services.scheduler import tick
    from atlas.services.webhook_receive import purge_message_ids

    def reconciled():
        if (delivered := reconcile()):
            log.info("reconciler delivered %d run(s) again", delivered)

    def scheduled():
        if (fired := tick()["fired"]):
            log.info("scheduler fired %d occurrence(s)", fired)

    def loop():
        while True:
            time.sleep(app.config["ATLAS_RECONCILE_SECONDS"])
            for task in (reconciled, scheduled, purge_message_ids, purge_if_due):
                with app.app_context():  # a context each: a failed pass leaves no broken session to the next
                    try:
                        task()
                    except Exception:  # keep the loop alive through a database or Redis hiccup
                        log.exception("%s failed", task.__name__)

    thread = threading.Thread(target=loop, name="atlas-reconciler", daemon=True)
    thread.start()
    return thread
