"""validate(definition) -> every issue at once (errors, warnings, suggestions), each naming its node."""
from __future__ import annotations

from datetime import timedelta
from typing import Iterable, Iterator

from jsonschema import Draft202012Validator

from atlas.core import durations, steps, templating
from atlas.core.definition import Node, WorkflowDefinition
from atlas.core.graph import Graph

LONG_WAIT = timedelta(days=90)


def _issue(severity: str, code: str, message: str, node_id: str | None = None, **extra) -> dict:
    return {"severity": severity, "code": code, "message": message, "node_id": node_id, **extra}


def has_errors(issues: list[dict]) -> bool:
    """Whether any issue blocks activation."""
    return any(i["severity"] == "error" for i in issues)


def validate(definition: WorkflowDefinition, *, trigger_type: str | None = None,
             known_vars: Iterable[str] = ()) -> list[dict]:
    """Every problem of a structurally valid definition: trigger, step types and configs, graph, references."""
    issues = [] if trigger_type else [_issue("error", "NO_TRIGGER", "Choose what starts the workflow (a trigger).")]
    if not definition.nodes:
        return issues + [_issue("warning", "EMPTY_WORKFLOW", "The workflow has no steps yet; add one before activating.")]
    graph = Graph(definition)
    known = {n.id: steps.get(n.type) for n in definition.nodes if _registered(n.type)}
    for node in definition.nodes:
        issues += _node_issues(node, known.get(node.id))
    issues += _graph_issues(graph, known)
    issues += _reference_issues(graph, known, set(known_vars))
    issues += _advice(graph, known)
    return issues


def _registered(key: str) -> bool:
    try:
        steps.get(key)
    except steps.UnknownStepType:
        return False
    return True


# --- each node on its own ----------------------------------------------------------------------------------------

def _node_issues(node: Node, step_type) -> list[dict]:
    """Unknown type, config against the type's JSON Schema, then the type's own semantic checks."""
    if step_type is None:
        return [_issue("error", "UNKNOWN_STEP_TYPE", f"Step {node.id!r} has unknown type {node.type!r}.", node.id)]
    schema_errors = sorted(Draft202012Validator(step_type.config_schema).iter_errors(node.config),
                           key=lambda e: list(e.absolute_path))
    issues = [_issue("error", "INVALID_CONFIG", f"{_where(e.absolute_path)}: {e.message}", node.id,
                     path=_where(e.absolute_path)) for e in schema_errors]
    if not issues and step_type.check:
        issues += [_issue("error", p["code"], p["message"], node.id, path=p.get("path"))
                   for p in step_type.check(node.config)]
    return issues


def _where(path) -> str:
    return "config" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


# --- the graph ---------------------------------------------------------------------------------------------------

def _graph_issues(graph: Graph, known: dict) -> list[dict]:
    """One entry, no cycles, everything reachable, each node's exits wired exactly as its type declares."""
    issues = []
    entries = graph.entries()
    if len(entries) != 1:
        message = ("Every step has an incoming connector, so the workflow has no first step."
                   if not entries else f"The workflow has {len(entries)} first steps ({', '.join(entries)}); "
                   "connect them so that exactly one step has no incoming connector.")
        issues.append(_issue("error", "ENTRY_NOT_UNIQUE", message, entries[0] if entries else None))
    cycle = graph.cycle()
    if cycle:
        issues.append(_issue("error", "CYCLE", "The steps loop back on themselves: " + " → ".join(cycle)
                             + ". Workflows run forwards; use a wait or a goal instead of a loop.", cycle[0]))
    if len(entries) == 1:
        reachable = graph.reachable(entries[0])
        issues += [_issue("error", "UNREACHABLE_NODE", f"Step {n.id!r} cannot be reached from the first step.", n.id)
                   for n in graph.definition.nodes if n.id not in reachable]
    for node in graph.definition.nodes:
        if node.id in known:
            issues += _exit_issues(graph, node, known[node.id])
    return issues


def _exit_issues(graph: Graph, node: Node, step_type) -> list[dict]:
    """A plain node has at most one unlabelled exit; a branching node one edge per declared branch; end none."""
    edges = graph.out[node.id]
    if step_type.terminal:
        return [_issue("error", "END_HAS_EXIT", f"Step {node.id!r} ends the run, so nothing can follow it.",
                       node.id)] if edges else []
    try:
        exits = step_type.exits(node.config)
    except (KeyError, TypeError, AttributeError):  # config too broken to name its branches; reported on its own
        exits = []
    if not step_type.branches:
        issues = [_issue("error", "UNKNOWN_BRANCH", f"Step {node.id!r} has one exit; its connector to "
                         f"{e.target!r} must not name branch {e.branch!r}.", node.id) for e in edges if e.branch]
        if len(edges) > 1:
            issues.append(_issue("error", "MULTIPLE_EXITS", f"Step {node.id!r} has {len(edges)} connectors out; "
                                 "only branching steps (if/else, splits) can have more than one.", node.id))
        return issues
    issues = []
    labels = [e.branch for e in edges]
    for e in edges:
        if e.branch not in exits:
            issues.append(_issue("error", "UNKNOWN_BRANCH", f"Step {node.id!r} has no branch {e.branch!r}; its "
                                 f"branches are {', '.join(exits)}.", node.id))
    for branch in exits:
        if labels.count(branch) == 0:
            issues.append(_issue("error", "BRANCH_WITHOUT_EXIT", f"Branch {branch!r} of step {node.id!r} leads "
                                 "nowhere; connect it to a step (an End step if the run should stop).", node.id,
                                 branch=branch))
        elif labels.count(branch) > 1:
            issues.append(_issue("error", "DUPLICATE_BRANCH_EDGE", f"Branch {branch!r} of step {node.id!r} has "
                                 f"{labels.count(branch)} connectors; it can lead to one step.", node.id, branch=branch))
    return issues


# --- references in templates and conditions ----------------------------------------------------------------------

def _reference_issues(graph: Graph, known: dict, known_vars: set[str]) -> list[dict]:
    """Templates parse, and every steps.<id> and vars.<name> they or conditions read exists upstream."""
    issues = []
    setters = {n.id: n.config.get("name") for n in graph.definition.nodes if n.type == "set_variable"}
    for node in graph.definition.nodes:
        if node.id not in known:
            continue
        before = graph.ancestors(node.id)
        available_vars = known_vars | {name for node_id, name in setters.items() if node_id in before}
        for path, text in _strings(node.config, "config"):
            if "{{" in text or "{%" in text:
                problems = templating.check(text)
                issues += [_issue("error", p["code"], f"{path}: {p['message']}", node.id, path=path) for p in problems]
                if not any(p["code"] == "SYNTAX_ERROR" for p in problems):
                    issues += _check_refs(templating.references(text), node, path, graph, before, available_vars)
        for path, rule in _rules(node.config, "config"):
            issues += _check_refs({rule["field"]}, node, path, graph, before, available_vars)
    return issues


def _check_refs(refs: set[str], node: Node, path: str, graph: Graph, before: set[str], variables: set[str]):
    issues = []
    for ref in sorted(refs):
        root, _, rest = ref.partition(".")
        name = rest.split(".")[0]
        if root == "steps" and name:
            if name not in graph.definition.node_ids:
                issues.append(_issue("error", "UNKNOWN_STEP_REFERENCE", f"{path} reads {ref}, but there is no step "
                                     f"{name!r}.", node.id, path=path, reference=ref))
            elif name not in before:
                issues.append(_issue("error", "STEP_NOT_BEFORE", f"{path} reads {ref}, but step {name!r} does not "
                                     "run before this step.", node.id, path=path, reference=ref))
        elif root == "vars" and name and name not in variables:
            issues.append(_issue("error", "UNKNOWN_VARIABLE", f"{path} reads {ref}, but no variable {name!r} is "
                                 "defined for the workflow or set by an earlier step.", node.id, path=path,
                                 reference=ref))
    return issues


def _strings(value, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a config with its path (conditions' own fields included)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")


def _rules(value, path: str) -> Iterator[tuple[str, dict]]:
    """Every condition rule ({field, operator, ...}) inside a config."""
    if isinstance(value, dict):
        if isinstance(value.get("field"), str) and "operator" in value:
            yield path, value
        for key, item in value.items():
            yield from _rules(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _rules(item, f"{path}[{i}]")


# --- warnings and suggestions ------------------------------------------------------------------------------------

def _advice(graph: Graph, known: dict) -> list[dict]:
    """What is allowed but probably not meant: no retries on network steps, very long waits, a wait at the end."""
    issues = []
    for node in graph.definition.nodes:
        step_type = known.get(node.id)
        if step_type is None:
            continue
        if step_type.side_effects and step_type.retry.max_attempts <= 1 and not node.config.get("retry"):
            issues.append(_issue("warning", "NO_RETRIES", f"Step {node.id!r} talks to another service but is not "
                                 "retried; a short outage would fail the run.", node.id))
        for key in ("duration", "timeout"):
            if durations.check_duration(node.config.get(key)) is None and key in node.config \
                    and durations.parse_duration(node.config[key]) > LONG_WAIT:
                issues.append(_issue("warning", "LONG_WAIT", f"Step {node.id!r} waits "
                                     f"{durations.describe(node.config[key])}, longer than 90 days; the contact's "
                                     "situation will likely have changed by then.", node.id))
        if node.type in ("wait", "wait_until") and not graph.out[node.id]:
            issues.append(_issue("suggestion", "WAIT_AT_END", f"Step {node.id!r} waits with nothing after it; the "
                                 "run only ends later. Remove it or add the step it waits for.", node.id))
    return issues


def estimate_performance(definition: WorkflowDefinition, history: dict[str, float] | None = None) -> dict:
    """Active time along the longest path, from measured step timings when there are any, else stated defaults."""
    if not definition.nodes:
        return {"basis": "none", "step_count": 0, "estimated_duration_ms": None, "note": "The workflow has no steps."}
    history = history or {}
    cost = {n.id: history.get(n.type, DEFAULT_STEP_MS.get(_category(n.type), 5.0)) for n in definition.nodes}
    measured = sum(1 for n in definition.nodes if n.type in history)
    basis = "history" if measured == len(definition.nodes) else ("mixed" if measured else "defaults")
    return {"basis": basis, "step_count": len(definition.nodes),
            "estimated_duration_ms": round(_longest_path(Graph(definition), cost), 1), "note": NOTES[basis]}


def _longest_path(graph: Graph, cost: dict[str, float]) -> float:
    """The costliest route from the entry (every node's cost added up if the graph is not a tree of paths)."""
    entries = graph.entries()
    if len(entries) != 1 or graph.cycle():
        return sum(cost.values())
    best: dict[str, float] = {}
    for node_id in reversed(_topological(graph, entries[0])):
        best[node_id] = cost[node_id] + max((best[e.target] for e in graph.out[node_id]), default=0.0)
    return best[entries[0]]


def _topological(graph: Graph, start: str) -> list[str]:
    """Reachable node ids with every node before its successors."""
    order, seen, stack = [], set(), [(start, False)]
    while stack:
        node_id, done = stack.pop()
        if done:
            order.append(node_id)
        elif node_id not in seen:
            seen.add(node_id)
            stack.append((node_id, True))
            stack.extend((e.target, False) for e in graph.out[node_id] if e.target not in seen)
    return order[::-1]


NOTES = {
    "history": "From measured timings of each step type in this organization's runs. Waits are not included.",
    "defaults": "No runs measured yet: from Atlas's stated defaults per step category (control 1 ms, CRM 20 ms, "
                "messaging 300 ms, integrations 500 ms). Waits are not included.",
    "mixed": "From measured timings where a step type has run, stated defaults for the rest. Waits are not included.",
}
DEFAULT_STEP_MS = {"control": 1.0, "communication": 300.0, "crm": 20.0, "integration": 500.0}


def _category(key: str) -> str:
    return steps.get(key).category if _registered(key) else "control"
