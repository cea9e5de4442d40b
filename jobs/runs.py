"""RQ entry point for runs: takes an execution id, loads, advances. The app is built once per worker."""
from rq import get_current_job

from jobs import get_app


def run_execution(execution_id: str) -> str | None:
    """Advance one execution as far as it goes now."""
    from atlas.services.runner import run_execution as advance

    job = get_current_job()
    with get_app().app_context():
        return advance(execution_id, worker=(job.worker_name or "") if job else "")
