"""Schedule arithmetic: cron on a timezone's wall clock across DST, intervals, the daily instant, catch-up bounds."""
from datetime import UTC, date, datetime, time, timedelta

import pytest

from atlas.core import schedule as s

NY = s.zone("America/New_York")


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def cron(expression: str) -> s.CronSchedule:
    return s.parse_schedule({"scheduleType": "cron", "cronExpression": expression}, tz=NY, created_at=utc(2026, 1, 1))


def test_cron_follows_the_wall_clock_of_the_timezone_across_daylight_saving_time():
    daily = cron("0 9 * * *")  # 09:00 New York: 14:00 UTC in winter, 13:00 UTC in summer
    found = s.occurrences(daily, NY, utc(2026, 3, 6), utc(2026, 3, 10), limit=10)
    assert found == [utc(2026, 3, 6, 14), utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)]
    autumn = s.occurrences(daily, NY, utc(2026, 10, 31), utc(2026, 11, 3), limit=10)
    assert autumn == [utc(2026, 10, 31, 13), utc(2026, 11, 1, 14), utc(2026, 11, 2, 14)]


def test_a_repeated_local_time_fires_once_and_a_skipped_one_fires_an_hour_later():
    night = cron("30 1 * * *")  # 01:30 happens twice on 2026-11-01 in New York
    assert s.occurrences(night, NY, utc(2026, 11, 1), utc(2026, 11, 2), limit=5) == [utc(2026, 11, 1, 5, 30)]
    skipped = cron("30 2 * * *")  # 02:30 does not exist on 2026-03-08: it runs at 03:30 EDT (07:30 UTC)
    assert s.occurrences(skipped, NY, utc(2026, 3, 8), utc(2026, 3, 9), limit=5) == [utc(2026, 3, 8, 7, 30)]


def test_an_hourly_cron_never_yields_one_instant_twice_around_a_jump():
    hourly = cron("0,30 * * * *")
    found = s.occurrences(hourly, NY, utc(2026, 3, 8, 5), utc(2026, 3, 8, 9), limit=100)
    # 00:30..01:30 EST, then 02:00 and 02:30 (which do not exist) land on 03:00 and 03:30 EDT: each instant once
    assert found == [utc(2026, 3, 8, 5, 30), utc(2026, 3, 8, 6), utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7),
                     utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 8), utc(2026, 3, 8, 8, 30), utc(2026, 3, 8, 9)]


def test_occurrences_are_bounded_oldest_first_and_exclude_the_lower_bound():
    minutely = cron("* * * * *")
    found = s.occurrences(minutely, NY, utc(2026, 5, 1, 12), utc(2026, 5, 1, 15), limit=100)
    assert len(found) == 100 and found[0] == utc(2026, 5, 1, 12, 1) and found[-1] == utc(2026, 5, 1, 13, 40)
    assert s.count_occurrences(minutely, NY, utc(2026, 5, 1, 12), utc(2026, 5, 1, 15)) == 180
    assert s.occurrences(minutely, NY, utc(2026, 5, 1, 12), utc(2026, 5, 1, 12)) == []


def test_a_bad_cron_expression_or_interval_is_refused_in_words():
    with pytest.raises(s.ScheduleError, match="not a valid cron"):
        cron("61 * * * *")
    with pytest.raises(s.ScheduleError, match="at most once a minute"):
        s.parse_schedule({"scheduleType": "recurring", "every": {"amount": 30, "unit": "seconds"}}, tz=NY,
                         created_at=utc(2026, 1, 1))
    with pytest.raises(s.ScheduleError, match="not a schedule type"):
        s.parse_schedule({"scheduleType": "immediate"}, tz=NY, created_at=utc(2026, 1, 1))


def test_an_interval_in_hours_is_exact_from_its_start():
    every = s.parse_schedule({"scheduleType": "recurring", "every": {"amount": 90, "unit": "minutes"},
                              "startAt": "2026-05-01T08:00:00Z"}, tz=NY, created_at=utc(2026, 1, 1))
    assert s.occurrences(every, NY, utc(2026, 5, 1, 8), utc(2026, 5, 1, 13), limit=10) == [
        utc(2026, 5, 1, 9, 30), utc(2026, 5, 1, 11), utc(2026, 5, 1, 12, 30)]
    assert s.occurrences(every, NY, utc(2026, 4, 1), utc(2026, 5, 1, 7, 59)) == []  # nothing before its start
    assert s.count_occurrences(every, NY, utc(2026, 5, 1, 8), utc(2026, 5, 2, 8)) == 16


def test_an_interval_in_days_keeps_its_wall_clock_time_and_a_start_without_offset_is_local():
    daily = s.parse_schedule({"scheduleType": "recurring", "every": {"amount": 1, "unit": "days"},
                              "startAt": "2026-03-01T07:00"}, tz=NY, created_at=utc(2026, 1, 1))
    assert daily.start == utc(2026, 3, 1, 12)
    found = s.occurrences(daily, NY, utc(2026, 3, 7), utc(2026, 3, 10), limit=10)
    assert found == [utc(2026, 3, 7, 12), utc(2026, 3, 8, 11), utc(2026, 3, 9, 11)]  # 07:00 local each day


def test_an_interval_without_start_counts_from_its_creation_minute():
    every = s.parse_schedule({"scheduleType": "recurring", "every": {"amount": 1, "unit": "hours"}}, tz=NY,
                             created_at=utc(2026, 5, 1, 8, 20, 37))
    assert s.next_occurrence(every, NY, utc(2026, 5, 1, 8, 20, 37)) == utc(2026, 5, 1, 9, 20)


def test_the_daily_instant_is_the_run_time_on_the_local_date():
    assert s.daily_instant(date(2026, 1, 15), time(9), NY) == utc(2026, 1, 15, 14)
    assert s.daily_instant(date(2026, 7, 15), time(9), NY) == utc(2026, 7, 15, 13)
    assert s.parse_run_time("07:30") == time(7, 30)
    assert s.parse_run_time(None) == s.parse_run_time("garbage") == time(9)


def test_due_days_are_the_local_dates_whose_run_time_fell_in_the_span():
    assert s.due_days(time(9), NY, utc(2026, 7, 15, 12), utc(2026, 7, 15, 13)) == [date(2026, 7, 15)]
    assert s.due_days(time(9), NY, utc(2026, 7, 15, 13), utc(2026, 7, 15, 20)) == []  # 13:00 UTC itself was done
    assert s.due_days(time(9), NY, utc(2026, 7, 13, 14), utc(2026, 7, 15, 14)) == [date(2026, 7, 14),
                                                                                   date(2026, 7, 15)]
    # 23:30 local on the 15th is already the 16th in UTC: the local date counts.
    assert s.due_days(time(23, 30), NY, utc(2026, 7, 16, 3), utc(2026, 7, 16, 4)) == [date(2026, 7, 15)]


def test_feb_29_birthdays_are_celebrated_on_feb_28_in_other_years():
    leapling = date(2000, 2, 29)
    assert s.is_birthday(leapling, date(2027, 2, 28)) and not s.is_birthday(leapling, date(2027, 3, 1))
    assert s.is_birthday(leapling, date(2028, 2, 29)) and not s.is_birthday(leapling, date(2028, 2, 28))
    assert s.birthday_dates(date(2028, 2, 28)) == [(2, 28)]
    assert s.birthday_dates(date(2100, 2, 28)) == [(2, 28), (2, 29)]  # 2100 is not a leap year
    assert s.is_birthday(date(1990, 6, 1), date(2026, 6, 1))


def test_the_fire_window_catches_up_at_most_the_catchup_span_and_names_what_it_skips():
    now, day = utc(2026, 5, 2, 12), timedelta(hours=24)
    assert s.fire_window(now, day, utc(2026, 5, 2, 11)) == (utc(2026, 5, 2, 11), None)  # recent: all of it
    assert s.fire_window(now, day, utc(2026, 4, 28), None) == (utc(2026, 5, 1, 12), utc(2026, 4, 28))
    assert s.fire_window(now, day) == (utc(2026, 5, 1, 12), None)  # nothing known: the window only
    # the latest settled mark wins: a watermark after the last fire means the time between was not missed
    assert s.fire_window(now, day, utc(2026, 4, 28), utc(2026, 5, 2, 11, 30)) == (utc(2026, 5, 2, 11, 30), None)


def test_occurrence_names_sort_as_text_and_read_back():
    early, late = utc(2026, 5, 1, 9), utc(2026, 11, 10, 23, 59, 59)
    assert s.occurrence_key(early) == "2026-05-01T09:00:00Z" < s.occurrence_key(late)
    assert s.parse_occurrence_key(s.occurrence_key(late)) == late
    assert s.parse_occurrence_key(s.date_occurrence_key(date(2026, 5, 1), "abc")) is None
    assert s.zone("Not/AZone") == s.zone(None) == s.zone("UTC")
