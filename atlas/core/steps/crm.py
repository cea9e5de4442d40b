"""CRM steps: tasks, owners, tags, contact fields and lead status.

Each renders its config and asks the services layer to act through the effect named like the step type.
"""
from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from atlas.core import durations, templating
from atlas.core.steps import register
from atlas.core.steps.base import Continue, RetryPolicy, StepContext, StepError, StepType
from atlas.core.steps.control import DURATION

STANDARD_FIELDS = ["first_name", "last_name", "email", "phone", "timezone", "birthday", "lead_source"]
CUSTOM_FIELD = r"^custom\.[A-Za-z0-9_]{1,64}$"
STATUSES = ["lead", "trial", "member", "former_member", "lost"]
ROUND_ROBIN = "round_robin"
TAG = {"type": "string", "minLength": 1, "maxLength": 64, "title": "Tag (templated)"}
USER_ID = {"type": "string", "minLength": 1, "maxLength": 64}
CRM_RETRY = RetryPolicy(max_attempts=3, backoff_seconds=5.0, max_backoff_seconds=60.0)  # a busy database


def _schema(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _step(key: str, name: str, icon: str, description: str, config: dict, output: dict, run, check=None) -> None:
    register(StepType(key=key, category="crm", name=name, icon=icon, description=description, config_schema=config,
                      output_schema=output, run=run, side_effects=True, retry=CRM_RETRY, check=check))


def _text(ctx: StepContext, key: str, limit: int) -> str:
    """A templated config string rendered, trimmed, not blank and at most `limit` characters."""
    text = templating.render(ctx.config[key], ctx.data).strip()
    if not text:
        raise StepError(f"'{key}' rendered to nothing.", code="EMPTY_VALUE")
    if len(text) > limit:
        raise StepError(f"'{key}' rendered to {len(text)} characters; at most {limit} fit.", code="VALUE_TOO_LONG")
    return text


# --- tasks and owners --------------------------------------------------------------------------------------------

def _create_task(ctx: StepContext) -> Continue:
    due = ctx.now + durations.parse_duration(ctx.config["dueIn"]) if "dueIn" in ctx.config else None
    description = templating.render(ctx.config["description"], ctx.data) if ctx.config.get("description") else None
    params = {"title": _text(ctx, "title", 200), "description": description,
              "due_at": due.isoformat() if due else None, "assignee": ctx.config.get("assignee", "owner")}
    return Continue(output=ctx.perform("create_task", params))


def _check_due(config) -> list[dict]:
    problem = durations.check_duration(config["dueIn"]) if "dueIn" in config else None
    return [{"code": "INVALID_DURATION", "path": "config.dueIn", "message": problem}] if problem else []


_step("create_task", "Create task", "check-square",
      "Give staff a to-do about this contact (call back, book a trial), assigned to the contact's owner or a "
      "chosen user, optionally due after a while.",
      _schema({"title": {"type": "string", "minLength": 1, "maxLength": 400, "title": "Title (templated)"},
               "description": {"type": "string", "maxLength": 4000, "title": "Description (templated)"},
               "dueIn": DURATION,
               "assignee": {"type": "string", "minLength": 1, "maxLength": 64, "default": "owner",
                            "description": "'owner' (the contact's owner) or a user id"}}, ["title"]),
      _schema({"taskId": {"type": ["string", "null"]}, "title": {"type": "string"},
               "assigneeId": {"type": ["string", "null"]}, "dueAt": {"type": ["string", "null"]},
               "created": {"type": "boolean"}, "mock": {"type": "boolean"}}, ["title"]),
      _create_task, check=_check_due)


def _assign_owner(ctx: StepContext) -> Continue:
    return Continue(output=ctx.perform("assign_owner", {"user_id": ctx.config["userId"]}))


_step("assign_owner", "Assign owner", "user-check",
      "Make a staff member the contact's owner: a chosen user, or the next one in turn (round robin).",
      _schema({"userId": {**USER_ID, "description": "a user id, or 'round_robin' among the organization's staff"}},
              ["userId"]),
      _schema({"ownerId": {"type": ["string", "null"]}, "previousOwnerId": {"type": ["string", "null"]},
               "method": {"enum": ["user", ROUND_ROBIN]}, "mock": {"type": "boolean"}}, ["method"]),
      _assign_owner)


# --- tags --------------------------------------------------------------------------------------------------------

def _tag_step(kind: str):
    def run(ctx: StepContext) -> Continue:
        return Continue(output=ctx.perform(kind, {"tag": _text(ctx, "tag", 64)}))

    return run


TAG_OUTPUT = {"tag": {"type": "string"}, "changed": {"type": "boolean"}, "mock": {"type": "boolean"}}
_step("add_tag", "Add tag", "tag", "Put a tag on the contact (no change if it is there already).",
      _schema({"tag": TAG}, ["tag"]), _schema(TAG_OUTPUT, ["tag"]), _tag_step("add_tag"))
_step("remove_tag", "Remove tag", "tag-off", "Take a tag off the contact (no change if it is not there).",
      _schema({"tag": TAG}, ["tag"]), _schema(TAG_OUTPUT, ["tag"]), _tag_step("remove_tag"))


# --- fields and status -------------------------------------------------------------------------------------------

def field_value(field: str, value):
    """The value as the field stores it; a clear StepError when it cannot be (a bad date or time zone)."""
    if value is None or field.startswith("custom.") or not isinstance(value, str):
        return value
    value = value.strip()
    if field == "birthday" and value:
        try:
            return date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            raise StepError(f"birthday must be a date like 1990-04-21, not {value!r}.", code="INVALID_FIELD_VALUE")
    if field == "timezone" and value:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise StepError(f"{value!r} is not a time zone such as Europe/London.", code="INVALID_FIELD_VALUE")
    if field == "email" and value and "@" not in value:
        raise StepError(f"{value!r} is not an email address.", code="INVALID_FIELD_VALUE")
    return value or None


def _update_field(ctx: StepContext) -> Continue:
    field = ctx.config["field"]
    value = field_value(field, templating.render_value(ctx.config["value"], ctx.data))
    return Continue(output=ctx.perform("update_contact_field", {"field": field, "value": value}))


_step("update_contact_field", "Update contact field", "pencil",
      "Set one of the contact's fields (a standard field or custom.<key>) to a value, which may use templates.",
      _schema({"field": {"anyOf": [{"enum": STANDARD_FIELDS}, {"type": "string", "pattern": CUSTOM_FIELD}],
                         "description": f"{', '.join(STANDARD_FIELDS)} or custom.<key>"},
               "value": {"type": ["string", "number", "boolean", "null"], "title": "Value (strings templated)"}},
              ["field", "value"]),
      _schema({"field": {"type": "string"}, "value": {}, "previous": {}, "changed": {"type": "boolean"},
               "mock": {"type": "boolean"}}, ["field"]),
      _update_field)


def _change_status(ctx: StepContext) -> Continue:
    return Continue(output=ctx.perform("change_lead_status", {"status": ctx.config["status"]}))


_step("change_lead_status", "Change lead status", "trending-up",
      "Move the contact to another stage: lead, trial, member, former member or lost.",
      _schema({"status": {"enum": STATUSES}}, ["status"]),
      _schema({"status": {"type": "string"}, "previous": {"type": ["string", "null"]},
               "changed": {"type": "boolean"}, "mock": {"type": "boolean"}}, ["status"]),
      _change_status)
