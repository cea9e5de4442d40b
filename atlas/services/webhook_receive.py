"""Receiving webhooks: verify, admit, deduplicate, transform, filter, then start what the delivery starts.

Order of the checks (the first that fails answers): the endpoint exists (404 WEBHOOK_NOT_FOUND; an unknown one is
counted in Redis only, an inactive one is recorded), the body's size (413), the signature and timestamp window
(401), the Origin header when there is one (403), the endpoint's rate limit (429), the body is a JSON object (400).
Every rejection on a known endpoint is recorded as a delivery (outcome rejected, reason = the code); the body is kept
only once it was verified. A verified delivery is deduplicated by webhook-id for 24 h, transformed (transformPayload)
and filtered (filterConditions); the delivery row, its WebhookMessage row, the "webhook" Event, the enrollment
decisions and the runs commit in one transaction, and the runs are enqueued after the commit.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from flask import current_app
from limits import RateLimitItemPerMinute
from redis.exceptions import RedisError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from atlas.core import signing
from atlas.core import triggers as catalog
from atlas.core import webhook_payloads as payloads
from atlas.core.storable import all_storable
from atlas.errors import AtlasError
from atlas.extensions import db, limiter, redis_holder
from atlas.models import (
    Contact,
    Event,
    Execution,
    ExecutionStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
    Workflow,
    WorkflowTrigger,
)
from atlas.models.base import new_id, utcnow
from atlas.services import contacts, enrollment, executions, testing, webhooks
from atlas.services.tenancy import scoped

log = logging.getLogger(__name__)

KEPT_HEADERS = ("webhook-id", "webhook-timestamp", "content-type", "content-length", "user-agent", "origin")
UNKNOWN_COUNTER = "atlas:webhooks:rejected:unknown_endpoint"
MESSAGE_TTL = timedelta(hours=24)
CONSIDERED = ("active", "paused")  # a paused listener gets a decision saying so, and no run


class WebhookRateLimited(AtlasError):
    """429 WEBHOOK_RATE_LIMITED; retry_after (seconds) goes into the Retry-After header."""

    status, code = 429, "WEBHOOK_RATE_LIMITED"

    def __init__(self, message: str, retry_after: int, limit: int):
        super().__init__(message, details={"retryAfter": retry_after, "limit": limit})
        self.retry_after = retry_after


def _refused(code: str, status: int, message: str) -> AtlasError:
    return AtlasError(message, code=code, status=status)


# --- receive ------------------------------------------------------------------------------------------------------

def receive(endpoint_id: str, body: bytes, headers: Mapping[str, str], remote_addr: str | None, *,
            length: int | None = None) -> dict:
    """One delivery to POST /api/v2/webhooks/receive/<id>: the WebhookReceiveResponse, or the AtlasError of its
    rejection (raised after the rejected delivery is recorded). `length` is a declared Content-Length the caller
    did not read because it is over the cap."""
    started, headers = time.perf_counter(), {str(k).lower(): str(v) for k, v in headers.items()}
    endpoint = _endpoint(endpoint_id)
    delivery = WebhookDelivery(id=new_id(), organization_id=endpoint.organization_id, endpoint_id=endpoint.id,
                               message_id=(headers.get("webhook-id") or "")[:200] or None, remote_addr=remote_addr,
                               headers={k: headers[k][:500] for k in KEPT_HEADERS if k in headers},
                               received_at=utcnow(), test_mode=False)
    try:
        payload = _admit(endpoint, body, headers, length)
    except AtlasError as error:
        _record_rejection(delivery, error, started)
        raise
    return _accept(endpoint, delivery, payload, headers, started)


def _endpoint(endpoint_id: str) -> WebhookEndpoint:
    """The endpoint; 404 for an unknown one (counted in Redis) and for an inactive one (recorded)."""
    endpoint = db.session.get(WebhookEndpoint, endpoint_id) if len(endpoint_id) <= 36 else None
    if endpoint is None:
        try:
            redis_holder.client.incr(UNKNOWN_COUNTER)
        except RedisError:
            log.warning("could not count a delivery to an unknown webhook endpoint", exc_info=True)
        raise webhooks.WebhookNotFound("No webhook endpoint has this id; check the URL you post to.")
    return endpoint


def unknown_endpoint_count() -> int:
    """Deliveries refused because their endpoint does not exist (they belong to no organization)."""
    try:
        return int(redis_holder.client.get(UNKNOWN_COUNTER) or 0)
    except RedisError:
        return 0


def _admit(endpoint: WebhookEndpoint, body: bytes, headers: dict, length: int | None) -> dict:
    """The parsed body of a delivery that passes every check; else the AtlasError of the first that fails."""
    if not endpoint.active:
        raise webhooks.WebhookNotFound("This webhook endpoint is inactive; turn it back on to receive deliveries.")
    cap = current_app.config["ATLAS_WEBHOOK_MAX_BYTES"]
    if max(len(body), length or 0) > cap:
        raise _refused("WEBHOOK_PAYLOAD_TOO_LARGE", 413, f"The body is larger than this endpoint accepts "
                                                         f"({cap} bytes).")
    verify(endpoint, body, headers)
    check_origin(endpoint, headers.get("origin"))
    _rate_limit(endpoint)
    return parse_body(body)


def verify(endpoint: WebhookEndpoint, body: bytes, headers: dict) -> None:
    """The Standard Webhooks signature with the current secret or the previous one in its grace period."""
    now = time.time()
    try:
        signing.verify(webhooks.valid_secrets(endpoint, now), headers.get("webhook-id"),
                       headers.get("webhook-timestamp"), headers.get("webhook-signature"), body, now)
    except signing.SignatureError as error:
        raise _refused(error.code, 401, error.message) from None


def normal_origin(origin: str) -> str | None:
    """An Origin header as allowedOrigins stores origins (lower case, no default port); None if it is not one."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme.lower()]
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port not in (None, default) else "")


def check_origin(endpoint: WebhookEndpoint, origin: str | None) -> None:
    """A present Origin must be one of allowedOrigins, when the endpoint lists any."""
    allowed = endpoint.allowed_origins or []
    if origin is None or not allowed or normal_origin(origin) in allowed:
        return
    raise _refused("WEBHOOK_ORIGIN_NOT_ALLOWED", 403, f"Origin {origin[:200]!r} is not in this endpoint's "
                                                      "allowedOrigins.")


def rate_limit_of(endpoint: WebhookEndpoint) -> int:
    """Deliveries per minute the endpoint accepts: its rateLimit, else ATLAS_WEBHOOK_RATE_LIMIT."""
    return endpoint.rate_limit or current_app.config["ATLAS_WEBHOOK_RATE_LIMIT"]


def _rate_limit(endpoint: WebhookEndpoint) -> None:
    """Count the delivery against its endpoint's per-minute limit (in the limiter's Redis storage)."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    per_minute = rate_limit_of(endpoint)
    item = RateLimitItemPerMinute(per_minute)
    try:
        if limiter.limiter.hit(item, "webhook", endpoint.id):
            return
        reset = limiter.limiter.get_window_stats(item, "webhook", endpoint.id).reset_time
    except RedisError:  # the limiter's storage is down: let deliveries in rather than lose them
        log.warning("webhook rate limit not checked for %s", endpoint.id, exc_info=True)
        return
    retry = max(1, math.ceil(reset - time.time()))
    raise WebhookRateLimited(f"This endpoint accepts {per_minute} deliveries per minute; retry after {retry} s.",
                             retry, per_minute)


def parse_body(body: bytes) -> dict:
    """The body as a JSON object; 400 WEBHOOK_PAYLOAD_INVALID otherwise."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _refused("WEBHOOK_PAYLOAD_INVALID", 400, f"The body is not valid JSON: {str(exc)[:200]}.") from None
    if not isinstance(parsed, dict):
        kind = "an array" if isinstance(parsed, list) else "a bare value"
        raise _refused("WEBHOOK_PAYLOAD_INVALID", 400, f"The body must be a JSON object, not {kind}.")
    if not all_storable(parsed):
        raise _refused("WEBHOOK_PAYLOAD_INVALID", 400, "The body contains a NUL character or an unpaired surrogate.")
    return parsed


def _record_rejection(delivery: WebhookDelivery, error: AtlasError, started: float) -> None:
    """The rejected delivery, without its body, in a transaction of its own."""
    db.session.rollback()
    delivery.outcome, delivery.reason, delivery.detail = "rejected", error.code, error.message
    delivery.processing_ms = elapsed_ms(started)
    db.session.add(delivery)
    db.session.commit()


# --- an admitted delivery -----------------------------------------------------------------------------------------

def _accept(endpoint: WebhookEndpoint, delivery: WebhookDelivery, payload: dict, headers: dict,
            started: float) -> dict:
    """Deduplicate, transform, filter, start; one commit for every row; the WebhookReceiveResponse."""
    delivery.payload = payload
    earlier = _earlier(endpoint.id, delivery.message_id)
    if earlier is not None:
        return _duplicate(endpoint, delivery, earlier, started)
    message = WebhookMessage(endpoint_id=endpoint.id, message_id=delivery.message_id, delivery_id=delivery.id,
                             received_at=delivery.received_at)
    done = process(endpoint, delivery, payload, headers, live=True)
    waiting = _has_waiting_runs(done.event)
    delivery.processing_ms = elapsed_ms(started)
    db.session.add_all([delivery, message])
    try:
        _touch(endpoint.id)  # its UPDATE flushes the rows first, so a clash can come from here or from the commit
        db.session.commit()
    except IntegrityError:  # the same webhook-id, committed by a concurrent request in the meantime
        db.session.rollback()
        earlier = _earlier(endpoint.id, delivery.message_id)
        if earlier is None:
            raise
        return _duplicate(endpoint, _fresh_copy(delivery), earlier, started)
    enrollment.enqueue(done.jobs)
    if waiting:
        resume_waiting(done.event)
    return _answer(delivery)


def _has_waiting_runs(event: Event | None) -> bool:
    """Whether the delivery's contact has a run waiting (for this event, a goal, or time): most have none, and then
    nothing more is done after the delivery's one commit."""
    return event is not None and event.contact_id is not None and db.session.scalar(
        select(Execution.id).where(Execution.organization_id == event.organization_id,
                                   Execution.contact_id == event.contact_id,
                                   Execution.status == ExecutionStatus.WAITING).limit(1)) is not None


def resume_waiting(event: Event | None) -> list[str]:
    """After the commit: the contact's runs waiting for a "webhook" event go on along their event branch (and runs
    whose goal it is jump there), as with any event; the ids of the runs that went on."""
    if event is None or not event.contact_id:
        return []
    resumed = executions.deliver_event(event.organization_id, event.type, event.contact_id, dict(event.payload))
    db.session.commit()
    return resumed


def _earlier(endpoint_id: str, message_id: str) -> WebhookDelivery | None:
    """The first delivery of this webhook-id within 24 h; an older record of it is forgotten here."""
    message = db.session.get(WebhookMessage, (endpoint_id, message_id))
    if message is None:
        return None
    if message.received_at < utcnow() - MESSAGE_TTL:
        db.session.delete(message)
        db.session.flush()
        return None
    return db.session.get(WebhookDelivery, message.delivery_id)


def _fresh_copy(delivery: WebhookDelivery) -> WebhookDelivery:
    """A rolled-back delivery's fields on a new row, to record it as a duplicate."""
    keep = ("id", "organization_id", "endpoint_id", "message_id", "headers", "payload", "remote_addr", "received_at")
    return WebhookDelivery(**{name: getattr(delivery, name) for name in keep}, test_mode=False)


def _duplicate(endpoint: WebhookEndpoint, delivery: WebhookDelivery, earlier: WebhookDelivery,
               started: float) -> dict:
    """A repeated webhook-id: recorded, nothing started, answered with the first delivery's outcome."""
    delivery.outcome, delivery.original_delivery_id = "duplicate", earlier.id
    delivery.detail = f"webhook-id {delivery.message_id!r} was received at {earlier.received_at.isoformat()} " \
                      f"(delivery {earlier.id}); nothing was started again."
    delivery.workflow_ids, delivery.execution_ids = list(earlier.workflow_ids or []), []
    delivery.processing_ms = elapsed_ms(started)
    db.session.add(delivery)
    _touch(endpoint.id)
    db.session.commit()
    answer = {**_answer(earlier), "delivery_id": delivery.id, "processing_time": delivery.processing_ms,
              "duplicate": True, "original_delivery_id": earlier.id}
    return answer


def _touch(endpoint_id: str) -> None:
    """last_received_at, at most once a minute: a burst does not queue every delivery on the endpoint's row."""
    now = utcnow()
    db.session.execute(update(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id,
        or_(WebhookEndpoint.last_received_at.is_(None), WebhookEndpoint.last_received_at < now - timedelta(minutes=1)))
        .values(last_received_at=now).execution_options(synchronize_session=False))


def _answer(delivery: WebhookDelivery) -> dict:
    """The WebhookReceiveResponse of a recorded delivery (snake_case; the schema camelCases it)."""
    answer = {"success": True, "workflows_triggered": list(delivery.workflow_ids or []),
              "processing_time": delivery.processing_ms, "delivery_id": delivery.id}
    if delivery.outcome == "filtered":
        answer["filtered"] = {"reason": delivery.detail}
    return answer


@dataclass
class Processed:
    """What became of an admitted body: transformed, filtered, the workflows asked and what they decided."""

    transformed: payloads.Transformed
    filter: payloads.FilterResult
    listeners: list = field(default_factory=list)
    decisions: list = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # test runs that could not start
    jobs: list = field(default_factory=list)  # live runs to enqueue after the commit
    event: Event | None = None  # the "webhook" event an accepted delivery became


def process(endpoint: WebhookEndpoint, delivery: WebhookDelivery, payload: dict, headers: dict, *,
             live: bool, user_id: str | None = None) -> Processed:
    """Transform and filter into the delivery; start its runs (live: staged in the session, with the jobs to
    enqueue after the commit; test: committed test-mode runs, no decision recorded)."""
    transformed, passed = evaluate(endpoint, payload, headers)
    done = Processed(transformed, passed)
    delivery.processed_payload = transformed.payload
    if not passed.passed:
        delivery.outcome, delivery.detail = "filtered", passed.reason
        return done
    delivery.outcome = "accepted"
    delivery.detail = "; ".join(transformed.warnings) or None
    event = done.event = _event(endpoint, delivery, transformed.payload)
    done.listeners = _listeners(endpoint)
    done.decisions, runs = enrollment.plan_event(endpoint.organization_id, event, workflows=done.listeners,
                                                 bound=frozenset({endpoint.workflow_id} - {None}))
    if not live:
        started, done.problems = start_test_runs(endpoint.organization_id, user_id, event, done.decisions)
        delivery.execution_ids, delivery.workflow_ids = [e for e, _ in started], [w for _, w in started]
        return done
    delivery.execution_ids = [r.id for r in runs]
    delivery.workflow_ids = [r.workflow_id for r in runs]
    db.session.add(event)
    db.session.flush()  # the decisions' INSERT names the event
    done.jobs = enrollment.stage(event, done.decisions, runs)
    return done


def evaluate(endpoint: WebhookEndpoint, payload: dict, headers: dict
             ) -> tuple[payloads.Transformed, payloads.FilterResult]:
    """transformPayload, then filterConditions on the result (a filter that no longer checks lets nothing in)."""
    transformed = payloads.apply_transform(endpoint.transform, payload)
    data = payloads.filter_data(transformed.payload, headers, endpoint.id, endpoint.name)
    try:
        return transformed, payloads.evaluate_filter(endpoint.filter_conditions, data)
    except ValueError as exc:  # conditions.ConditionError: stored before a stricter check
        return transformed, payloads.FilterResult(False, f"filterConditions are not valid, so nothing passes: {exc}")


def _event(endpoint: WebhookEndpoint, delivery: WebhookDelivery, body: dict) -> Event:
    """The delivery as a "webhook" event (not yet in the session), about the contact the body names, if any."""
    now = utcnow()
    return Event(id=new_id(), organization_id=endpoint.organization_id, type="webhook",
                 contact_id=contact_for(endpoint.organization_id, body), source="webhook", occurred_at=now,
                 received_at=now, enrolled=0,
                 payload={"endpointId": endpoint.id, "endpointName": endpoint.name, "deliveryId": delivery.id,
                          "body": body})


def contact_for(org_id: str, body: Mapping) -> str | None:
    """The organization's contact the processed body names: contactId, else email; None when neither matches."""
    contact_id = body.get("contactId")
    if isinstance(contact_id, str) and 0 < len(contact_id) <= 36:
        found = db.session.scalar(select(Contact.id).where(Contact.organization_id == org_id,
                                                           Contact.id == contact_id))
        if found:
            return found
    email = body.get("email")
    if isinstance(email, str) and email.strip():
        person = contacts.find_contact(org_id, email=email)
        return person.id if person is not None else None
    return None


def _listeners(endpoint: WebhookEndpoint) -> list[Workflow]:
    """The endpoint's own workflow and every workflow with a webhook trigger on this endpoint (or on every one)."""
    org_id = endpoint.organization_id
    extra = db.session.execute(select(WorkflowTrigger.workflow_id, WorkflowTrigger.config).where(
        WorkflowTrigger.organization_id == org_id, WorkflowTrigger.trigger_type == "webhook",
        WorkflowTrigger.active)).all()
    listening = {wid for wid, config in extra if catalog.listens_on(config, endpoint.id)}
    rows = db.session.scalars(scoped(Workflow, org_id).where(Workflow.status.in_(CONSIDERED), or_(
        Workflow.trigger_type == "webhook", Workflow.id.in_(listening | {endpoint.workflow_id} - {None})))
        .order_by(Workflow.created_at, Workflow.id))
    return [w for w in rows if w.id == endpoint.workflow_id or w.id in listening
            or (w.trigger_type == "webhook" and catalog.listens_on(w.trigger_config, endpoint.id))]


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


# --- test mode ----------------------------------------------------------------------------------------------------

def start_test_runs(org_id: str, user_id: str | None, event: Event, made: list
                    ) -> tuple[list[tuple[str, str]], list[str]]:
    """Test-mode runs (nothing sent, waits fast-forwarded) for the workflows the event enrolls: [(execution id,
    workflow id)], and why any could not start."""
    trigger = {**event.payload, "type": event.type, "eventId": event.id, "occurredAt": event.occurred_at.isoformat()}
    test_data = {"trigger": trigger, **({"contactId": event.contact_id} if event.contact_id else {})}
    started, problems = [], []
    for decision in made:
        if decision.outcome != "enrolled":
            continue
        try:
            execution = testing.start_test(org_id, user_id, decision.workflow_id, test_data)
        except AtlasError as error:
            db.session.rollback()
            problems.append(f"workflow {decision.workflow_id}: {error.message}")
            continue
        started.append((execution.id, decision.workflow_id))
    return started, problems


def purge_message_ids(now: datetime | None = None) -> int:
    """Forget accepted webhook-ids older than 24 h (the worker's housekeeping); how many went."""
    now = now or datetime.now(timezone.utc)
    result = db.session.execute(delete(WebhookMessage).where(WebhookMessage.received_at < now - MESSAGE_TTL))
    db.session.commit()
    return result.rowcount or 0
