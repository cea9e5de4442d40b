"""POST /api/v2/actions/test/{actionType}: run one step on its own, mocked or for real, and report what happened.

A failing step is an answer (success false, the error in the logs), not an HTTP error: the request itself was fine.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

from jsonschema import Draft202012Validator

from atlas.core import steps
from atlas.core.conditions import ConditionError
from atlas.core.steps.base import Continue, Defer, Finish, StepContext, StepError, Wait, WaitForEvent
from atlas.core.templating import TemplateError
from atlas.errors import InsufficientPermissions, NotFound, ValidationFailed
from atlas.extensions import db
from atlas.services import contacts, effects
from atlas.services.effects import EffectContext

NODE_ID = "test"


class ActionNotFound(NotFound):
    code, message = "ACTION_NOT_FOUND", "No action (step type) has this name."


def step_type_of(action_type: str):
    """The registered step type; ACTION_NOT_FOUND otherwise."""
    try:
        return steps.get(action_type)
    except steps.UnknownStepType:
        raise ActionNotFound(f"No action is called {action_type!r}; GET /api/v2/actions/definitions lists them.")


def check_config(step_type, config: dict) -> None:
    """The config against the type's schema and checks; 422 INVALID_CONFIG naming every problem's path."""
    problems = [{"field": _where(e.absolute_path), "message": e.message}
                for e in sorted(Draft202012Validator(step_type.config_schema).iter_errors(config),
                                key=lambda e: list(e.absolute_path))]
    if not problems and step_type.check:
        problems = [{"field": p.get("path") or "config", "message": p["message"]} for p in step_type.check(config)]
    if problems:
        raise ValidationFailed(f"{problems[0]['field']}: {problems[0]['message']}", code="INVALID_CONFIG",
                               details={"path": problems[0]["field"]}, validation=problems)


def _where(path) -> str:
    return "config" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def run_test(org_id: str, membership, action_type: str, config: dict, input_data: dict, mock: bool = True) -> dict:
    """Run one action with config against inputData; {success, output, logs, performance, error}."""
    step_type = step_type_of(action_type)
    if not mock and not membership.allows("staff"):
        raise InsufficientPermissions("Running an action for real (mockMode false) needs the staff role or higher.")
    check_config(step_type, config)
    data, contact_id = _data(org_id, input_data)
    run_id = f"t{uuid.uuid4().hex}"  # idempotency keys of test runs never meet a real run's (or each other's)
    port = effects.port(EffectContext(org_id=org_id, contact_id=contact_id, test_mode=mock, mock=mock))
    ctx = StepContext(node_id=NODE_ID, config=config, data=data, now=datetime.now(timezone.utc), execution_id=run_id,
                      idempotency_key=f"{run_id}:{NODE_ID}:1", test_mode=True, effects=port)
    logs = [_log("info", f"Running {step_type.key} " + ("in mock mode: nothing is sent or changed."
                                                        if mock else "for real."))]
    return _run(step_type, ctx, logs)


def _data(org_id: str, input_data: dict) -> tuple[dict, str | None]:
    """The step's data roots from inputData, and the contact id effects act on (a real contact's when named)."""
    if input_data.get("contactId"):
        contact = contacts.contact_data(contacts.get_contact(org_id, str(input_data["contactId"])))
    else:
        contact = dict(input_data.get("contact") or {})
    data = {"trigger": dict(input_data.get("trigger") or {}), "contact": contact,
            "vars": dict(input_data.get("vars") or {}),
            "steps": {k: {"output": v} for k, v in dict(input_data.get("steps") or {}).items()}}
    return data, (str(contact["id"]) if contact.get("id") is not None else None)


def _run(step_type, ctx: StepContext, logs: list) -> dict:
    """Run the step, timing it; errors become logs and success false."""
    started = time.perf_counter()
    try:
        result = step_type.run(ctx)
    except (StepError, TemplateError, ConditionError) as exc:
        return _failed(exc, logs, started)
    except Exception as exc:  # as the engine does: a bug in a step fails the attempt, never the request
        db.session.rollback()
        return _failed(StepError(f"{type(exc).__name__}: {exc}", code="STEP_CRASHED"), logs, started)
    logs.append(_log("info", _describe(result)))
    if result.output.get("mock"):
        logs.append(_log("info", "Mock mode: this is what the action would do; nothing was sent or changed."))
    return {"success": True, "output": dict(result.output), "logs": logs, "performance": _performance(started),
            "error": None}


def _failed(exc: Exception, logs: list, started: float) -> dict:
    db.session.rollback()
    code = getattr(exc, "code", None) or ("TEMPLATE_ERROR" if isinstance(exc, TemplateError) else "CONDITION_ERROR")
    message = getattr(exc, "message", None) or str(exc)
    retryable = bool(getattr(exc, "retryable", False))
    logs.append(_log("error", f"{code}: {message}"))
    if retryable:
        logs.append(_log("warning", "In a workflow run this failure would be retried with backoff."))
    return {"success": False, "output": {}, "logs": logs, "performance": _performance(started),
            "error": {"code": code, "message": message, "retryable": retryable}}


def _describe(result) -> str:
    """One log line for what the step answered."""
    if isinstance(result, Defer):
        return f"Deferred until {result.until.isoformat()}: {result.reason}"
    if isinstance(result, Wait):
        return f"Would wait until {result.until.isoformat()}."
    if isinstance(result, WaitForEvent):
        return f"Would wait for {result.event} until {result.timeout_at.isoformat()}."
    if isinstance(result, Finish):
        return "Would end the run."
    branch = f" along the {result.branch!r} branch" if isinstance(result, Continue) and result.branch else ""
    return f"Completed{branch}."


def _performance(started: float) -> dict:
    return {"duration_ms": round((time.perf_counter() - started) * 1000, 3)}


def _log(level: str, message: str) -> dict:
    return {"at": datetime.now(timezone.utc).isoformat(), "level": level, "message": message}
