"""Live updates: small named events with ids, kept in a capped Redis Stream per workflow.

A Stream rather than plain pub/sub because a reconnecting browser sends Last-Event-ID and must get what it missed:
the stream keeps the last STREAM_MAXLEN events per workflow, and its entry ids are the SSE event ids.
"""
from __future__ import annotations

import json
import logging

from redis.exceptions import RedisError

from atlas.extensions import redis_holder

log = logging.getLogger(__name__)
STREAM_MAXLEN = 1000
MAX_DATA_BYTES = 8192
EVENTS = ("execution_started", "step_completed", "execution_waiting", "execution_completed", "execution_failed",
          "execution_cancelled", "workflow_updated")


def stream_key(workflow_id: str) -> str:
    return f"atlas:events:workflow:{workflow_id}"


def publish(events: list[tuple[str, str, dict]]) -> None:
    """Append (workflow id, event, data) events in one round trip; a Redis outage loses only live updates."""
    if not events:
        return
    try:
        pipe = redis_holder.client.pipeline(transaction=False)
        for workflow_id, event, data in events:
            pipe.xadd(stream_key(workflow_id), {"event": event, "data": _encode(data)}, maxlen=STREAM_MAXLEN,
                      approximate=True)
        pipe.execute()
    except RedisError:
        log.warning("could not publish %d live event(s)", len(events), exc_info=True)


def _encode(data: dict) -> str:
    """JSON, with an oversized payload replaced by a note (outputs can be large; the API has them in full)."""
    text = json.dumps(data, default=str, separators=(",", ":"))
    if len(text) > MAX_DATA_BYTES:
        slim = {k: v for k, v in data.items() if k not in ("output", "input")}
        text = json.dumps({**slim, "truncated": True}, default=str, separators=(",", ":"))
    return text


def read(workflow_id: str, after: str, block_ms: int) -> list[tuple[str, str, str]]:
    """Events after `after` ('$' for only new ones), waiting up to block_ms: [(id, event, json data)]."""
    answer = redis_holder.client.xread({stream_key(workflow_id): after}, block=block_ms, count=100)
    if not answer:
        return []
    return [(_text(entry_id), _text(fields[b"event"]), _text(fields[b"data"])) for entry_id, fields in answer[0][1]]


def latest_id(workflow_id: str) -> str:
    """The id of the newest event, or 0-0: a new stream starts after it."""
    entries = redis_holder.client.xrevrange(stream_key(workflow_id), count=1)
    return _text(entries[0][0]) if entries else "0-0"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def sse(event_id: str | None, event: str, data: str) -> str:
    """One Server-Sent Event."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {data}\n\n"
