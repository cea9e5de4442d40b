"""Conditions: every operator and its coercions, missing fields, groups, check() problems, explain() and fields()."""
from datetime import date, datetime, timedelta, timezone

import pytest

from atlas.core.conditions import OPERATORS, ConditionError, check, evaluate, explain, fields

NOW = datetime(2024, 5, 10, 12, 0, tzinfo=timezone.utc)
ABSENT = object()  # a rule without a "value" key

DATA = {
    "trigger": {"source": "Website", "amount": "49.90", "paid": "true", "visits": 12,
                "items": [{"sku": "PT-10"}, {"sku": "Yoga"}]},
    "contact": {
        "first_name": "  Sarah ", "email": "Sarah@Example.com", "tags": ["VIP", "yoga", 7], "age": 34,
        "zip": "02139", "phone": 5551234, "opted_in": True, "notes": "   ", "no_tags": [], "no_fields": {},
        "nothing": None, "zero": 0, "off": False,
        "member_since": "2023-01-15",                    # a date: midnight UTC
        "last_visit": "2024-05-09T18:30:00Z",            # 17.5 hours before NOW
        "day_ago": "2024-05-09T12:00:00+00:00",          # exactly 1 day before NOW
        "naive_visit": "2024-05-10T09:00:00",            # naive: UTC
        "new_york_visit": "2024-05-10T09:00:00-04:00",   # 13:00 UTC, an hour after NOW
    },
    "vars": {"score": "7.5", "by_year": {"2024": 5}},
    "steps": {"lookup": {"output": {"plan": "Gold", "classes": [{"name": "Spin"}]}}},
}


def rule(field: str, operator: str, value=ABSENT) -> dict:
    return {"field": field, "operator": operator, **({} if value is ABSENT else {"value": value})}


def holds(field: str, operator: str, value=ABSENT, data=DATA, now=NOW) -> bool:
    return evaluate(rule(field, operator, value), data, now)


OPERATOR_CASES = [
    # equals: trimmed, case-insensitive text; numbers with numeric text on either side; booleans
    ("contact.first_name", "equals", "sarah", True),
    ("contact.first_name", "equals", " SARAH", True),
    ("contact.first_name", "equals", "sara", False),
    ("contact.age", "equals", 34, True),
    ("contact.age", "equals", "34", True),
    ("contact.age", "equals", "34.0", True),
    ("contact.age", "equals", 35, False),
    ("contact.age", "equals", "thirty-four", False),
    ("trigger.amount", "equals", 49.9, True),
    ("contact.zip", "equals", 2139, True),
    ("contact.zip", "equals", "2139", False),       # two texts compare as text: leading zeros matter
    ("contact.opted_in", "equals", True, True),
    ("contact.opted_in", "equals", "TRUE ", True),
    ("contact.opted_in", "equals", False, False),
    ("contact.opted_in", "equals", 1, False),
    ("contact.opted_in", "equals", "yes", False),
    ("trigger.paid", "equals", True, True),
    ("contact.zero", "equals", False, False),
    ("contact.tags", "equals", "VIP", False),
    ("steps.lookup.output.plan", "equals", "gold", True),
    # not_equals is the exact negation
    ("contact.first_name", "not_equals", "SARAH", False),
    ("contact.first_name", "not_equals", "bob", True),
    ("contact.age", "not_equals", 34.0, False),
    ("contact.opted_in", "not_equals", "false", True),
    # contains: substring of text (numbers as text), membership of lists
    ("contact.email", "contains", "EXAMPLE", True),
    ("contact.email", "contains", "gmail", False),
    ("contact.phone", "contains", 555, True),
    ("contact.tags", "contains", "vip", True),
    ("contact.tags", "contains", " Yoga ", True),
    ("contact.tags", "contains", "7", True),
    ("contact.tags", "contains", "vi", False),      # membership, not a substring of an item
    ("contact.tags", "contains", "pilates", False),
    ("trigger.items", "contains", "PT-10", False),
    ("contact.opted_in", "contains", "true", False),
    ("contact.no_fields", "contains", "a", False),
    # not_contains
    ("contact.email", "not_contains", "gmail", True),
    ("contact.email", "not_contains", "sarah", False),
    ("contact.tags", "not_contains", "VIP", False),
    ("contact.tags", "not_contains", "pilates", True),
    # starts_with / ends_with
    ("contact.email", "starts_with", "SARAH@", True),
    ("contact.email", "starts_with", "example", False),
    ("contact.first_name", "starts_with", "sa", True),
    ("contact.phone", "starts_with", "555", True),
    ("contact.tags", "starts_with", "VIP", False),
    ("contact.email", "ends_with", "@example.COM", True),
    ("contact.email", "ends_with", ".org", False),
    ("contact.first_name", "ends_with", "RAH", True),
    ("contact.phone", "ends_with", 1234, True),
    # greater_than / less_than: numeric text on both sides; anything not numeric is false
    ("contact.age", "greater_than", 30, True),
    ("contact.age", "greater_than", 34, False),
    ("contact.age", "greater_than", "33.5", True),
    ("trigger.amount", "greater_than", "49", True),
    ("trigger.amount", "greater_than", "50", False),
    ("vars.score", "greater_than", 7, True),
    ("contact.first_name", "greater_than", 1, False),
    ("contact.opted_in", "greater_than", 0, False),
    ("contact.tags", "greater_than", 0, False),
    ("contact.age", "less_than", 34.5, True),
    ("contact.age", "less_than", 34, False),
    ("vars.score", "less_than", "10", True),
    ("contact.email", "less_than", 10, False),
    # between: inclusive; numbers when both bounds are numeric, date-times otherwise
    ("contact.age", "between", [30, 40], True),
    ("contact.age", "between", [34, 34], True),
    ("contact.age", "between", [35, 40], False),
    ("contact.age", "between", [20, 33], False),
    ("trigger.amount", "between", ["40", 50], True),
    ("contact.first_name", "between", [1, 2], False),
    ("contact.last_visit", "between", ["2024-05-01", "2024-05-10"], True),
    ("contact.member_since", "between", ["2024-01-01", "2024-12-31"], False),
    ("contact.member_since", "between", ["2023-01-15", "2023-01-15T00:00:00Z"], True),
    ("contact.new_york_visit", "between", ["2024-05-10T12:00:00Z", "2024-05-10T13:00:00Z"], True),
    ("contact.new_york_visit", "between", ["2024-05-10T08:00:00Z", "2024-05-10T12:59:59Z"], False),
    ("contact.last_visit", "between", [1, 100], False),
    ("contact.age", "between", ["2024-01-01", "2024-12-31"], False),
    # in: the field equals one of the items
    ("contact.first_name", "in", ["bob", "SARAH"], True),
    ("contact.first_name", "in", ["bob", "sara"], False),
    ("contact.age", "in", ["33", "34"], True),
    ("contact.opted_in", "in", ["true"], True),
    ("steps.lookup.output.plan", "in", ["gold", "platinum"], True),
    ("contact.tags", "in", ["VIP"], False),
    # is_empty / is_not_empty
    ("contact.notes", "is_empty", ABSENT, True),
    ("contact.no_tags", "is_empty", ABSENT, True),
    ("contact.no_fields", "is_empty", ABSENT, True),
    ("contact.first_name", "is_empty", ABSENT, False),
    ("contact.zero", "is_empty", ABSENT, False),
    ("contact.off", "is_empty", ABSENT, False),
    ("contact.tags", "is_empty", None, False),
    ("contact.notes", "is_not_empty", ABSENT, False),
    ("contact.no_tags", "is_not_empty", ABSENT, False),
    ("contact.zero", "is_not_empty", ABSENT, True),
    ("contact.tags", "is_not_empty", ABSENT, True),
    # before / after: strict; a date alone is midnight UTC; non-dates are false
    ("contact.member_since", "before", "2023-02-01", True),
    ("contact.member_since", "before", "2023-01-15", False),
    ("contact.member_since", "before", "2023-01-15T00:00:01Z", True),
    ("contact.last_visit", "before", "2024-05-09T18:30:00Z", False),
    ("contact.last_visit", "after", "2024-05-09", True),
    ("contact.last_visit", "after", "2024-05-10", False),
    ("contact.member_since", "after", "2023-01-15", False),
    ("contact.first_name", "before", "2030-01-01", False),
    ("contact.age", "after", "1990-01-01", False),
    ("contact.tags", "after", "1990-01-01", False),
    # within_last: [NOW - duration, NOW], inclusive
    ("contact.last_visit", "within_last", {"amount": 1, "unit": "days"}, True),
    ("contact.last_visit", "within_last", {"amount": 18, "unit": "hours"}, True),
    ("contact.last_visit", "within_last", {"amount": 17, "unit": "hours"}, False),
    ("contact.day_ago", "within_last", {"amount": 1, "unit": "days"}, True),
    ("contact.day_ago", "within_last", {"amount": 1439, "unit": "minutes"}, False),
    ("contact.member_since", "within_last", {"amount": 52, "unit": "weeks"}, False),
    ("contact.member_since", "within_last", {"amount": 520, "unit": "weeks"}, True),
    ("contact.new_york_visit", "within_last", {"amount": 1, "unit": "days"}, False),   # in the future
    ("contact.first_name", "within_last", {"amount": 1, "unit": "days"}, False),
]


@pytest.mark.parametrize("field, operator, value, expected", OPERATOR_CASES)
def test_operators(field, operator, value, expected):
    assert check(rule(field, operator, value)) == []
    assert holds(field, operator, value) is expected


def test_every_operator_has_true_and_false_cases():
    outcomes = {(operator, expected) for _, operator, _, expected in OPERATOR_CASES}

    assert outcomes == {(operator, result) for operator in OPERATORS for result in (True, False)}


TIME_ZONE_CASES = [
    ("contact.new_york_visit", "after", "2024-05-10T12:30:00Z", True),          # 09:00-04:00 is 13:00 UTC
    ("contact.new_york_visit", "after", "2024-05-10T13:00:00Z", False),
    ("contact.new_york_visit", "before", "2024-05-10T14:00:00+01:00", False),   # the same instant, not before
    ("contact.new_york_visit", "before", "2024-05-10T14:00:01+01:00", True),
    ("contact.new_york_visit", "before", "2024-05-10T10:00:00", False),         # naive value: 10:00 UTC
    ("contact.naive_visit", "before", "2024-05-10T09:30:00Z", True),            # naive field: 09:00 UTC
    ("contact.naive_visit", "after", "2024-05-10T10:00:00+02:00", True),        # 08:00 UTC
    ("contact.naive_visit", "after", "2024-05-10T05:00:00-05:00", False),       # 10:00 UTC
    ("contact.member_since", "after", "2023-01-14T23:59:59Z", True),
    ("contact.member_since", "before", "2023-01-15T01:00:00+02:00", False),     # 2023-01-14T23:00 UTC
    ("contact.member_since", "after", "2023-01-15T01:00:00+02:00", True),
]


@pytest.mark.parametrize("field, operator, value, expected", TIME_ZONE_CASES)
def test_time_zones_in_before_and_after(field, operator, value, expected):
    assert holds(field, operator, value) is expected


@pytest.mark.parametrize("field, operator, value, expected", [
    ("contact.born", "before", "1990-05-01T00:00:01Z", True),
    ("contact.born", "after", "1990-05-01", False),
    ("contact.born", "after", "1990-04-30T23:59:59Z", True),
    ("contact.seen", "within_last", {"amount": 1, "unit": "hours"}, True),
    ("contact.seen", "before", "2024-05-10T12:00:00+01:00", False),
])
def test_python_dates_and_datetimes_in_the_data_count_too(field, operator, value, expected):
    data = {"contact": {"born": date(1990, 5, 1), "seen": datetime(2024, 5, 10, 11, 0)}}

    assert holds(field, operator, value, data=data) is expected


@pytest.mark.parametrize("now", [NOW, datetime(2024, 5, 10, 12, 0), datetime(2024, 5, 10, 14, 0,
                                                                               tzinfo=timezone(timedelta(hours=2)))])
def test_within_last_reads_now_in_any_zone_and_a_naive_now_as_utc(now):
    assert holds("contact.day_ago", "within_last", {"amount": 24, "unit": "hours"}, now=now)
    assert not holds("contact.day_ago", "within_last", {"amount": 23, "unit": "hours"}, now=now)


def test_within_last_moves_with_now():
    last_visit = ("contact.last_visit", "within_last", {"amount": 1, "unit": "days"})

    assert holds(*last_visit, now=datetime(2024, 5, 10, 18, 30, tzinfo=timezone.utc))
    assert not holds(*last_visit, now=datetime(2024, 5, 10, 18, 30, 1, tzinfo=timezone.utc))
    assert not holds(*last_visit, now=datetime(2024, 5, 9, 18, 29, tzinfo=timezone.utc))


SAMPLE_VALUES = {
    "equals": "x", "not_equals": "x", "contains": "x", "not_contains": "x", "starts_with": "x", "ends_with": "x",
    "greater_than": 1, "less_than": 1, "between": [1, 2], "in": ["x"], "is_empty": ABSENT, "is_not_empty": ABSENT,
    "before": "2024-01-01", "after": "2024-01-01", "within_last": {"amount": 1, "unit": "days"},
}
TRUE_WHEN_MISSING = {"is_empty", "not_equals", "not_contains"}
MISSING_PATHS = ["contact.unknown", "contact.nothing", "contact.age.years", "contact.tags.9", "contact.tags.first",
                 "contact.tags.²", "trigger.items.0.price", "vars.a.b.c", "steps.unknown.output.x",
                 "steps.lookup.output.classes.1.name"]


@pytest.mark.parametrize("operator", list(OPERATORS))
@pytest.mark.parametrize("field", MISSING_PATHS)
def test_a_missing_field_is_false_except_for_is_empty_not_equals_and_not_contains(field, operator):
    assert holds(field, operator, SAMPLE_VALUES[operator]) is (operator in TRUE_WHEN_MISSING)


@pytest.mark.parametrize("data", [{}, {"contact": None}, {"contact": "text"}, {"steps": {"lookup": {}}}])
def test_missing_roots_are_missing_fields(data):
    assert holds("contact.email", "is_empty", data=data)
    assert holds("steps.lookup.output.plan", "not_equals", "Gold", data=data)
    assert not holds("contact.email", "contains", "@", data=data)


@pytest.mark.parametrize("field, value", [
    ("trigger.items.1.sku", "yoga"),
    ("steps.lookup.output.classes.0.name", "spin"),
    ("contact.tags.2", 7),
    ("vars.by_year.2024", 5),       # digits are a key in an object, an index in a list
])
def test_paths_index_lists_and_read_objects(field, value):
    assert holds(field, "equals", value)


T = rule("contact.opted_in", "equals", True)
F = rule("contact.opted_in", "equals", False)


@pytest.mark.parametrize("condition, expected", [
    ({"all": []}, True),
    ({"any": []}, False),
    ({"all": [T]}, True),
    ({"all": [T, T]}, True),
    ({"all": [T, F]}, False),
    ({"all": [F, T]}, False),
    ({"any": [F, T]}, True),
    ({"any": [F, F]}, False),
    ({"any": [T]}, True),
    ({"not": T}, False),
    ({"not": F}, True),
    ({"not": {"not": T}}, True),
    ({"not": {"all": []}}, False),
    ({"any": [{"all": [T, {"not": F}]}, F]}, True),
    ({"any": [{"all": [T, {"not": T}]}, F]}, False),
    ({"all": [{"any": [F, T]}, {"not": {"any": [F, F]}}]}, True),
])
def test_groups_and_negation(condition, expected):
    assert check(condition) == []
    assert evaluate(condition, DATA, NOW) is expected
    assert explain(condition, DATA, NOW)["result"] is expected


def nested(levels: int, leaf=T) -> dict:
    """A condition `levels` deep: a rule inside levels - 1 alternating not / all groups."""
    condition = leaf
    for level in range(levels - 1):
        condition = {"not": condition} if level % 2 else {"all": [condition]}
    return condition


def test_ten_levels_are_allowed_and_evaluated():
    assert check(nested(10)) == []
    assert evaluate(nested(10), DATA, NOW) is True    # four nots around a true rule
    assert evaluate(nested(10, leaf=F), DATA, NOW) is False


def test_nesting_deeper_than_ten_is_a_problem():
    problems = check(nested(11))

    assert [(p["code"], p["path"]) for p in problems] == [
        ("TOO_DEEP", "condition.not.all[0].not.all[0].not.all[0].not.all[0].not.all[0]")]
    assert problems[0]["message"] == "Conditions can be nested at most 10 levels deep."
    with pytest.raises(ConditionError):
        evaluate(nested(11), DATA, NOW)


VALID = rule("contact.email", "contains", "@")


@pytest.mark.parametrize("condition, expected", [
    ("rule", [("NOT_AN_OBJECT", "condition")]),
    (None, [("NOT_AN_OBJECT", "condition")]),
    ([VALID], [("NOT_AN_OBJECT", "condition")]),
    ({"all": "contact.email"}, [("NOT_A_LIST", "condition.all")]),
    ({"any": {"field": "contact.email"}}, [("NOT_A_LIST", "condition.any")]),
    ({"all": [VALID, 3]}, [("NOT_AN_OBJECT", "condition.all[1]")]),
    ({"not": [VALID]}, [("NOT_AN_OBJECT", "condition.not")]),
    ({"all": [], "any": []}, [("UNKNOWN_KEY", "condition.any")]),
    ({"not": VALID, "field": "contact.email"}, [("UNKNOWN_KEY", "condition.field")]),
    ({**VALID, "negate": True}, [("UNKNOWN_KEY", "condition.negate")]),
    ({"operator": "equals", "value": 1}, [("MISSING_FIELD", "condition.field")]),
    (rule("", "equals", 1), [("MISSING_FIELD", "condition.field")]),
    (rule(5, "equals", 1), [("MISSING_FIELD", "condition.field")]),
    (rule("lead.email", "equals", 1), [("UNKNOWN_ROOT", "condition.field")]),
    (rule("Contact.email", "equals", 1), [("UNKNOWN_ROOT", "condition.field")]),
    (rule("contact", "is_empty"), [("INVALID_FIELD", "condition.field")]),
    (rule("contact..email", "is_empty"), [("INVALID_FIELD", "condition.field")]),
    (rule("contact.email.", "is_empty"), [("INVALID_FIELD", "condition.field")]),
    (rule("steps.lookup.plan", "is_empty"), [("INVALID_FIELD", "condition.field")]),
    (rule("steps.lookup.output", "is_empty"), [("INVALID_FIELD", "condition.field")]),
    ({"field": "contact.email", "value": 1}, [("MISSING_OPERATOR", "condition.operator")]),
    (rule("contact.email", "is"), [("UNKNOWN_OPERATOR", "condition.operator")]),
    (rule("contact.email", ["equals"], 1), [("UNKNOWN_OPERATOR", "condition.operator")]),
    (rule("contact.email", "equals"), [("MISSING_VALUE", "condition.value")]),
    (rule("contact.email", "equals", None), [("MISSING_VALUE", "condition.value")]),
    (rule("contact.email", "before"), [("MISSING_VALUE", "condition.value")]),
    (rule("contact.email", "equals", ["a", "b"]), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.email", "equals", {"a": 1}), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.email", "contains", "  "), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.email", "contains", ["a"]), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.email", "starts_with", True), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.age", "greater_than", "ten"), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.age", "less_than", True), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.age", "between", [1]), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.age", "between", [1, 2, 3]), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.age", "between", "1-5"), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.age", "between", [5, 1]), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.age", "between", [1, "2024-01-01"]), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.age", "between", ["2024-02-01", "2024-01-01"]), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.tags", "in", "vip"), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.tags", "in", []), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.tags", "in", [["vip"]]), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.tags", "is_empty", "x"), [("UNEXPECTED_VALUE", "condition.value")]),
    (rule("contact.tags", "is_not_empty", []), [("UNEXPECTED_VALUE", "condition.value")]),
    (rule("contact.last_visit", "before", "yesterday"), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.last_visit", "after", 20240101), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.last_visit", "within_last", "1 day"), [("INVALID_VALUE", "condition.value")]),
    (rule("contact.last_visit", "within_last", {"amount": -1, "unit": "days"}),
     [("INVALID_VALUE", "condition.value")]),
    ({"field": "lead.x", "operator": "nope", "extra": 1},
     [("UNKNOWN_KEY", "condition.extra"), ("UNKNOWN_ROOT", "condition.field"),
      ("UNKNOWN_OPERATOR", "condition.operator")]),
])
def test_check_names_each_problem_and_where_it_is(condition, expected):
    assert [(p["code"], p["path"]) for p in check(condition)] == expected
    with pytest.raises(ConditionError):
        evaluate(condition, DATA, NOW)


def test_check_reports_every_problem_at_once_with_nested_paths():
    condition = {"all": [VALID,
                         {"any": [VALID, {"field": "lead.x", "operator": "nope"}]},
                         {"not": rule("contact.age", "between", [1])},
                         {"any": "x"}]}

    assert [(p["code"], p["path"]) for p in check(condition)] == [
        ("UNKNOWN_ROOT", "condition.all[1].any[1].field"),
        ("UNKNOWN_OPERATOR", "condition.all[1].any[1].operator"),
        ("INVALID_VALUE", "condition.all[2].not.value"),
        ("NOT_A_LIST", "condition.all[3].any"),
    ]
    assert [(p["code"], p["path"]) for p in check(condition, path="config.branches[0].condition")][-1] == \
        ("NOT_A_LIST", "config.branches[0].condition.all[3].any")


@pytest.mark.parametrize("operator", list(OPERATORS))
def test_every_operator_accepts_its_sample_value(operator):
    assert check(rule("contact.email", operator, SAMPLE_VALUES[operator])) == []


def test_is_empty_tolerates_a_null_value():
    assert check(rule("contact.email", "is_empty", None)) == []


@pytest.mark.parametrize("condition, message", [
    (rule("contact.email", "is"), "'is' is not an operator; choose one of equals, not_equals, contains, not_contains, "
                                  "starts_with, ends_with, greater_than, less_than, between, in, is_empty, "
                                  "is_not_empty, before, after, within_last."),
    (rule("lead.email", "is_empty"), "Field 'lead.email' must start with one of the four roots: trigger., contact., "
                                     "vars. or steps.<nodeId>.output."),
    (rule("steps.lookup", "is_empty"), "Field 'steps.lookup' is not a data path; write it as "
                                       "steps.<nodeId>.output.<name>."),
    (rule("contact.email", "equals"), "'equals' needs a value. To match a missing or blank field, use is_empty."),
    (rule("contact.age", "between", [5, 1]), "The low end of the range must not be greater than the high end."),
    (rule("contact.a", "within_last", {"amount": 1, "unit": "day"}),
     "'day' is not a unit of time; choose seconds, minutes, hours, days or weeks."),
    ({"all": [], "any": []}, "A 'all' group has no other keys; remove 'any'."),
])
def test_check_messages_say_what_to_do(condition, message):
    assert [p["message"] for p in check(condition)] == [message]


def test_condition_error_carries_the_problems():
    condition = {"all": [rule("lead.x", "equals", 1)]}

    with pytest.raises(ConditionError) as caught:
        explain(condition, DATA, NOW)

    assert isinstance(caught.value, ValueError)
    assert caught.value.problems == check(condition)
    assert "condition.all[0].field" in str(caught.value)


def failure(field, operator, expected, actual, negated=False) -> dict:
    return {"field": field, "operator": operator, "expected": expected, "actual": actual, "negated": negated}


def test_explain_names_the_failing_rule_and_the_actual_value():
    why = explain({"all": [rule("contact.opted_in", "equals", True),
                           rule("contact.tags", "contains", "pilates"),
                           rule("contact.age", "greater_than", 18)]}, DATA, NOW)

    assert why == {"result": False,
                   "failed": [failure("contact.tags", "contains", "pilates", ["VIP", "yoga", 7])]}


def test_explain_shows_a_missing_field_as_none():
    why = explain(rule("contact.phone_mobile", "starts_with", "+1"), DATA, NOW)

    assert why["failed"] == [failure("contact.phone_mobile", "starts_with", "+1", None)]


def test_explain_lists_every_rule_of_a_false_any_and_only_the_false_ones_of_a_false_all():
    condition = {"all": [rule("contact.age", "less_than", 30),
                         {"any": [rule("trigger.source", "equals", "ads"), rule("contact.email", "is_empty")]},
                         rule("contact.first_name", "equals", "sarah")]}

    assert explain(condition, DATA, NOW)["failed"] == [
        failure("contact.age", "less_than", 30, 34),
        failure("trigger.source", "equals", "ads", "Website"),
        failure("contact.email", "is_empty", None, "Sarah@Example.com"),
    ]


def test_explain_marks_a_rule_that_failed_because_it_held_under_not():
    why = explain({"not": {"any": [rule("contact.opted_in", "equals", True), F]}}, DATA, NOW)

    assert why == {"result": False, "failed": [failure("contact.opted_in", "equals", True, True, negated=True)]}
    assert explain({"not": {"not": F}}, DATA, NOW)["failed"] == [failure("contact.opted_in", "equals", False, True)]


@pytest.mark.parametrize("condition", [T, {"all": [T, {"not": F}]}, {"any": [F, T]}, {"all": []}])
def test_explain_of_a_true_result_lists_nothing(condition):
    assert explain(condition, DATA, NOW) == {"result": True, "failed": []}


@pytest.mark.parametrize("condition, expected", [
    (T, {"contact.opted_in"}),
    ({"all": []}, set()),
    ({"all": [rule("trigger.source", "equals", "x"),
              {"any": [rule("vars.score", "greater_than", 1), {"not": rule("steps.lookup.output.plan", "is_empty")}]},
              rule("trigger.source", "not_equals", "y")]},
     {"trigger.source", "vars.score", "steps.lookup.output.plan"}),
    ({"all": [3, {"any": "x"}, {"field": "lead.x"}, {"not": None}]}, {"lead.x"}),   # tolerant of what check() reports
    ("not a condition", set()),
])
def test_fields_lists_every_path_read(condition, expected):
    assert fields(condition) == expected


def test_operators_are_listed_in_order_for_the_builder():
    assert list(OPERATORS) == ["equals", "not_equals", "contains", "not_contains", "starts_with", "ends_with",
                               "greater_than", "less_than", "between", "in", "is_empty", "is_not_empty", "before",
                               "after", "within_last"]
    assert OPERATORS["equals"] == {"label": "is", "valueKind": "any"}
    assert OPERATORS["within_last"] == {"label": "is within the last", "valueKind": "duration"}
    assert {o["valueKind"] for o in OPERATORS.values()} == {"any", "text", "number", "list", "range", "datetime",
                                                           "duration", "none"}
    assert all(o["label"] for o in OPERATORS.values())
    with pytest.raises(TypeError):
        OPERATORS["matches"] = {"label": "matches", "valueKind": "text"}


ODD_VALUES = [None, "", "   ", "text", "1" * 5000, "1e999", "nan", "2024-13-45", "true", 0, -1.5, 10 ** 400,
              "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
              float("nan"), float("inf"), True, [], [None, {}, [1]], {}, {"a": {"b": 1}}, datetime(2024, 1, 1)]


@pytest.mark.parametrize("operator", list(OPERATORS))
def test_a_checked_condition_never_raises_whatever_the_data(operator):
    for odd in ODD_VALUES:
        data = {"contact": {"x": odd, "list": [odd]}}
        for field in ("contact.x", "contact.list", "contact.x.0", "contact.list.0.a"):
            assert isinstance(holds(field, operator, SAMPLE_VALUES[operator], data=data), bool)
