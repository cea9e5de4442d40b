"""Conditions: the structured JSON behind if/else and split branches, goals and trigger filters.

    {"all": [cond, ...]}  every one is true (an empty list is true)     {"not": cond}
    {"any": [cond, ...]}  at least one is true (an empty list is false)
    {"field": "contact.email", "operator": "ends_with", "value": "@gmail.com"}   a rule
Groups nest at most MAX_DEPTH levels (the top is level 1). is_empty and is_not_empty take no value (null is tolerated);
every other operator needs a non-null one. A field is a dotted path under trigger. (the trigger payload), contact.,
vars. or steps.<nodeId>.output.; segments of ASCII digits index into lists. Anything missing along the path makes the
value None, "missing" (an explicit null too); resolving never raises.

How values compare
    text         trimmed and case-insensitive: "  Sarah " equals "sarah"
    numbers      equals, in and contains compare numerically when one side is a number and the other a number or
                 numeric text ("10" equals 10.0); two texts compare as text, so "02139" is not "2139" (zip codes,
                 phones). greater_than, less_than and numeric between coerce numeric text on both sides
    booleans     when either side is a boolean both compare as booleans, "true"/"false" text included; 1 and "yes"
                 are not booleans
    contains     text (and numbers, as text): substring; lists: an item equals the value (as above), so
                 case-insensitive. starts_with and ends_with read text and numbers
    in           the field equals one of the listed values; a list field is never "in"
    between      [low, high], inclusive: numbers when both bounds are numeric, date-times otherwise
    before/after strict; ISO 8601 dates or date-times on both sides; a date alone is midnight UTC, a naive date-time UTC
    within_last  the value is a duration (atlas.core.durations): now - duration <= field <= now, so never the future
    is_empty     None, "", whitespace-only text, [] and {}; 0 and false are not empty
    negations    not_equals, not_contains and is_not_empty are exactly not equals, not contains, not is_empty
A field of the wrong kind (text for greater_than, a number for before) makes an operator false and its negation true.

A missing field (None)
    is_empty, not_equals, not_contains     true
    every other operator                   false

check() returns every structural problem at once; evaluate() and explain() raise ConditionError for a condition check()
rejects and otherwise never raise. explain() lists the rules that decided a false result with the value each saw;
"negated" marks a rule that failed the condition by holding inside an odd number of nots.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime, time, timezone
from types import MappingProxyType
from typing import Any, Callable

from atlas.core.durations import check_duration, parse_duration

ROOTS = ("trigger", "contact", "vars", "steps")
GROUPS = ("all", "any", "not")
RULE_KEYS = ("field", "operator", "value")
MAX_DEPTH = 10
MISSING_IS_TRUE = frozenset({"is_empty", "not_equals", "not_contains"})
_NUMERIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

_OPERATORS: dict[str, dict[str, str]] = {}
_EVALUATORS: dict[str, Callable[[Any, Any, datetime], bool]] = {}
OPERATORS: Mapping[str, Mapping[str, str]] = MappingProxyType(_OPERATORS)  # for the builder's pickers, in order


class ConditionError(ValueError):
    """A condition is not structurally valid; carries every problem check() found."""

    def __init__(self, problems: list[dict]):
        super().__init__("; ".join(f"{p['path']}: {p['message']}" for p in problems))
        self.problems = problems


# Coercions: each returns None when the value cannot be read as that kind.

def _is_number(x: Any) -> bool:
    """Whether x is an int or float (booleans are not numbers here)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _number(x: Any) -> int | float | None:
    """x as a finite number: ints, floats and numeric text."""
    if isinstance(x, str) and _NUMERIC.fullmatch(x.strip()):
        try:
            x = int(x)  # exact for long ids; "1.5", "2e3" and over-long digit strings fall through to float
        except ValueError:
            x = float(x)
    return x if _is_number(x) and (isinstance(x, int) or math.isfinite(x)) else None  # big ints overflow isfinite


def _boolean(x: Any) -> bool | None:
    """x as a boolean: booleans and the text "true" / "false"."""
    if isinstance(x, str) and x.strip().casefold() in ("true", "false"):
        return x.strip().casefold() == "true"
    return x if isinstance(x, bool) else None


def _text(x: Any) -> str | None:
    """x as trimmed, case-folded text: strings, and numbers as written."""
    if isinstance(x, str):
        return x.strip().casefold()
    return str(x) if _is_number(x) else None


def _moment(x: Any) -> datetime | None:
    """x as an aware date-time: datetimes, dates and ISO 8601 text; date-only and naive values are UTC."""
    if isinstance(x, str):
        try:
            x = datetime.fromisoformat(x.strip())
        except ValueError:
            return None
    if isinstance(x, datetime):  # before date: a datetime is a date too
        return x if x.tzinfo else x.replace(tzinfo=timezone.utc)
    if isinstance(x, date):
        return datetime.combine(x, time(), tzinfo=timezone.utc)
    return None


def _same(a: Any, b: Any) -> bool:
    """Whether two present values are equal under the rules in the module docstring."""
    if isinstance(a, bool) or isinstance(b, bool):
        return _boolean(a) is not None and _boolean(a) == _boolean(b)
    if _is_number(a) or _is_number(b):
        return _number(a) is not None and _number(a) == _number(b)
    if isinstance(a, str) and isinstance(b, str):
        return _text(a) == _text(b)
    return a == b


# Evaluators, one per operator, registered in the builder's order. Each is (actual, expected, now) -> bool and is
# only called for a present (non-None) field and a value that check() accepted.

def _operator(name: str, label: str, value_kind: str) -> Callable:
    """Register the decorated function as the evaluator of an operator, with its label and kind of value."""
    def register(evaluator: Callable[[Any, Any, datetime], bool]) -> Callable[[Any, Any, datetime], bool]:
        _OPERATORS[name] = {"label": label, "valueKind": value_kind}
        _EVALUATORS[name] = evaluator
        return evaluator
    return register


@_operator("equals", "is", "any")
def _equals(actual: Any, expected: Any, now: datetime) -> bool:
    """The field equals the value."""
    return _same(actual, expected)


@_operator("not_equals", "is not", "any")
def _not_equals(actual: Any, expected: Any, now: datetime) -> bool:
    """The field does not equal the value."""
    return not _same(actual, expected)


@_operator("contains", "contains", "text")
def _contains(actual: Any, expected: Any, now: datetime) -> bool:
    """Text holds the value as a substring, or a list holds it as an item."""
    if isinstance(actual, (list, tuple)):
        return any(_same(item, expected) for item in actual)
    haystack = _text(actual)
    return haystack is not None and _text(expected) in haystack


@_operator("not_contains", "does not contain", "text")
def _not_contains(actual: Any, expected: Any, now: datetime) -> bool:
    """Neither the text nor the list holds the value."""
    return not _contains(actual, expected, now)


@_operator("starts_with", "starts with", "text")
def _starts_with(actual: Any, expected: Any, now: datetime) -> bool:
    """The field's text starts with the value."""
    haystack = _text(actual)
    return haystack is not None and haystack.startswith(_text(expected))


@_operator("ends_with", "ends with", "text")
def _ends_with(actual: Any, expected: Any, now: datetime) -> bool:
    """The field's text ends with the value."""
    haystack = _text(actual)
    return haystack is not None and haystack.endswith(_text(expected))


@_operator("greater_than", "is greater than", "number")
def _greater_than(actual: Any, expected: Any, now: datetime) -> bool:
    """The field is a number greater than the value."""
    number = _number(actual)
    return number is not None and number > _number(expected)


@_operator("less_than", "is less than", "number")
def _less_than(actual: Any, expected: Any, now: datetime) -> bool:
    """The field is a number less than the value."""
    number = _number(actual)
    return number is not None and number < _number(expected)


@_operator("between", "is between", "range")
def _between(actual: Any, expected: Any, now: datetime) -> bool:
    """The field lies in [low, high], inclusive: numbers when both bounds are numeric, else date-times."""
    convert = _number if _number(expected[0]) is not None and _number(expected[1]) is not None else _moment
    value = convert(actual)
    return value is not None and convert(expected[0]) <= value <= convert(expected[1])


@_operator("in", "is one of", "list")
def _in(actual: Any, expected: Any, now: datetime) -> bool:
    """The field equals one of the listed values."""
    return any(_same(actual, item) for item in expected)


@_operator("is_empty", "is empty", "none")
def _is_empty(actual: Any, expected: Any, now: datetime) -> bool:
    """The field is blank text or an empty list or object."""
    if isinstance(actual, str):
        return not actual.strip()
    return isinstance(actual, (list, tuple, Mapping)) and len(actual) == 0


@_operator("is_not_empty", "is not empty", "none")
def _is_not_empty(actual: Any, expected: Any, now: datetime) -> bool:
    """The field is anything but blank text or an empty list or object."""
    return not _is_empty(actual, expected, now)


@_operator("before", "is before", "datetime")
def _before(actual: Any, expected: Any, now: datetime) -> bool:
    """The field is a date-time strictly before the value."""
    moment = _moment(actual)
    return moment is not None and moment < _moment(expected)


@_operator("after", "is after", "datetime")
def _after(actual: Any, expected: Any, now: datetime) -> bool:
    """The field is a date-time strictly after the value."""
    moment = _moment(actual)
    return moment is not None and moment > _moment(expected)


@_operator("within_last", "is within the last", "duration")
def _within_last(actual: Any, expected: Any, now: datetime) -> bool:
    """The field is a date-time in [now - duration, now]."""
    moment, now = _moment(actual), _moment(now)
    return moment is not None and now - parse_duration(expected) <= moment <= now


# Value checks, one per valueKind: value -> the problem in words, or None. The value is never None here.

def _check_any(value: Any) -> str | None:
    """Text, a number or true/false."""
    if isinstance(value, (str, bool)) or _number(value) is not None:
        return None
    return "The value must be text, a number or true/false; to match one of several values, use 'is one of' (in)."


def _check_text(value: Any) -> str | None:
    """Non-blank text or a number."""
    if _number(value) is not None or (isinstance(value, str) and value.strip()):
        return None
    return "Enter some text or a number to look for."


def _check_number(value: Any) -> str | None:
    """A number or numeric text."""
    return None if _number(value) is not None else f"The value must be a number; got {value!r}."


def _check_list(value: Any) -> str | None:
    """A non-empty list of text, numbers or true/false."""
    if not isinstance(value, list) or not value:
        return "The value must be a list with at least one item."
    return next((f"Item {i}: {_check_any(item)}" for i, item in enumerate(value) if _check_any(item)), None)


def _check_range(value: Any) -> str | None:
    """[low, high]: two numbers or two date-times, low not after high."""
    if not isinstance(value, list) or len(value) != 2:
        return "The value must be a list of two items, [low, high]."
    for convert in (_number, _moment):
        low, high = convert(value[0]), convert(value[1])
        if low is not None and high is not None:
            return None if low <= high else "The low end of the range must not be greater than the high end."
    return "The range must be two numbers or two ISO 8601 dates or date-times, [low, high]."


def _check_datetime(value: Any) -> str | None:
    """ISO 8601 text for a date or a date-time."""
    if isinstance(value, str) and _moment(value) is not None:
        return None
    return f"The value must be an ISO 8601 date or date-time such as 2024-05-01 or 2024-05-01T09:30:00Z; got {value!r}."


_VALUE_CHECKS = {"any": _check_any, "text": _check_text, "number": _check_number, "list": _check_list,
                 "range": _check_range, "datetime": _check_datetime, "duration": check_duration}


# check(): every structural problem at once.

def _problem(code: str, message: str, path: str) -> dict:
    return {"code": code, "message": message, "path": path}


def check(condition: Any, path: str = "condition") -> list[dict]:
    """Every structural problem of a condition, each {"code", "message", "path"}; [] when it is valid."""
    return _check(condition, path, 1)


def _check(condition: Any, path: str, depth: int) -> list[dict]:
    """The problems of one condition at a given nesting depth, and of everything inside it."""
    if depth > MAX_DEPTH:
        return [_problem("TOO_DEEP", f"Conditions can be nested at most {MAX_DEPTH} levels deep.", path)]
    if not isinstance(condition, Mapping):
        return [_problem("NOT_AN_OBJECT", "A condition must be an object: a rule, or an all, any or not group.", path)]
    group = next((key for key in GROUPS if key in condition), None)
    allowed = (group,) if group else RULE_KEYS
    what = f"A {group!r} group has no other keys" if group else "A rule has only field, operator and value"
    problems = [_problem("UNKNOWN_KEY", f"{what}; remove {key!r}.", f"{path}.{key}")
                for key in condition if key not in allowed]
    if group == "not":
        return problems + _check(condition["not"], f"{path}.not", depth + 1)
    if group:
        return problems + _check_group(group, condition[group], f"{path}.{group}", depth)
    return problems + _check_rule(condition, path)


def _check_group(group: str, items: Any, path: str, depth: int) -> list[dict]:
    """The problems of an all / any list and of each condition in it."""
    if not isinstance(items, list):
        return [_problem("NOT_A_LIST", f"{group!r} must be a list of conditions.", path)]
    return [p for i, item in enumerate(items) for p in _check(item, f"{path}[{i}]", depth + 1)]


def _check_rule(rule: Mapping, path: str) -> list[dict]:
    """The problems of a rule's field, operator and value."""
    problems = _check_field(rule.get("field"), f"{path}.field")
    operator = rule.get("operator")
    if not (isinstance(operator, str) and operator in OPERATORS):
        code, said = ("MISSING_OPERATOR", "The rule has no operator") if operator is None else (
            "UNKNOWN_OPERATOR", f"{operator!r} is not an operator")
        return problems + [_problem(code, f"{said}; choose one of {', '.join(OPERATORS)}.", f"{path}.operator")]
    return problems + _check_value(operator, rule, f"{path}.value")


def _check_field(field: Any, path: str) -> list[dict]:
    """The problem with a rule's data path, if any."""
    if not isinstance(field, str) or not field.strip():
        return [_problem("MISSING_FIELD", "Choose a field for the rule, such as contact.email.", path)]
    root, *rest = field.split(".")
    if root not in ROOTS:
        return [_problem("UNKNOWN_ROOT", f"Field {field!r} must start with one of the four roots: trigger., "
                                         "contact., vars. or steps.<nodeId>.output.", path)]
    shape = "steps.<nodeId>.output.<name>" if root == "steps" else f"{root}.<name>"
    if not rest or "" in rest or (root == "steps" and (len(rest) < 3 or rest[1] != "output")):
        return [_problem("INVALID_FIELD", f"Field {field!r} is not a data path; write it as {shape}.", path)]
    return []


def _check_value(operator: str, rule: Mapping, path: str) -> list[dict]:
    """The problem with a rule's value for its operator, if any."""
    kind, value = OPERATORS[operator]["valueKind"], rule.get("value")
    if kind == "none":
        return [] if value is None else [_problem("UNEXPECTED_VALUE", f"{operator!r} takes no value; remove it.", path)]
    if value is None:
        hint = " To match a missing or blank field, use is_empty." if kind == "any" else ""
        return [_problem("MISSING_VALUE", f"{operator!r} needs a value.{hint}", path)]
    message = _VALUE_CHECKS[kind](value)
    return [_problem("INVALID_VALUE", message, path)] if message else []


# Evaluation.

def resolve(field: str, data: Mapping) -> Any:
    """The value at a dotted data path, or None when anything along it is missing."""
    current: Any = data
    for segment in field.split("."):
        if isinstance(current, Mapping):
            current = current.get(segment)
        elif isinstance(current, (list, tuple)) and segment.isascii() and segment.isdigit():
            current = current[int(segment)] if int(segment) < len(current) else None
        else:
            return None
    return current


def evaluate(condition: Any, data: Mapping, now: datetime) -> bool:
    """Whether the condition holds for data ({"trigger", "contact", "vars", "steps"}) at now."""
    return explain(condition, data, now)["result"]


def explain(condition: Any, data: Mapping, now: datetime) -> dict:
    """{"result": bool, "failed": [{"field", "operator", "expected", "actual", "negated"}]}; failed is [] if true."""
    problems = check(condition)
    if problems:
        raise ConditionError(problems)
    result, rules = _decide(condition, data, now)
    return {"result": result, "failed": [] if result else rules}


def _decide(condition: Mapping, data: Mapping, now: datetime) -> tuple[bool, list[dict]]:
    """A checked condition's result and the rules that decided it (every child is evaluated, for explain)."""
    if "not" in condition:
        result, rules = _decide(condition["not"], data, now)
        return not result, [{**rule, "negated": not rule["negated"]} for rule in rules]
    group = next((key for key in ("all", "any") if key in condition), None)
    if group is None:
        return _decide_rule(condition, data, now)
    outcomes = [_decide(item, data, now) for item in condition[group]]
    result = (all if group == "all" else any)(r for r, _ in outcomes)
    # The children that agree with the group decided it: the false ones of a false all, the true ones of a true any.
    return result, [rule for r, rules in outcomes if r == result for rule in rules]


def _decide_rule(rule: Mapping, data: Mapping, now: datetime) -> tuple[bool, list[dict]]:
    """A rule's result, and the rule itself with the value it saw."""
    operator, expected = rule["operator"], rule.get("value")
    actual = resolve(rule["field"], data)
    result = operator in MISSING_IS_TRUE if actual is None else _EVALUATORS[operator](actual, expected, now)
    return result, [{"field": rule["field"], "operator": operator, "expected": expected, "actual": actual,
                     "negated": False}]


def fields(condition: Any) -> set[str]:
    """Every data path the condition reads; malformed parts (which check() reports) are skipped."""
    if not isinstance(condition, Mapping):
        return set()
    found = {condition["field"]} if isinstance(condition.get("field"), str) else set()
    children = [condition["not"]] if "not" in condition else []
    children += [item for key in ("all", "any") if isinstance(condition.get(key), list) for item in condition[key]]
    return found.union(*(fields(child) for child in children))
