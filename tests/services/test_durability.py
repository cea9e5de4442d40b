"""The durability promises, with real worker processes: a run survives its worker being killed and finishes exactly
once; a cancellation wins over the worker running the run; the reconciler takes over runs whose worker died and never
runs a scheduled run before its time.

The workers are `flask --app wsgi atlas worker` processes on the test's database and Redis, with short timings, and
the test-only `test_sleep` step (tests/support/slow_steps.py, loaded through ATLAS_STEP_MODULES) to keep a run
mid-flight. Every wait is bounded; every worker is killed afterwards, by PID.
"""
import time
from datetime import timedelta

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import select, update

from atlas.core import steps
from atlas.core.steps.base import StepType
from atlas.extensions import db, redis_holder
from atlas.models import TERMINAL, Execution, ExecutionStep, Workflow
from atlas.models.base import utcnow
from atlas.services import executions, runner
from jobs.worker import run_worker
from tests import factories
from tests.support.workers import Worker, worker_env

NAP = 1.5  # seconds the slow step sleeps: ample time to act while a run is mid-flight
JOB_TIMEOUT = 3  # the workers' ATLAS_JOB_TIMEOUT; their lease on a run is this plus 0.5 s


@pytest.fixture
def workers(app_ctx, sleep_step, database_url, redis_server, tmp_path):
    """A factory of real worker processes; each is killed when the test ends, whatever happened."""
    env = worker_env(database_url, redis_server.url, tmp_path / "instance",
                     ATLAS_STEP_MODULES="tests.support.slow_steps", ATLAS_RECONCILE_SECONDS=0.3,
                     ATLAS_JOB_TIMEOUT=JOB_TIMEOUT, ATLAS_LEASE_GRACE_SECONDS=0.5)
    started = []

    def start(name: str) -> Worker:
        started.append(Worker(name, env, tmp_path))
        return started[-1]

    yield start
    for worker in started:
        worker.kill()


def wait_for(what: str, condition, alive: list, timeout: float = 20.0):
    """Poll condition() until it is true, as long as the workers in `alive` live, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        dead = [w for w in alive if not w.alive()]
        if dead or time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.name} ---\n{w.log()}" for w in alive)
            pytest.fail(f"{'a worker died' if dead else f'gave up after {timeout} s'} waiting for {what}\n{logs}")
        time.sleep(0.05)
    return result


def snapshot(execution_id: str) -> tuple:
    """The run's status, lease and step rows as committed now; the test's own transaction ends at once."""
    db.session.rollback()
    execution = db.session.get(Execution, execution_id)
    rows = db.session.scalars(select(ExecutionStep).where(ExecutionStep.execution_id == execution_id)
                              .order_by(ExecutionStep.started_at, ExecutionStep.id)).all()
    result = (execution.status, execution.lease_until, [(s.id, s.node_id, s.status, s.attempt) for s in rows])
    db.session.rollback()
    return result


def read_journal(path) -> list[tuple[str, str, str, int]]:
    """What test_sleep steps noted: (event, node id, idempotency key, pid) per line; [] before the first."""
    if not path.exists():
        return []
    return [(event, node, key, int(pid)) for event, node, key, pid in map(str.split, path.read_text().splitlines())]


def events(journal) -> list[tuple[str, str]]:
    return [(event, node) for event, node, _, _ in read_journal(journal)]


def sleep(seconds: float, journal) -> dict:
    return {"seconds": seconds, "journal": str(journal)}


def chain(*nodes: tuple) -> dict:
    """A straight-line definition from (id, type, config) triples."""
    return {"schemaVersion": 1, "nodes": [{"id": i, "type": t, "config": c} for i, t, c in nodes],
            "edges": [{"source": a[0], "target": b[0]} for a, b in zip(nodes, nodes[1:])]}


def start_run(org, staff, definition: dict, **kwargs) -> Execution:
    workflow = factories.make_workflow(org, staff, name="Slow", status="active", workflow_data=definition)
    execution, _ = executions.start_execution(org.id, staff.id, workflow.id, trigger_data={}, input_data={}, **kwargs)
    db.session.commit()  # end the test's own transaction: on SQLite it would hold the write lock the workers need
    return execution


def work():
    """A real RQ worker in this process drains the queues; the test's own transaction ends first."""
    db.session.commit()
    run_worker(burst=True)
    db.session.expire_all()


# --- real processes -------------------------------------------------------------------------------------------

def test_a_run_whose_worker_is_killed_mid_step_finishes_exactly_once_on_another_worker(org, staff, workers,
                                                                                       tmp_path):
    journal = tmp_path / "journal"
    execution = start_run(org, staff, chain(("greet", "set_variable", {"name": "greeting", "value": "Hi"}),
                                            ("warmup", "test_sleep", sleep(0, journal)),
                                            ("nap", "test_sleep", sleep(NAP, journal)),
                                            ("bye", "set_variable", {"name": "done", "value": True})))
    first = workers("first")
    wait_for("the first worker to start the slow step", lambda: ("start", "nap") in events(journal), [first])
    first.kill()  # SIGKILL mid-step: no cleanup, and its lease on the run stays until it runs out

    status, _, before = snapshot(execution.id)
    assert status == "running" and ("end", "nap") not in events(journal)
    assert [(node, state) for _, node, state, _ in before] == [("greet", "completed"), ("warmup", "completed")]
    second = workers("second")
    wait_for("another worker to take the run over and finish it", lambda: snapshot(execution.id)[0] in TERMINAL,
             [second], timeout=30)

    status, lease, after = snapshot(execution.id)
    assert (status, lease) == ("completed", None)
    assert sorted(node for _, node, _, _ in after) == ["bye", "greet", "nap", "warmup"]  # each node once
    assert {(state, attempt) for _, _, state, attempt in after} == {("completed", 1)}
    assert after[:2] == before  # what was persisted before the kill is the same rows, not run again
    lines = read_journal(journal)
    assert [(event, node, pid) for event, node, _, pid in lines] == [
        ("start", "warmup", first.pid), ("end", "warmup", first.pid), ("start", "nap", first.pid),
        ("start", "nap", second.pid), ("end", "nap", second.pid)]  # only the step in flight ran again...
    assert {key for _, node, key, _ in lines if node == "nap"} == {f"{execution.id}:nap:1"}  # ...with the same key
    db.session.expire_all()
    execution = db.session.get(Execution, execution.id)
    assert (execution.job_id, execution.state["variables"]) == (f"run-{execution.id}-2", {"greeting": "Hi",
                                                                                          "done": True})
    assert db.session.get(Workflow, execution.workflow_id).usage_count == 1


def test_a_cancel_while_a_worker_runs_the_run_wins_and_no_further_side_effect_runs(client, org, staff, staff_headers,
                                                                                    workers, tmp_path):
    journal = tmp_path / "journal"
    execution = start_run(org, staff, chain(("nap", "test_sleep", sleep(NAP, journal)),
                                            ("after", "test_sleep", sleep(0, journal)),
                                            ("bye", "set_variable", {"name": "done", "value": True})))
    worker = workers("worker")
    wait_for("the worker to start the slow step", lambda: ("start", "nap") in events(journal), [worker])

    response = client.post(f"/api/v2/workflows/{execution.workflow_id}/executions/{execution.id}/cancel",
                           headers=staff_headers)

    assert response.status_code == 200 and response.json["status"] == "cancelled"
    assert ("end", "nap") not in events(journal)  # answered at once: the worker holds no transaction while it sleeps
    wait_for("the worker to let go of the run", lambda: snapshot(execution.id)[1] is None, [worker])
    status, _, rows = snapshot(execution.id)
    assert status == "cancelled" and [(node, state) for _, node, state, _ in rows] == [("nap", "completed")]
    assert events(journal) == [("start", "nap"), ("end", "nap")]  # "after" never started
    db.session.expire_all()
    assert db.session.get(Execution, execution.id).finished_at.isoformat() == response.json["finishedAt"]


# --- the reconciler, in this process --------------------------------------------------------------------------

def test_the_reconciler_takes_over_a_running_run_whose_lease_expired_and_delivers_it_once(org, staff):
    execution = start_run(org, staff, factories.definition("a", "b"))
    job = Job.fetch(execution.job_id, connection=redis_holder.client)
    Queue("atlas-default", connection=redis_holder.client).remove(job)  # a worker took the job, claimed the run...
    job.set_status(JobStatus.STARTED)  # ...and died: Redis still says "started"
    db.session.execute(update(Execution).where(Execution.id == execution.id).values(
        status="running", worker="dead-worker", lease_until=utcnow() - timedelta(minutes=1),
        created_at=utcnow() - timedelta(minutes=2)))
    db.session.commit()

    assert runner.reconcile() == 1
    assert runner.reconcile() == 0  # its new job waits in Redis: not delivered again on every pass
    work()

    execution = db.session.get(Execution, execution.id)
    assert (execution.status, execution.job_id, execution.worker) == ("completed", f"run-{execution.id}-2", None)
    assert [s.node_id for s in db.session.scalars(select(ExecutionStep).where(
        ExecutionStep.execution_id == execution.id))] == ["a", "b"]


def test_a_running_run_whose_lease_is_live_is_left_to_its_worker(org, staff):
    execution = start_run(org, staff, factories.definition("a"))
    redis_holder.client.flushdb()
    db.session.execute(update(Execution).where(Execution.id == execution.id).values(
        status="running", worker="busy-worker", lease_until=utcnow() + timedelta(minutes=1),
        created_at=utcnow() - timedelta(minutes=2)))
    db.session.commit()

    assert runner.reconcile() == 0
    assert runner.run_execution(execution.id) is None  # a stray delivery does not run it twice
    db.session.expire_all()
    assert db.session.get(Execution, execution.id).worker == "busy-worker"


def test_a_scheduled_run_that_redis_lost_is_not_run_before_its_time(org, staff):
    execution = start_run(org, staff, factories.definition("a"), scheduled_at=utcnow() + timedelta(hours=1))
    redis_holder.client.flushdb()  # Redis restarted empty: the scheduled job is gone
    db.session.execute(update(Execution).where(Execution.id == execution.id).values(
        created_at=utcnow() - timedelta(minutes=2)))
    db.session.commit()

    assert runner.reconcile() == 0
    assert runner.run_execution(execution.id) is None  # an early delivery finds nothing to run yet
    db.session.expire_all()
    assert (db.session.get(Execution, execution.id).status, db.session.get(Execution, execution.id).started_at) == (
        "queued", None)

    db.session.execute(update(Execution).where(Execution.id == execution.id).values(  # its time has come
        scheduled_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    assert runner.reconcile() == 1
    work()
    assert db.session.get(Execution, execution.id).status == "completed"


def test_a_run_whose_step_crashes_fails_once_and_is_not_taken_over_again(org, staff, step_registry):
    calls = []

    def crash(ctx):
        calls.append(ctx.idempotency_key)
        raise RuntimeError("the gym's own step has a bug")

    steps.register(StepType(key="test_crash", category="test", name="Crash", description="", icon="",
                            config_schema={}, output_schema={}, run=crash, side_effects=True))
    execution = start_run(org, staff, chain(("greet", "set_variable", {"name": "greeting", "value": "Hi"}),
                                            ("boom", "test_crash", {})))
    work()
    db.session.execute(update(Execution).where(Execution.id == execution.id).values(
        created_at=utcnow() - timedelta(minutes=2)))
    db.session.commit()

    assert runner.reconcile() == 0
    execution = db.session.get(Execution, execution.id)
    assert (execution.status, execution.error_code, execution.failed_node, execution.lease_until) == (
        "failed", "STEP_CRASHED", "boom", None)
    assert execution.error == "Step 'boom' failed: RuntimeError: the gym's own step has a bug"
    assert calls == [f"{execution.id}:boom:1"]  # its side effect ran once, not once per lease
