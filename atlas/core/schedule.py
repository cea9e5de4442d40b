"""When scheduled and date-based triggers are due: pure arithmetic on aware datetimes, no app, database or clock.

Cron expressions follow the wall clock of a timezone. A local time that occurs twice (clocks go back) fires once, at
its first occurrence; a local time the clocks skip (clocks go forward) fires at the same offset as before the jump,
an hour later on the wall clock (PEP 495, fold=0). Two local times that land on one instant fire once.

Recurring intervals in minutes or hours are exact durations; in days or weeks they keep the wall-clock time of their
start (every day at 09:00 stays 09:00 across daylight saving time).

Occurrences are named by their instant in UTC ("2026-11-26T14:00:00Z", sortable as text) or, for date-based
triggers, by the local date and the contact ("2026-11-26:<contact id>").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from atlas.core.durations import DurationError, parse_duration

DEFAULT_RUN_TIME = "09:00"
MIN_INTERVAL = timedelta(minutes=1)
WALL_CLOCK_UNITS = ("days", "weeks")
_SLACK = timedelta(hours=3)  # more than any daylight-saving jump: the naive wall clock may run ahead of the instant
OCCURRENCE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class ScheduleError(ValueError):
    """A schedule's configuration cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class CronSchedule:
    """A cron expression evaluated on the wall clock of the timezone."""

    expression: str


@dataclass(frozen=True)
class IntervalSchedule:
    """Every `every` from `start` (an aware instant); days and weeks keep the start's wall-clock time."""

    every: timedelta
    unit: str
    start: datetime


def zone(name: str | None) -> ZoneInfo:
    """The IANA timezone by name; UTC for an empty or unknown name (an organization's typo must not stop its runs)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_schedule(config: dict, *, tz: ZoneInfo, created_at: datetime, schedule_type: str | None = None,
                   cron_expression: str | None = None) -> CronSchedule | IntervalSchedule:
    """The schedule a trigger describes: {scheduleType: cron, cronExpression} or {scheduleType: recurring, every,
    startAt?}; a WorkflowTrigger row passes its own schedule_type and cron_expression. Raises ScheduleError."""
    kind = schedule_type or config.get("scheduleType")
    if kind == "cron":
        expression = (cron_expression or config.get("cronExpression") or "").strip()
        if not expression or not croniter.is_valid(expression):
            raise ScheduleError(f"{expression!r} is not a valid cron expression.")
        return CronSchedule(expression)
    if kind == "recurring":
        try:
            every = parse_duration(config.get("every"))
        except DurationError as exc:
            raise ScheduleError(f"The recurring interval is not valid: {exc}") from None
        if every < MIN_INTERVAL:
            raise ScheduleError("A recurring trigger runs at most once a minute.")
        start = parse_start(config.get("startAt"), tz) or created_at.replace(second=0, microsecond=0)
        return IntervalSchedule(every, config["every"]["unit"], start)
    raise ScheduleError(f"{kind!r} is not a schedule type; use cron or recurring.")


def parse_start(value, tz: ZoneInfo) -> datetime | None:
    """An ISO startAt; a time without an offset is on the organization's wall clock."""
    if not value:
        return None
    try:
        start = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError(f"startAt {value!r} is not an ISO date and time.") from None
    return local_instant(start, tz) if start.tzinfo is None else start.astimezone(UTC)


def local_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time in tz (fold=0: the first of a repeated time, skipped times shift)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def wall_clock(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive wall-clock time of an aware instant in tz."""
    return instant.astimezone(tz).replace(tzinfo=None)


def occurrences(schedule, tz: ZoneInfo, after: datetime, until: datetime, limit: int = 100) -> list[datetime]:
    """Instants in (after, until], oldest first, at most `limit`, in UTC."""
    if until <= after or limit <= 0:
        return []
    if isinstance(schedule, CronSchedule):
        return _cron(schedule.expression, tz, after, until, limit)
    return _interval(schedule, tz, after, until, limit)


def next_occurrence(schedule, tz: ZoneInfo, after: datetime) -> datetime | None:
    """The first instant after `after` (looking at most a year and a day ahead)."""
    found = occurrences(schedule, tz, after, after + timedelta(days=366), limit=1)
    return found[0] if found else None


def count_occurrences(schedule, tz: ZoneInfo, after: datetime, until: datetime, cap: int = 10000) -> int:
    """How many instants fall in (after, until], counted up to `cap` (for the log of skipped occurrences)."""
    if isinstance(schedule, IntervalSchedule) and schedule.unit not in WALL_CLOCK_UNITS and until > after:
        first = occurrences(schedule, tz, after, until, limit=1)
        return 0 if not first else min(cap, (until - first[0]) // schedule.every + 1)
    return len(occurrences(schedule, tz, after, until, limit=cap))


def _cron(expression: str, tz: ZoneInfo, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """Walk the naive wall clock with croniter, map each time to its instant, then sort and drop repeats."""
    slack = timedelta(0) if _steady(tz, after, until) else _SLACK
    start, stop = wall_clock(after, tz) - slack, wall_clock(until, tz) + slack
    walker = croniter(expression, start)
    found: set[datetime] = set()
    while len(found) < limit + 64:  # a few beyond the limit: the sort below may move a shifted time later
        wall = walker.get_next(datetime)
        if wall > stop:
            break
        instant = local_instant(wall, tz)
        if after < instant <= until:
            found.add(instant)
    return sorted(found)[:limit]


def _steady(tz: ZoneInfo, after: datetime, until: datetime) -> bool:
    """Whether tz keeps one UTC offset around the whole span (then the wall clock needs no slack)."""
    return until - after < timedelta(hours=12) and (after - _SLACK).astimezone(tz).utcoffset() == \
        (until + _SLACK).astimezone(tz).utcoffset()


def _interval(schedule: IntervalSchedule, tz: ZoneInfo, after: datetime, until: datetime, limit: int) -> list:
    """start + k * every for k >= 0, exact for minutes and hours, on the wall clock for days and weeks."""
    wall = schedule.unit in WALL_CLOCK_UNITS
    origin = wall_clock(schedule.start, tz) if wall else schedule.start
    position = wall_clock(after, tz) if wall else after
    k = max(0, math.floor((position - origin) / schedule.every) - 1)  # one early: the wall clock may lag the instant
    found = []
    while len(found) < limit:
        point = origin + k * schedule.every
        instant = local_instant(point, tz) if wall else point
        if instant > until + (_SLACK if wall else timedelta(0)):
            break
        if after < instant <= until and (not found or instant > found[-1]):
            found.append(instant)
        k += 1
    return found


def parse_run_time(value) -> time:
    """An organization's dailyRunTime "HH:MM" (24-hour); the default 09:00 for a missing or malformed value."""
    try:
        hours, minutes = str(value or DEFAULT_RUN_TIME).split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        return time(9, 0)


def daily_instant(day: date, run_time: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of the daily evaluation on this local date."""
    return local_instant(datetime.combine(day, run_time), tz)


def due_days(run_time: time, tz: ZoneInfo, after: datetime, until: datetime) -> list[date]:
    """Local dates whose daily evaluation instant falls in (after, until], oldest first."""
    if until <= after:
        return []
    day, last = after.astimezone(tz).date() - timedelta(days=1), until.astimezone(tz).date() + timedelta(days=1)
    days = []
    while day <= last:
        if after < daily_instant(day, run_time, tz) <= until:
            days.append(day)
        day += timedelta(days=1)
    return days


def birthday_dates(day: date) -> list[tuple[int, int]]:
    """The (month, day) birthdays celebrated on this date: Feb 29 birthdays on Feb 28 in non-leap years."""
    if (day.month, day.day) == (2, 28) and not _leap(day.year):
        return [(2, 28), (2, 29)]
    return [(day.month, day.day)]


def is_birthday(birthday: date, day: date) -> bool:
    """Whether someone born on `birthday` celebrates on `day`."""
    return (birthday.month, birthday.day) in birthday_dates(day)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def fire_window(now: datetime, catchup: timedelta, *marks: datetime | None) -> tuple[datetime, datetime | None]:
    """(fire_after, skip_after): occurrences in (fire_after, now] fire; those in (skip_after, now - catchup] were
    missed too long ago and are only counted. marks are what is already settled: the last fired occurrence, the
    scheduler's watermark, the trigger's creation. skip_after is None when nothing was missed beyond the window."""
    settled = max((m for m in marks if m is not None), default=None)
    oldest = now - catchup
    if settled is None or settled >= oldest:
        return (settled if settled is not None and settled > oldest else oldest), None
    return oldest, settled


def occurrence_key(instant: datetime) -> str:
    """The occurrence name of an instant: UTC ISO to the second, sortable as text."""
    return instant.astimezone(UTC).strftime(OCCURRENCE_FORMAT)


def parse_occurrence_key(key: str) -> datetime | None:
    """The instant an occurrence name stands for; None for a date-based name."""
    try:
        return datetime.strptime(key, OCCURRENCE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def date_occurrence_key(day: date, contact_id: str) -> str:
    """The occurrence name of a date-based trigger for one contact on one local date."""
    return f"{day.isoformat()}:{contact_id}"
