"""The builder's side-panel forms: a step or trigger type's config JSON Schema drawn as typed fields. Reading a
posted form back and the form's buttons are in atlas.web.schema_form_input.

    fields_for(schema, config, options=..., variables=...) -> [Field]   what builder/_form.html draws
Field names are dotted paths under a prefix: "config.duration.amount", "config.branches.0.condition.items.1.field".
The pickers' lists come from atlas.services.builder_options.options_for; variables from atlas.web.variables.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from atlas.core import triggers
from atlas.core.steps.crm import STANDARD_FIELDS
from atlas.web import condition_forms as cf

MISSING = object()
TEXTAREAS = {"body", "message", "description"}
TEMPLATED = {"subject", "body", "to", "fromName", "message", "title", "description", "tag", "value", "until", "url",
             "headers", "payload"}
EXTRA_EVENTS = ["class_attended", "membership_started", "payment_succeeded", "contact_updated",
                "contact_unsubscribed", "status_changed", "sms_received"]
LABELS = {"templateId": "Template", "userId": "Staff member", "assignee": "Assign to", "dueIn": "Due after",
          "fromName": "From name", "to": "Send to", "workflowId": "Workflow", "formId": "Form", "url": "URL",
          "timeoutSeconds": "Timeout (seconds)", "maxAttempts": "Attempts at most", "until": "Wait until",
          "match": "Only when", "event": "Event", "scheduleType": "Repeats", "startAt": "First run at",
          "headers": "Headers", "payload": "Body", "field": "Field", "status": "New status", "wait": "Wait"}
HELP = {"to": "Leave empty to use the contact's own address or number.", "condition": "", "match": "",
        "field": "", "assignee": "", "userId": "", "headers": "One header a line, as Name: value.",
        "value": "", "until": "An ISO 8601 date-time, e.g. 2026-12-01T09:00:00Z, or a variable such as a class start.",
        "leadSources": ""}
CHOICE_LABELS = {"owner": "The contact's owner", "round_robin": "The next staff member in turn (round robin)",
                 "recurring": "Every so often", "cron": "On a cron expression"}
BLANKS = {"templateId": "No template: write it here", "userId": "Everyone on the staff"}
ITEM_NAMES = {"branches": "Branch", "variants": "Variant"}


@dataclass
class Field:
    """One control (or group of controls) of a config form."""

    name: str
    label: str
    widget: str  # text textarea number checkbox select strings duration condition group list pairs json typed hidden
    value: Any = None  # as the control shows it (text, True/False, a list of checked values, a condition tree)
    help: str = ""
    required: bool = False
    error: str | None = None
    choices: list = field(default_factory=list)  # [(optgroup label or "", [(value, label), ...])]
    children: list = field(default_factory=list)  # group: its fields; list: one "item" Field per entry; duration
    templated: bool = False  # gets the Insert variable picker
    attrs: dict = field(default_factory=dict)  # min, max, maxlength, step, placeholder, datalist...
    value_type: str = "string"  # typed: string | number | boolean | null (posted as <name>.type)

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-")


@dataclass
class _Ctx:
    options: Mapping
    variables: list
    errors: Mapping
    channel: str


# --- drawing ---------------------------------------------------------------------------------------------------

def fields_for(schema: dict, config: Mapping | None, *, options: Mapping | None = None, variables=(),
               errors: Mapping | None = None, prefix: str = "config") -> list[Field]:
    """The fields of a config form: one per schema property, with current values, choices and errors."""
    channel = "email" if "subject" in schema.get("properties", {}) else "sms"
    ctx = _Ctx(options or {}, list(variables), errors or {}, channel)
    return _fields(schema, config if isinstance(config, Mapping) else {}, prefix, ctx)


def _fields(schema: Mapping, values: Mapping, prefix: str, ctx: _Ctx) -> list[Field]:
    required = set(schema.get("required", []))
    return [_field(key, sub, values.get(key, MISSING), f"{prefix}.{key}", key in required, ctx)
            for key, sub in schema.get("properties", {}).items()]


def widget_of(key: str, schema: Mapping) -> str:
    """Which control a property gets."""
    kinds = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
    if "const" in schema:
        return "hidden"
    if schema.get("title") == "Condition" or key in ("condition", "match", "enrollmentFilter"):
        return "condition"
    if "object" in kinds and len(kinds) > 1 or kinds == ["object", "array", "string"]:
        return "json"
    if kinds == ["object"]:
        props = schema.get("properties") or {}
        if set(props) == {"amount", "unit"}:
            return "duration"
        return "pairs" if isinstance(schema.get("additionalProperties"), Mapping) else "group"
    if kinds == ["array"]:
        return "list" if (schema.get("items") or {}).get("type") == "object" else "strings"
    if "enum" in schema or any("enum" in s for s in schema.get("anyOf", [])) or key in REFERENCES:
        return "select"
    if kinds == ["boolean"]:
        return "checkbox"
    if kinds[0] in ("integer", "number"):
        return "number"
    if kinds[0] is None or len(kinds) > 1:
        return "typed"
    return "textarea" if key in TEXTAREAS or schema.get("maxLength", 0) > 2000 else "text"


def _field(key: str, schema: Mapping, value: Any, name: str, required: bool, ctx: _Ctx) -> Field:
    widget = widget_of(key, schema)
    f = Field(name=name, label=_label(key, schema), widget=widget, help=_help(key, schema), required=required,
              error=ctx.errors.get(name), templated=bool(ctx.variables) and key in TEMPLATED)
    DRAW[widget](f, key, schema, value, ctx)
    return f


def _label(key: str, schema: Mapping) -> str:
    title = re.sub(r"\s*\((strings )?templated\)", "", schema.get("title", ""))
    if key in LABELS:
        return LABELS[key]
    return title if title and title not in ("Duration", "Condition") else humanise(key)


def humanise(key: str) -> str:
    """camelCase or snake_case as words: "leadSources" -> "Lead sources"."""
    words = re.sub(r"(?<=[a-z0-9])([A-Z])", r" \1", key).replace("_", " ").replace(".", " ").lower().strip()
    return words[:1].upper() + words[1:]


def _help(key: str, schema: Mapping) -> str:
    return HELP.get(key, schema.get("description", "")) or ""


def _text_attrs(f: Field, schema: Mapping) -> None:
    for bound, attr in (("maxLength", "maxlength"), ("minimum", "min"), ("maximum", "max")):
        if bound in schema:
            f.attrs[attr] = schema[bound]
    if "default" in schema and not f.required:
        f.attrs["placeholder"] = schema["default"]


def _draw_text(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    f.value = "" if value is MISSING or value is None else str(value)
    _text_attrs(f, schema)
    suggestions = {"tag": [(t, t) for t in ctx.options.get("tags", [])],
                   "event": [(e, e.replace("_", " ")) for e in [*triggers.event_types(), *EXTRA_EVENTS]]}
    if key in suggestions:
        f.attrs["datalist"] = f"{f.id}-suggestions"
        f.choices = [("", sorted(suggestions[key]))]


def _draw_number(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    f.value = "" if value is MISSING or value is None else str(value)
    _text_attrs(f, schema)
    f.attrs["step"] = 1 if schema.get("type") == "integer" else "any"


def _draw_checkbox(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    f.value = value is True or (value is MISSING and schema.get("default") is True)


def _draw_hidden(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    f.value = None if value is MISSING else json.dumps(value)


def _draw_typed(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    f.value_type = "null" if value is None else cf.type_of(value) if value is not MISSING else "string"
    f.value = "" if value is MISSING else cf.shown(value)


def _draw_json(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    f.value = "" if value is MISSING else value if isinstance(value, str) else json.dumps(value, indent=2)
    f.help = f.help or "JSON, e.g. {\"email\": \"{{ contact.email }}\"}, or plain text."


def _draw_pairs(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    f.value = "\n".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, Mapping) else ""


def _draw_select(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    groups = REFERENCES[key](schema, ctx) if key in REFERENCES else [("", _enum_choices(schema))]
    current = "" if value is MISSING or value is None else str(value)
    known = {v for _, items in groups for v, _ in items}
    if current and current not in known:
        groups = [*groups, ("", [(current, f"{current} (not in the list)")])]
    blank = BLANKS.get(key) or (CHOICE_LABELS.get(schema.get("default")) if "default" in schema else None)
    if not f.required:
        groups.insert(0, ("", [("", blank or "None")]))
    elif not current:
        default = str(schema.get("default", ""))
        current = default if default in known else ""
        if not current:
            groups.insert(0, ("", [("", "Choose…")]))
    f.value, f.choices = current, groups


def _enum_choices(schema: Mapping) -> list[tuple[str, str]]:
    values = schema.get("enum") or next((s["enum"] for s in schema.get("anyOf", []) if "enum" in s), [])
    return [(str(v), CHOICE_LABELS.get(v) or (v if str(v).isupper() else humanise(str(v)))) for v in values]


def _draw_strings(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    f.value = [str(v) for v in value] if isinstance(value, list) else []
    known = [(s["key"], s["name"]) for s in ctx.options.get("lead_sources", [])] if key == "leadSources" else []
    extra = [(v, v) for v in f.value if v not in {k for k, _ in known}]
    f.choices = [("", known + extra)] if known else []
    f.help = f.help or ("" if known else "One a line.")


def _draw_duration(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    value = value if isinstance(value, Mapping) else {}
    props, units = schema["properties"], schema["properties"]["unit"]["enum"]
    amount = Field(f"{f.name}.amount", "Amount", "number", "" if value.get("amount") is None else
                   str(value["amount"]), required=f.required, error=ctx.errors.get(f"{f.name}.amount"),
                   attrs={"min": props["amount"].get("minimum", 0), "step": 1})
    default_unit = "" if not f.required else "days" if "days" in units else units[0]
    unit = Field(f"{f.name}.unit", "Unit", "select", value.get("unit", default_unit), required=f.required,
                 error=ctx.errors.get(f"{f.name}.unit"),
                 choices=[("", ([] if f.required else [("", "—")]) + [(u, u) for u in units])])
    f.children = [amount, unit]


def _draw_condition(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    types = {v["path"]: v["type"] for v in ctx.variables if v.get("type") in ("number", "boolean")}
    f.value = cf.condition_view(None if value is MISSING else value, f.name, ctx.errors, field_types=types)
    f.help = f.help or ("Leave it without rules to skip it." if not f.required else "")
    f.attrs.update(operators=cf.OPERATOR_CHOICES, units=cf.UNITS)


def _draw_group(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    f.children = _fields(schema, value if isinstance(value, Mapping) else {}, f.name, ctx)


def _draw_list(f: Field, key: str, schema: Mapping, value: Any, ctx: _Ctx) -> None:
    items, noun = value if isinstance(value, list) else [], ITEM_NAMES.get(key, humanise(key).rstrip("s"))
    f.children = [Field(f"{f.name}.{i}", f"{noun} {i + 1}", "item", children=_fields(
        schema["items"], item if isinstance(item, Mapping) else {}, f"{f.name}.{i}", ctx)) for i, item in
        enumerate(items)]
    f.attrs.update(noun=noun.lower(), can_add=len(items) < schema.get("maxItems", 50),
                   can_remove=len(items) > schema.get("minItems", 0))


DRAW: dict[str, Callable] = {
    "text": _draw_text, "textarea": _draw_text, "number": _draw_number, "checkbox": _draw_checkbox,
    "hidden": _draw_hidden, "typed": _draw_typed, "json": _draw_json, "pairs": _draw_pairs, "select": _draw_select,
    "strings": _draw_strings, "duration": _draw_duration, "condition": _draw_condition, "group": _draw_group,
    "list": _draw_list}


# --- references: selects filled from the organization's lists ----------------------------------------------------

def _templates(schema, ctx):
    return [("", [(t["id"], t["name"]) for t in ctx.options.get(f"{ctx.channel}_templates", [])])]


def _staff(schema, ctx):
    people = [(u["id"], u["name"] or u["email"]) for u in ctx.options.get("staff", [])]
    special = [(v, CHOICE_LABELS[v]) for v in ("round_robin",) if v in schema.get("description", "")]
    return [("", special), ("Staff", people)] if special else [("", people)]


def _contact_fields(schema, ctx):
    custom = [(f"custom.{c['key']}", c["label"]) for c in ctx.options.get("custom_fields", [])]
    standard = [("Standard fields", [(k, humanise(k)) for k in STANDARD_FIELDS])]
    return standard + ([("Custom fields", custom)] if custom else [])


REFERENCES: dict[str, Callable] = {
    "templateId": _templates, "userId": _staff, "assignee": _staff, "field": _contact_fields,
    "formId": lambda schema, ctx: [("", [(f["id"], f["name"]) for f in ctx.options.get("forms", [])])],
    "workflowId": lambda schema, ctx: [("", [(w["id"], w["name"]) for w in ctx.options.get("workflows", [])])]}
