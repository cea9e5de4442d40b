"""Integration steps: an outgoing HTTP request (webhook) and running another workflow.

The HTTP request is performed by the services layer (effect `http_request`), which guards against requests to internal
addresses and, with `sign`, signs it as a Standard Webhooks message with the organization's secret. The engine
retries with the type's policy (NETWORK_RETRY); a node's `retry.maxAttempts` can only lower the number of attempts,
because the engine keeps one retry policy per step type (backoff is the type's).
"""
from __future__ import annotations

from atlas.core import templating
from atlas.core.steps import register
from atlas.core.steps.base import NETWORK_RETRY, Continue, RetryPolicy, StepContext, StepError, StepType

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
MAX_TIMEOUT_SECONDS = 30
HEADER_NAME = "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"
START_RETRY = RetryPolicy(max_attempts=3, backoff_seconds=30.0, max_backoff_seconds=300.0)  # a full queue
_RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}
_SIGNATURE_HEADERS = {"webhook-id", "webhook-timestamp", "webhook-signature"}  # set by `sign`


def _schema(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


# --- HTTP request ------------------------------------------------------------------------------------------------

HTTP_CONFIG = _schema({
    "method": {"enum": METHODS, "default": "POST"},
    "url": {"type": "string", "minLength": 1, "maxLength": 2000, "title": "URL (templated)"},
    "headers": {"type": "object", "maxProperties": 30, "propertyNames": {"pattern": HEADER_NAME},
                "additionalProperties": {"type": "string", "maxLength": 4000}},
    "payload": {"type": ["object", "array", "string"], "title": "Body: JSON (strings inside templated) or text"},
    "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT_SECONDS},
    "retry": _schema({"maxAttempts": {"type": "integer", "minimum": 1,
                                      "maximum": NETWORK_RETRY.max_attempts}}, []),
    "sign": {"type": "boolean", "default": False, "title": "Sign as a webhook",
             "description": "Add the Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature), "
                            "signed with the organization's secret (GET /api/v2/webhooks/signing-secret); the "
                            "webhook-id stays the same on every retry, so the receiver can drop repeats."},
}, ["method", "url"])

HTTP_OUTPUT = _schema({
    "status": {"type": "integer"}, "headers": {"type": "object"}, "body": {},
    "durationMs": {"type": "number"}, "truncated": {"type": "boolean"}, "finalUrl": {"type": "string"},
    "mock": {"type": "boolean"}, "request": {"type": "object"},
}, ["status"])


def _check_http(config) -> list[dict]:
    """Headers the connection sets itself (and, when signing, the signature's) cannot be configured."""
    reserved = _RESERVED_HEADERS | (_SIGNATURE_HEADERS if config.get("sign") else set())
    return [{"code": "RESERVED_HEADER", "path": f"config.headers.{name}",
             "message": f"The {name} header is set by Atlas and cannot be configured."}
            for name in config.get("headers", {}) if name.lower() in reserved]


def _http_request(ctx: StepContext) -> Continue:
    config = ctx.config
    headers = {name: templating.render(value, ctx.data) for name, value in config.get("headers", {}).items()}
    params = {"method": config["method"], "url": templating.render(config["url"], ctx.data).strip(),
              "headers": headers, "timeout": config.get("timeoutSeconds")}
    if "payload" in config:
        params["payload"] = templating.render_value(config["payload"], ctx.data)
    if config.get("sign"):
        params["sign"] = True
    try:
        return Continue(output=ctx.perform("http_request", params))
    except StepError as exc:
        raise within_budget(exc, ctx.attempt, config.get("retry", {}).get("maxAttempts"))


def within_budget(exc: StepError, attempt: int, max_attempts: int | None) -> StepError:
    """The error, made permanent once the node's own attempt budget is spent."""
    if exc.retryable and max_attempts is not None and attempt >= max_attempts:
        return StepError(f"{exc.message} (gave up after {attempt} attempt{'s' if attempt > 1 else ''})",
                         code=exc.code, retryable=False)
    return exc


register(StepType(
    key="http_request", category="integration", name="HTTP request", icon="globe",
    description="Call another system's API or webhook; the response's status and body become this step's output. "
                "Internal addresses are refused unless the organization's allowlist names them.",
    config_schema=HTTP_CONFIG, output_schema=HTTP_OUTPUT, run=_http_request, side_effects=True,
    retry=NETWORK_RETRY, check=_check_http))


# --- run another workflow ----------------------------------------------------------------------------------------

def _run_workflow(ctx: StepContext) -> Continue:
    params = {"workflow_id": ctx.config["workflowId"], "trigger": dict(ctx.data.get("trigger") or {}),
              "node_id": ctx.node_id}
    return Continue(output=ctx.perform("run_workflow", params))


register(StepType(
    key="run_workflow", category="integration", name="Run another workflow", icon="workflow",
    description="Start another active workflow for the same contact and go on at once (fire and forget). "
                "Nesting is limited (ATLAS_MAX_WORKFLOW_DEPTH).",
    config_schema=_schema({"workflowId": {"type": "string", "minLength": 1, "maxLength": 64},
                           "wait": {"const": False, "default": False,
                                    "description": "Only false: the run does not wait for the other workflow."}},
                          ["workflowId"]),
    output_schema=_schema({"executionId": {"type": ["string", "null"]}, "workflowId": {"type": "string"},
                           "depth": {"type": "integer"}, "status": {"type": "string"},
                           "mock": {"type": "boolean"}}, ["workflowId"]),
    run=_run_workflow, side_effects=True, retry=START_RETRY))
