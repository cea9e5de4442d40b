"""Enrollment: events against workflows, the rules, the decision log, and the runs it starts (run by a real worker)."""
from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from atlas.extensions import db, redis_holder
from atlas.models import EnrollmentDecision, Event, Execution, WorkflowTrigger
from atlas.models.base import utcnow
from atlas.services import enrollment, runner
from jobs.worker import run_worker
from tests import factories

WAITING = {"schemaVersion": 1, "nodes": [
    {"id": "hello", "type": "set_variable", "config": {"name": "greeting", "value": "Hi {{ contact.first_name }}"}},
    {"id": "pause", "type": "wait", "config": {"duration": {"amount": 2, "unit": "days"}}}],
    "edges": [{"source": "hello", "target": "pause"}]}
GREET = {"schemaVersion": 1, "nodes": [
    {"id": "hello", "type": "set_variable", "config": {
        "name": "greeting", "value": "Hi {{ contact.first_name }} from {{ trigger.leadSource }}"}}], "edges": []}


def flow(org, staff, name, trigger_type="lead_created", config=None, settings=None, status="active", data=GREET):
    return factories.make_workflow(org, staff, name=name, trigger_type=trigger_type, trigger_config=config or {},
                                   settings=settings or {}, status=status, workflow_data=data)


def happen(org, contact, kind="lead_created", payload=None, **kwargs) -> Event:
    """A persisted event, as the events service would record it."""
    event = Event(organization_id=org.id, type=kind, contact_id=contact.id if contact else None,
                  payload=payload if payload is not None else {"leadSource": "website"}, source="test", **kwargs)
    db.session.add(event)
    db.session.commit()
    return event


def work():
    """A real worker drains the queues; the test's own transaction ends first (SQLite has one writer)."""
    db.session.commit()
    run_worker(burst=True)
    db.session.expire_all()


def decided(decisions):
    return {(d.workflow_id, d.outcome) for d in decisions}


def logged(workflow):
    return list(db.session.scalars(select(EnrollmentDecision).where(EnrollmentDecision.workflow_id == workflow.id)
                                   .order_by(EnrollmentDecision.created_at)))


def runs_of(workflow):
    return list(db.session.scalars(select(Execution).where(Execution.workflow_id == workflow.id)
                                   .order_by(Execution.created_at)))


@pytest.fixture
def sarah(org):
    return factories.make_contact(org, first_name="Sarah", last_name="Lee", lead_source="website", tags=["trial"])


# --- matching and the runs it starts ---------------------------------------------------------------------------

def test_a_matching_event_enrolls_the_contact_and_a_real_worker_runs_it(org, staff, sarah):
    welcome = flow(org, staff, "Welcome", config={"leadSources": ["website", "instagram"]})
    event = happen(org, sarah, payload={"leadSource": "website", "campaign": "spring"})

    [decision] = enrollment.evaluate_event(org.id, event)

    assert (decision.outcome, decision.trigger_key, decision.contact_id, decision.event_id) == (
        "enrolled", "primary", sarah.id, event.id)
    [run] = runs_of(welcome)
    assert decision.execution_id == run.id and run.status == "queued" and run.version == welcome.version
    assert run.contact["first_name"] == "Sarah" and run.contact["tags"] == ["trial"] and run.contact_id == sarah.id
    assert run.trigger_data == {"leadSource": "website", "campaign": "spring", "type": "lead_created",
                                "eventId": event.id, "occurredAt": event.occurred_at.isoformat()}
    assert redis_holder.client.exists(f"rq:job:{run.job_id}")
    assert db.session.get(Event, event.id).enrolled == 1
    assert logged(welcome)[0].execution_id == run.id

    work()

    run = db.session.get(Execution, run.id)
    assert run.status == "completed" and run.state["variables"] == {"greeting": "Hi Sarah from website"}


def test_every_active_workflow_gets_one_decision_matched_or_not(org, staff, sarah):
    welcome = flow(org, staff, "Welcome")
    instagram = flow(org, staff, "Instagram only", config={"leadSources": ["instagram"]})
    no_show = flow(org, staff, "No-show", trigger_type="class_missed")
    paused_match = flow(org, staff, "Paused welcome", status="active")
    paused_other = flow(org, staff, "Paused no-show", trigger_type="class_missed")
    factories.make_workflow(org, staff, name="Draft", status="draft")
    for paused in (paused_match, paused_other):
        paused.status = "paused"
    db.session.commit()

    made = enrollment.evaluate_event(org.id, happen(org, sarah, payload={"leadSource": "walk_in"}))

    assert decided(made) == {(welcome.id, "enrolled"), (instagram.id, "trigger_mismatch"),
                             (no_show.id, "trigger_mismatch"), (paused_match.id, "workflow_inactive")}
    reasons = {d.workflow_id: d.reason for d in made}
    assert reasons[instagram.id] == "Lead source is 'walk_in'; this trigger only takes instagram."
    assert reasons[no_show.id] == "The event is “Lead created”; this trigger waits for “Class missed (no-show)”."
    assert reasons[paused_match.id].startswith("The trigger fits, but the workflow is paused;")
    assert len(db.session.scalars(select(EnrollmentDecision)).all()) == 4
    assert [len(runs_of(w)) for w in (welcome, instagram, no_show, paused_match)] == [1, 0, 0, 0]


def test_an_event_no_trigger_listens_for_decides_nothing(org, staff, sarah):
    flow(org, staff, "Welcome")
    assert enrollment.evaluate_event(org.id, happen(org, sarah, "class_attended", {})) == []
    assert db.session.scalars(select(EnrollmentDecision)).all() == []


def test_another_organization_s_workflows_are_not_evaluated(org, staff, sarah):
    other = factories.make_org("Rival Barbell Club")
    theirs = flow(other, None, "Their welcome")
    flow(org, staff, "Ours")
    made = enrollment.evaluate_event(org.id, happen(org, sarah))
    assert theirs.id not in {d.workflow_id for d in made} and runs_of(theirs) == []


def test_an_extra_trigger_enrolls_and_is_named_in_the_decision(org, staff, sarah):
    welcome = flow(org, staff, "Welcome", trigger_type="form_submitted", config={"formId": "frm_trial"})
    tag = WorkflowTrigger(organization_id=org.id, workflow_id=welcome.id, trigger_type="tag_added", name="Trial tag",
                          config={"tag": "trial"})
    db.session.add(tag)
    db.session.commit()

    [hit] = enrollment.evaluate_event(org.id, happen(org, sarah, "tag_added", {"tag": "Trial"}))
    [miss] = enrollment.evaluate_event(org.id, happen(org, sarah, "tag_added", {"tag": "vip"}))
    [other] = enrollment.evaluate_event(org.id, happen(org, sarah, "class_booked", {}))

    assert (hit.outcome, hit.trigger_key) == ("enrolled", tag.id)
    assert (miss.outcome, miss.trigger_key, miss.reason) == (
        "trigger_mismatch", tag.id, "The tag added is 'vip'; this trigger waits for tag 'trial'.")
    assert other.reason == ("The event is “Class booked”; this workflow's triggers wait for “Form submitted”, "
                            "“Tag added”.")


def test_the_scheduler_names_the_workflows_and_the_trigger(org, staff, sarah):
    expiring = flow(org, staff, "Renewal", trigger_type="membership_expiring", config={"daysBefore": 7})
    flow(org, staff, "Welcome")
    event = Event(organization_id=org.id, type="membership_expiring", contact_id=sarah.id,
                  payload={"membershipId": "m1", "daysUntilExpiry": 7, "triggerKey": "primary"}, occurred_at=utcnow())

    [decision] = enrollment.evaluate_event(org.id, event, workflows=[expiring])

    assert (decision.workflow_id, decision.outcome, decision.event_id) == (expiring.id, "enrolled", None)
    assert runs_of(expiring)[0].trigger_data["daysUntilExpiry"] == 7


# --- the filter and the rules ------------------------------------------------------------------------------------

def test_a_failed_filter_names_the_condition_and_the_actual_value(org, staff, sarah):
    members = flow(org, staff, "Members only", settings={"enrollmentFilter": {"all": [
        {"field": "trigger.leadSource", "operator": "equals", "value": "website"},
        {"field": "contact.status", "operator": "equals", "value": "member"}]}})

    [decision] = enrollment.evaluate_event(org.id, happen(org, sarah))

    assert decision.outcome == "filter_failed" and runs_of(members) == []
    assert decision.reason == "The enrollment filter failed on contact.status is 'member': the actual value is 'lead'."
    assert (decision.detail["field"], decision.detail["actual"]) == ("contact.status", "lead")


def test_a_holding_filter_enrolls(org, staff, sarah):
    flow(org, staff, "Trial leads", settings={"enrollmentFilter": {"field": "contact.tags", "operator": "contains",
                                                                   "value": "trial"}})
    assert [d.outcome for d in enrollment.evaluate_event(org.id, happen(org, sarah))] == ["enrolled"]


def test_never_re_enrolls_a_contact_who_ran_before(org, staff, sarah):
    once = flow(org, staff, "Once", settings={"reenrollment": "never"})
    enrollment.evaluate_event(org.id, happen(org, sarah))
    work()

    [decision] = enrollment.evaluate_event(org.id, happen(org, sarah))

    assert decision.outcome == "reenrollment_blocked" and len(runs_of(once)) == 1
    assert decision.reason.endswith("this workflow never re-enrolls a contact.")
    assert decision.detail["reenrollment"] == "never"


def test_always_re_enrolls_once_the_earlier_run_has_finished(org, staff, sarah):
    again = flow(org, staff, "Again", settings={"reenrollment": "always"})
    enrollment.evaluate_event(org.id, happen(org, sarah))
    work()

    assert [d.outcome for d in enrollment.evaluate_event(org.id, happen(org, sarah))] == ["enrolled"]
    assert len(runs_of(again)) == 2


def test_after_n_days_re_enrolls_only_when_they_have_passed(org, staff, sarah):
    monthly = flow(org, staff, "Monthly", settings={"reenrollment": "after_days", "reenrollmentDays": 30})
    enrollment.evaluate_event(org.id, happen(org, sarah))
    work()
    first = runs_of(monthly)[0]

    def enrolled_ago(days):
        db.session.execute(update(Execution).where(Execution.id == first.id).values(
            created_at=utcnow() - timedelta(days=days)))

    enrolled_ago(29)
    [blocked] = enrollment.evaluate_event(org.id, happen(org, sarah))
    enrolled_ago(31)
    [enrolled] = enrollment.evaluate_event(org.id, happen(org, sarah))

    assert blocked.outcome == "reenrollment_blocked" and "re-enrolls only after 30 days" in blocked.reason
    assert enrolled.outcome == "enrolled" and len(runs_of(monthly)) == 2


def test_a_contact_already_in_an_active_run_is_not_enrolled_again(org, staff, sarah):
    nurture = flow(org, staff, "Nurture", data=WAITING)
    enrollment.evaluate_event(org.id, happen(org, sarah))
    work()
    [run] = runs_of(nurture)
    assert run.status == "waiting"

    [decision] = enrollment.evaluate_event(org.id, happen(org, sarah))

    assert decision.outcome == "already_active" and decision.detail == {"executionId": run.id, "status": "waiting"}
    assert decision.reason == (f"The contact is already in a waiting run of this workflow ({run.id}); a contact has "
                               "one active run of a workflow at a time.")
    assert len(runs_of(nurture)) == 1


def test_one_active_run_can_be_turned_off(org, staff, sarah):
    nurture = flow(org, staff, "Nurture", data=WAITING, settings={"oneActiveRunPerContact": False})
    enrollment.evaluate_event(org.id, happen(org, sarah))
    assert [d.outcome for d in enrollment.evaluate_event(org.id, happen(org, sarah))] == ["enrolled"]
    assert len(runs_of(nurture)) == 2


def test_test_runs_do_not_count_as_enrollments(org, staff, sarah):
    once = flow(org, staff, "Once", settings={"reenrollment": "never"})
    db.session.add(Execution(organization_id=org.id, workflow_id=once.id, version=1, test_mode=True,
                             contact_id=sarah.id, contact={}, trigger_data={}, input_data={}))
    db.session.commit()
    assert [d.outcome for d in enrollment.evaluate_event(org.id, happen(org, sarah))] == ["enrolled"]


def test_the_same_event_evaluated_twice_starts_no_second_run(org, staff, sarah):
    welcome = flow(org, staff, "Welcome", settings={"oneActiveRunPerContact": False})
    event = happen(org, sarah)
    first = enrollment.evaluate_event(org.id, event)
    again = enrollment.evaluate_event(org.id, event)
    assert [d.id for d in again] == [d.id for d in first] and len(runs_of(welcome)) == 1


# --- exit goals ----------------------------------------------------------------------------------------------

def test_unsubscribing_ends_active_runs_of_workflows_that_exit_on_it(org, staff, sarah):
    exits = flow(org, staff, "Exits", data=WAITING)
    stays = flow(org, staff, "Stays", data=WAITING, settings={"exitOnUnsubscribe": False})
    enrollment.evaluate_event(org.id, happen(org, sarah))
    work()

    [decision] = enrollment.evaluate_event(org.id, happen(org, sarah, "contact_unsubscribed", {"channel": "sms"}))

    db.session.expire_all()
    [ended], [kept] = runs_of(exits), runs_of(stays)
    assert (ended.status, kept.status) == ("cancelled", "waiting") and ended.finished_at is not None
    assert (decision.workflow_id, decision.outcome, decision.execution_id) == (exits.id, "exited_by_goal", ended.id)
    assert decision.reason == "The run was ended because the contact unsubscribed (the workflow's exitOnUnsubscribe " \
                              "setting)."
    assert logged(exits)[-1].outcome == "exited_by_goal"


def test_becoming_a_member_ends_runs_only_where_asked(org, staff, sarah):
    exits = flow(org, staff, "Trial nurture", data=WAITING, settings={"exitWhenMember": True})
    stays = flow(org, staff, "Onboarding", data=WAITING)
    enrollment.evaluate_event(org.id, happen(org, sarah))
    work()

    trial = happen(org, sarah, "status_changed", {"from": "lead", "to": "trial"})
    assert enrollment.evaluate_event(org.id, trial) == []
    made = enrollment.evaluate_event(org.id, happen(org, sarah, "status_changed", {"from": "trial", "to": "member"}))

    db.session.expire_all()
    assert decided(made) == {(exits.id, "exited_by_goal")}
    assert [r.status for r in runs_of(exits)] == ["cancelled"] and [r.status for r in runs_of(stays)] == ["waiting"]
    db.session.execute(update(Execution).values(resume_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()  # the waits are due: the cancelled run is never claimed again, the other one goes on
    assert runner.run_execution(runs_of(exits)[0].id) is None
    assert runner.run_execution(runs_of(stays)[0].id) == "completed"


# --- cost ---------------------------------------------------------------------------------------------------

def statements(during):
    """The SQL statements run by during()."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement.split()[0].upper() + " " + statement)

    sa_event.listen(db.engine, "before_cursor_execute", record)
    try:
        during()
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", record)
    return seen


def test_the_cost_does_not_grow_with_the_number_of_workflows(org, staff, sarah):
    for n in range(2):
        flow(org, staff, f"Mismatch {n}", trigger_type="class_missed")
    flow(org, staff, "Welcome", settings={"oneActiveRunPerContact": False})
    first = happen(org, sarah)
    few = statements(lambda: enrollment.evaluate_event(org.id, first))
    for n in range(6):
        flow(org, staff, f"More {n}", trigger_type="payment_failed")
    event = happen(org, sarah)
    many = statements(lambda: enrollment.evaluate_event(org.id, event))

    assert len(many) == len(few)
    inserts = [s for s in many if s.startswith("INSERT INSERT INTO enrollment_decisions")]
    assert len(inserts) == 1  # nine decisions, one statement
    # org and event (expired by the test's commits), contact and its tags, workflows, active runs, last enrollments
    assert sum(s.startswith("SELECT") for s in many) == 7
    assert db.session.scalar(select(EnrollmentDecision.id).where(EnrollmentDecision.event_id == event.id)) is not None


def test_decisions_past_the_retention_are_purged_at_most_once_an_hour(app, org, staff, sarah, monkeypatch):
    from atlas.services import decisions

    monkeypatch.setitem(app.config, "ATLAS_DECISION_RETENTION_DAYS", 30)
    workflow = flow(org, staff, "Welcome")
    for age in (45, 31, 29, 1):
        decisions.record(org.id, workflow.id, contact_id=sarah.id, event_type="lead_created",
                         outcome=decisions.TRIGGER_MISMATCH, reason=f"{age} days old").created_at = \
            utcnow() - timedelta(days=age)
    db.session.commit()
    redis_holder.client.delete("atlas:decisions:purged")

    assert decisions.purge_if_due() == 2
    assert decisions.purge_if_due() is None  # another worker within the hour does nothing
    assert sorted(d.reason for d in logged(workflow)) == ["1 days old", "29 days old"]
