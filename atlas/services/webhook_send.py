"""Outgoing webhooks: POST /api/v2/webhooks/send, signed with the organization's secret, retried with backoff.

Each attempt goes out through the same code as the http_request step: the body and Content-Type from
http_actions.encode, the SSRF-guarded http_client.send, and http_actions.check_status deciding what a non-2xx answer
means (5xx, 408, 425 and 429 are worth another attempt; other 4xx are not). Every attempt carries the same
webhook-id, a fresh webhook-timestamp and a signature over the exact body bytes (the Standard Webhooks scheme).
"""
from __future__ import annotations

import email.utils
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import current_app

from atlas.core import signing
from atlas.core.engine import retry_delay
from atlas.core.steps.base import RetryPolicy, StepError
from atlas.errors import AtlasError, ValidationFailed
from atlas.extensions import db
from atlas.services import http_actions, http_client, signing_secrets

RESPONSE_BODY_MAX_BYTES = 16 * 1024
TOTAL_BUDGET_SECONDS = 60.0  # no send holds a web worker longer than this, retries and waits included
RESERVED_HEADERS = {"webhook-id", "webhook-timestamp", "webhook-signature", "host", "content-length",
                    "content-type", "transfer-encoding", "connection"}
REFUSED_CODES = {"SSRF_BLOCKED", "INVALID_URL", "INVALID_HEADER"}  # the request itself is wrong: 422, no attempt
DEFAULT_RETRY = {"max_attempts": 3, "backoff": "exponential", "initial_delay_ms": 500, "max_delay_ms": 5000}


# --- sending ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outgoing:
    """One webhook as every attempt sends it: the same id and body bytes, signed afresh each time."""

    org_id: str
    method: str
    url: str
    headers: dict
    body: bytes | None
    secrets: list[str]  # the organization's current secret, and its previous one during a rotation's grace
    message_id: str
    allowlist: list[str]


def send(org_id: str, *, url: str, method: str, headers: dict | None = None, payload: dict | None = None,
         timeout: float | None = None, retry: dict | None = None) -> dict:
    """Send one webhook, retrying as `retry` says; the SendWebhookResponse. Refused requests raise AtlasError."""
    check_headers(headers or {})
    retry = {**DEFAULT_RETRY, **(retry or {})}
    if payload is None and method != "GET":  # receivers' Standard Webhooks libraries parse the body as JSON
        payload = {}
    body, base_headers = http_actions.encode(payload, dict(headers or {}))
    webhook = Outgoing(org_id, method, url, base_headers, body, signing_secrets.signing_keys(org_id),
                       new_message_id(), http_client.organization_allowlist(org_id))
    db.session.commit()  # no transaction stays open while the network is slow
    started, attempts, response = time.perf_counter(), [], None
    for number in range(1, retry["max_attempts"] + 1):
        remaining = TOTAL_BUDGET_SECONDS - (time.perf_counter() - started)
        attempt, response = _attempt(webhook, min(timeout_for(timeout), remaining))
        attempts.append({"attempt": number, **attempt})
        delay = next_delay(attempts[-1], response, retry, number)
        if delay is not None and time.perf_counter() - started + delay + 0.05 > TOTAL_BUDGET_SECONDS:
            attempts[-1]["error"]["message"] += f" (the {TOTAL_BUDGET_SECONDS:g} s budget is spent: no further attempt)"
            delay = None
        if delay is None:
            break
        attempts[-1]["delay_ms"] = round(delay * 1000)
        time.sleep(delay)
    return _answer(webhook.message_id, attempts, response, started)


def _attempt(webhook: Outgoing, timeout: float):
    """One signed request: (its attempt record, the Response or None). SSRF and bad URLs raise a 422."""
    timestamp = int(time.time())
    signed = {**webhook.headers, **signing.headers(webhook.secrets, webhook.message_id, timestamp, webhook.body or b"")}
    began = time.perf_counter()
    response, error = None, None
    try:
        response = http_client.send(webhook.org_id, webhook.method, webhook.url, headers=signed, body=webhook.body,
                                    timeout=timeout, allowlist=webhook.allowlist, max_body=RESPONSE_BODY_MAX_BYTES)
        http_actions.check_status(response)  # the http_request step's reading of a non-2xx answer
    except StepError as exc:
        if exc.code in REFUSED_CODES:
            raise AtlasError(exc.message, code=exc.code, status=422) from None
        error = exc
    timing = response.timing if response is not None else {
        "dns": None, "connect": None, "total": round((time.perf_counter() - began) * 1000, 3)}
    return {"status": response.status if response is not None else None, "timestamp": timestamp,
            "error": {"code": error.code, "message": error.message} if error else None,
            "retryable": bool(error and error.retryable), "timing": timing}, response


def next_delay(attempt: dict, response, retry: dict, number: int) -> float | None:
    """Seconds to wait before the next attempt, or None when there is none (success, permanent, budget spent)."""
    if not attempt["retryable"] or number >= retry["max_attempts"]:
        return None
    max_delay = retry["max_delay_ms"] / 1000
    if response is not None and response.status in (429, 503) and "retry-after" in response.headers:
        asked = retry_after_seconds(response.headers["retry-after"])
        if asked is not None:
            if asked > max_delay:  # retrying sooner than the receiver asked would only be refused again
                attempt["error"]["message"] += f" (Retry-After {asked:g} s is beyond maxDelayMs: no further attempt)"
                return None
            return asked
    if retry["backoff"] == "fixed":
        return min(retry["initial_delay_ms"], retry["max_delay_ms"]) / 1000
    policy = RetryPolicy(max_attempts=retry["max_attempts"], backoff_seconds=retry["initial_delay_ms"] / 1000,
                         max_backoff_seconds=max_delay)
    return retry_delay(policy, number).total_seconds()


def retry_after_seconds(value: str) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None when unreadable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _answer(message_id: str, attempts: list[dict], response, started: float) -> dict:
    """The SendWebhookResponse from the attempts made and the last response received."""
    last = attempts[-1]
    success = last["error"] is None
    return {"success": success, "webhook_id": message_id,
            "response_status": last["status"],
            "response_body": response.content() if response is not None and last["status"] else None,
            "truncated": bool(response is not None and last["status"] and response.truncated),
            "timing": last["timing"], "attempts": attempts, "error": last["error"],
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 3)}


# --- checks ----------------------------------------------------------------------------------------------------

def check_headers(headers: dict) -> None:
    """Refuse headers that would override the signature or the framing (422 WEBHOOK_HEADER_RESERVED)."""
    taken = sorted(name for name in headers if str(name).strip().lower() in RESERVED_HEADERS)
    if taken:
        message = (f"The header(s) {', '.join(taken)} cannot be set: Atlas sets webhook-id, webhook-timestamp, "
                   "webhook-signature, Content-Type (application/json) and the connection headers itself.")
        raise ValidationFailed(message, code="WEBHOOK_HEADER_RESERVED",
                               validation=[{"field": f"headers.{name}", "message": "reserved header"}
                                           for name in taken])


def timeout_for(requested: float | None) -> float:
    """The requested timeout in seconds, else ATLAS_HTTP_TIMEOUT; never above ATLAS_HTTP_TIMEOUT."""
    ceiling = float(current_app.config["ATLAS_HTTP_TIMEOUT"])
    return min(float(requested), ceiling) if requested else ceiling


def new_message_id() -> str:
    """A fresh webhook-id: "msg_" and 32 hex digits; every attempt of one webhook carries the same one."""
    return "msg_" + uuid.uuid4().hex
