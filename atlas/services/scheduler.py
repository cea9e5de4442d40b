"""Scheduled (cron, recurring) and date-based (membership expiring, birthday) triggers: one run per occurrence.

tick() runs inside every worker's reconciler loop and from `flask atlas tick`. Any number of processes may tick at
once: each occurrence is claimed by inserting a TriggerFire row, unique on (workflow, trigger key, occurrence), in the
transaction that creates its run; a process whose insert fails skips that occurrence. The Redis lock taken per tick
only spares the others the work; correctness never depends on it.

What is due: occurrences after the last one fired, after the scheduler's watermark (the last instant a complete tick
covered, so a workflow resumed after a pause does not make up the runs it missed) and after the trigger's creation,
within ATLAS_SCHEDULER_CATCHUP_HOURS. Older missed occurrences are counted as skipped_old and logged, never fired.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import LockError, RedisError
from sqlalchemy import and_, extract, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload

from atlas.core import schedule as sched
from atlas.extensions import db, redis_holder
from atlas.hooks import write_intent
from atlas.models import (
    Contact,
    ContactMembership,
    Event,
    Execution,
    Organization,
    PlanStatus,
    TriggerFire,
    Workflow,
    WorkflowStatus,
    WorkflowTrigger,
)
from atlas.models.base import new_id, utcnow
from atlas.services import queue, runner
from atlas.services.executions import runnable_definition
from atlas.services.tenancy import scoped

log = logging.getLogger(__name__)

SCHEDULE = "schedule"
DATE_TRIGGERS = ("membership_expiring", "birthday")
SCHEDULE_TYPES = ("cron", "recurring")
PRIMARY = "primary"
MAX_PER_TRIGGER = 100  # occurrences one trigger fires in one tick; the rest follow in the next ticks, oldest first
LOCK_KEY, LOCK_SECONDS = "atlas:scheduler:tick", 60
WATERMARK_KEY = "atlas:scheduler:watermark"
_warned: set = set()


@dataclass
class Trigger:
    """One scheduled or date-based trigger of an active workflow: its primary trigger or a WorkflowTrigger row."""

    workflow: Workflow
    key: str
    trigger_type: str
    config: dict
    created_at: datetime
    row: WorkflowTrigger | None = None


def tick(now: datetime | None = None, *, lock: bool = True) -> dict:
    """Fire every due occurrence once; returns {fired, skipped_old, duplicates, errors} (and locked when skipped)."""
    now = now or utcnow()
    summary = {"fired": 0, "skipped_old": 0, "duplicates": 0, "errors": 0}
    held = _acquire() if lock else None
    if lock and held is False:
        return {**summary, "locked": True}
    try:
        complete = _fire_all(now, summary)
        if complete:
            _advance_watermark(min(now, utcnow()))  # a --now in the future must not hold back real occurrences
    finally:
        _release(held)
    return summary


def _fire_all(now: datetime, summary: dict) -> bool:
    """Run every trigger's due occurrences; False when one failed or hit the cap (the watermark then stays)."""
    with _reading():
        triggers = active_triggers()
        if not triggers:
            return True
        orgs = {o.id: o for o in db.session.scalars(select(Organization).where(
            Organization.id.in_({t.workflow.organization_id for t in triggers})))}
        last = _last_fires([t.workflow.id for t in triggers if t.trigger_type == SCHEDULE])
    watermark, complete = _watermark(), True
    for trigger in triggers:  # each commits its own occurrences; the order is stable, so processes meet in step
        org = orgs[trigger.workflow.organization_id]
        try:
            if trigger.trigger_type == SCHEDULE:
                complete &= _run_schedule(trigger, org, now, watermark, last.get((trigger.workflow.id, trigger.key)),
                                          summary)
            else:
                complete &= _run_dated(trigger, org, now, watermark, summary)
        except sched.ScheduleError as exc:
            _warn_once(trigger, str(exc))
        except Exception:  # one broken workflow must not stop the others
            db.session.rollback()
            log.exception("scheduler: trigger %s of workflow %s failed", trigger.key, trigger.workflow.id)
            summary["errors"] += 1
            complete = False
    return complete


@contextmanager
def _reading():
    """Load in a transaction of its own that on SQLite takes no write lock (most ticks find nothing due); the rows
    stay loaded after it ends. Each trigger then fires in a write transaction of its own."""
    token, session = write_intent.set(False), db.session()
    keep, session.expire_on_commit = session.expire_on_commit, False
    try:
        yield
        session.commit()
    finally:
        session.expire_on_commit = keep
        write_intent.reset(token)


def active_triggers() -> list[Trigger]:
    """The scheduled and date-based triggers of every active workflow, primary ones first, in a stable order."""
    primary = db.session.scalars(select(Workflow).where(
        Workflow.status == WorkflowStatus.ACTIVE, Workflow.trigger_type.in_((SCHEDULE, *DATE_TRIGGERS)))
        .options(lazyload(Workflow.tag_rows)).order_by(Workflow.id)).all()
    rows = db.session.execute(select(WorkflowTrigger, Workflow).join(
        Workflow, Workflow.id == WorkflowTrigger.workflow_id).where(
        Workflow.status == WorkflowStatus.ACTIVE, WorkflowTrigger.active.is_(True),
        or_(WorkflowTrigger.schedule_type.in_(SCHEDULE_TYPES), WorkflowTrigger.trigger_type.in_(DATE_TRIGGERS)))
        .options(lazyload(Workflow.tag_rows)).order_by(WorkflowTrigger.workflow_id, WorkflowTrigger.id)).all()
    found = [Trigger(w, PRIMARY, w.trigger_type, dict(w.trigger_config or {}), w.created_at) for w in primary]
    for row, workflow in rows:
        kind = row.trigger_type if row.trigger_type in DATE_TRIGGERS else SCHEDULE
        found.append(Trigger(workflow, row.id, kind, dict(row.config or {}), row.created_at, row))
    return found


def _last_fires(workflow_ids: list[str]) -> dict:
    """(workflow id, trigger key) -> the latest occurrence fired, as its name."""
    if not workflow_ids:
        return {}
    rows = db.session.execute(select(TriggerFire.workflow_id, TriggerFire.trigger_key, func.max(TriggerFire.occurrence))
                              .where(TriggerFire.workflow_id.in_(set(workflow_ids)))
                              .group_by(TriggerFire.workflow_id, TriggerFire.trigger_key)).all()
    return {(workflow_id, key): occurrence for workflow_id, key, occurrence in rows}


# --- cron and recurring -----------------------------------------------------------------------------------------

def _run_schedule(trigger: Trigger, org: Organization, now, watermark, last: str | None, summary: dict) -> bool:
    """Fire the trigger's due instants, oldest first; True unless it had more than MAX_PER_TRIGGER due."""
    tz = sched.zone(org.timezone)
    row = trigger.row
    plan = sched.parse_schedule(trigger.config, tz=tz, created_at=trigger.created_at,
                                schedule_type=row.schedule_type if row else None,
                                cron_expression=row.cron_expression if row else None)
    last_fire = sched.parse_occurrence_key(last) if last else None
    fire_after, skip_after = sched.fire_window(now, _catchup(), last_fire, watermark, trigger.created_at)
    if skip_after is not None:
        _skipped(trigger, summary, sched.count_occurrences(plan, tz, skip_after, fire_after))
    due = sched.occurrences(plan, tz, fire_after, now, limit=MAX_PER_TRIGGER + 1)
    capped = len(due) > MAX_PER_TRIGGER
    due = due[:MAX_PER_TRIGGER]
    _fire_instants(trigger, due, summary)
    if row is not None:
        latest = max([d for d in (last_fire, *due) if d is not None], default=None)
        _keep_row(row, latest, sched.next_occurrence(plan, tz, max(now, due[-1]) if due else now))
    return not capped


def _fire_instants(trigger: Trigger, instants: list[datetime], summary: dict) -> None:
    """Claim and start one run per instant in one transaction (a lost claim is skipped), commit, then enqueue."""
    if not instants:
        return
    version, _ = runnable_definition(trigger.workflow, test_mode=False)
    started = []
    for instant in instants:
        occurrence = sched.occurrence_key(instant)
        execution = _schedule_run(trigger, version, occurrence)
        if _claim(trigger, occurrence, execution):
            started.append(execution)
        else:
            summary["duplicates"] += 1
    db.session.commit()
    for execution in started:
        queue.enqueue_run(execution.id, execution.priority, execution.job_id)
    summary["fired"] += len(started)


def _schedule_run(trigger: Trigger, version: int, occurrence: str) -> Execution:
    """A new queued run of a schedule occurrence: no contact, trigger data naming the occurrence."""
    workflow = trigger.workflow
    execution = Execution(id=new_id(), organization_id=workflow.organization_id, workflow_id=workflow.id,
                          version=version, definition=None, priority=5, test_mode=False, contact={}, contact_id=None,
                          trigger_data={"type": SCHEDULE, "scheduledFor": occurrence, "triggerKey": trigger.key},
                          input_data={}, context={})
    runner.next_job(execution)  # the job id is named before the commit, as start_execution does
    return execution


def _claim(trigger: Trigger, occurrence: str, execution: Execution | None = None) -> TriggerFire | None:
    """Insert the occurrence's TriggerFire (and its run) in a savepoint; None when another tick holds it already."""
    workflow = trigger.workflow
    fire = TriggerFire(id=new_id(), organization_id=workflow.organization_id, workflow_id=workflow.id,
                       trigger_key=trigger.key, occurrence=occurrence, fired_at=utcnow(),
                       execution_id=execution.id if execution else None)
    try:
        with db.session.begin_nested():
            db.session.add(fire)
            db.session.flush()
            if execution is not None:
                db.session.add(execution)
                db.session.flush()
    except IntegrityError:
        return None
    return fire


def _keep_row(row: WorkflowTrigger, last_fired: datetime | None, next_fire: datetime | None) -> None:
    """Keep a WorkflowTrigger's last_fired_at / next_fire_at current, writing only when they change."""
    if (row.last_fired_at, row.next_fire_at) != (last_fired or row.last_fired_at, next_fire):
        row.last_fired_at = last_fired or row.last_fired_at
        row.next_fire_at = next_fire
        db.session.commit()


# --- membership expiring and birthday ---------------------------------------------------------------------------

def _run_dated(trigger: Trigger, org: Organization, now, watermark, summary: dict) -> bool:
    """Evaluate each local day whose daily run time is due; True unless some contacts were left for the next tick."""
    try:  # the enrollment service starts the runs, with its rules and decision log
        from atlas.services import enrollment
    except ImportError:
        _warn_once(trigger, "date-based triggers need atlas.services.enrollment, which is not installed")
        return True
    tz, run_time = sched.zone(org.timezone), sched.parse_run_time((org.settings or {}).get("dailyRunTime"))
    fire_after, skip_after = sched.fire_window(now, _catchup(), watermark, trigger.created_at)
    if skip_after is not None:
        _skipped(trigger, summary, len(sched.due_days(run_time, tz, skip_after, fire_after)))
    room = MAX_PER_TRIGGER
    for day in sched.due_days(run_time, tz, fire_after, now):
        for contact_id, payload in _new_for_day(trigger, day)[:room]:
            room -= 1
            if _fire_dated(enrollment, trigger, day, contact_id, payload, sched.daily_instant(day, run_time, tz)):
                summary["fired"] += 1
            else:
                summary["duplicates"] += 1
        if room <= 0:
            return False
    if trigger.row is not None:
        upcoming = sched.due_days(run_time, tz, now, now + timedelta(days=2))
        _keep_row(trigger.row, None, sched.daily_instant(upcoming[0], run_time, tz) if upcoming else None)
    return True


def _new_for_day(trigger: Trigger, day) -> list[tuple[str, dict]]:
    """(contact id, event payload) of the day's contacts that this trigger has not fired for yet."""
    candidates = _expiring(trigger, day) if trigger.trigger_type == "membership_expiring" else _birthdays(trigger, day)
    if not candidates:
        return []
    keys = {sched.date_occurrence_key(day, contact_id) for contact_id, _ in candidates}
    done = set(db.session.scalars(select(TriggerFire.occurrence).where(
        TriggerFire.workflow_id == trigger.workflow.id, TriggerFire.trigger_key == trigger.key,
        TriggerFire.occurrence.in_(keys))))
    return [(c, p) for c, p in candidates if sched.date_occurrence_key(day, c) not in done]


def _expiring(trigger: Trigger, day) -> list[tuple[str, dict]]:
    """Contacts whose active membership expires daysBefore days after this local day (one per contact)."""
    days_before = _days_before(trigger.config)
    rows = db.session.execute(scoped(ContactMembership, trigger.workflow.organization_id).with_only_columns(
        ContactMembership.contact_id, ContactMembership.plan, ContactMembership.expires_on).where(
        ContactMembership.status == PlanStatus.ACTIVE,
        ContactMembership.expires_on == day + timedelta(days=days_before))
        .order_by(ContactMembership.contact_id, ContactMembership.id)).all()
    found = {}
    for contact_id, plan, expires_on in rows:
        found.setdefault(contact_id, {"contactId": contact_id, "expiresOn": expires_on.isoformat(), "plan": plan,
                                      "planName": plan, "daysBefore": days_before, "daysUntilExpiry": days_before})
    return list(found.items())


def _days_before(config: dict) -> int:
    """The trigger's daysBefore (default 7), a whole number of days from 0 to 365."""
    value = config.get("daysBefore", 7)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 365:
        raise sched.ScheduleError(f"daysBefore must be a whole number of days from 0 to 365; got {value!r}.")
    return value


def _birthdays(trigger: Trigger, day) -> list[tuple[str, dict]]:
    """Contacts celebrating a birthday on this local day (Feb 29 birthdays on Feb 28 in other years)."""
    same_day = [and_(extract("month", Contact.birthday) == month, extract("day", Contact.birthday) == dom)
                for month, dom in sched.birthday_dates(day)]
    rows = db.session.execute(scoped(Contact, trigger.workflow.organization_id).with_only_columns(
        Contact.id, Contact.birthday).where(Contact.birthday.is_not(None), or_(*same_day))
        .order_by(Contact.id)).all()
    return [(contact_id, {"contactId": contact_id, "birthday": born.isoformat()}) for contact_id, born in rows]


def _fire_dated(enrollment, trigger: Trigger, day, contact_id: str, payload: dict, at: datetime) -> bool:
    """Claim the contact's occurrence, then let enrollment decide and start the run in the same transaction."""
    fire = _claim(trigger, sched.date_occurrence_key(day, contact_id))
    if fire is None:
        return False
    event = _day_event(trigger, day, contact_id, {**payload, "triggerKey": trigger.key}, at)
    decisions = enrollment.evaluate_event(trigger.workflow.organization_id, event, workflows=[trigger.workflow])
    if fire not in db.session:  # enrollment rolled back (it had answered this event before): nothing was claimed
        return False
    fire.execution_id = next((d.execution_id for d in decisions or [] if d.execution_id), None)
    db.session.commit()  # evaluate_event committed the claim with its decision; this adds the run's id
    return True


def _day_event(trigger: Trigger, day, contact_id: str, payload: dict, at: datetime) -> Event:
    """The day's Event for this contact and trigger (created once); the payload's triggerKey tells enrollment which
    of the workflow's triggers it answers. Primary triggers alike (same type and daysBefore) share one event."""
    org_id = trigger.workflow.organization_id
    key = f"scheduler:{trigger.trigger_type}:{day.isoformat()}:{payload.get('daysBefore', '')}:{trigger.key}:" \
          f"{contact_id}"
    found = db.session.scalar(scoped(Event, org_id).where(Event.idempotency_key == key))
    if found is not None:
        return found
    event = Event(id=new_id(), organization_id=org_id, type=trigger.trigger_type, contact_id=contact_id,
                  payload=payload, source="scheduler", idempotency_key=key, occurred_at=at, received_at=utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(event)
            db.session.flush()
    except IntegrityError:  # another process recorded it for another workflow meanwhile
        return db.session.scalar(scoped(Event, org_id).where(Event.idempotency_key == key))
    return event


# --- shared -----------------------------------------------------------------------------------------------------

def _catchup() -> timedelta:
    return timedelta(hours=current_app.config["ATLAS_SCHEDULER_CATCHUP_HOURS"])


def _skipped(trigger: Trigger, summary: dict, count: int) -> None:
    """Count and log occurrences missed longer ago than the catch-up window: they are never fired."""
    if count:
        summary["skipped_old"] += count
        log.warning("scheduler: skipped %d occurrence(s) of trigger %s of workflow %s, older than the %s-hour "
                    "catch-up window", count, trigger.key, trigger.workflow.id,
                    current_app.config["ATLAS_SCHEDULER_CATCHUP_HOURS"])


def _warn_once(trigger: Trigger, problem: str) -> None:
    """Log a trigger whose configuration cannot be used, once per process (ticks run every few seconds)."""
    mark = (trigger.workflow.id, trigger.key, problem)
    if mark not in _warned:
        _warned.add(mark)
        log.warning("scheduler: trigger %s of workflow %s is skipped: %s", trigger.key, trigger.workflow.id, problem)


def _acquire():
    """The tick lock (a redis-py Lock), False when another process holds it, None when Redis cannot say."""
    try:
        held = redis_holder.client.lock(LOCK_KEY, timeout=LOCK_SECONDS, blocking=False)
        return held if held.acquire() else False
    except RedisError:
        return None  # tick anyway: the unique key keeps it exactly once


def _release(held) -> None:
    if held:
        try:
            held.release()
        except (LockError, RedisError):  # expired meanwhile, or Redis went away: nothing to undo
            pass


def _watermark() -> datetime | None:
    """The instant up to which a complete tick fired everything (None when Redis lost it or cannot say)."""
    try:
        raw = redis_holder.client.get(WATERMARK_KEY)
        return datetime.fromisoformat(raw.decode()) if raw else None
    except (RedisError, ValueError):
        return None


def _advance_watermark(at: datetime) -> None:
    """Move the watermark forward to `at` (never back)."""
    current = _watermark()
    if current is None or at > current:
        try:
            redis_holder.client.set(WATERMARK_KEY, at.isoformat())
        except RedisError:
            pass
