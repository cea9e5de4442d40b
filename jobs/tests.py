"""RQ entry point for the builder's test runs: takes a prepared test run's id and runs it to its end."""
from jobs import get_app


def run_test(execution_id: str) -> str | None:
    """Advance the test run (waits fast-forwarded, external services mocked); its final status."""
    from atlas.services.testing import run_queued_test

    with get_app().app_context():
        return run_queued_test(execution_id)
