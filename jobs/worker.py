"""The Atlas worker: RQ's SimpleWorker (no fork per job) inside one app context."""
from flask import current_app
from rq import Queue, SimpleWorker

from atlas.extensions import redis_holder


def run_worker(burst: bool = False) -> None:
    """Drain Atlas's queues highest priority first, with RQ's scheduler for delayed jobs."""
    connection = redis_holder.client
    queues = [Queue(name, connection=connection) for name in current_app.config["ATLAS_QUEUES"]]
    SimpleWorker(queues, connection=connection).work(burst=burst, with_scheduler=True)
