"""The webhook test endpoint (POST /api/v2/webhooks/<id>/test): a payload through the receiving pipeline step by
step (verification, origin, transform, filter, trigger), with test-mode runs and a delivery recorded in test mode;
and replaying a recorded delivery, in test mode or live."""
from __future__ import annotations

import json
import time

from atlas.core import webhook_payloads as payloads
from atlas.errors import AtlasError, Conflict
from atlas.extensions import db
from atlas.models import WebhookDelivery, WebhookEndpoint
from atlas.models.base import new_id, utcnow
from atlas.services import enrollment, webhooks
from atlas.services import webhook_receive as receiving

# --- the test endpoint --------------------------------------------------------------------------------------------

def test_delivery(org_id: str, user_id: str | None, endpoint_id: str, payload: dict, headers: dict) -> dict:
    """POST /api/v2/webhooks/<id>/test: the TestWebhookResponse, step by step; runs start in test mode and the
    delivery is recorded in test mode (out of the statistics). No signature is needed; one that is sent is checked."""
    endpoint = webhooks.get_endpoint(org_id, endpoint_id)
    started, headers = time.perf_counter(), {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    delivery = WebhookDelivery(id=new_id(), organization_id=org_id, endpoint_id=endpoint.id, test_mode=True,
                               message_id=(headers.get("webhook-id") or "")[:200] or None, payload=payload,
                               headers={k: headers[k][:500] for k in receiving.KEPT_HEADERS if k in headers},
                               received_at=utcnow())
    logs = [_test_verification(endpoint, payload, headers), _test_origin(endpoint, headers.get("origin"))]
    failed = next((log for log in logs if log["status"] == "failed"), None)
    if failed:
        delivery.outcome, delivery.reason, delivery.detail = "rejected", failed["code"], failed["message"]
        logs += [_log(step, "skipped", f"Not reached: the {failed['step']} step failed.")
                 for step in ("transform", "filter", "trigger")]
    else:
        done = receiving.process(endpoint, delivery, payload, headers, live=False, user_id=user_id)
        logs += [_test_transform(endpoint, done), _test_filter(endpoint, done), _test_trigger(delivery, done)]
    delivery.processing_ms = receiving.elapsed_ms(started)
    db.session.add(delivery)
    db.session.commit()
    return {"success": failed is None, "processed_payload": delivery.processed_payload or {},
            "triggered_workflows": list(delivery.workflow_ids or []),
            "execution_ids": list(delivery.execution_ids or []), "delivery_id": delivery.id,
            "logs": [{k: v for k, v in log.items() if k != "code"} for log in logs]}


def _log(step: str, status: str, message: str, code: str | None = None) -> dict:
    return {"step": step, "status": status, "message": message, "code": code}


def _test_verification(endpoint: WebhookEndpoint, payload: dict, headers: dict) -> dict:
    """Checked when the headers carry a signature, over the payload serialized compactly or with JSON's spaces."""
    if not headers.get("webhook-signature"):
        return _log("verification", "skipped", "No webhook-signature header: the test endpoint needs none. A real "
                                               "delivery must be signed (webhook-id, webhook-timestamp, "
                                               "webhook-signature).")
    error = None
    for separators in ((",", ":"), (", ", ": ")):
        body = json.dumps(payload, separators=separators, ensure_ascii=False).encode()
        try:
            receiving.verify(endpoint, body, headers)
            return _log("verification", "passed", "The signature matches the payload with this endpoint's secret.")
        except AtlasError as refused:
            error = error or refused
    note = " (checked over the payload as compact JSON and as JSON with spaces: a real delivery is checked over " \
           "its exact bytes)" if error.code == "WEBHOOK_SIGNATURE_INVALID" else ""
    return _log("verification", "failed", f"{error.code}: {error.message}{note}", error.code)


def _test_origin(endpoint: WebhookEndpoint, origin: str | None) -> dict:
    """The Origin check, when the headers carry one."""
    if origin is None:
        return _log("origin", "skipped", "No Origin header: only browsers send one, and then it is checked.")
    try:
        receiving.check_origin(endpoint, origin)
    except AtlasError as error:
        return _log("origin", "failed", f"{error.code}: {error.message}", error.code)
    listed = "is in allowedOrigins" if endpoint.allowed_origins else "is accepted (allowedOrigins is empty)"
    return _log("origin", "passed", f"Origin {origin!r} {listed}.")


def _test_transform(endpoint: WebhookEndpoint, done: receiving.Processed) -> dict:
    """What transformPayload did."""
    mappings = (endpoint.transform or {}).get("mappings") or []
    if not mappings:
        return _log("transform", "skipped", "No transformPayload mappings: the body is used as sent.")
    warned = f" Warnings: {'; '.join(done.transformed.warnings)}" if done.transformed.warnings else ""
    return _log("transform", "passed", f"{len(mappings)} mapping{'s' * (len(mappings) != 1)} applied; "
                                       f"the processed payload has {len(done.transformed.payload)} top-level "
                                       f"fields.{warned}")


def _test_filter(endpoint: WebhookEndpoint, done: receiving.Processed) -> dict:
    """Whether filterConditions let the delivery through, naming the condition that failed."""
    count = len(payloads.filter_list(endpoint.filter_conditions))
    if done.filter.passed:
        return _log("filter", "skipped", "No filterConditions: every delivery passes.") if not count else \
            _log("filter", "passed", f"All {count} filter condition{'s' * (count != 1)} hold.")
    return _log("filter", "failed", f"Filtered out, nothing would start: {done.filter.reason}")


def _test_trigger(delivery: WebhookDelivery, done: receiving.Processed) -> dict:
    """The test runs started, and why each other workflow asked did not start."""
    if not done.filter.passed:
        return _log("trigger", "skipped", "Not reached: the delivery was filtered out.")
    if not done.listeners:
        return _log("trigger", "failed", "No workflow listens on this endpoint: give the endpoint a workflow, or a "
                                         "workflow a webhook trigger on this endpoint.")
    names = {w.id: w.name for w in done.listeners}
    said = [f"{names.get(d.workflow_id, d.workflow_id)!r}: {d.reason}" for d in done.decisions
            if d.outcome != "enrolled"] + done.problems
    runs = len(delivery.execution_ids or [])
    head = f"Started {runs} test run{'s' * (runs != 1)} of " \
           f"{', '.join(repr(names.get(w, w)) for w in delivery.workflow_ids)}." if runs else "No run started."
    return _log("trigger", "passed" if runs else "failed", " ".join([head, *said]))


def replay(org_id: str, user_id: str | None, delivery_id: str, *, live: bool) -> WebhookDelivery:
    """Process a recorded delivery's body again as a new delivery (replay_of set): test mode unless live."""
    original = webhooks.get_delivery(org_id, delivery_id)
    endpoint = webhooks.get_endpoint(org_id, original.endpoint_id)
    if not isinstance(original.payload, dict):
        raise Conflict("This delivery has no verified JSON object to replay (it was rejected before or while its "
                       "body was read).", code="WEBHOOK_REPLAY_UNAVAILABLE")
    if live and not endpoint.active:
        raise Conflict("The endpoint is inactive; turn it on to replay live, or replay in test mode.",
                       code="WEBHOOK_INACTIVE")
    started = time.perf_counter()
    delivery = WebhookDelivery(id=new_id(), organization_id=org_id, endpoint_id=endpoint.id,
                               message_id=original.message_id, headers=dict(original.headers or {}),
                               payload=original.payload, replay_of=original.id, test_mode=not live,
                               remote_addr=None, received_at=utcnow())
    done = receiving.process(endpoint, delivery, original.payload, delivery.headers, live=live, user_id=user_id)
    delivery.processing_ms = receiving.elapsed_ms(started)
    db.session.add(delivery)
    db.session.commit()
    enrollment.enqueue(done.jobs)
    if live:
        receiving.resume_waiting(done.event)
    return delivery
