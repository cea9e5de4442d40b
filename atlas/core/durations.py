"""Durations in workflow definitions, in one canonical JSON form: {"amount": 10, "unit": "minutes"}.

amount is a whole number (an int, never a bool or a float, even 10.0) of 0 or more; unit is one of UNIT_SECONDS,
spelled exactly so (lower case, plural). No other keys are allowed, and no duration may exceed MAX_DAYS.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}
MAX_DAYS = 3650
_UNIT_WORDS = "seconds, minutes, hours, days or weeks"


class DurationError(ValueError):
    """A value is not a valid duration; the message says why in plain words."""


def check_duration(value: Any) -> str | None:
    """The problem with a duration in words, or None when it is valid."""
    if not isinstance(value, Mapping):
        return "A duration must be an amount and a unit, such as 10 minutes."
    unknown = sorted(str(key) for key in value if key not in ("amount", "unit"))
    if unknown:
        return f"A duration has only an amount and a unit; remove {', '.join(unknown)}."
    if "amount" not in value:
        return "The duration has no amount; enter a whole number such as 10."
    amount, unit = value["amount"], value.get("unit")
    if isinstance(amount, bool):
        return "The duration amount must be a whole number such as 10, not true or false."
    if not isinstance(amount, int):
        return f"The duration amount must be a whole number such as 10; got {amount!r}."
    if amount < 0:
        return f"The duration amount cannot be negative; got {amount}."
    if unit is None:
        return f"The duration has no unit; choose {_UNIT_WORDS}."
    if not isinstance(unit, str) or unit not in UNIT_SECONDS:
        return f"{unit!r} is not a unit of time; choose {_UNIT_WORDS}."
    if amount * UNIT_SECONDS[unit] > MAX_DAYS * UNIT_SECONDS["days"]:
        return f"A duration can be at most {MAX_DAYS} days (about 10 years); {amount} {unit} is longer."
    return None


def parse_duration(value: Any) -> timedelta:
    """The timedelta of a canonical duration; raises DurationError saying what is wrong."""
    problem = check_duration(value)
    if problem:
        raise DurationError(problem)
    return timedelta(seconds=value["amount"] * UNIT_SECONDS[value["unit"]])


def describe(value: Any) -> str:
    """A duration in plain words for the builder: "10 minutes", "1 day", "2 weeks"; raises DurationError."""
    parse_duration(value)
    amount, unit = value["amount"], value["unit"]
    return f"{amount} {unit[:-1] if amount == 1 else unit}"
