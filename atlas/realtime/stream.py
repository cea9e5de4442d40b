"""The SSE stream of a workflow and the single-use tickets that let an EventSource open it without a token."""
from __future__ import annotations

import json
import re
import secrets
import time

from flask import Response, current_app, stream_with_context

from atlas import realtime
from atlas.extensions import redis_holder

TICKET_TTL = 60
EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def issue_ticket(user_id: str, organization_id: str, workflow_id: str) -> dict:
    """A random single-use ticket, valid for TICKET_TTL seconds, for one workflow's stream."""
    ticket = secrets.token_urlsafe(24)
    value = json.dumps({"user": user_id, "organization": organization_id, "workflow": workflow_id})
    redis_holder.client.set(f"atlas:stream-ticket:{ticket}", value, ex=TICKET_TTL)
    return {"ticket": ticket, "expires_in": TICKET_TTL}


def redeem_ticket(ticket: str) -> dict | None:
    """What a ticket grants, once: the second use finds nothing."""
    value = redis_holder.client.getdel(f"atlas:stream-ticket:{ticket[:64]}")
    return json.loads(value) if value else None


def stream_response(workflow_id: str, last_event_id: str | None) -> Response:
    """text/event-stream: a heartbeat at once and every ATLAS_SSE_HEARTBEAT seconds, events as they come."""
    heartbeat = current_app.config["ATLAS_SSE_HEARTBEAT"]
    lifetime = current_app.config["ATLAS_SSE_MAX_SECONDS"]
    after = last_event_id if last_event_id and EVENT_ID.match(last_event_id) else realtime.latest_id(workflow_id)

    def events():
        nonlocal after
        yield "retry: 3000\n" + realtime.sse(None, "heartbeat", "{}")
        deadline = time.monotonic() + lifetime
        while time.monotonic() < deadline:  # then the browser reconnects with Last-Event-ID
            batch = realtime.read(workflow_id, after, int(heartbeat * 1000))
            if not batch:
                yield realtime.sse(None, "heartbeat", "{}")
            for event_id, event, data in batch:
                after = event_id
                yield realtime.sse(event_id, event, data)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(stream_with_context(events()), mimetype="text/event-stream", headers=headers)
