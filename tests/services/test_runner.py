"""Runs through the real queue: commit, enqueue on Redis, a real RQ SimpleWorker, persisted steps."""
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from atlas.extensions import db, redis_holder
from atlas.models import Execution, ExecutionStep
from atlas.models.base import utcnow
from atlas.services import executions, runner
from jobs.worker import run_worker
from tests import factories

TEN_MINUTES = {"amount": 10, "unit": "minutes"}


def nurture(booked_check=True) -> dict:
    nodes = [{"id": "greet", "type": "set_variable", "config": {"name": "greeting", "value": "Hi {{ contact.name }}"}},
             {"id": "pause", "type": "wait", "config": {"duration": TEN_MINUTES}},
             {"id": "booked", "type": "if_else", "config": {"condition": {
                 "field": "trigger.booked", "operator": "equals", "value": True}}},
             {"id": "yes", "type": "end", "config": {}},
             {"id": "no", "type": "set_variable", "config": {"name": "nudge", "value": "{{ vars.greeting }}!"}}]
    edges = [{"source": "greet", "target": "pause"}, {"source": "pause", "target": "booked"},
             {"source": "booked", "target": "yes", "branch": "true"}, {"source": "booked", "target": "no",
                                                                      "branch": "false"}]
    return {"schemaVersion": 1, "nodes": nodes, "edges": edges}


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Nurture", status="active", workflow_data=nurture())


def work():
    """A real worker drains the queues; the test's own transaction ends first (SQLite has one writer)."""
    db.session.commit()
    run_worker(burst=True)
    db.session.expire_all()


def start(org, workflow, **kwargs):
    kwargs.setdefault("trigger_data", {"booked": False})
    kwargs.setdefault("input_data", {"contact": {"id": "c-1", "name": "Sarah"}})
    execution, created = executions.start_execution(org.id, None, workflow.id, **kwargs)
    return execution


def steps_of(execution):
    return [(s.node_id, s.status) for s in db.session.scalars(
        select(ExecutionStep).where(ExecutionStep.execution_id == execution.id).order_by(ExecutionStep.started_at))]


def test_a_run_is_committed_queued_then_a_real_worker_runs_it_to_its_wait(org, workflow):
    execution = start(org, workflow)
    assert execution.status == "queued" and execution.job_id == f"run-{execution.id}-1"
    assert redis_holder.client.exists(f"rq:job:{execution.job_id}")

    work()

    db.session.expire_all()
    execution = db.session.get(Execution, execution.id)
    assert execution.status == "waiting" and execution.current_node == "pause"
    assert execution.resume_at - execution.started_at > timedelta(minutes=9)
    assert steps_of(execution) == [("greet", "completed"), ("pause", "waiting")]


def test_a_due_wait_resumes_and_the_run_completes_along_its_branch(org, workflow):
    execution = start(org, workflow)
    work()
    db.session.execute(update(Execution).where(Execution.id == execution.id).values(
        resume_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()

    assert runner.run_execution(execution.id) == "completed"

    db.session.expire_all()
    execution = db.session.get(Execution, execution.id)
    assert steps_of(execution) == [("greet", "completed"), ("pause", "completed"), ("booked", "completed"),
                                   ("no", "completed")]
    pause = db.session.scalar(select(ExecutionStep).where(ExecutionStep.node_id == "pause"))
    assert pause.finished_at > pause.started_at and pause.output["waitedUntil"]
    assert execution.state["variables"] == {"greeting": "Hi Sarah", "nudge": "Hi Sarah!"}
    assert execution.finished_at and execution.duration_ms > 0 and execution.error is None
    assert workflow.usage_count == 1 and workflow.last_run_at is not None


def test_a_run_is_claimed_once_even_when_delivered_twice(org, workflow):
    execution = start(org, workflow)
    assert runner.run_execution(execution.id) == "waiting"
    assert runner.run_execution(execution.id) is None  # not due: nothing ran twice
    assert steps_of(execution) == [("greet", "completed"), ("pause", "waiting")]


def test_the_reconciler_delivers_what_redis_lost(org, workflow, app):
    execution = start(org, workflow)
    redis_holder.client.flushdb()  # Redis restarted with an empty dataset
    db.session.execute(update(Execution).where(Execution.id == execution.id).values(
        created_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()

    assert runner.reconcile() == 1
    assert runner.reconcile() == 0  # its job is back in Redis: not delivered twice
    work()
    db.session.expire_all()
    assert db.session.get(Execution, execution.id).status == "waiting"


def test_an_idempotency_key_returns_the_first_run(org, workflow):
    first = start(org, workflow, idempotency_key="abc")
    again, created = executions.start_execution(org.id, None, workflow.id, trigger_data={}, input_data={},
                                                idempotency_key="abc")
    assert again.id == first.id and created is False


def test_an_event_resumes_a_run_waiting_for_it(org, staff):
    data = {"nodes": [{"id": "await", "type": "wait_for_event", "config": {
        "event": "class_booked", "timeout": {"amount": 3, "unit": "days"}}},
        {"id": "thanks", "type": "set_variable", "config": {"name": "cls", "value": "{{ steps.await.output.received.name }}"}},
        {"id": "bye", "type": "end", "config": {}}],
        "edges": [{"source": "await", "target": "thanks", "branch": "event"},
                  {"source": "await", "target": "bye", "branch": "timeout"}]}
    workflow = factories.make_workflow(org, staff, name="Win-back", status="active", workflow_data=data)
    execution = start(org, workflow)
    work()

    assert executions.deliver_event(org.id, "class_booked", "someone-else", {}) == []
    assert executions.deliver_event(org.id, "class_booked", "c-1", {"name": "Spin"}) == [execution.id]
    work()

    db.session.expire_all()
    execution = db.session.get(Execution, execution.id)
    assert execution.status == "completed" and execution.state["variables"] == {"cls": "Spin"}
    assert steps_of(execution)[0] == ("await", "completed")
    wait_row = db.session.scalar(select(ExecutionStep).where(ExecutionStep.node_id == "await"))
    assert (wait_row.branch, wait_row.output["received"]) == ("event", {"name": "Spin"})


def test_cancel_stops_a_waiting_run_and_refuses_a_finished_one(org, workflow):
    execution = start(org, workflow)
    work()
    cancelled = executions.cancel_execution(org.id, workflow.id, execution.id)
    assert cancelled.status == "cancelled" and cancelled.resume_at is None
    with pytest.raises(executions.Conflict):
        executions.cancel_execution(org.id, workflow.id, execution.id)


def test_a_goal_event_pulls_a_waiting_run_to_its_goal(org, staff):
    data = {"nodes": [{"id": "pause", "type": "wait", "config": {"duration": {"amount": 2, "unit": "days"}}},
                      {"id": "nudge", "type": "set_variable", "config": {"name": "nudged", "value": True}},
                      {"id": "member", "type": "goal", "config": {"event": "membership_started"}},
                      {"id": "celebrate", "type": "set_variable", "config": {"name": "celebrated", "value": True}}],
            "edges": [{"source": "pause", "target": "nudge"}, {"source": "nudge", "target": "member"},
                      {"source": "member", "target": "celebrate"}]}
    workflow = factories.make_workflow(org, staff, name="Convert", status="active", workflow_data=data)
    execution = start(org, workflow)
    work()

    assert executions.deliver_event(org.id, "membership_started", "c-1", {"plan": "Unlimited"}) == [execution.id]
    work()

    execution = db.session.get(Execution, execution.id)
    assert execution.status == "completed" and execution.state["variables"] == {"celebrated": True}
    assert execution.state["outputs"]["member"] == {"reached": True, "how": "event"}
    assert steps_of(execution) == [("pause", "skipped"), ("celebrate", "completed")]


def test_the_execute_estimate_is_measured_then_reused_from_the_cache(org, workflow):
    from atlas.extensions import cache

    execution = start(org, workflow)
    work()
    estimate = executions.estimate_for(workflow.id, org.id, workflow.version)
    assert estimate is not None and estimate > 0
    assert cache.get(f"atlas:estimate:{workflow.id}:{workflow.version}") == {"ms": estimate}
    db.session.execute(update(ExecutionStep).values(duration_ms=10_000.0))  # history changes...
    db.session.commit()
    assert executions.estimate_for(workflow.id, org.id, workflow.version) == estimate  # ...the cached one stands
    assert execution.id


def test_a_goal_condition_that_comes_true_while_the_run_waits_pulls_it_to_the_goal_at_once(org, staff):
    """The lead becomes a member in the middle of a two-day wait: the nurture stops now, not in two days."""
    from atlas.services import contacts

    data = {"nodes": [{"id": "pause", "type": "wait", "config": {"duration": {"amount": 2, "unit": "days"}}},
                      {"id": "nudge", "type": "set_variable", "config": {"name": "nudged", "value": True}},
                      {"id": "member", "type": "goal", "config": {"condition": {
                          "field": "contact.status", "operator": "equals", "value": "member"}}},
                      {"id": "celebrate", "type": "set_variable", "config": {"name": "celebrated", "value": True}}],
            "edges": [{"source": "pause", "target": "nudge"}, {"source": "nudge", "target": "member"},
                      {"source": "member", "target": "celebrate"}]}
    workflow = factories.make_workflow(org, staff, name="Convert by status", status="active", workflow_data=data)
    lead = factories.make_contact(org, first_name="Sarah")
    execution = start(org, workflow, input_data={"contactId": lead.id})
    work()
    assert db.session.get(Execution, execution.id).status == "waiting"

    contacts.set_fields(org.id, lead.id, {"status": "member"}, source="api")  # emits status_changed
    work()

    execution = db.session.get(Execution, execution.id)
    assert execution.status == "completed" and execution.state["variables"] == {"celebrated": True}
    assert execution.state["outputs"]["member"] == {"reached": True, "how": "condition"}
    assert steps_of(execution) == [("pause", "skipped"), ("celebrate", "completed")]


def jobs_handled_by_a_burst_worker(app) -> int:
    """Drain the queues with one burst SimpleWorker (as run_worker does) and say how many RQ jobs it performed."""
    from rq import Queue, SimpleWorker

    db.session.commit()
    queues = [Queue(name, connection=redis_holder.client) for name in app.config["ATLAS_QUEUES"]]
    worker = SimpleWorker(queues, connection=redis_holder.client)
    worker.work(burst=True)
    db.session.expire_all()
    return int(redis_holder.client.hget(worker.key, "successful_job_count") or 0)  # kept a minute after it stops


def test_one_run_job_also_runs_the_run_jobs_waiting_behind_it(app, org, workflow):
    """RQ's bookkeeping is paid per job, not per run: a worker taking 30 runs performs far fewer jobs."""
    runs = [start(org, workflow, priority=p) for p in [5] * 20 + [9] * 5 + [2] * 5]
    first_jobs = {r.id: r.job_id for r in runs}

    handled = jobs_handled_by_a_burst_worker(app)

    assert {db.session.get(Execution, r.id).status for r in runs} == {"waiting"}  # each ran up to its wait
    assert not any(redis_holder.client.exists(f"rq:job:{job}") for job in first_jobs.values())  # no hash left over
    assert 1 <= handled < 5, handled


def test_draining_keeps_priorities_and_puts_back_what_is_not_a_run(app, org, workflow):
    from rq import Queue

    from jobs.runs import take

    low, high = start(org, workflow, priority=2), start(org, workflow, priority=9)
    default = start(org, workflow, priority=5)
    Queue("atlas-default", connection=redis_holder.client).enqueue("builtins.print", "not a run", job_id="other-job")
    db.session.commit()

    assert take(redis_holder.client, 10) == [high.id]  # the highest-priority queue first
    assert take(redis_holder.client, 10) == [default.id]
    assert redis_holder.client.lrange("rq:queue:atlas-default", 0, -1) == [b"other-job"]  # put back, in place
    assert take(redis_holder.client, 10) == [low.id]
    assert not redis_holder.client.exists(f"rq:job:{high.job_id}")


def test_runs_taken_by_a_worker_that_dies_before_running_them_are_delivered_again(app, org, workflow, monkeypatch):
    from jobs.runs import take

    runs = [start(org, workflow) for _ in range(3)]
    db.session.commit()
    assert sorted(take(redis_holder.client, 10)) == sorted(r.id for r in runs)  # ...and then the worker dies

    monkeypatch.setitem(app.config, "ATLAS_RECONCILE_SECONDS", 0)
    assert runner.reconcile() == 3  # the database still says queued and Redis holds no job: deliver again
    work()
    assert {db.session.get(Execution, r.id).status for r in runs} == {"waiting"}


def test_draining_can_be_turned_off(app, org, workflow, monkeypatch):
    monkeypatch.setitem(app.config, "ATLAS_DRAIN_RUNS", False)
    runs = [start(org, workflow) for _ in range(4)]
    assert jobs_handled_by_a_burst_worker(app) == 4
    assert {db.session.get(Execution, r.id).status for r in runs} == {"waiting"}


def straight(org, staff, name="Straight"):
    """set -> set -> end: no wait, no side effects."""
    data = {"nodes": [{"id": "a", "type": "set_variable", "config": {"name": "a", "value": "{{ contact.name }}"}},
                      {"id": "b", "type": "set_variable", "config": {"name": "b", "value": "{{ vars.a }}!"}},
                      {"id": "z", "type": "end", "config": {}}],
            "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "z"}]}
    return factories.make_workflow(org, staff, name=name, status="active", workflow_data=data)


def test_a_batch_of_runs_is_claimed_run_and_saved_in_one_transaction(org, staff, workflow):
    from atlas.models import Workflow

    quick = straight(org, staff)
    runs = [start(org, quick) for _ in range(5)]
    nurture_run = start(org, workflow)
    cancelled = start(org, quick)
    executions.cancel_execution(org.id, quick.id, cancelled.id)
    ids = [r.id for r in [*runs, nurture_run, cancelled]]
    db.session.commit()
    commits = []
    from sqlalchemy import event

    session = db.session()  # the scoped session's current Session

    def count(_session):
        commits.append(1)

    event.listen(session, "after_commit", count)
    try:
        left = runner.run_batch(ids, worker="w1")
    finally:
        event.remove(session, "after_commit", count)
    db.session.expire_all()

    assert left == [] and len(commits) == 1
    assert {db.session.get(Execution, r.id).status for r in runs} == {"completed"}
    assert db.session.get(Execution, runs[0].id).state["variables"] == {"a": "Sarah", "b": "Sarah!"}
    assert steps_of(db.session.get(Execution, runs[0].id)) == [("a", "completed"), ("b", "completed"),
                                                                ("z", "completed")]
    assert db.session.get(Workflow, quick.id).usage_count == 5
    waiting = db.session.get(Execution, nurture_run.id)
    assert waiting.status == "waiting" and waiting.job_id == f"run-{waiting.id}-2"  # its resume is scheduled
    assert redis_holder.client.exists(f"rq:job:{waiting.job_id}")
    assert db.session.get(Execution, cancelled.id).status == "cancelled"  # not runnable: left alone


def test_runs_with_side_effects_are_left_to_run_one_by_one(org, staff):
    data = {"nodes": [{"id": "note", "type": "notify_staff", "config": {"message": "Hi"}}], "edges": []}
    noisy = factories.make_workflow(org, staff, name="Noisy", status="active", workflow_data=data)
    quiet = straight(org, staff)
    loud, calm = start(org, noisy), start(org, quiet)
    db.session.commit()

    assert runner.run_batch([loud.id, calm.id]) == [loud.id]
    db.session.expire_all()
    assert (db.session.get(Execution, loud.id).status, db.session.get(Execution, calm.id).status) == (
        "queued", "completed")


def test_a_batch_that_fails_commits_nothing_and_hands_every_run_back(org, staff, monkeypatch):
    from atlas.core import engine

    quiet = straight(org, staff)
    runs = [start(org, quiet) for _ in range(3)]
    db.session.commit()
    monkeypatch.setattr(engine, "advance", lambda *a, **k: 1 / 0)

    assert runner.run_batch([r.id for r in runs]) == [r.id for r in runs]
    db.session.expire_all()
    assert {db.session.get(Execution, r.id).status for r in runs} == {"queued"}
