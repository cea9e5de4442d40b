"""Safe publishing: runs in flight counted per step, then kept on their version, moved to the new one at the matching
step (and really continuing there with the runner), or exited."""
import copy
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from atlas.errors import AtlasError
from atlas.extensions import db
from atlas.models import Execution, ExecutionStep
from atlas.models.base import utcnow
from atlas.services import executions, inflight, runner, workflows
from tests import factories

TEN_MINUTES = {"amount": 10, "unit": "minutes"}


def nurture(nudge="{{ vars.greeting }}!", wait_id="pause", wait_type="wait") -> dict:
    """greet -> pause (10 minutes) -> booked? yes: end; no: set nudge."""
    wait_config = {"duration": TEN_MINUTES} if wait_type == "wait" else {"name": "x", "value": "y"}
    nodes = [{"id": "greet", "type": "set_variable", "name": "Greet",
              "config": {"name": "greeting", "value": "Hi {{ contact.name }}"}},
             {"id": wait_id, "type": wait_type, "name": "Give them time", "config": wait_config},
             {"id": "booked", "type": "if_else", "name": "Booked?", "config": {"condition": {
                 "field": "trigger.booked", "operator": "equals", "value": True}}},
             {"id": "yes", "type": "end", "config": {}},
             {"id": "no", "type": "set_variable", "name": "Nudge", "config": {"name": "nudge", "value": nudge}}]
    edges = [{"source": "greet", "target": wait_id}, {"source": wait_id, "target": "booked"},
             {"source": "booked", "target": "yes", "branch": "true"},
             {"source": "booked", "target": "no", "branch": "false"}]
    return {"schemaVersion": 1, "nodes": nodes, "edges": edges}


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Nurture", status="active", workflow_data=nurture())


def start(org, workflow, *, advance=True, test_mode=False, name="Sarah"):
    """A live run of the workflow, advanced by the runner to its wait (or left queued)."""
    execution, _ = executions.start_execution(org.id, None, workflow.id, trigger_data={"booked": False},
                                              input_data={"contact": {"id": f"c-{name}", "name": name}},
                                              test_mode=test_mode)
    execution_id = execution.id
    if advance:
        db.session.commit()
        runner.run_execution(execution_id)
    db.session.expire_all()
    return db.session.get(Execution, execution_id)


def publish(org, workflow, data) -> int:
    """A new version of the live workflow (as the builder's publish does through update_workflow)."""
    return workflows.update_workflow(org.id, None, workflow.id, {"workflow_data": data}).workflow.version


def due(execution) -> None:
    db.session.execute(update(Execution).where(Execution.id == execution.id).values(
        resume_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def reload(execution) -> Execution:
    db.session.expire_all()
    return db.session.get(Execution, execution.id)


def test_runs_in_flight_are_counted_at_the_step_they_are_at(org, workflow):
    waiting = [start(org, workflow, name=n) for n in ("Ann", "Bo")]
    start(org, workflow, advance=False, name="Cy")  # queued, not started
    start(org, workflow, test_mode=True, name="Test")  # a test run is never counted
    finished = start(org, workflow, name="Done")
    executions.cancel_execution(org.id, workflow.id, finished.id)
    assert all(e.status == "waiting" and e.current_node == "pause" for e in waiting)

    groups = inflight.in_flight(org.id, workflow.id)

    assert groups == [
        {"node_id": None, "name": "Not started yet", "type": None, "count": 1, "waiting": 0},
        {"node_id": "pause", "name": "Give them time", "type": "wait", "count": 2, "waiting": 2}]


def test_move_takes_waiting_runs_to_the_new_version_at_the_same_step_and_they_finish_there(org, workflow):
    run = start(org, workflow)
    fresh = start(org, workflow, advance=False, name="Cy")
    resume_at = run.resume_at
    new_version = publish(org, workflow, nurture(nudge="v2 says {{ vars.greeting }}"))

    outcome = inflight.apply(org.id, workflow.id, new_version, "move")

    assert outcome == {"moved": 2, "kept": 0, "exited": 0, "unmatched": []}
    run = reload(run)
    assert (run.version, run.status, run.current_node) == (new_version, "waiting", "pause")
    assert run.resume_at == resume_at and run.state["variables"] == {"greeting": "Hi Sarah"}
    assert reload(fresh).version == new_version
    due(run)
    assert runner.run_execution(run.id) == "completed"
    run = reload(run)
    assert run.state["variables"] == {"greeting": "Hi Sarah", "nudge": "v2 says Hi Sarah"}  # the new version's step
    ran = db.session.scalars(select(ExecutionStep.node_id).where(ExecutionStep.execution_id == run.id)
                             .order_by(ExecutionStep.started_at)).all()
    assert ran == ["greet", "pause", "booked", "no"]


def test_keep_leaves_every_run_on_its_version(org, workflow):
    run = start(org, workflow)
    new_version = publish(org, workflow, nurture(nudge="v2"))

    assert inflight.apply(org.id, workflow.id, new_version, "keep") == {
        "moved": 0, "kept": 1, "exited": 0, "unmatched": []}

    due(run)
    assert runner.run_execution(run.id) == "completed"
    run = reload(run)
    assert run.version == 1 and run.state["variables"]["nudge"] == "Hi Sarah!"  # the old version's step


def test_exit_cancels_the_runs_in_flight_and_nothing_else(org, staff, workflow):
    runs = [start(org, workflow, name=n) for n in ("Ann", "Bo")] + [start(org, workflow, advance=False, name="Cy")]
    test_run = start(org, workflow, test_mode=True, name="Test")
    other = factories.make_workflow(org, staff, name="Other", status="active", workflow_data=nurture())
    bystander = start(org, other, name="Dee")
    new_version = publish(org, workflow, nurture(nudge="v2"))

    outcome = inflight.apply(org.id, workflow.id, new_version, "exit")

    assert outcome == {"moved": 0, "kept": 0, "exited": 3, "unmatched": []}
    for run in map(reload, runs):
        assert run.status == "cancelled" and run.finished_at is not None and run.resume_at is None
    assert reload(test_run).status == "waiting" and reload(bystander).status == "waiting"
    due(runs[0])
    assert runner.run_execution(runs[0].id) is None  # a cancelled run is nobody's to run


def test_steps_with_no_match_are_listed_and_their_runs_finish_on_the_old_version(org, workflow):
    run = start(org, workflow)
    fresh = start(org, workflow, advance=False, name="Cy")
    renamed = nurture(wait_id="pause_longer")
    assert inflight.unmatched(inflight.in_flight(org.id, workflow.id), renamed) == [
        {"node_id": "pause", "name": "Give them time", "type": "wait", "count": 1, "waiting": 1}]
    new_version = publish(org, workflow, renamed)

    outcome = inflight.apply(org.id, workflow.id, new_version, "move")

    assert outcome["moved"] == 1 and outcome["kept"] == 1
    assert [u["node_id"] for u in outcome["unmatched"]] == ["pause"]
    assert reload(run).version == 1 and reload(fresh).version == new_version
    due(run)
    assert runner.run_execution(run.id) == "completed"


def test_a_step_that_became_another_kind_of_step_has_no_match(org, workflow):
    start(org, workflow)
    changed = nurture(wait_type="set_variable")
    assert [u["node_id"] for u in inflight.unmatched(inflight.in_flight(org.id, workflow.id), changed)] == ["pause"]


def test_another_organizations_workflow_is_not_found_and_a_bad_choice_is_refused(org, workflow):
    other_org = factories.make_org("Rival Barbell Club")
    with pytest.raises(AtlasError) as caught:
        inflight.in_flight(other_org.id, workflow.id)
    assert caught.value.code == "WORKFLOW_NOT_FOUND"
    with pytest.raises(AtlasError) as caught:
        inflight.apply(org.id, workflow.id, 2, "teleport")
    assert caught.value.code == "VALIDATION_FAILED"


def test_a_version_published_twice_moves_runs_of_every_older_version(org, workflow):
    run = start(org, workflow)
    publish(org, workflow, nurture(nudge="v2"))
    v3 = publish(org, workflow, copy.deepcopy(nurture(nudge="v3")))
    assert inflight.in_flight(org.id, workflow.id)[0]["count"] == 1
    assert inflight.apply(org.id, workflow.id, v3, "move")["moved"] == 1
    assert reload(run).version == v3
