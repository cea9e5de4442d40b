"""The scheduler: cron, recurring and date-based triggers fire once per occurrence, catch up a bounded window after
downtime, skip paused workflows, and stay exactly once with several real scheduler processes on one database."""
import json
import subprocess
import sys
import time as time_module
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select, update

from atlas.core import schedule as sched
from atlas.extensions import db, redis_holder
from atlas.models import ContactMembership, Event, Execution, TriggerFire, Workflow, WorkflowStatus, WorkflowTrigger
from atlas.models.base import utcnow
from atlas.services import queue, scheduler
from tests import factories
from tests.support.workers import ROOT, worker_env

HOURLY = {"scheduleType": "cron", "cronExpression": "0 * * * *"}

try:
    from atlas.services import enrollment
    HAS_ENROLLMENT = hasattr(enrollment, "evaluate_event")
except ImportError:
    HAS_ENROLLMENT = False
needs_enrollment = pytest.mark.skipif(not HAS_ENROLLMENT, reason="enrollment not present")


@pytest.fixture
def base():
    """A whole hour three days ahead: test ticks run at fake instants after every row's real creation time."""
    return utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(days=3)


def scheduled(org, staff, config=HOURLY, created=None, **fields) -> Workflow:
    """An active schedule workflow, created (as far as the scheduler can tell) at `created`."""
    fields.setdefault("trigger_type", "schedule")
    workflow = factories.make_workflow(org, staff, status="active", trigger_config=config, **fields)
    if created is not None:
        db.session.execute(update(Workflow).where(Workflow.id == workflow.id).values(created_at=created))
        db.session.commit()
    return workflow


def fires(workflow) -> list[str]:
    db.session.expire_all()
    return list(db.session.scalars(select(TriggerFire.occurrence).where(TriggerFire.workflow_id == workflow.id)
                                   .order_by(TriggerFire.occurrence)))


def runs(workflow) -> list[Execution]:
    return list(db.session.scalars(select(Execution).where(Execution.workflow_id == workflow.id)
                                   .order_by(Execution.created_at, Execution.id)))


def key(instant: datetime) -> str:
    return sched.occurrence_key(instant)


# --- cron and recurring -----------------------------------------------------------------------------------------

def test_a_cron_trigger_fires_one_queued_run_per_occurrence(org, staff, base):
    workflow = scheduled(org, staff, created=base - timedelta(minutes=90))
    assert scheduler.tick(base) == {"fired": 2, "skipped_old": 0, "duplicates": 0, "errors": 0}
    assert fires(workflow) == [key(base - timedelta(hours=1)), key(base)]
    started = runs(workflow)
    assert sorted(r.trigger_data["scheduledFor"] for r in started) == fires(workflow)
    assert all(r.trigger_data["type"] == "schedule" and r.trigger_data["triggerKey"] == "primary" for r in started)
    assert all(r.contact_id is None and r.status == "queued" and queue.job_pending(r.job_id) for r in started)
    fire_runs = set(db.session.scalars(select(TriggerFire.execution_id).where(TriggerFire.workflow_id == workflow.id)))
    assert fire_runs == {r.id for r in started}

    assert scheduler.tick(base + timedelta(minutes=30))["fired"] == 0
    assert scheduler.tick(base + timedelta(hours=1))["fired"] == 1
    assert fires(workflow)[-1] == key(base + timedelta(hours=1)) and len(runs(workflow)) == 3


def test_a_second_tick_at_the_same_instant_fires_nothing_new(org, staff, base):
    workflow = scheduled(org, staff, created=base - timedelta(hours=5))
    first = scheduler.tick(base)
    assert first["fired"] == 5
    redis_holder.client.delete(scheduler.WATERMARK_KEY)  # as if another process ticked without one
    assert scheduler.tick(base) == {"fired": 0, "skipped_old": 0, "duplicates": 0, "errors": 0}
    assert len(fires(workflow)) == len(runs(workflow)) == 5


def test_a_claim_another_process_already_holds_is_a_duplicate_and_starts_no_run(org, staff, base):
    workflow = scheduled(org, staff, created=base - timedelta(hours=2))
    trigger = next(t for t in scheduler.active_triggers() if t.workflow.id == workflow.id)
    first, second = {"fired": 0, "duplicates": 0}, {"fired": 0, "duplicates": 0}
    scheduler._fire_instants(trigger, [base - timedelta(hours=1), base], first)
    scheduler._fire_instants(trigger, [base - timedelta(hours=1), base, base + timedelta(hours=1)], second)
    assert first == {"fired": 2, "duplicates": 0} and second == {"fired": 1, "duplicates": 2}
    assert len(fires(workflow)) == len(runs(workflow)) == 3


def test_after_downtime_missed_occurrences_in_the_window_fire_once_each_and_older_ones_are_skipped(
        app, org, staff, base, monkeypatch):
    monkeypatch.setitem(app.config, "ATLAS_SCHEDULER_CATCHUP_HOURS", 3)
    workflow = scheduled(org, staff, created=base - timedelta(days=2))
    db.session.add(TriggerFire(organization_id=org.id, workflow_id=workflow.id, trigger_key="primary",
                               occurrence=key(base - timedelta(hours=10))))
    db.session.commit()  # the last fire before the scheduler went down, ten hours ago
    summary = scheduler.tick(base)
    assert summary == {"fired": 3, "skipped_old": 7, "duplicates": 0, "errors": 0}  # 9h..3h ago skipped
    assert fires(workflow)[1:] == [key(base - timedelta(hours=h)) for h in (2, 1, 0)]
    assert scheduler.tick(base)["fired"] == 0


def test_a_long_backlog_fires_oldest_first_a_bounded_number_per_tick(app, org, staff, base, monkeypatch):
    monkeypatch.setattr(scheduler, "MAX_PER_TRIGGER", 2)
    workflow = scheduled(org, staff, created=base - timedelta(hours=5, minutes=30))
    assert scheduler.tick(base)["fired"] == 2
    assert fires(workflow) == [key(base - timedelta(hours=h)) for h in (5, 4)]
    assert [scheduler.tick(base)["fired"] for _ in range(3)] == [2, 2, 0]
    assert len(fires(workflow)) == len(runs(workflow)) == 6


def test_cron_runs_on_the_organizations_wall_clock(org, staff, base):
    ny = factories.make_org("Brooklyn Barbell", timezone="America/New_York")
    day = (base + timedelta(days=1)).date()
    nine = sched.daily_instant(day, time(9), sched.zone("America/New_York"))
    workflow = scheduled(ny, staff, config={"scheduleType": "cron", "cronExpression": "0 9 * * *"},
                         created=nine - timedelta(hours=20))
    assert scheduler.tick(nine - timedelta(minutes=1))["fired"] == 0
    assert scheduler.tick(nine)["fired"] == 1
    assert fires(workflow) == [key(nine)] and nine.hour in (13, 14)  # 09:00 in New York is 13:00 or 14:00 UTC


def test_a_workflow_trigger_row_fires_and_keeps_its_last_and_next_fire_times(org, staff, base):
    workflow = factories.make_workflow(org, staff, status="active")  # its primary trigger is lead_created
    row = WorkflowTrigger(organization_id=org.id, workflow_id=workflow.id, trigger_type="schedule", name="Every 2h",
                          schedule_type="recurring", config={"every": {"amount": 2, "unit": "hours"},
                                                             "startAt": key(base - timedelta(hours=24))},
                          created_at=base - timedelta(hours=3))
    idle = WorkflowTrigger(organization_id=org.id, workflow_id=workflow.id, trigger_type="schedule", name="Off",
                           schedule_type="cron", cron_expression="* * * * *", active=False)
    db.session.add_all([row, idle])
    db.session.commit()
    assert scheduler.tick(base)["fired"] == 2  # 2 h ago and now; the inactive row fires nothing
    assert fires(workflow) == [key(base - timedelta(hours=2)), key(base)]
    assert {r.trigger_data["triggerKey"] for r in runs(workflow)} == {row.id}
    db.session.refresh(row)
    assert (row.last_fired_at, row.next_fire_at) == (base, base + timedelta(hours=2))


def test_paused_workflows_do_not_fire_and_do_not_make_up_what_they_missed_when_resumed(org, staff):
    start = utcnow().replace(minute=0, second=0, microsecond=0) - timedelta(days=2)  # real past: the watermark holds
    workflow = scheduled(org, staff, created=start - timedelta(minutes=30))
    assert scheduler.tick(start)["fired"] == 1
    db.session.execute(update(Workflow).where(Workflow.id == workflow.id).values(status=WorkflowStatus.PAUSED))
    db.session.commit()
    assert scheduler.tick(start + timedelta(hours=3))["fired"] == 0
    db.session.execute(update(Workflow).where(Workflow.id == workflow.id).values(status=WorkflowStatus.ACTIVE))
    db.session.commit()
    assert scheduler.tick(start + timedelta(hours=4))["fired"] == 1  # only the one after it came back
    assert fires(workflow) == [key(start), key(start + timedelta(hours=4))]


def test_a_broken_schedule_is_skipped_and_the_others_still_fire(org, staff, base):
    broken = scheduled(org, staff, created=base - timedelta(minutes=30))
    db.session.execute(update(Workflow).where(Workflow.id == broken.id).values(  # saved before validation existed
        trigger_config={"scheduleType": "cron", "cronExpression": "every now and then"}))
    db.session.commit()
    fine = scheduled(org, staff, created=base - timedelta(minutes=30))
    assert scheduler.tick(base)["fired"] == 1
    assert fires(broken) == [] and fires(fine) == [key(base)]


def test_a_tick_while_another_holds_the_lock_does_nothing(org, staff, base):
    scheduled(org, staff, created=base - timedelta(minutes=30))
    lock = redis_holder.client.lock(scheduler.LOCK_KEY, timeout=10)
    assert lock.acquire(blocking=False)
    try:
        assert scheduler.tick(base) == {"fired": 0, "skipped_old": 0, "duplicates": 0, "errors": 0, "locked": True}
    finally:
        lock.release()
    assert scheduler.tick(base)["fired"] == 1


# --- date-based -------------------------------------------------------------------------------------------------

@pytest.fixture
def gym(app_ctx):
    """A New York gym whose daily evaluation runs at 09:00 local."""
    org = factories.make_org("Queens Strength", timezone="America/New_York")
    org.settings = {"dailyRunTime": "09:00"}
    db.session.commit()
    return org


def membership(org, contact, expires_on: date, status="active"):
    db.session.add(ContactMembership(organization_id=org.id, contact_id=contact.id, plan="Unlimited",
                                     status=status, started_on=expires_on - timedelta(days=365),
                                     expires_on=expires_on))
    db.session.commit()


def nine_am(org, day: date) -> datetime:
    return sched.daily_instant(day, time(9), sched.zone(org.timezone))


@needs_enrollment
def test_membership_expiring_fires_for_contacts_expiring_n_days_after_the_local_date_at_the_run_time(gym, staff):
    day = (utcnow() + timedelta(days=3)).date()
    due, early, lapsed = (factories.make_contact(gym) for _ in range(3))
    membership(gym, due, day + timedelta(days=7))
    membership(gym, early, day + timedelta(days=6))
    membership(gym, lapsed, day + timedelta(days=7), status="cancelled")
    workflow = scheduled(gym, staff, config={"daysBefore": 7}, trigger_type="membership_expiring",
                         created=nine_am(gym, day) - timedelta(hours=2))  # so the day before is not evaluated
    assert scheduler.tick(nine_am(gym, day) - timedelta(minutes=1))["fired"] == 0  # 08:59 in New York
    assert scheduler.tick(nine_am(gym, day) + timedelta(minutes=1))["fired"] == 1
    assert fires(workflow) == [f"{day.isoformat()}:{due.id}"]
    event = db.session.scalar(select(Event).where(Event.organization_id == gym.id, Event.contact_id == due.id))
    assert event.type == "membership_expiring" and event.source == "scheduler" and event.payload == {
        "contactId": due.id, "expiresOn": (day + timedelta(days=7)).isoformat(), "plan": "Unlimited",
        "planName": "Unlimited", "daysBefore": 7, "daysUntilExpiry": 7, "triggerKey": "primary"}
    [run] = runs(workflow)
    assert run.contact_id == due.id
    assert db.session.scalar(select(TriggerFire.execution_id).where(TriggerFire.workflow_id == workflow.id)) == run.id
    assert scheduler.tick(nine_am(gym, day) + timedelta(minutes=5))["fired"] == 0
    assert len(runs(workflow)) == 1


@needs_enrollment
def test_birthdays_fire_on_the_local_date_and_feb_29_on_feb_28_in_other_years(gym, staff):
    day = date(2027, 2, 28)  # not a leap year
    today, leapling, tomorrow = (factories.make_contact(gym, birthday=b) for b in (
        date(1990, 2, 28), date(2000, 2, 29), date(1985, 3, 1)))
    factories.make_contact(gym)  # no birthday on file
    workflow = scheduled(gym, staff, config={}, trigger_type="birthday")
    summary = scheduler.tick(nine_am(gym, day) + timedelta(minutes=1))
    assert summary["fired"] == 2
    assert fires(workflow) == sorted(f"2027-02-28:{c.id}" for c in (today, leapling))
    assert {r.contact_id for r in runs(workflow)} == {today.id, leapling.id}
    assert tomorrow.id not in {r.contact_id for r in runs(workflow)}


@needs_enrollment
def test_a_missed_daily_run_is_made_up_within_the_window_and_paused_workflows_do_not_fire(gym, staff):
    day = (utcnow() + timedelta(days=3)).date()
    contact = factories.make_contact(gym, birthday=date(1992, day.month, day.day))
    workflow = scheduled(gym, staff, config={}, trigger_type="birthday")
    paused = scheduled(gym, staff, config={}, trigger_type="birthday")
    db.session.execute(update(Workflow).where(Workflow.id == paused.id).values(status=WorkflowStatus.PAUSED))
    db.session.commit()
    assert scheduler.tick(nine_am(gym, day) + timedelta(hours=6))["fired"] == 1  # down at 09:00, up at 15:00
    assert fires(workflow) == [f"{day.isoformat()}:{contact.id}"] and fires(paused) == []


# --- several real scheduler processes ---------------------------------------------------------------------------

# Runs `flask --app wsgi atlas tick ...` once the start file exists: the app is imported and built first, so that
# the processes start ticking within milliseconds of each other rather than a second apart.
TOGETHER = """
import pathlib, sys, time
start = pathlib.Path(sys.argv[1])
import wsgi
from flask.cli import main
pathlib.Path(f"{start}.{wsgi.os.getpid()}").touch()
while not start.exists():
    time.sleep(0.002)
sys.argv = ["flask", "--app", "wsgi", "atlas", "tick", *sys.argv[2:]]
main()
"""


def run_ticks(env: dict, now: datetime, lock: bool, signal_dir, count: int = 2) -> list[dict]:
    """`count` scheduler processes, released together; each one's JSON summary."""
    start = signal_dir / f"start-{now:%H%M}-{lock}"
    args = [str(start), "--now", now.isoformat()] + ([] if lock else ["--no-lock"])
    procs = [subprocess.Popen([sys.executable, "-c", TOGETHER, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True) for _ in range(count)]
    try:
        deadline = time_module.monotonic() + 60
        while len(list(signal_dir.glob(f"{start.name}.*"))) < count and time_module.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            time_module.sleep(0.01)
        start.touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err.decode()[-3000:]
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_two_scheduler_processes_fire_each_occurrence_exactly_once(org, staff, base, database_url, redis_server,
                                                                   tmp_path):
    env = worker_env(database_url, redis_server.url, tmp_path / "instance", ATLAS_SCHEDULER_CATCHUP_HOURS=3)
    workflows = [scheduled(org, staff, created=base - timedelta(days=1)) for _ in range(20)]
    db.session.commit()  # end the test's transaction: on SQLite it would hold the write lock the processes need
    expected, raced = 0, 0
    for step, lock in enumerate((False, False, False, False, True)):  # without the lock the unique key alone decides
        now = base + timedelta(hours=step)
        summaries = run_ticks(env, now, lock, tmp_path)
        raced += sum(s["duplicates"] for s in summaries)
        due = len(workflows) * (3 if step == 0 else 1)  # the first tick catches up 3 hours, then one an hour
        expected += due
        assert sum(s["fired"] for s in summaries) == due, summaries
        assert all(s["errors"] == 0 for s in summaries), summaries
    assert raced > 0, "the processes never claimed the same occurrence: the test did not make them race"
    db.session.expire_all()
    total_fires = db.session.scalar(select(func.count()).select_from(TriggerFire))
    started = db.session.execute(select(Execution.workflow_id, Execution.trigger_data)).all()
    assert total_fires == len(started) == expected
    assert len({(w, t["scheduledFor"]) for w, t in started}) == expected  # no occurrence ran twice
    fire_rows = db.session.execute(select(TriggerFire.occurrence, TriggerFire.execution_id)).all()
    by_id = {e.id: e for e in db.session.scalars(select(Execution))}
    assert all(by_id[run_id].trigger_data["scheduledFor"] == occurrence for occurrence, run_id in fire_rows)
