"""Enrollment: an event against every active workflow of its organization, one recorded decision per workflow.

For each workflow: does one of its triggers (the primary one, then its extra WorkflowTrigger rows) fit the event, does
the enrollment filter hold, do the re-enrollment and one-active-run rules let the contact in? Matches and non-matches
alike leave a decision (atlas.services.decisions). Runs for the matches are created in the same transaction as the
decisions, committed once, then enqueued. Events that end runs by goal (the contact unsubscribed or became a member)
cancel the contact's runs of workflows whose settings ask for it. Four queries at most: the workflows with their
triggers, the contact, the contact's active runs, the contact's latest enrollment per workflow.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload

from atlas import realtime
from atlas.core import conditions
from atlas.core import triggers as catalog
from atlas.core.triggers import EnrollmentRules
from atlas.extensions import db
from atlas.models import (
    TERMINAL,
    Contact,
    EnrollmentDecision,
    Event,
    Execution,
    ExecutionStatus,
    Workflow,
    WorkflowStatus,
    WorkflowTrigger,
)
from atlas.models.base import new_id, utcnow
from atlas.services import decisions, queue, runner
from atlas.services.contacts import contact_data
from atlas.services.tenancy import scoped

ACTIVE = (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING, ExecutionStatus.WAITING)
CONSIDERED = (WorkflowStatus.ACTIVE, WorkflowStatus.PAUSED)  # paused ones are told apart when their trigger matches
EXIT_EVENTS = frozenset({"contact_unsubscribed", "status_changed"})
PRIMARY = "primary"


@dataclass
class Verdict:
    """One workflow's answer to one event, before it becomes a decision row."""

    outcome: str
    reason: str
    trigger_key: str | None = None
    detail: dict | None = None


def evaluate_event(org_id: str, event: Event, *, workflows: list[Workflow] | None = None) -> list[EnrollmentDecision]:
    """Decide for every active workflow of the organization (or the given ones), record, start runs, commit, enqueue."""
    if event.type in EXIT_EVENTS:
        return _exit_by_goal(org_id, event, _contact(org_id, event.contact_id), workflows)
    made, runs = plan_event(org_id, event, workflows=workflows)
    return _commit(org_id, event, made, runs)


def plan_event(org_id: str, event: Event, *, workflows: list[Workflow] | None = None,
               bound: frozenset[str] = frozenset()) -> tuple[list[EnrollmentDecision], list[Execution]]:
    """The decisions and the runs an event makes, added to nothing: the caller stages and commits them (a webhook
    delivery commits them with its own rows). Workflows in `bound` take the event whatever their trigger (a webhook
    endpoint's own workflow); their enrollment filter and rules still apply."""
    if not catalog.is_known(event.type):
        return [], []  # no trigger listens for it (class_attended, sms_received...): it resumes runs or reaches goals
    contact = _contact(org_id, event.contact_id)
    candidates = _candidates(org_id, workflows)
    active, last = _active_runs(org_id, event.contact_id), _last_enrollments(org_id, event.contact_id)
    trigger_data = _trigger_data(event)
    made, runs = [], []
    for workflow, extra in candidates:
        verdict = _decide(workflow, extra, event, trigger_data, contact, active, last, workflow.id in bound)
        if verdict is None:
            continue
        execution = _new_run(org_id, workflow, event, contact, trigger_data, verdict) \
            if verdict.outcome == decisions.ENROLLED else None
        runs += [execution] if execution else []
        made.append(_decision(org_id, workflow.id, event, verdict, execution.id if execution else None))
    return made, runs


# --- loading --------------------------------------------------------------------------------------------------

def _contact(org_id: str, contact_id: str | None) -> dict:
    """The contact as runs and filters see it, or {} when the event names none of this organization's contacts."""
    if not contact_id:
        return {}
    contact = db.session.get(Contact, contact_id)
    return contact_data(contact) if contact is not None and contact.organization_id == org_id else {"id": contact_id}


def _candidates(org_id: str, workflows: list[Workflow] | None) -> list[tuple[Workflow, list[WorkflowTrigger]]]:
    """The workflows to evaluate with their active extra triggers (one query when none are given)."""
    by_id: dict[str, tuple[Workflow, list]] = {}
    if workflows is None:
        rows = db.session.execute(
            scoped(Workflow, org_id).add_columns(WorkflowTrigger).options(lazyload(Workflow.tag_rows))
            .outerjoin(WorkflowTrigger, and_(WorkflowTrigger.workflow_id == Workflow.id, WorkflowTrigger.active))
            .where(Workflow.status.in_(CONSIDERED))
            .order_by(Workflow.created_at, Workflow.id, WorkflowTrigger.created_at))
        for workflow, trigger in rows:
            by_id.setdefault(workflow.id, (workflow, []))[1].extend([trigger] if trigger is not None else [])
        return list(by_id.values())
    extra = db.session.scalars(select(WorkflowTrigger).where(
        WorkflowTrigger.workflow_id.in_([w.id for w in workflows]), WorkflowTrigger.active)
        .order_by(WorkflowTrigger.created_at)).all() if workflows else []
    return [(w, [t for t in extra if t.workflow_id == w.id]) for w in workflows]


def _active_runs(org_id: str, contact_id: str | None) -> dict[str, tuple[str, str]]:
    """workflow id -> (execution id, status) of the contact's live runs that are not tests."""
    if not contact_id:
        return {}
    rows = db.session.execute(select(Execution.workflow_id, Execution.id, Execution.status).where(
        Execution.organization_id == org_id, Execution.contact_id == contact_id, Execution.status.in_(ACTIVE),
        Execution.test_mode.is_(False)))
    return {workflow_id: (execution_id, status) for workflow_id, execution_id, status in rows}


def _last_enrollments(org_id: str, contact_id: str | None) -> dict:
    """workflow id -> when the contact last started a (non-test) run of it; runs outlive the decision log."""
    if not contact_id:
        return {}
    return dict(db.session.execute(select(Execution.workflow_id, func.max(Execution.created_at)).where(
        Execution.organization_id == org_id, Execution.contact_id == contact_id, Execution.test_mode.is_(False))
        .group_by(Execution.workflow_id)).all())


def _trigger_data(event: Event) -> dict:
    """What runs read as `trigger`: the payload plus the event's type, id and time."""
    occurred = event.occurred_at or utcnow()
    return {**(event.payload or {}), "type": event.type, "eventId": event.id, "occurredAt": occurred.isoformat()}


# --- deciding -------------------------------------------------------------------------------------------------

def _triggers_of(workflow: Workflow, extra: list[WorkflowTrigger], payload: dict) -> list[tuple[str, str, dict]]:
    """(key, type, config) of the triggers to try: primary first, then immediate extras; a scheduler's event names
    its trigger (payload triggerKey) and only that one is tried."""
    every = [(PRIMARY, workflow.trigger_type, workflow.trigger_config or {}, "immediate")]
    every += [(t.id, t.trigger_type, t.config or {}, t.schedule_type) for t in extra]
    wanted = payload.get("triggerKey")
    if wanted:
        return [(key, kind, config) for key, kind, config, _ in every if key == wanted]
    return [(key, kind, config) for key, kind, config, schedule in every if schedule == "immediate"]


def _match(workflow, extra, event, contact) -> tuple[str | None, catalog.Match]:
    """The first trigger that fits, or the most telling mismatch (one of the event's own type says most)."""
    tried = [(key, kind, catalog.match(kind, config, event.type, event.payload or {}, contact))
             for key, kind, config in _triggers_of(workflow, extra, event.payload or {})]
    ranked = sorted(tried, key=lambda t: (not t[2].matched, t[1] != event.type))
    if ranked and (ranked[0][2].matched or ranked[0][1] == event.type or len(ranked) == 1):
        return ranked[0][0], ranked[0][2]
    kinds = sorted({kind for _, kind, _ in tried}) or [workflow.trigger_type]
    return None, catalog.Match(False, f"The event is {catalog.label(event.type)}; this workflow's triggers wait "
                                      f"for {', '.join(catalog.label(k) for k in kinds)}.",
                               {"eventType": event.type, "triggerTypes": kinds})


def _decide(workflow, extra, event, trigger_data, contact, active, last, bound=False) -> Verdict | None:
    """One workflow's verdict; None for a paused workflow whose trigger does not fit (nothing worth logging)."""
    key, fit = _match(workflow, extra, event, contact)
    if bound and not fit.matched:
        key, fit = PRIMARY, catalog.Match(True, f"The {catalog.label(event.type)} event was addressed to this "
                                                "workflow, whatever its trigger.", {"eventType": event.type})
    if workflow.status != WorkflowStatus.ACTIVE:
        if not fit.matched:
            return None
        return Verdict(decisions.WORKFLOW_INACTIVE, f"The trigger fits, but the workflow is {workflow.status}; it "
                       "starts no runs until it is activated.", key, {"status": workflow.status})
    if not fit.matched:
        return Verdict(decisions.TRIGGER_MISMATCH, fit.reason, key, fit.detail)
    rules = EnrollmentRules.from_settings(workflow.settings)
    refused = _filter(rules, trigger_data, contact, event) or _rules(rules, workflow, event.contact_id, active, last)
    if refused:
        refused.trigger_key = key
        return refused
    return Verdict(decisions.ENROLLED, fit.reason, key, fit.detail)


def _filter(rules: EnrollmentRules, trigger_data: dict, contact: dict, event: Event) -> Verdict | None:
    """The enrollment filter's refusal, naming the rule that failed and the value it saw."""
    if not rules.enrollment_filter:
        return None
    data = {"trigger": trigger_data, "contact": contact, "vars": {}, "steps": {}}
    try:
        held = catalog.explain_filter(rules.enrollment_filter, data, event.occurred_at or utcnow())
    except conditions.ConditionError as exc:
        return Verdict(decisions.ERROR, f"The enrollment filter is not valid, so nobody is enrolled: {exc}. Fix "
                       "settings.enrollmentFilter.", detail={"problems": exc.problems})
    return None if held.matched else Verdict(decisions.FILTER_FAILED, held.reason, detail=held.detail)


def _rules(rules: EnrollmentRules, workflow, contact_id, active, last) -> Verdict | None:
    """Re-enrollment, then one active run per contact."""
    if not contact_id:
        return None
    blocked = rules.blocks_reenrollment(last.get(workflow.id), utcnow())
    if blocked:
        return Verdict(decisions.REENROLLMENT_BLOCKED, blocked, detail={
            "reenrollment": rules.reenrollment, "reenrollmentDays": rules.reenrollment_days,
            "lastEnrolledAt": last[workflow.id].isoformat()})
    if rules.one_active_run and workflow.id in active:
        execution_id, status = active[workflow.id]
        return Verdict(decisions.ALREADY_ACTIVE, f"The contact is already in a {status} run of this workflow "
                       f"({execution_id}); a contact has one active run of a workflow at a time.",
                       detail={"executionId": execution_id, "status": status})
    return None


def _new_run(org_id, workflow, event, contact, trigger_data, verdict) -> Execution:
    """The enrolled contact's run of the workflow's published version, not yet committed."""
    execution = Execution(
        id=new_id(), organization_id=org_id, workflow_id=workflow.id, version=workflow.version, definition=None,
        priority=5, test_mode=False, contact=contact, contact_id=event.contact_id, trigger_data=trigger_data,
        input_data={}, context={"source": "trigger", "eventId": event.id, "triggerKey": verdict.trigger_key},
        idempotency_key=f"event:{event.id}:{workflow.id}" if event.id else None, created_at=utcnow())
    runner.next_job(execution)
    return execution


def _decision(org_id, workflow_id, event, verdict: Verdict, execution_id: str | None) -> EnrollmentDecision:
    return decisions.build(org_id, workflow_id, contact_id=event.contact_id, event_id=event.id,
                           event_type=event.type, trigger_key=verdict.trigger_key, outcome=verdict.outcome,
                           reason=verdict.reason, detail=verdict.detail, execution_id=execution_id)


def _commit(org_id: str, event: Event, made: list[EnrollmentDecision], runs: list[Execution]):
    """Runs and decisions in one transaction, then the runs to the workers."""
    try:
        jobs = stage(event, made, runs)
        db.session.commit()
    except IntegrityError:  # this event was evaluated already (a retried delivery): keep the first answer
        db.session.rollback()
        return list(db.session.scalars(scoped(EnrollmentDecision, org_id).where(
            EnrollmentDecision.event_id == event.id)))
    enqueue(jobs)
    return made


def stage(event: Event, made: list[EnrollmentDecision], runs: list[Execution]) -> list[tuple[str, int, str]]:
    """Add planned runs and decisions to the session (the caller commits); the jobs to enqueue after the commit."""
    db.session.add_all(runs)
    decisions.insert_many(made)
    if runs:
        event.enrolled = (event.enrolled or 0) + len(runs)
    return [(execution.id, execution.priority, execution.job_id) for execution in runs]  # no query per run later


def enqueue(jobs: list[tuple[str, int, str]]) -> None:
    """Hand committed runs (id, priority, job id) to the workers."""
    for execution_id, priority, job_id in jobs:
        queue.enqueue_run(execution_id, priority, job_id)


# --- exit goals -----------------------------------------------------------------------------------------------

def _goal_reached(event: Event, contact: dict) -> tuple[str, str] | None:
    """(setting, words) when the event is a goal that ends runs: unsubscribed, or the contact became a member."""
    if event.type == "contact_unsubscribed":
        return "exit_on_unsubscribe", "the contact unsubscribed"
    payload = event.payload or {}
    status = payload.get("to") or payload.get("status") or payload.get("newStatus") or contact.get("status")
    return ("exit_when_member", "the contact became a member") if status == "member" else None


def _exit_by_goal(org_id: str, event: Event, contact: dict, workflows) -> list[EnrollmentDecision]:
    """Cancel the contact's live runs of workflows whose settings end runs at this goal; one decision per run."""
    goal = _goal_reached(event, contact)
    if goal is None or not event.contact_id:
        return []
    setting, words = goal
    query = select(Execution.id, Execution.workflow_id, Workflow.settings).join(
        Workflow, Workflow.id == Execution.workflow_id).where(
        Execution.organization_id == org_id, Execution.contact_id == event.contact_id,
        Execution.status.in_(ACTIVE), Execution.test_mode.is_(False))
    if workflows is not None:
        query = query.where(Execution.workflow_id.in_([w.id for w in workflows]))
    ending = [(eid, wid) for eid, wid, settings in db.session.execute(query)
              if getattr(EnrollmentRules.from_settings(settings), setting)]
    if not ending:
        return []
    db.session.execute(update(Execution).where(Execution.id.in_([e for e, _ in ending]),
                                               Execution.status.not_in(TERMINAL)).values(
        status=ExecutionStatus.CANCELLED, finished_at=utcnow(), resume_at=None, correlation_key=None))
    key = {"exit_on_unsubscribe": "exitOnUnsubscribe", "exit_when_member": "exitWhenMember"}[setting]
    made = [_decision(org_id, wid, event, Verdict(decisions.EXITED_BY_GOAL, f"The run was ended because {words} "
                                                  f"(the workflow's {key} setting).", None, {"goal": key}),
                      eid) for eid, wid in ending]
    decisions.insert_many(made)
    db.session.commit()
    realtime.publish([(wid, "execution_cancelled", {"executionId": eid, "status": "cancelled"}) for eid, wid in ending])
    return made
