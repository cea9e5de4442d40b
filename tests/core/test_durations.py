"""Durations: the canonical {"amount", "unit"} form parsed, described and checked in plain words."""
from datetime import timedelta

import pytest

from atlas.core.durations import DurationError, check_duration, describe, parse_duration

UNITS = "seconds, minutes, hours, days or weeks"


@pytest.mark.parametrize("value, expected", [
    ({"amount": 0, "unit": "seconds"}, timedelta(0)),
    ({"amount": 45, "unit": "seconds"}, timedelta(seconds=45)),
    ({"amount": 10, "unit": "minutes"}, timedelta(minutes=10)),
    ({"amount": 36, "unit": "hours"}, timedelta(hours=36)),
    ({"amount": 1, "unit": "days"}, timedelta(days=1)),
    ({"amount": 2, "unit": "weeks"}, timedelta(days=14)),
    ({"amount": 3650, "unit": "days"}, timedelta(days=3650)),
    ({"amount": 521, "unit": "weeks"}, timedelta(weeks=521)),
    ({"amount": 3650 * 86400, "unit": "seconds"}, timedelta(days=3650)),
])
def test_parses_every_unit(value, expected):
    assert parse_duration(value) == expected
    assert check_duration(value) is None


@pytest.mark.parametrize("value, message", [
    (None, "A duration must be an amount and a unit, such as 10 minutes."),
    ("10 minutes", "A duration must be an amount and a unit, such as 10 minutes."),
    ([10, "minutes"], "A duration must be an amount and a unit, such as 10 minutes."),
    ({}, "The duration has no amount; enter a whole number such as 10."),
    ({"unit": "days"}, "The duration has no amount; enter a whole number such as 10."),
    ({"amount": 5}, f"The duration has no unit; choose {UNITS}."),
    ({"amount": 5, "unit": None}, f"The duration has no unit; choose {UNITS}."),
    ({"amount": -1, "unit": "days"}, "The duration amount cannot be negative; got -1."),
    ({"amount": 1.5, "unit": "days"}, "The duration amount must be a whole number such as 10; got 1.5."),
    ({"amount": 2.0, "unit": "days"}, "The duration amount must be a whole number such as 10; got 2.0."),
    ({"amount": "10", "unit": "days"}, "The duration amount must be a whole number such as 10; got '10'."),
    ({"amount": None, "unit": "days"}, "The duration amount must be a whole number such as 10; got None."),
    ({"amount": True, "unit": "days"}, "The duration amount must be a whole number such as 10, not true or false."),
    ({"amount": 1, "unit": "fortnights"}, f"'fortnights' is not a unit of time; choose {UNITS}."),
    ({"amount": 1, "unit": "day"}, f"'day' is not a unit of time; choose {UNITS}."),
    ({"amount": 1, "unit": "Days"}, f"'Days' is not a unit of time; choose {UNITS}."),
    ({"amount": 1, "unit": 7}, f"7 is not a unit of time; choose {UNITS}."),
    ({"amount": 3651, "unit": "days"}, "A duration can be at most 3650 days (about 10 years); 3651 days is longer."),
    ({"amount": 522, "unit": "weeks"}, "A duration can be at most 3650 days (about 10 years); 522 weeks is longer."),
    ({"amount": 10 ** 30, "unit": "seconds"},
     f"A duration can be at most 3650 days (about 10 years); {10 ** 30} seconds is longer."),
    ({"amount": 1, "unit": "days", "every": 2}, "A duration has only an amount and a unit; remove every."),
])
def test_rejects_anything_else_with_a_message_in_words(value, message):
    assert check_duration(value) == message
    with pytest.raises(DurationError) as caught:
        parse_duration(value)
    assert str(caught.value) == message
    with pytest.raises(DurationError):
        describe(value)


def test_duration_error_is_a_value_error():
    assert issubclass(DurationError, ValueError)


@pytest.mark.parametrize("value, words", [
    ({"amount": 10, "unit": "minutes"}, "10 minutes"),
    ({"amount": 1, "unit": "days"}, "1 day"),
    ({"amount": 2, "unit": "weeks"}, "2 weeks"),
    ({"amount": 1, "unit": "seconds"}, "1 second"),
    ({"amount": 1, "unit": "hours"}, "1 hour"),
    ({"amount": 1, "unit": "weeks"}, "1 week"),
    ({"amount": 0, "unit": "hours"}, "0 hours"),
])
def test_describes_in_plain_words(value, words):
    assert describe(value) == words
