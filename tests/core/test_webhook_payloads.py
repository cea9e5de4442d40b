"""atlas.core.webhook_payloads: transformPayload (dotted paths, JMESPath, constants, defaults) and filterConditions."""
from datetime import datetime, timezone

import pytest

from atlas.core.webhook_payloads import (
    apply_transform,
    check_filter,
    check_transform,
    evaluate_filter,
    filter_data,
    filter_list,
    transform,
)

STRIPE_LIKE = {"type": "checkout.completed", "data": {
    "customer": {"email": "jane@example.com", "name": {"first": "Jane"}},
    "items": [{"sku": "PT-10", "price": 120}, {"sku": "DROPIN", "price": 15}]}}


# --- transform -----------------------------------------------------------------------------------------------------

def test_no_transform_passes_the_body_through_as_a_copy():
    out = transform(None, STRIPE_LIKE)
    assert out == STRIPE_LIKE and out is not STRIPE_LIKE
    out["data"]["customer"]["email"] = "changed"
    assert STRIPE_LIKE["data"]["customer"]["email"] == "jane@example.com"
    assert transform({}, STRIPE_LIKE) == transform({"keepOriginal": True}, STRIPE_LIKE) == STRIPE_LIKE


def test_paths_expressions_constants_and_defaults():
    spec = {"mappings": [
        {"to": "email", "from": "data.customer.email"},
        {"to": "firstName", "from": "data.customer.name.first"},
        {"to": "firstSku", "from": "data.items.0.sku"},
        {"to": "total", "expression": "sum(data.items[*].price)"},
        {"to": "skus", "expression": "data.items[*].sku"},
        {"to": "source", "value": "website"},
        {"to": "phone", "from": "data.customer.phone", "default": "unknown"},
        {"to": "lead.campaign", "expression": "data.campaign", "default": "none"},
    ]}
    assert check_transform(spec) == []
    assert transform(spec, STRIPE_LIKE) == {
        "email": "jane@example.com", "firstName": "Jane", "firstSku": "PT-10", "total": 135,
        "skus": ["PT-10", "DROPIN"], "source": "website", "phone": "unknown", "lead": {"campaign": "none"}}


def test_a_null_value_takes_the_default_and_a_missing_one_without_default_is_null():
    spec = {"mappings": [{"to": "a", "from": "a", "default": 1}, {"to": "b", "from": "b"}]}
    assert transform(spec, {"a": None}) == {"a": 1, "b": None}


def test_keep_original_lays_the_mappings_over_the_body():
    spec = {"keepOriginal": True, "mappings": [{"to": "email", "from": "data.customer.email"},
                                               {"to": "type", "value": "purchase"}]}
    out = transform(spec, STRIPE_LIKE)
    assert out["email"] == "jane@example.com" and out["type"] == "purchase" and out["data"] == STRIPE_LIKE["data"]


def test_an_expression_that_fails_at_run_time_uses_the_default_and_warns():
    spec = {"mappings": [{"to": "total", "expression": "sum(data.items[*].sku)", "default": 0}]}
    result = apply_transform(spec, STRIPE_LIKE)
    assert result.payload == {"total": 0}
    assert len(result.warnings) == 1 and "mappings[0]" in result.warnings[0] and "sum()" in result.warnings[0]


BAD_TRANSFORMS = {
    "not an object": ([1], "must be an object"),
    "unknown key": ({"mapping": []}, "has no key 'mapping'"),
    "keepOriginal not boolean": ({"keepOriginal": "yes"}, "keepOriginal must be true or false"),
    "mappings not a list": ({"mappings": {"to": "a"}}, "mappings must be a list"),
    "mapping not an object": ({"mappings": ["email"]}, "mappings[0] must be an object"),
    "no target": ({"mappings": [{"from": "a"}]}, "mappings[0].to must be a dotted path"),
    "empty segment": ({"mappings": [{"to": "a..b", "from": "a"}]}, "mappings[0].to must be a dotted path"),
    "no source": ({"mappings": [{"to": "a"}]}, "exactly one of from"),
    "two sources": ({"mappings": [{"to": "a", "from": "a", "value": 1}]}, "it has from and value"),
    "bad path": ({"mappings": [{"to": "a", "from": ""}]}, "mappings[0].from must be a dotted path"),
    "bad expression": ({"mappings": [{"to": "a", "expression": "items[0"}]}, "not a valid JMESPath expression"),
    "blank expression": ({"mappings": [{"to": "a", "expression": " "}]}, "must be a JMESPath expression"),
    "unknown mapping key": ({"mappings": [{"to": "a", "from": "a", "fallback": 1}]}, "has no key 'fallback'"),
    "overlapping targets": ({"mappings": [{"to": "a", "value": 1}, {"to": "a.b", "value": 2}]}, "both 'a' and 'a.b'"),
    "too many": ({"mappings": [{"to": f"f{i}", "value": i} for i in range(101)]}, "at most 100"),
}


@pytest.mark.parametrize("spec, said", BAD_TRANSFORMS.values(), ids=BAD_TRANSFORMS.keys())
def test_check_transform_names_each_problem(spec, said):
    problems = check_transform(spec)
    assert any(said in p for p in problems), problems


def test_check_transform_reports_every_problem_at_once():
    spec = {"mappings": [{"to": "a"}, {"to": "b", "expression": "[["}]}
    assert len(check_transform(spec)) == 2
    assert check_transform(None) == [] and check_transform({}) == []


# --- filter --------------------------------------------------------------------------------------------------------

NOW = datetime(2026, 5, 1, tzinfo=timezone.utc)


def test_every_condition_must_hold_and_the_first_failure_is_named():
    conditions = [{"field": "trigger.body.email", "operator": "is_not_empty"},
                  {"field": "trigger.body.plan", "operator": "in", "value": ["gold", "platinum"]}]
    data = filter_data({"email": "jane@example.com", "plan": "silver"})

    result = evaluate_filter(conditions, data, NOW)

    assert not result.passed and result.index == 1
    assert result.reason == "filterConditions[1] failed: trigger.body.plan is one of ['gold', 'platinum'] " \
                            "(it was 'silver')."
    assert result.failed_rule["actual"] == "silver"
    assert evaluate_filter(conditions, filter_data({"email": "j@x.com", "plan": "Gold"}), NOW).passed


def test_groups_nots_headers_and_the_endpoint_are_readable():
    condition = {"all": [{"not": {"field": "trigger.body.test", "operator": "equals", "value": True}},
                         {"field": "trigger.headers.user-agent", "operator": "starts_with", "value": "Stripe"},
                         {"field": "trigger.endpointName", "operator": "equals", "value": "Payments"}]}
    data = filter_data({"test": False}, {"User-Agent": "Stripe/1.0"}, "ep_1", "Payments")
    assert evaluate_filter(condition, data, NOW).passed  # a single condition object is a one-item list

    failed = evaluate_filter(condition, filter_data({"test": True}, {"User-Agent": "Stripe/1.0"}, "ep_1", "Payments"))
    assert failed.reason == "filterConditions[0] failed: not (trigger.body.test is True) (it was True)."


def test_a_missing_field_says_so_and_an_empty_any_never_holds():
    missing = evaluate_filter([{"field": "trigger.body.plan", "operator": "equals", "value": "gold"}],
                              filter_data({}), NOW)
    assert missing.reason == "filterConditions[0] failed: trigger.body.plan is 'gold' (the field is missing)."
    assert "'any' group is empty" in evaluate_filter([{"any": []}], filter_data({}), NOW).reason


def test_no_conditions_let_everything_through():
    assert evaluate_filter([], filter_data({}), NOW).passed and evaluate_filter(None, filter_data({}), NOW).passed
    assert filter_list(None) == [] and filter_list({"any": []}) == [{"any": []}]


def test_check_filter_uses_the_engine_s_checks_and_only_webhook_data():
    assert check_filter([]) == [] and check_filter(None) == []
    assert check_filter([{"field": "trigger.body.plan", "operator": "equals", "value": "gold"}]) == []
    [problem] = check_filter([{"field": "trigger.body.plan", "operator": "greater_than", "value": "lots"}])
    assert problem.startswith("filterConditions[0].value:") and "must be a number" in problem
    [problem] = check_filter([{"field": "contact.email", "operator": "is_empty"}])
    assert "'contact.email' is not webhook data" in problem
    assert check_filter("plan = gold") == ["filterConditions must be a list of conditions (rules or all / any / "
                                           "not groups)."]
    assert len(check_filter([{"field": "trigger.body.a", "operator": "nope"}, {"all": "x"}])) == 2
    assert "at most 50" in check_filter([{"field": "trigger.body.a", "operator": "is_empty"}] * 51)[0]
