"""What an incoming webhook's body becomes (transformPayload) and whether it starts anything (filterConditions).

transformPayload maps the fields a sender posts to the trigger data a workflow reads:

    {"mappings": [
        {"to": "email", "from": "data.customer.email"},                     a dotted path into the body
        {"to": "firstName", "from": "data.customer.name.first", "default": "there"},
        {"to": "amount", "expression": "sum(data.items[*].price)"},          a JMESPath expression (jmespath.org)
        {"to": "source", "value": "website"}                                 a constant
     ],
     "keepOriginal": false}

Each mapping names exactly one of from, expression or value. `to` is a dotted path in the result ("customer.email"
makes {"customer": {"email": ...}}); in `from`, segments of digits index into lists ("items.0.sku"). `default` is used
when the value is missing or null (also when an expression fails at run time, e.g. sum() over text: the failure is
reported as a warning, never an error). keepOriginal (default false) starts from a copy of the body and lays the
mappings over it; otherwise the result holds only the mapped fields. No transform, or one without mappings and
with keepOriginal, passes the body through unchanged.

filterConditions is a list of conditions in the engine's format (atlas.core.conditions: rules {field, operator,
value} and all / any / not groups); every one must hold (an empty list lets everything through). A single condition
object is accepted as a one-item list. Fields are read from the same trigger data a started run sees, so a path works
in the filter and in the workflow alike:

    trigger.body.<path>        the processed payload (after transformPayload)
    trigger.headers.<name>     a request header, name in lower case (trigger.headers.user-agent)
    trigger.endpointId, trigger.endpointName

Pure Python: jmespath and atlas.core only.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import jmespath
from jmespath import exceptions as jmespath_errors

from atlas.core import conditions

SOURCES = ("from", "expression", "value")
MAPPING_KEYS = ("to", *SOURCES, "default")
MAX_MAPPINGS = 100
MAX_EXPRESSION = 1000
MAX_FILTERS = 50
FILTER_ROOTS = ("trigger.body", "trigger.headers", "trigger.endpointId", "trigger.endpointName")


@dataclass(frozen=True)
class Transformed:
    """The processed payload and what went wrong on the way (in words; never fatal)."""

    payload: dict
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FilterResult:
    """Whether a delivery passes filterConditions; when not, the condition that failed (index) and why in words."""

    passed: bool
    reason: str | None = None
    index: int | None = None
    failed_rule: dict | None = None


# --- transformPayload ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=512)
def _compiled(expression: str):
    """A compiled JMESPath expression (raises jmespath ParseError)."""
    return jmespath.compile(expression)


def check_transform(spec: Any) -> list[str]:
    """Every problem of a transformPayload, each a sentence naming the mapping; [] when valid (None is valid)."""
    if spec is None or spec == {}:
        return []
    if not isinstance(spec, Mapping):
        return ["transformPayload must be an object: {\"mappings\": [...], \"keepOriginal\": false}."]
    problems = [f"transformPayload has no key {key!r}; use mappings and keepOriginal." for key in spec
                if key not in ("mappings", "keepOriginal")]
    if "keepOriginal" in spec and not isinstance(spec["keepOriginal"], bool):
        problems.append("transformPayload.keepOriginal must be true or false.")
    mappings = spec.get("mappings", [])
    if not isinstance(mappings, list):
        return problems + ["transformPayload.mappings must be a list of {to, from | expression | value, default}."]
    if len(mappings) > MAX_MAPPINGS:
        problems.append(f"transformPayload has {len(mappings)} mappings; at most {MAX_MAPPINGS} are allowed.")
    for i, mapping in enumerate(mappings):
        problems += _check_mapping(mapping, f"transformPayload.mappings[{i}]")
    return problems + _check_targets(mappings)


def _check_mapping(mapping: Any, where: str) -> list[str]:
    """The problems of one mapping."""
    if not isinstance(mapping, Mapping):
        return [f"{where} must be an object such as {{\"to\": \"email\", \"from\": \"data.email\"}}."]
    problems = [f"{where} has no key {key!r}; a mapping has {', '.join(MAPPING_KEYS)}." for key in mapping
                if key not in MAPPING_KEYS]
    if not _is_path(mapping.get("to")):
        problems.append(f"{where}.to must be a dotted path such as \"email\" or \"customer.email\".")
    sources = [key for key in SOURCES if key in mapping]
    if len(sources) != 1:
        return problems + [f"{where} must have exactly one of from (a dotted path), expression (JMESPath) or value"
                           f"{'; it has ' + ' and '.join(sources) if sources else ''}."]
    if sources == ["from"] and not _is_path(mapping["from"]):
        problems.append(f"{where}.from must be a dotted path into the body such as \"data.customer.email\".")
    if sources == ["expression"]:
        problems += _check_expression(mapping["expression"], f"{where}.expression")
    return problems


def _check_expression(expression: Any, where: str) -> list[str]:
    """The problem with a JMESPath expression, if any."""
    if not isinstance(expression, str) or not expression.strip():
        return [f"{where} must be a JMESPath expression such as \"data.items[0].sku\"."]
    if len(expression) > MAX_EXPRESSION:
        return [f"{where} is longer than {MAX_EXPRESSION} characters."]
    try:
        _compiled(expression)
    except jmespath_errors.JMESPathError as exc:
        return [f"{where} is not a valid JMESPath expression: {' '.join(str(exc).split())}"]
    return []


def _check_targets(mappings: list) -> list[str]:
    """Two mappings writing the same place, or one inside the other's value."""
    targets = [m["to"] for m in mappings if isinstance(m, Mapping) and _is_path(m.get("to"))]
    problems = []
    for i, a in enumerate(targets):
        for b in targets[i + 1:]:
            if a == b or b.startswith(a + ".") or a.startswith(b + "."):
                problems.append(f"transformPayload maps to both {a!r} and {b!r}; one would overwrite the other.")
    return problems


def _is_path(value: Any) -> bool:
    """A non-empty dotted path with no empty segment."""
    return isinstance(value, str) and bool(value.strip()) and "" not in value.split(".") and value == value.strip()


def transform(spec: Mapping | None, payload: Mapping) -> dict:
    """The processed payload for a checked transformPayload."""
    return apply_transform(spec, payload).payload


def apply_transform(spec: Mapping | None, payload: Mapping) -> Transformed:
    """The processed payload and any warnings (an expression that failed at run time) for a checked spec."""
    if not spec or (not spec.get("mappings") and spec.get("keepOriginal", True)):
        return Transformed(copy.deepcopy(dict(payload)))
    result = copy.deepcopy(dict(payload)) if spec.get("keepOriginal") else {}
    warnings: list[str] = []
    for i, mapping in enumerate(spec.get("mappings") or []):
        value = _value(mapping, payload, f"mappings[{i}]", warnings)
        _put(result, mapping["to"], copy.deepcopy(mapping.get("default")) if value is None else value)
    return Transformed(result, warnings)


def _value(mapping: Mapping, payload: Mapping, where: str, warnings: list[str]) -> Any:
    """One mapping's value from the body (None when missing)."""
    if "value" in mapping:
        return copy.deepcopy(mapping["value"])
    if "from" in mapping:
        return copy.deepcopy(conditions.resolve(mapping["from"], payload))
    try:
        return _compiled(mapping["expression"]).search(payload)
    except jmespath_errors.JMESPathError as exc:
        warnings.append(f"{where} ({mapping['expression']!r}) failed: {' '.join(str(exc).split())}; "
                        "the default was used.")
        return None


def _put(target: dict, path: str, value: Any) -> None:
    """Set a dotted path in target, creating (or replacing non-object) intermediate objects."""
    *parents, last = path.split(".")
    for name in parents:
        if not isinstance(target.get(name), dict):
            target[name] = {}
        target = target[name]
    target[last] = value


# --- filterConditions ---------------------------------------------------------------------------------------------

def filter_list(spec: Any) -> list:
    """filterConditions as a list (a single condition object becomes a one-item list; None an empty one)."""
    if spec is None:
        return []
    return [spec] if isinstance(spec, Mapping) else spec


def check_filter(spec: Any) -> list[str]:
    """Every problem of filterConditions, each a sentence with its path; [] when valid (None and [] are valid)."""
    items = filter_list(spec)
    if not isinstance(items, list):
        return ["filterConditions must be a list of conditions (rules or all / any / not groups)."]
    if len(items) > MAX_FILTERS:
        return [f"filterConditions has {len(items)} conditions; at most {MAX_FILTERS} are allowed."]
    problems = []
    for i, condition in enumerate(items):
        where = f"filterConditions[{i}]"
        problems += [f"{p['path']}: {p['message']}" for p in conditions.check(condition, path=where)]
        problems += [f"{where}: the field {f!r} is not webhook data; use trigger.body.<path> (the processed payload)"
                     f", trigger.headers.<name>, trigger.endpointId or trigger.endpointName."
                     for f in sorted(conditions.fields(condition)) if not _filter_field(f)]
    return problems


def _filter_field(name: str) -> bool:
    """Whether a condition field reads data a webhook filter has."""
    return any(name == root or name.startswith(root + ".") for root in FILTER_ROOTS[:2]) or name in FILTER_ROOTS[2:]


def filter_data(body: Mapping, headers: Mapping | None = None, endpoint_id: str | None = None,
                endpoint_name: str | None = None) -> dict:
    """The data filterConditions read: {"trigger": {body, headers (lower-case names), endpointId, endpointName}}."""
    lowered = {str(k).lower(): v for k, v in (headers or {}).items()}
    return {"trigger": {"body": body, "headers": lowered, "endpointId": endpoint_id, "endpointName": endpoint_name}}


def evaluate_filter(spec: Any, data: Mapping, now: datetime | None = None) -> FilterResult:
    """Whether every condition of checked filterConditions holds for filter_data(); else the first that failed."""
    now = now or datetime.now(timezone.utc)
    for i, condition in enumerate(filter_list(spec)):
        outcome = conditions.explain(condition, data, now)
        if outcome["result"]:
            continue
        rule = outcome["failed"][0] if outcome["failed"] else None
        if rule is None:
            return FilterResult(False, f"filterConditions[{i}] failed: its 'any' group is empty, so it never holds.", i)
        return FilterResult(False, f"filterConditions[{i}] failed: {describe_rule(rule)}.", i, rule)
    return FilterResult(True)


def describe_rule(rule: Mapping) -> str:
    """A failed rule from conditions.explain in words: "trigger.body.plan is 'gold' (it was 'silver')"."""
    label = conditions.OPERATORS[rule["operator"]]["label"]
    expected = "" if rule["expected"] is None else f" {rule['expected']!r}"
    said = f"{rule['field']} {label}{expected}"
    said = f"not ({said})" if rule.get("negated") else said
    seen = "the field is missing" if rule["actual"] is None else f"it was {rule['actual']!r}"
    return f"{said} ({seen})"
