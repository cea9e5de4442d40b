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
    """Every ATLAS_RECONCILE_SECONDS, deliver again what Redis lost and fire due scheduled triggers (both safe with
    any number of workers)."""
    from atlas.services.runner import reconcile
    from atlas.services.scheduler import tick

    def loop():
        while True:
            time.sleep(app.config["ATLAS_RECONCILE_SECONDS"])
            with app.app_context():
                try:
                    delivered = reconcile()
                    if delivered:
                        log.info("reconciler delivered %d run(s) again", delivered)
                except Exception:  # keep the loop alive through a database or Redis hiccup
                    log.exception("reconciler pass failed")
            with app.app_context():  # a context of its own: a failed pass above leaves no broken session behind
                try:
                    if (fired := tick()["fired"]):
                        log.info("scheduler fired %d occurrence(s)", fired)
                except Exception:
                    log.exception("scheduler tick failed")

    thread = threading.Thread(target=loop, name="atlas-reconciler", daemon=True)
    thread.start()
    return thread
