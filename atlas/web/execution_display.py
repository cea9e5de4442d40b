"""What the execution pages show, worked out once: step names, progress, durations, times and waits in words."""
from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from atlas.core import steps as step_types
from atlas.core.definition import WorkflowDefinition
from atlas.core.graph import Graph
from atlas.models import TERMINAL, Execution
from atlas.models.base import utcnow

STATUS_LABELS = {"queued": "Queued", "running": "Running", "waiting": "Waiting", "completed": "Completed",
                 "failed": "Failed", "cancelled": "Cancelled"}


def zone(name: str | None) -> ZoneInfo:
    """The organization's time zone; UTC when it names none Python knows."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


TIME_FORMATS = {"minutes": "%-d %b %Y, %H:%M %Z", "seconds": "%-d %b %Y, %H:%M:%S %Z", "time": "%H:%M:%S %Z"}


def local_time(when: datetime | None, tz: str | None, style: str = "minutes") -> str:
    """A moment in the gym's own time: '14 Jan 2025, 15:42 GMT', with seconds, or the time of day alone."""
    if when is None:
        return "—"
    return when.astimezone(zone(tz)).strftime(TIME_FORMATS[style])


def duration_words(ms: float | None) -> str:
    """Milliseconds as a person says them: '12 ms', '1.4 seconds', '3 min 20 s', '2 h 5 min'."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 1 else "under 1 ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} seconds"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def relative_words(when: datetime, now: datetime | None = None) -> str:
    """How far off a moment is: 'in 10 minutes', 'in about 2 hours', '5 minutes ago'."""
    seconds = (when - (now or utcnow())).total_seconds()
    future, seconds = seconds >= 0, abs(seconds)
    if seconds < 60:
        return "in less than a minute" if future else "less than a minute ago"
    if seconds < 90 * 60:
        amount = _plural(round(seconds / 60), "minute")
    elif seconds < 36 * 3600:
        amount = "about " + _plural(round(seconds / 3600), "hour")
    else:
        amount = _plural(round(seconds / 86400), "day")
    return f"in {amount}" if future else f"{amount} ago"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def node_names(definition: WorkflowDefinition | None) -> dict[str, str]:
    """Each node's name as the builder shows it (its id when it has none)."""
    return {n.id: n.name or n.id for n in definition.nodes} if definition else {}


def type_name(key: str) -> str:
    """A step type's name from the registry ('Set variable'); the key itself when it is not registered here."""
    try:
        return step_types.get(key).name
    except KeyError:
        return key


def step_rows(step_records: list, names: dict[str, str]) -> list[dict]:
    """The timeline: one row per attempt, with the facts and the JSON the template prints."""
    return [{"id": s.id, "node_id": s.node_id, "name": names.get(s.node_id, s.node_id), "type": type_name(s.step_type),
             "status": s.status, "attempt": s.attempt, "duration": duration_words(s.duration_ms), "branch": s.branch,
             "input": _json(s.input), "output": _json(s.output), "error": s.error, "error_code": s.error_code}
            for s in step_records]


def _json(value) -> str | None:
    """Pretty JSON for a <pre>; None when there is nothing to show."""
    if value in (None, {}, []):
        return None
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


def progress(execution: Execution, definition: WorkflowDefinition | None) -> dict:
    """Steps done of the steps on the run's path: the ones it passed, plus the longest way on from where it is."""
    state = execution.state or {}
    done = len(state.get("path") or [])
    finished_all = execution.status == "completed"
    if finished_all or definition is None:
        total = done
    else:
        graph = Graph(definition)
        current = state.get("current") if state else next(iter(graph.entries()), None)
        total = done + (_longest_from(graph, current) if current else 0)
    percent = 100 if finished_all else (round(done / total * 100) if total else 0)
    return {"done": done, "total": total, "percent": percent}


def _longest_from(graph: Graph, start: str) -> int:
    """How many nodes the longest way from start to an end passes (start included); a cycle counts once."""
    memo: dict[str, int] = {}

    def visit(node: str, seen: frozenset) -> int:
        if node not in memo:
            nexts = [e.target for e in graph.out[node] if e.target not in seen]
            memo[node] = 1 + max((visit(t, seen | {node}) for t in nexts), default=0)
        return memo[node]

    return visit(start, frozenset())


def status_sentence(execution: Execution, names: dict[str, str], tz: str | None, now: datetime | None = None) -> str:
    """Where the run is, in one plain sentence."""
    now = now or utcnow()
    node = execution.failed_node or execution.current_node or (execution.state or {}).get("current")
    name = f"“{names.get(node, node)}”" if node else "its next step"
    status = execution.status
    if status == "queued":
        later = execution.scheduled_at if execution.scheduled_at and execution.scheduled_at > now else None
        if later:
            return f"Scheduled to start at {local_time(later, tz)}, {relative_words(later, now)}."
        return "Queued: it starts as soon as a worker is free."
    if status == "running":
        return f"Running {name}."
    if status == "waiting":
        return _waiting_sentence(execution, name, tz, now)
    if status == "completed":
        return f"Completed in {duration_words(execution.duration_ms)}."
    if status == "failed":
        return f"Failed at {name}."
    return f"Cancelled at {local_time(execution.finished_at, tz)}."


def _waiting_sentence(execution: Execution, name: str, tz: str | None, now: datetime) -> str:
    """A wait, an awaited event or a retry later, with when it goes on."""
    when = execution.resume_at
    at = f"{local_time(when, tz)}, {relative_words(when, now)}" if when else None
    if execution.error:
        return f"{name} failed and is tried again at {at}." if at else f"{name} failed and is tried again later."
    if execution.wait_event:
        latest = f", or goes on anyway at {at}" if at else ""
        return f"Waiting at {name} for the contact's “{execution.wait_event}” event{latest}."
    if when is None:
        return f"Waiting at {name}."
    if when <= now:
        return f"Waiting at {name}: it was due at {local_time(when, tz)} and resumes as soon as a worker is free."
    return f"Waiting at {name}: resumes at {at}."


def is_finished(execution: Execution) -> bool:
    """Whether the run has stopped for good (so the page stops listening)."""
    return execution.status in TERMINAL


def log_rows(lines: list[dict], tz: str | None) -> list[dict]:
    """The run's log lines with their times in the gym's zone."""
    return [{"time": local_time(_moment(line.get("at")), tz, "time"), "at": line.get("at"),
             "level": line.get("level", "info"), "message": line.get("message", "")} for line in lines or []]


def _moment(text: str | None) -> datetime | None:
    """An ISO timestamp from the log, or None when it is missing or unreadable."""
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
