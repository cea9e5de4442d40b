"""Control steps: branch, split, wait, goal, set variable, end. They have no side effects."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from atlas.core import conditions, durations, templating
from atlas.core.steps import register
from atlas.core.steps.base import Continue, Finish, StepContext, StepType, Wait, WaitForEvent

UNITS = ["seconds", "minutes", "hours", "days", "weeks"]
DURATION = {"type": "object", "title": "Duration", "required": ["amount", "unit"], "additionalProperties": False,
            "properties": {"amount": {"type": "integer", "minimum": 0}, "unit": {"enum": UNITS}}}
CONDITION = {"type": "object", "title": "Condition",
             "description": "{all: [...]}, {any: [...]}, {not: ...} or a rule {field, operator, value}"}
EVENT = {"type": "string", "pattern": "^[a-z][a-z0-9_.]{0,63}$", "title": "Event type"}
EMPTY_OUTPUT = {"type": "object"}


def _schema(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _check_condition(key: str):
    """A config check that runs conditions.check on config[key] when present."""

    def check(config) -> list[dict]:
        return conditions.check(config[key], path=f"config.{key}") if key in config else []

    return check


# --- if / else -------------------------------------------------------------------------------------------------

def _if_else(ctx: StepContext) -> Continue:
    matched = conditions.evaluate(ctx.config["condition"], ctx.data, ctx.now)
    return Continue(output={"result": matched}, branch="true" if matched else "false")


register(StepType(
    key="if_else", category="control", name="If / else", icon="git-branch",
    description="Take the yes path when the condition holds, the no path otherwise.",
    config_schema=_schema({"condition": CONDITION}, ["condition"]),
    output_schema=_schema({"result": {"type": "boolean"}}, ["result"]),
    run=_if_else, branches=lambda config: ["true", "false"], check=_check_condition("condition")))


# --- multi-way split -------------------------------------------------------------------------------------------

def _split(ctx: StepContext) -> Continue:
    for branch in ctx.config["branches"]:
        if conditions.evaluate(branch["condition"], ctx.data, ctx.now):
            return Continue(output={"branch": branch["name"]}, branch=branch["name"])
    return Continue(output={"branch": "default"}, branch="default")


def _check_split(config) -> list[dict]:
    problems, seen = [], set()
    for i, branch in enumerate(config.get("branches", [])):
        problems += conditions.check(branch.get("condition"), path=f"config.branches[{i}].condition")
        if branch.get("name") in seen | {"default"}:
            problems.append({"code": "DUPLICATE_BRANCH", "path": f"config.branches[{i}].name",
                             "message": f"Branch name {branch.get('name')!r} is used twice ('default' is taken)."})
        seen.add(branch.get("name"))
    return problems


register(StepType(
    key="split", category="control", name="Split by condition", icon="split",
    description="Send each contact down the first branch whose condition holds, or the default branch.",
    config_schema=_schema({"branches": {"type": "array", "minItems": 1, "maxItems": 10, "items": _schema(
        {"name": {"type": "string", "minLength": 1, "maxLength": 40}, "condition": CONDITION}, ["name", "condition"])}},
        ["branches"]),
    output_schema=_schema({"branch": {"type": "string"}}, ["branch"]),
    run=_split, branches=lambda config: [b["name"] for b in config.get("branches", [])] + ["default"],
    check=_check_split))


# --- A/B split -------------------------------------------------------------------------------------------------

def bucket(*parts: str) -> int:
    """A stable number 0-99 for these parts: the same contact always lands in the same variant."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _ab_split(ctx: StepContext) -> Continue:
    contact_id = str(ctx.data.get("contact", {}).get("id") or ctx.execution_id)
    point, total = bucket(ctx.node_id, contact_id), 0
    for variant in ctx.config["variants"]:
        total += variant["percent"]
        if point < total:
            return Continue(output={"variant": variant["name"], "bucket": point}, branch=variant["name"])
    last = ctx.config["variants"][-1]["name"]
    return Continue(output={"variant": last, "bucket": point}, branch=last)


def _check_ab(config) -> list[dict]:
    variants = config.get("variants", [])
    problems = []
    if sum(v.get("percent", 0) for v in variants) != 100:
        problems.append({"code": "PERCENT_TOTAL", "path": "config.variants",
                         "message": "The variants' percentages must add up to 100."})
    if len({v.get("name") for v in variants}) != len(variants):
        problems.append({"code": "DUPLICATE_BRANCH", "path": "config.variants", "message": "Variant names must differ."})
    return problems


register(StepType(
    key="ab_split", category="control", name="A/B split", icon="percent",
    description="Split contacts between variants by percentage; a contact always gets the same variant.",
    config_schema=_schema({"variants": {"type": "array", "minItems": 2, "maxItems": 5, "items": _schema(
        {"name": {"type": "string", "minLength": 1, "maxLength": 40},
         "percent": {"type": "integer", "minimum": 0, "maximum": 100}}, ["name", "percent"])}}, ["variants"]),
    output_schema=_schema({"variant": {"type": "string"}, "bucket": {"type": "integer"}}, ["variant"]),
    run=_ab_split, branches=lambda config: [v["name"] for v in config.get("variants", [])], check=_check_ab))


# --- waits -----------------------------------------------------------------------------------------------------

def _check_duration(key: str):
    def check(config) -> list[dict]:
        problem = durations.check_duration(config[key]) if key in config else None
        return [{"code": "INVALID_DURATION", "path": f"config.{key}", "message": problem}] if problem else []

    return check


def _wait(ctx: StepContext) -> Wait:
    until = ctx.now + durations.parse_duration(ctx.config["duration"])
    return Wait(until=until, output={"waitedUntil": until.isoformat()})


register(StepType(
    key="wait", category="control", name="Wait", icon="clock",
    description="Pause the run for a while, e.g. 10 minutes or 2 days.",
    config_schema=_schema({"duration": DURATION}, ["duration"]),
    output_schema=_schema({"waitedUntil": {"type": "string", "format": "date-time"}}, []),
    run=_wait, check=_check_duration("duration")))


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date or date-time; naive means UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _wait_until(ctx: StepContext) -> Wait | Continue:
    text = templating.render(ctx.config["until"], ctx.data)
    try:
        until = parse_moment(text)
    except ValueError:
        raise templating.TemplateError(f"'until' rendered to {text!r}, which is not an ISO 8601 date-time.")
    if until <= ctx.now:
        return Continue(output={"waitedUntil": until.isoformat(), "alreadyPassed": True})
    return Wait(until=until, output={"waitedUntil": until.isoformat(), "alreadyPassed": False})


register(StepType(
    key="wait_until", category="control", name="Wait until", icon="calendar-clock",
    description="Pause the run until a date and time, fixed or taken from the data (e.g. the class start).",
    config_schema=_schema({"until": {"type": "string", "minLength": 1, "maxLength": 200}}, ["until"]),
    output_schema=_schema({"waitedUntil": {"type": "string"}, "alreadyPassed": {"type": "boolean"}}, []),
    run=_wait_until))


def _wait_for_event(ctx: StepContext) -> WaitForEvent:
    timeout_at = ctx.now + durations.parse_duration(ctx.config["timeout"])
    return WaitForEvent(event=ctx.config["event"], timeout_at=timeout_at, match=ctx.config.get("match"),
                        output={"event": ctx.config["event"], "timeoutAt": timeout_at.isoformat()})


register(StepType(
    key="wait_for_event", category="control", name="Wait for event", icon="bell",
    description="Pause until something happens for this contact (e.g. they book a class), or give up after a time.",
    config_schema=_schema({"event": EVENT, "timeout": DURATION, "match": CONDITION}, ["event", "timeout"]),
    output_schema=_schema({"event": {"type": "string"}, "timeoutAt": {"type": "string"},
                           "received": {"type": "object"}}, []),
    run=_wait_for_event, branches=lambda config: ["event", "timeout"],
    check=lambda config: _check_duration("timeout")(config) + _check_condition("match")(config)))


# --- goal, variables, end ---------------------------------------------------------------------------------------

def _goal(ctx: StepContext) -> Continue:
    return Continue(output={"reached": True, "how": "path"})


register(StepType(
    key="goal", category="control", name="Goal", icon="flag",
    description="The outcome the workflow is after. When the goal event or condition happens, the run jumps here "
                "at once, even while it waits; with no step after the goal, the run ends.",
    config_schema=_schema({"event": EVENT, "condition": CONDITION}, []),
    output_schema=_schema({"reached": {"type": "boolean"}, "how": {"enum": ["path", "event", "condition"]}}, []),
    run=_goal, check=lambda config: (_check_condition("condition")(config) + (
        [] if config.get("event") or config.get("condition") else
        [{"code": "GOAL_WITHOUT_TRIGGER", "path": "config", "message": "A goal needs an event, a condition or both."}]))))


def _set_variable(ctx: StepContext) -> Continue:
    value = templating.render_value(ctx.config["value"], ctx.data)
    return Continue(output={"name": ctx.config["name"], "value": value}, variables={ctx.config["name"]: value})


register(StepType(
    key="set_variable", category="control", name="Set variable", icon="variable",
    description="Remember a value for later steps as vars.<name>.",
    config_schema=_schema({"name": {"type": "string", "pattern": "^[a-z_][a-z0-9_]{0,63}$"}, "value": {}},
                          ["name", "value"]),
    output_schema=_schema({"name": {"type": "string"}, "value": {}}, ["name"]),
    run=_set_variable))


register(StepType(
    key="end", category="control", name="End", icon="stop",
    description="End the run here.",
    config_schema=_schema({}, []), output_schema=EMPTY_OUTPUT, run=lambda ctx: Finish(), terminal=True))
