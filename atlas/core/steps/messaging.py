"""Messaging steps: send email, send SMS, notify staff.

Each step renders its inline text here (sandboxed, against the run's data) and asks the services layer to deliver it
with `ctx.perform`. A stored template (templateId) is rendered by the handler, which can read the database: the step
passes the run's data along as `data`. The handler answers one of three ways:

    {"status": "sent" | "not_sent" | "mocked" | ..., "messageId", "to", "provider", "providerId"}  -> Continue
    {"status": "suppressed", "reason", "rule"}   the contact policy said no: not an error, the run goes on
    {"deferUntil": iso 8601, "reason"}           the contact policy said not now: Defer to that time
"""
from __future__ import annotations

from datetime import datetime, timezone

from atlas.core import templating
from atlas.core.steps import register
from atlas.core.steps.base import NETWORK_RETRY, NO_RETRY, Continue, Defer, StepContext, StepType

SMS_MAX_CHARS = 1600  # Twilio's limit for one message body (ten segments)
TEMPLATE_ID = {"type": "string", "minLength": 1, "maxLength": 64, "title": "Template"}
RECIPIENT = {"type": "string", "minLength": 1, "maxLength": 254,
             "description": "Templated; the contact's own address or number when left out"}
STATUSES = ["sent", "not_sent", "failed", "suppressed", "mocked", "queued"]
MESSAGE_OUTPUT = {"type": "object", "additionalProperties": False, "required": ["status"], "properties": {
    "messageId": {"type": ["string", "null"]}, "status": {"enum": STATUSES}, "to": {"type": ["string", "null"]},
    "provider": {"type": ["string", "null"]}, "providerId": {"type": ["string", "null"]},
    "reason": {"type": "string"}, "rule": {"type": "string"}, "policy": {"type": "object"}}}


def _schema(properties: dict, required: list[str]) -> dict:
    """A closed object schema."""
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _content_check(*inline: str):
    """A config check: a templateId, or every one of the inline fields."""

    def check(config) -> list[dict]:
        if config.get("templateId") or all(config.get(key) for key in inline):
            return []
        fields = " and ".join(inline)
        return [{"code": "MISSING_CONTENT", "path": "config",
                 "message": f"Choose a template (templateId) or write the {fields}."}]

    return check


def _render(ctx: StepContext, key: str) -> str | None:
    """config[key] rendered against the run's data; None when the config does not set it."""
    text = ctx.config.get(key)
    return templating.render(text, ctx.data) if text else None


def _recipient(ctx: StepContext, contact_field: str) -> str | None:
    """The configured recipient, rendered, or the contact's own address."""
    rendered = _render(ctx, "to")
    if rendered is not None:
        return rendered.strip() or None
    return (ctx.data.get("contact") or {}).get(contact_field) or None


def _answer(result: dict) -> Continue | Defer:
    """Defer when the handler said not now; otherwise continue with the message's output."""
    if result.get("deferUntil"):
        until = datetime.fromisoformat(result["deferUntil"])
        until = until if until.tzinfo else until.replace(tzinfo=timezone.utc)
        return Defer(until=until, reason=result.get("reason", "The contact policy deferred this message."),
                     output={"status": "deferred", "deferUntil": result["deferUntil"], "rule": result.get("rule")})
    output = {key: result.get(key) for key in ("messageId", "status", "to", "provider", "providerId")}
    output.update({key: result[key] for key in ("reason", "rule", "policy") if result.get(key) is not None})
    return Continue(output=output)


def _content(ctx: StepContext, *inline: str) -> dict:
    """Who the message is about, and either the template to render (with the data it reads) or the inline text."""
    about = {"nodeId": ctx.node_id, "contact": dict(ctx.data.get("contact") or {})}
    if ctx.config.get("templateId"):
        return {**about, "templateId": ctx.config["templateId"], "data": dict(ctx.data)}
    return {**about, **{key: _render(ctx, key) for key in inline}}


# --- send email --------------------------------------------------------------------------------------------------

def _send_email(ctx: StepContext) -> Continue | Defer:
    params = {"to": _recipient(ctx, "email"), "fromName": _render(ctx, "fromName"), **_content(ctx, "subject", "body")}
    return _answer(ctx.perform("send_email", params))


register(StepType(
    key="send_email", category="communication", name="Send email", icon="mail",
    description="Email the contact, from a saved template or text written here; the contact policy applies.",
    config_schema=_schema({"templateId": TEMPLATE_ID, "subject": {"type": "string", "maxLength": 200},
                           "body": {"type": "string", "maxLength": 50_000}, "to": RECIPIENT,
                           "fromName": {"type": "string", "maxLength": 80}}, []),
    output_schema=MESSAGE_OUTPUT, run=_send_email, side_effects=True, retry=NETWORK_RETRY,
    check=_content_check("subject", "body")))


# --- send SMS ----------------------------------------------------------------------------------------------------

def _send_sms(ctx: StepContext) -> Continue | Defer:
    params = {"to": _recipient(ctx, "phone"), **_content(ctx, "body")}
    return _answer(ctx.perform("send_sms", params))


register(StepType(
    key="send_sms", category="communication", name="Send SMS", icon="message-square",
    description="Text the contact, from a saved template or text written here; the contact policy applies.",
    config_schema=_schema({"templateId": TEMPLATE_ID, "body": {"type": "string", "maxLength": SMS_MAX_CHARS},
                           "to": RECIPIENT}, []),
    output_schema=MESSAGE_OUTPUT, run=_send_sms, side_effects=True, retry=NETWORK_RETRY,
    check=_content_check("body")))


# --- notify staff ------------------------------------------------------------------------------------------------

def _notify_staff(ctx: StepContext) -> Continue:
    params = {"message": _render(ctx, "message"), "userId": ctx.config.get("userId"),
              "contactId": (ctx.data.get("contact") or {}).get("id")}
    result = ctx.perform("notify_staff", params)
    return Continue(output={"notificationId": result.get("notificationId"), "status": result.get("status"),
                            "userId": result.get("userId")})


register(StepType(
    key="notify_staff", category="communication", name="Notify staff", icon="bell-ring",
    description="Leave a note for staff in Atlas (one staff member, or everyone when no one is chosen).",
    config_schema=_schema({"message": {"type": "string", "minLength": 1, "maxLength": 2000},
                           "userId": {"type": "string", "minLength": 1, "maxLength": 36}}, ["message"]),
    output_schema=_schema({"notificationId": {"type": ["string", "null"]}, "status": {"type": ["string", "null"]},
                           "userId": {"type": ["string", "null"]}}, []),
    run=_notify_staff, side_effects=True, retry=NO_RETRY))
