"""The condition builder's form: a condition as a tree the template draws, the posted tree read back, and its ops.

A condition at form name P is posted as
    P.kind = all | any | not | rule
    P.items.<i>...          the children of an all / any group (the toggle switches all <-> any, children stay)
    P.not...                the child of a not
    P.field, P.operator     a rule; its value by the operator's kind (atlas.core.conditions OPERATORS valueKind):
    P.value (+ P.value.type = string | number | boolean)   any, text, number, datetime
    P.value.0, P.value.1    between;   P.value.amount, P.value.unit   within_last;   P.value one item a line   in
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from atlas.core import conditions
from atlas.core.durations import UNIT_SECONDS

EMPTY_RULE = {"field": "", "operator": "equals", "value": ""}
UNITS = list(UNIT_SECONDS)
OPERATOR_CHOICES = [(key, spec["label"]) for key, spec in conditions.OPERATORS.items()]
_INDEX = re.compile(r"\[(\d+)\]")
_PLAIN = {"MISSING_VALUE": "Enter a value to compare with.", "MISSING_OPERATOR": "Choose how to compare.",
          "UNKNOWN_OPERATOR": "Choose how to compare."}


# --- the tree the template draws ------------------------------------------------------------------------------------

def condition_view(condition: Any, name: str, errors: Mapping[str, str] | None = None, depth: int = 1,
                   field_types: Mapping[str, str] | None = None) -> dict:
    """One node of the builder's tree: {kind, name, depth, ...}; a missing or malformed condition is an empty group.
    field_types (data path -> "boolean" | "number") types the value of a rule that has none yet."""
    errors, field_types = errors or {}, field_types or {}
    if not isinstance(condition, Mapping) or not condition:
        condition = {"all": []}
    node = {"name": name, "depth": depth, "error": errors.get(name)}
    if "not" in condition:
        return {**node, "kind": "not", "child": condition_view(condition["not"], f"{name}.not", errors, depth + 1,
                                                                  field_types)}
    group = next((key for key in ("all", "any") if key in condition), None)
    if group:
        items = condition[group] if isinstance(condition[group], list) else []
        return {**node, "kind": group, "items": [condition_view(item, f"{name}.items.{i}", errors, depth + 1,
                                                                field_types) for i, item in enumerate(items)]}
    return {**node, **_rule_view(condition, name, errors, field_types)}


def _rule_view(rule: Mapping, name: str, errors: Mapping[str, str], field_types: Mapping[str, str]) -> dict:
    """A rule's parts as the inputs show them, with each part's error."""
    operator = rule.get("operator") if rule.get("operator") in conditions.OPERATORS else "equals"
    kind, value = conditions.OPERATORS[operator]["valueKind"], rule.get("value")
    sample = value[0] if isinstance(value, list) and value else value
    value_type = field_types.get(rule.get("field"), "string") if sample in (None, "") else type_of(sample)
    view = {"kind": "rule", "field": rule.get("field") or "", "operator": operator, "value_kind": kind,
            "value_type": value_type if value_type in ("number", "boolean") else "string",
            "errors": {part: errors.get(f"{name}.{part}") for part in ("field", "operator", "value")}}
    if kind == "range":
        pair = value if isinstance(value, list) and len(value) == 2 else ["", ""]
        return {**view, "low": shown(pair[0]), "high": shown(pair[1])}
    if kind == "duration":
        value = value if isinstance(value, Mapping) else {}
        return {**view, "amount": shown(value.get("amount")), "unit": value.get("unit") or "days"}
    if kind == "list":
        return {**view, "value": "\n".join(shown(v) for v in value) if isinstance(value, list) else shown(value)}
    return {**view, "value": shown(value)}


def type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, (int, float)) else "string"


def shown(value: Any) -> str:
    """A value as an input holds it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- the posted tree read back ---------------------------------------------------------------------------------------

def condition_from_form(form, name: str) -> tuple[dict, dict]:
    """(the condition posted under name, {field name: problem}); structural problems come from conditions.check."""
    errors: dict[str, str] = {}
    condition = _node(form, name, errors)
    for problem in conditions.check(condition, path=name):
        where = _form_name(problem["path"])
        if not where.startswith(name) or where in errors:
            continue
        errors[where] = _PLAIN.get(problem["code"], problem["message"])
    return condition, errors


def _form_name(path: str) -> str:
    """A conditions.check path ("config.condition.all[0].field") as a form name ("config.condition.items.0.field")."""
    return _INDEX.sub(r".\1", re.sub(r"\.(all|any)\[", ".items[", path))


def _node(form, name: str, errors: dict) -> dict:
    kind = form.get(f"{name}.kind", "all")
    if kind == "not":
        return {"not": _node(form, f"{name}.not", errors)}
    if kind in ("all", "any"):
        return {kind: [_node(form, f"{name}.items.{i}", errors) for i in indices(form, f"{name}.items")]}
    return _rule(form, name, errors)


def indices(form, name: str) -> list[int]:
    """The list indices posted under name (name.0..., name.3...), in order."""
    start, found = f"{name}.", set()
    for key in form.keys():
        if key.startswith(start):
            head = key[len(start):].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _rule(form, name: str, errors: dict) -> dict:
    """A rule, its value typed by its operator's kind."""
    operator = form.get(f"{name}.operator", "")
    rule = {"field": form.get(f"{name}.field", "").strip(), "operator": operator}
    kind = conditions.OPERATORS[operator]["valueKind"] if operator in conditions.OPERATORS else "any"
    if kind != "none":
        rule["value"] = _value(form, f"{name}.value", kind, errors)
    return rule


def _value(form, name: str, kind: str, errors: dict) -> Any:
    text, value_type = form.get(name, "").strip(), form.get(f"{name}.type", "string")
    if kind == "range":
        low, high = (form.get(f"{name}.{i}", "").strip() for i in (0, 1))
        both_numbers = all(number(v) is not None for v in (low, high))
        return [number(low), number(high)] if both_numbers else [low, high]
    if kind == "duration":
        return duration_from(form, name, errors)
    if kind == "list":
        return [typed(line.strip(), value_type) for line in form.get(name, "").splitlines() if line.strip()]
    if kind == "number":
        if number(text) is None:
            errors[name] = "Enter a number, such as 10."
            return text
        return number(text)
    return typed(text, value_type)


def duration_from(form, name: str, errors: dict, required: bool = True) -> dict | None:
    """{amount, unit} from name.amount and name.unit; None when both are empty and the duration is optional."""
    amount, unit = form.get(f"{name}.amount", "").strip(), form.get(f"{name}.unit", "")
    if not amount and not unit and not required:
        return None
    if not re.fullmatch(r"\d+", amount):
        errors[f"{name}.amount"] = f"Enter a whole number of {unit or 'minutes, hours or days'}, such as 10."
        return {"amount": amount, "unit": unit}
    if not unit:
        errors[f"{name}.unit"] = "Choose minutes, hours, days or weeks."
    return {"amount": int(amount), "unit": unit}


def number(text: Any) -> int | float | None:
    """Numeric text as an int (or a float when it has a point or exponent); None otherwise."""
    if not isinstance(text, str) or not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text.strip()):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def typed(text: str, value_type: str) -> Any:
    """Text read as the type it had when the form was drawn: a number or true/false stays one when it still reads so."""
    if value_type == "number" and number(text) is not None:
        return number(text)
    if value_type == "boolean" and text.casefold() in ("true", "false"):
        return text.casefold() == "true"
    return text


# --- ops on a condition ------------------------------------------------------------------------------------------

def add_to_group(node: Any, item: dict) -> dict:
    """The group with item appended; a rule or a missing condition becomes an all group holding it first."""
    if isinstance(node, Mapping):
        group = next((key for key in ("all", "any") if key in node), None)
        if group:
            return {**node, group: [*node[group], item]}
        if "not" in node:
            return {"not": add_to_group(node["not"], item)}
        if node:
            return {"all": [dict(node), item]}
    return {"all": [item]}


def child_list(node: Any) -> list | None:
    """The list of children of an all / any group, or None."""
    if isinstance(node, Mapping):
        group = next((key for key in ("all", "any") if key in node), None)
        return node[group] if group and isinstance(node[group], list) else None
    return None
