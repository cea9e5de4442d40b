"""The builder's side-panel forms, read back: a posted form typed per the step or trigger type's JSON Schema and
checked with jsonschema (problems in words, beside their fields), and the form's buttons (add a rule or a group,
add or remove a list entry). Drawing is in atlas.web.schema_forms.

    config_from_form(schema, form) -> (config, {field name: problem})
    apply_op(schema, config, op) -> config     op: add_rule:<name>  add_group:<name>  remove:<name>  add_item:<name>
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Mapping

from jsonschema import Draft202012Validator

from atlas.web import condition_forms as cf
from atlas.web.schema_forms import MISSING, widget_of

# --- reading a posted form back ------------------------------------------------------------------------------------

def config_from_form(schema: dict, form, *, prefix: str = "config",
                     check: Callable[[Mapping], list[dict]] | None = None) -> tuple[dict, dict]:
    """(config, {field name: problem in words}); the config keeps what was typed where it could not be read, so the
    form can be drawn again as posted. `check` adds a step type's own checks (StepType.check)."""
    errors: dict[str, str] = {}
    config = _read_object(schema, form, prefix, errors)
    for error in Draft202012Validator(schema).iter_errors(config):
        where = _name_of(prefix, error)
        errors.setdefault(where, plain_message(error))
    if check and not errors:
        for problem in check(config):
            errors.setdefault(_path_name(problem.get("path", prefix), prefix), problem["message"])
    return config, errors


def _read_object(schema: Mapping, form, prefix: str, errors: dict) -> dict:
    required, out = set(schema.get("required", [])), {}
    for key, sub in schema.get("properties", {}).items():
        value = READ[widget_of(key, sub)](sub, form, f"{prefix}.{key}", key in required, errors)
        if value is not MISSING:
            out[key] = value
    return out


def _read_text(schema, form, name, required, errors):
    text = form.get(name, "").strip()
    return text or ("" if required else MISSING)


def _read_textarea(schema, form, name, required, errors):
    text = form.get(name, "").replace("\r\n", "\n")
    return text if text.strip() else "" if required else MISSING


def _read_number(schema, form, name, required, errors):
    text = form.get(name, "").strip()
    if not text:
        return MISSING
    value = cf.number(text)
    if schema.get("type") == "integer" and not isinstance(value, int):
        errors[name] = "Enter a whole number, such as 10."
        return text
    if value is None:
        errors[name] = "Enter a number, such as 10 or 2.5."
        return text
    return value


def _read_checkbox(schema, form, name, required, errors):
    values = form.getlist(name)
    return values[-1] == "true" if values else MISSING


def _read_hidden(schema, form, name, required, errors):
    if name not in form:
        return MISSING
    try:
        return json.loads(form[name])
    except ValueError:
        errors[name] = "This setting was changed in a way the form does not allow; reload the panel."
        return form[name]


def _read_typed(schema, form, name, required, errors):
    if name not in form:
        return MISSING
    value_type = form.get(f"{name}.type", "string")
    text = form.get(name, "").replace("\r\n", "\n")
    if value_type == "null" and not text.strip():
        return None
    return cf.typed(text.strip(), value_type) if value_type in ("number", "boolean") else text


def _read_json(schema, form, name, required, errors):
    text = form.get(name, "").replace("\r\n", "\n")
    if not text.strip():
        return MISSING
    if text.lstrip()[:1] not in "{[":
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        errors[name] = f"This is not valid JSON ({exc.msg.lower()} at line {exc.lineno}); fix it, or write plain text."
        return text


def _read_pairs(schema, form, name, required, errors):
    out = {}
    for line in form.get(name, "").replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            errors[name] = f"Write each header as Name: value; {line.strip()!r} has no colon."
            continue
        out[key.strip()] = value.strip()
    return out or MISSING


def _read_select(schema, form, name, required, errors):
    text = form.get(name, "")
    if not text:
        return MISSING
    values = schema.get("enum") or []
    return next((v for v in values if str(v) == text), text)


def _read_strings(schema, form, name, required, errors):
    values = [line.strip() for raw in form.getlist(name) for line in raw.splitlines() if line.strip()]
    return list(dict.fromkeys(values)) or MISSING


def _read_duration(schema, form, name, required, errors):
    return cf.duration_from(form, name, errors, required) or MISSING


def _read_condition(schema, form, name, required, errors):
    if f"{name}.kind" not in form:
        return MISSING
    condition, problems = cf.condition_from_form(form, name)
    if not required and condition in ({"all": []}, {"any": []}):
        return MISSING
    errors.update({k: v for k, v in problems.items() if k not in errors})
    return condition


def _read_group(schema, form, name, required, errors):
    value = _read_object(schema, form, name, errors)
    return value if value or required else MISSING


def _read_list(schema, form, name, required, errors):
    items = [_read_object(schema["items"], form, f"{name}.{i}", errors) for i in cf.indices(form, name)]
    return items if items or required else MISSING


READ: dict[str, Callable] = {
    "text": _read_text, "textarea": _read_textarea, "number": _read_number, "checkbox": _read_checkbox,
    "hidden": _read_hidden, "typed": _read_typed, "json": _read_json, "pairs": _read_pairs, "select": _read_select,
    "strings": _read_strings, "duration": _read_duration, "condition": _read_condition, "group": _read_group,
    "list": _read_list}


# --- jsonschema errors in words ----------------------------------------------------------------------------------

def _name_of(prefix: str, error) -> str:
    """The form name an error belongs to; a missing required property is placed at the property."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, Mapping):
        path.append(next((k for k in error.validator_value if k not in error.instance), ""))
    return ".".join([prefix, *path])


def _path_name(path: str, prefix: str) -> str:
    """A check's path ("config.branches[0].name") as a form name ("config.branches.0.name")."""
    return re.sub(r"\[(\d+)\]", r".\1", path).replace("config", prefix, 1)


def plain_message(error) -> str:
    """A jsonschema error in words a gym's staff read."""
    v, limit = error.validator, error.validator_value
    key = str(error.absolute_path[-1]) if error.absolute_path else ""
    words = {
        "required": lambda: "Choose one." if _is_choice(error) else "Fill this in.",
        "minLength": lambda: "Fill this in." if limit == 1 else f"Use at least {limit} characters.",
        "maxLength": lambda: f"Keep this to {limit} characters or fewer.",
        "minimum": lambda: f"Enter {limit} or more.", "maximum": lambda: f"Enter {limit} or less.",
        "exclusiveMinimum": lambda: f"Enter a number above {limit}.", "enum": lambda: "Choose one of the options.",
        "minItems": lambda: f"Add at least {limit}.", "maxItems": lambda: f"Keep it to {limit} at most.",
        "uniqueItems": lambda: "List each value once.", "maxProperties": lambda: f"Keep it to {limit} at most.",
        "anyOf": lambda: "Choose a standard field or a custom field (custom.<key>).",
        "const": lambda: f"This can only be {json.dumps(limit)}.",
        "type": lambda: "Enter a whole number." if limit == "integer" else f"This must be {_kind_words(limit)}.",
        "pattern": lambda: PATTERN_WORDS.get(key, "This is not in the expected form."),
        "propertyNames": lambda: "Header names use letters, digits and dashes only.",
        "additionalProperties": lambda: "Remove the settings this step does not have.",
    }
    return words.get(v, lambda: "This value is not accepted.")()


PATTERN_WORDS = {"name": "Use lower-case letters, digits and underscores, starting with a letter (e.g. trial_day).",
                 "event": "Use lower-case letters, digits, dots and underscores, e.g. class_booked."}


def _is_choice(error) -> bool:
    missing = next((k for k in error.validator_value if k not in error.instance), "")
    sub = (error.schema.get("properties") or {}).get(missing, {})
    return widget_of(missing, sub) == "select"


def _kind_words(kind: Any) -> str:
    names = {"string": "text", "number": "a number", "boolean": "yes or no", "object": "a group of settings",
             "array": "a list", "null": "empty"}
    return " or ".join(names.get(k, k) for k in (kind if isinstance(kind, list) else [kind]))


# --- the form's buttons -------------------------------------------------------------------------------------------

def apply_op(schema: dict, config: Mapping, op: str, *, prefix: str = "config") -> dict:
    """The config after one of the form's buttons (op "add_rule:config.condition", "remove:config.branches.1"...)."""
    action, _, name = op.partition(":")
    if not name.startswith(prefix) or action not in ("add_rule", "add_group", "remove", "add_item"):
        return dict(config)
    segments = [s for s in name[len(prefix):].split(".") if s]
    if action == "add_rule":
        return _update(config, segments, lambda node: cf.add_to_group(node, dict(cf.EMPTY_RULE)))
    if action == "add_group":
        return _update(config, segments, lambda node: cf.add_to_group(node, {"all": [dict(cf.EMPTY_RULE)]}))
    if action == "add_item":
        item = blank(_schema_at(schema, segments).get("items", {}))
        return _update(config, segments, lambda node: [*(node or []), item])
    return _remove(config, segments)


def _remove(config: Mapping, segments: list[str]) -> dict:
    """Take away the list entry (or group member) at segments; a not goes with its child; a top-level key is dropped."""
    while len(segments) > 1 and segments[-1] == "not":
        segments = segments[:-1]
    if len(segments) == 1:
        return {k: v for k, v in config.items() if k != segments[0]}
    *parent, last = segments
    if not last.isdigit():
        return _update(config, parent, lambda node: {k: v for k, v in node.items() if k != last}
                       if isinstance(node, Mapping) else node)
    index = int(last)
    return _update(config, parent, lambda node: [x for i, x in enumerate(node) if i != index]
                   if isinstance(node, list) else node)


def _update(node: Any, segments: list[str], change: Callable[[Any], Any]) -> Any:
    """node with change applied at the path; "items" steps into a condition group's list."""
    if not segments:
        return change(node)
    head, rest = segments[0], segments[1:]
    if head == "items" and cf.child_list(node) is not None:
        group = "all" if "all" in node else "any"
        return {**node, group: _update(node[group], rest, change)}
    if isinstance(node, list) and head.isdigit() and int(head) < len(node):
        index = int(head)
        return [*node[:index], _update(node[index], rest, change), *node[index + 1:]]
    if isinstance(node, Mapping) or node is None:
        node = dict(node or {})
        return {**node, head: _update(node.get(head), rest, change)}
    return node


def _schema_at(schema: Mapping, segments: list[str]) -> Mapping:
    for segment in segments:
        schema = schema.get("items", {}) if segment.isdigit() else schema.get("properties", {}).get(segment, {})
    return schema


def blank(schema: Mapping) -> Any:
    """A new entry for a list: its required properties with empty values."""
    if widget_of("", schema) == "condition":
        return {"all": []}
    if schema.get("type") == "object":
        return {key: blank(schema["properties"][key]) for key in schema.get("required", [])}
    return 0 if schema.get("type") in ("integer", "number") else ""
