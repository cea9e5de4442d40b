"""validate(definition) -> every issue at once, each naming the node it concerns."""
from __future__ import annotations

from atlas.core.definition import WorkflowDefinition


def _issue(severity: str, code: str, message: str, node_id: str | None = None) -> dict:
    return {"severity": severity, "code": code, "message": message, "node_id": node_id}


def validate(definition: WorkflowDefinition) -> list[dict]:
    """Graph-level checks on a structurally valid definition: empty, entry, reachability."""
    if not definition.nodes:
        return [_issue("warning", "EMPTY_WORKFLOW", "The workflow has no steps yet; add one before activating.")]
    issues: list[dict] = []
    targets = {e.target for e in definition.edges}
    entries = [n.id for n in definition.nodes if n.id not in targets]
    if len(entries) != 1:
        message = ("Every step has an incoming connector, so the workflow has no first step."
                   if not entries else f"The workflow has {len(entries)} first steps ({', '.join(entries)}); "
                   "connect them so that exactly one step has no incoming connector.")
        issues.append(_issue("error", "ENTRY_NOT_UNIQUE", message, entries[0] if entries else None))
        return issues
    reachable = _reachable(definition, entries[0])
    for node in definition.nodes:
        if node.id not in reachable:
            issues.append(_issue("error", "UNREACHABLE_NODE", f"Step {node.id!r} cannot be reached.", node.id))
    return issues


def _reachable(definition: WorkflowDefinition, start: str) -> set[str]:
    """Node ids reachable from start along edges."""
    following: dict[str, list[str]] = {}
    for edge in definition.edges:
        following.setdefault(edge.source, []).append(edge.target)
    seen, stack = {start}, [start]
    while stack:
        for nxt in following.get(stack.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def has_errors(issues: list[dict]) -> bool:
    """Whether any issue blocks activation."""
    return any(i["severity"] == "error" for i in issues)


def estimate_performance(definition: WorkflowDefinition) -> dict:
    """No execution history exists yet (the engine arrives later), so the estimate says so instead of guessing."""
    return {
        "basis": "none",
        "step_count": len(definition.nodes),
        "estimated_duration_ms": None,
        "note": "No execution history yet: estimates are computed from measured runs once the workflow has run.",
    }
