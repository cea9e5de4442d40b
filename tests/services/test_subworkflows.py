"""run_workflow: a child run one level deeper for the same contact; the depth limit stops chains and self-recursion."""
import pytest
from sqlalchemy import select

from atlas.core.steps.base import StepError
from atlas.extensions import db
from atlas.models import Execution
from atlas.services import effects, executions, workflows
from atlas.services.effects import EffectContext
from jobs.worker import run_worker
from tests import factories


def definition_running(workflow_id: str) -> dict:
    nodes = [{"id": "start", "type": "set_variable", "config": {"name": "x", "value": "1"}},
             {"id": "child", "type": "run_workflow", "config": {"workflowId": workflow_id}}]
    return {"schemaVersion": 1, "nodes": nodes, "edges": [{"source": "start", "target": "child"}]}


@pytest.fixture
def child(org, staff):
    return factories.make_workflow(org, staff, name="Child", status="active")


def perform(org, params, *, depth=0, mock=False, contact=None, execution_id="parent-run"):
    ctx = EffectContext(org_id=org.id, execution_id=execution_id, workflow_id="parent-wf",
                        contact_id=contact.id if contact else None, mock=mock, depth=depth)
    return effects.perform(ctx, "run_workflow", {"trigger": {"form": "trial"}, "node_id": "sub",
                                                 "idempotency_key": f"{execution_id}:sub:1", **params})


def runs_of(workflow):
    return db.session.scalars(select(Execution).where(Execution.workflow_id == workflow.id)
                              .order_by(Execution.created_at)).all()


def test_a_child_run_starts_one_level_deeper_for_the_same_contact(org, child):
    contact = factories.make_contact(org, first_name="Sarah")
    out = perform(org, {"workflow_id": child.id}, depth=1, contact=contact)
    [run] = runs_of(child)
    assert out == {"workflowId": child.id, "depth": 2, "executionId": run.id, "status": "queued"}
    assert run.context["depth"] == 2 and run.context["parentExecutionId"] == "parent-run"
    assert run.contact_id == contact.id and run.contact["first_name"] == "Sarah" and run.test_mode is False
    assert run.trigger_data["form"] == "trial" and run.trigger_data["parent"]["workflowId"] == "parent-wf"


def test_a_retry_of_the_same_step_starts_no_second_run(org, child):
    first = perform(org, {"workflow_id": child.id, "idempotency_key": "parent-run:sub:1"})
    again = perform(org, {"workflow_id": child.id, "idempotency_key": "parent-run:sub:2"})
    assert first["executionId"] == again["executionId"] and len(runs_of(child)) == 1


def test_the_depth_limit(org, child, app):
    limit = app.config["ATLAS_MAX_WORKFLOW_DEPTH"]
    assert perform(org, {"workflow_id": child.id}, depth=limit - 1)["depth"] == limit
    with pytest.raises(StepError) as refused:
        perform(org, {"workflow_id": child.id}, depth=limit, execution_id="deep-run")
    assert refused.value.code == "WORKFLOW_DEPTH_EXCEEDED" and not refused.value.retryable
    assert str(limit) in refused.value.message and len(runs_of(child)) == 1


def test_only_active_workflows_of_the_organization(org, staff):
    draft = factories.make_workflow(org, staff, name="Draft")
    with pytest.raises(StepError) as inactive:
        perform(org, {"workflow_id": draft.id})
    assert inactive.value.code == "WORKFLOW_NOT_ACTIVE"
    other = factories.make_org()
    foreign = factories.make_workflow(other, None, name="Theirs", status="active")
    with pytest.raises(StepError) as hidden:
        perform(org, {"workflow_id": foreign.id})
    assert hidden.value.code == "WORKFLOW_NOT_FOUND" and runs_of(foreign) == []


def test_mock_mode_starts_nothing_but_still_checks(org, child, app):
    out = perform(org, {"workflow_id": child.id}, mock=True)
    assert out == {"workflowId": child.id, "depth": 1, "executionId": None, "status": "not_started", "mock": True}
    assert runs_of(child) == []
    with pytest.raises(StepError, match="limit"):
        perform(org, {"workflow_id": child.id}, mock=True, depth=app.config["ATLAS_MAX_WORKFLOW_DEPTH"])


def test_a_workflow_that_runs_itself_stops_at_the_depth_limit(org, staff, app):
    looping = factories.make_workflow(org, staff, name="Ouroboros")
    workflows.update_workflow(org.id, staff.id, looping.id,
                              {"workflow_data": definition_running(looping.id), "status": "active"})
    contact = factories.make_contact(org)
    executions.start_execution(org.id, None, looping.id, trigger_data={}, input_data={"contact": {"id": contact.id}})
    db.session.commit()
    run_worker(burst=True)  # a real worker: each run starts the next, until the limit refuses
    db.session.expire_all()
    runs = runs_of(looping)
    limit = app.config["ATLAS_MAX_WORKFLOW_DEPTH"]
    assert [r.context.get("depth", 0) for r in runs] == list(range(limit + 1))
    assert [r.status for r in runs] == ["completed"] * limit + ["failed"]
    assert runs[-1].error_code == "WORKFLOW_DEPTH_EXCEEDED" and runs[-1].failed_node == "child"
    assert {r.contact_id for r in runs} == {contact.id}
