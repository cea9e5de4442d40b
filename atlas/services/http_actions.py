"""Effect handler for the http_request step: send through the guarded client, answer status, headers and body.

5xx answers, 408, 429, timeouts and connection failures are retryable StepErrors (the engine backs off and tries
again); other 4xx and unfollowed 3xx answers are permanent, with the status in the message.
"""
from __future__ import annotations

import hashlib
import json
import time

from flask import current_app

from atlas.core import signing
from atlas.core.steps.base import StepError
from atlas.services import effects, http_client, signing_secrets
from atlas.services.effects import EffectContext

OUTPUT_HEADERS = ("content-type", "content-length", "location", "etag", "last-modified", "retry-after", "date",
                  "x-request-id")
RETRYABLE_STATUSES = {408, 425, 429}
MAX_TIMEOUT_SECONDS = 30.0


def encode(payload, headers: dict) -> tuple[bytes | None, dict]:
    """The body to send and the headers with a Content-Type: JSON for objects and arrays, text for strings."""
    if payload is None:
        return None, headers
    has_type = any(name.lower() == "content-type" for name in headers)
    if isinstance(payload, str):
        return payload.encode(), headers if has_type else {**headers, "Content-Type": "text/plain; charset=utf-8"}
    body = json.dumps(payload, ensure_ascii=False, default=str).encode()
    return body, headers if has_type else {**headers, "Content-Type": "application/json"}


def timeout_for(requested) -> float:
    """The step's timeoutSeconds, else ATLAS_HTTP_TIMEOUT; never above 30 seconds."""
    return min(float(requested or current_app.config["ATLAS_HTTP_TIMEOUT"]), MAX_TIMEOUT_SECONDS)


@effects.handler("http_request")
def http_request(ctx: EffectContext, params: dict) -> dict:
    """Send the step's request (or, in mock mode, describe it) and turn the answer into the step's output."""
    headers = dict(params.get("headers") or {})
    body, headers = encode(params.get("payload"), headers)
    method, url = params["method"], params["url"]
    if ctx.mock:
        request = {"method": method, "url": url, "headers": headers, "payload": params.get("payload")}
        return {"status": 200, "headers": {}, "body": None, "durationMs": 0, "mock": True,
                "signed": bool(params.get("sign")), "request": request}
    if params.get("sign"):
        headers.update(signing.headers(signing_secrets.signing_keys(ctx.org_id), message_id(params),
                                       int(time.time()), body or b""))
    response = http_client.send(ctx.org_id, method, url, headers=headers, body=body,
                                timeout=timeout_for(params.get("timeout")))
    check_status(response)
    return output(response)


def message_id(params: dict) -> str:
    """A signed request's webhook-id: the same for every attempt of one step of one run (idempotency key
    "execution:node:attempt" without the attempt), so that the receiver can drop a retry it has already handled."""
    step = params.get("idempotency_key", "").rsplit(":", 1)[0]
    return "msg_" + hashlib.sha256(step.encode()).hexdigest()[:32]


def output(response: http_client.Response) -> dict:
    """The step output: status, a few headers, the (capped) body parsed when JSON, the time taken."""
    return {"status": response.status, "headers": {k: v for k, v in response.headers.items() if k in OUTPUT_HEADERS},
            "body": response.content(), "truncated": response.truncated, "finalUrl": response.final_url,
            "durationMs": response.timing["total"]}


def check_status(response: http_client.Response) -> None:
    """Raise for an answer that is not 2xx: retryable for 5xx, 408, 425 and 429, permanent otherwise."""
    status = response.status
    if 200 <= status < 300:
        return
    snippet = response.body[:200].decode("utf-8", errors="replace").strip()
    message = f"HTTP {status} {response.reason} from {response.final_url}" + (f": {snippet}" if snippet else "")
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    code = "HTTP_SERVER_ERROR" if status >= 500 else "HTTP_CLIENT_ERROR" if status >= 400 else "HTTP_UNEXPECTED_STATUS"
    raise StepError(message, code=code, retryable=retryable)
