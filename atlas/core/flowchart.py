"""A definition as a top-down flowchart: structured blocks for the builder's canvas, and each card's line in words.

structure() walks from the entry. A node with several exits becomes a Branch whose arms sit side by side and meet
again at the join: the first node every arm reaches (the immediate post-dominator). A path that reaches a node
already drawn elsewhere shows a GoTo to it, so any definition renders, including branches that rejoin unevenly, and
a cycle in a broken draft cannot loop. Nodes the entry does not reach are structured apart as orphans.

Insertion keys name where a new step would go: "start" (before the first step), "after:<node id>:<branch or ''>"
(the connector leaving a node, or one exit of a branching node) and "before:<join id>" (the connector into a join,
shared by every arm that meets there).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Union

from atlas.core import conditions, durations, steps
from atlas.core import triggers as catalog
from atlas.core.definition import Edge, Node, WorkflowDefinition
from atlas.core.graph import Graph
from atlas.core.steps.base import StepType

EXIT = "\x00exit"  # the virtual node every path ends at, for post-dominators
BRANCH_WORDS = {("if_else", "true"): "Yes", ("if_else", "false"): "No", ("wait_for_event", "event"): "Event arrived",
                ("wait_for_event", "timeout"): "Timed out", ("split", "default"): "Otherwise"}
SHORT = 70  # characters of text a card's line shows


@dataclass(frozen=True)
class Step:
    """A card with one way on; `insert` is the key of the connector below it."""

    kind = "step"  # what the template draws

    node: Node
    insert: str


@dataclass(frozen=True)
class Arm:
    """One exit of a branching node: its label, the edge's branch value, and the items down that path."""

    label: str
    branch: str | None
    insert: str
    items: tuple
    joins: bool  # the arm flows on into the branch's join (it neither ends nor jumps elsewhere)


@dataclass(frozen=True)
class Branch:
    """A card with several exits side by side; when `join` is set, the list goes on with that node."""

    kind = "branch"  # what the template draws

    node: Node
    arms: tuple[Arm, ...]
    join: str | None
    join_insert: str | None


@dataclass(frozen=True)
class End:
    """The end of a path."""

    kind = "end"  # what the template draws


@dataclass(frozen=True)
class GoTo:
    """The path goes on at a node drawn elsewhere."""

    kind = "goto"  # what the template draws

    node_id: str


Item = Union[Step, Branch, End, GoTo]


@dataclass(frozen=True)
class Flow:
    """The canvas: items from the entry, and groups of items the entry never reaches."""

    entry: str | None
    items: tuple
    orphans: tuple[tuple, ...]
    start_insert: str = "start"


def structure(definition: WorkflowDefinition) -> Flow:
    """The definition as structured blocks for a top-down flowchart."""
    if not definition.nodes:
        return Flow(entry=None, items=(End(),), orphans=())
    walker = _Walker(definition)
    entries = walker.graph.entries()
    entry = entries[0] if entries else definition.nodes[0].id
    items = walker.place(entry, None)
    orphans = []
    while len(walker.placed) < len(walker.nodes):
        unplaced = [n.id for n in definition.nodes if n.id not in walker.placed]
        roots = [n for n in unplaced if not walker.graph.incoming[n]] or unplaced  # a cycle: start anywhere
        orphans.append(walker.place(roots[0], None))
    return Flow(entry=entry, items=items, orphans=tuple(orphans))


class _Walker:
    """Places each node once, walking paths and nesting branches until their join."""

    def __init__(self, definition: WorkflowDefinition):
        self.graph = Graph(definition)
        self.nodes = {n.id: n for n in definition.nodes}
        self.placed: set[str] = set()
        self.ipdom = _immediate_post_dominators(self.graph, list(self.nodes))

    def place(self, node_id: str, stop: str | None) -> tuple:
        """The items from node_id until the path reaches `stop`, ends, or reaches a node placed elsewhere."""
        items: list = []
        current: str | None = node_id
        while current is not None and current != stop:
            if current in self.placed:
                return tuple(items + [GoTo(current)])
            self.placed.add(current)
            node, exits = self.nodes[current], self._exits(current)
            if _branching(node, exits):
                join = self.ipdom.get(current)
                if join in (EXIT, None) or join in self.placed or any(edge is None for _, edge in exits):
                    join = None  # the arms never meet again (an exit with no connector ends its path)
                arms = tuple(self._arm(node, label, edge, join or stop) for label, edge in exits)
                # arms that meet where an enclosing branch's arms meet share that branch's "+" below
                items.append(Branch(node, arms, join, f"before:{join}" if join and join != stop else None))
                current = join
                continue
            items.append(Step(node, f"after:{current}:"))
            current = exits[0][1].target if exits and exits[0][1] else None
            if current is None:
                return tuple(items + [End()])
        return tuple(items)

    def _arm(self, node: Node, branch: str | None, edge: Edge | None, stop: str | None) -> Arm:
        """One exit's path; an exit with no connector ends at once."""
        items = self.place(edge.target, stop) if edge else (End(),)
        last = items[-1] if items else None
        joins = last is None or isinstance(last, Step) or (isinstance(last, Branch) and last.join is not None)
        return Arm(branch_label(node.type, branch), branch, f"after:{node.id}:{branch or ''}", items, joins)

    def _exits(self, node_id: str) -> list[tuple[str | None, Edge | None]]:
        """(branch, edge) for the node's declared exits in order, then any other connector it has."""
        out = self.graph.out[node_id]
        declared = _declared_exits(self.nodes[node_id])
        pairs = [(b, next((e for e in out if e.branch == b), None)) for b in declared]
        return pairs + [(e.branch, e) for e in out if e.branch not in declared]


def _declared_exits(node: Node) -> list[str]:
    """The exits the node's step type declares from its config; [] for one plain exit or an unknown type."""
    try:
        return steps.get(node.type).exits(node.config)
    except (steps.UnknownStepType, KeyError, TypeError, AttributeError):
        return []


def _branching(node: Node, exits: list) -> bool:
    return bool(_declared_exits(node)) or len(exits) > 1 or any(branch for branch, _ in exits)


def _immediate_post_dominators(graph: Graph, order: list[str]) -> dict[str, str]:
    """node -> its immediate post-dominator (EXIT when only the end of the run follows every path)."""
    dag, postorder = _acyclic(graph, graph.entries() + order)
    pdom: dict[str, frozenset] = {EXIT: frozenset([EXIT])}
    for node in postorder:  # successors come first, so one pass suffices
        after = [pdom[s] for s in dag.get(node, [])] or [pdom[EXIT]]
        pdom[node] = frozenset([node]).union(frozenset.intersection(*after))
    # post-dominators form a chain; the nearest is the one with the most post-dominators of its own
    return {node: max(pdom[node] - {node}, key=lambda d: len(pdom[d])) for node in postorder}


def _acyclic(graph: Graph, roots: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Successors without the connectors that lead back onto a path (a broken draft's cycles), and a postorder."""
    dag: dict[str, list[str]] = {}
    postorder, seen = [], set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack, on_path = [(root, iter(graph.out[root]))], {root}
        while stack:
            node, edges = stack[-1]
            edge = next(edges, None)
            if edge is None:
                stack.pop()
                on_path.discard(node)
                postorder.append(node)
            elif edge.target not in on_path:
                dag.setdefault(node, []).append(edge.target)
                if edge.target not in seen:
                    seen.add(edge.target)
                    on_path.add(edge.target)
                    stack.append((edge.target, iter(graph.out[edge.target])))
    return dag, postorder


# --- words -----------------------------------------------------------------------------------------------------

def branch_label(step_type: str, branch: str | None) -> str:
    """How an exit reads on its connector: Yes / No for an if/else, a split's branch name, an A/B variant..."""
    if branch is None:
        return "Next"
    return BRANCH_WORDS.get((step_type, branch), branch)


def short(text: Any, limit: int = SHORT) -> str:
    """Text on one line, templates shown as {path}, cut to `limit` characters."""
    text = re.sub(r"\{\{\s*([^|}]+?)\s*(\|[^}]*)?\}\}", r"{\1}", str(text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def value_words(value: Any) -> str:
    """A config value as staff read it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(value_words(v) for v in value)
    if isinstance(value, Mapping):
        if set(value) == {"amount", "unit"} and not durations.check_duration(value):
            return durations.describe(value)
        return json.dumps(value, ensure_ascii=False)
    return "empty" if value is None else str(value)


def condition_words(condition: Any) -> str:
    """A short reading of a condition: "contact.status is member" or "2 rules, all must hold"."""
    if not isinstance(condition, Mapping):
        return "No condition set"
    for group, how in (("all", "all must hold"), ("any", "any may hold")):
        if group in condition:
            rules = condition[group] if isinstance(condition[group], list) else []
            return condition_words(rules[0]) if len(rules) == 1 else f"{len(rules)} rules, {how}"
    if "not" in condition:
        return f"not ({condition_words(condition['not'])})"
    operator = conditions.OPERATORS.get(condition.get("operator"), {}).get("label", condition.get("operator"))
    value = condition.get("value")
    if condition.get("operator") == "between" and isinstance(value, list) and len(value) == 2:
        said = f" {value_words(value[0])} and {value_words(value[1])}"
    else:
        said = "" if "value" not in condition else f" {value_words(value)}"
    return short(f"{condition.get('field', '?')} {operator}{said}")


def _duration(value: Any) -> str:
    return durations.describe(value) if not durations.check_duration(value) else "(no duration set)"


def _moment(text: Any) -> str:
    """An ISO date-time as "1 Dec 2026, 09:00"; a template as its path."""
    try:
        moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        return short(text)
    return f"{moment.day} {moment:%b %Y, %H:%M}"


def _message(c: Mapping, *keys: str) -> str:
    if c.get("templateId"):
        return f"Template: {c['templateId']}"
    return next((short(c[k]) for k in keys if c.get(k)), "No text yet")


def _goal(c: Mapping) -> str:
    parts = [f"when {_event(c['event'])} happens"] if c.get("event") else []
    parts += [f"when {condition_words(c['condition'])}"] if c.get("condition") else []
    return "Reached " + " or ".join(parts) if parts else "No event or condition set"


def _event(event: Any) -> str:
    return str(event).replace("_", " ").replace(".", " ")


SUMMARIES = {
    "wait": lambda c: f"Wait {_duration(c.get('duration'))}",
    "wait_until": lambda c: f"Wait until {_moment(c.get('until', '?'))}",
    "wait_for_event": lambda c: f"Wait up to {_duration(c.get('timeout'))} for {_event(c.get('event', '?'))}"
                                + (" (filtered)" if c.get("match") else ""),
    "if_else": lambda c: condition_words(c.get("condition")),
    "split": lambda c: f"{len(c.get('branches') or []) + 1} branches",
    "ab_split": lambda c: " · ".join(f"{v.get('name')} {v.get('percent')}%" for v in c.get("variants") or []),
    "goal": _goal,
    "set_variable": lambda c: short(f"vars.{c.get('name', '?')} = {value_words(c.get('value'))}"),
    "end": lambda c: "The run ends here",
    "send_sms": lambda c: _message(c, "body"),
    "send_email": lambda c: _message(c, "subject", "body"),
    "notify_staff": lambda c: short(c.get("message") or "No message yet"),
    "create_task": lambda c: short(f"Task: {c.get('title', '?')}")
                             + (f" · due in {_duration(c['dueIn'])}" if c.get("dueIn") else ""),
    "assign_owner": lambda c: "Assign the next staff member in turn" if c.get("userId") == "round_robin"
                              else f"Assign to user {c.get('userId', '?')}",
    "add_tag": lambda c: short(f"Add tag {c.get('tag', '?')}"),
    "remove_tag": lambda c: short(f"Remove tag {c.get('tag', '?')}"),
    "update_contact_field": lambda c: short(f"{c.get('field', '?')} = {value_words(c.get('value'))}"),
    "change_lead_status": lambda c: f"Set status to {str(c.get('status', '?')).replace('_', ' ')}",
    "http_request": lambda c: short(f"{c.get('method', 'POST')} {c.get('url', '?')}"),
    "run_workflow": lambda c: f"Start workflow {c.get('workflowId', '?')}",
}


def summary(node: Node, step_type: StepType | None) -> str:
    """The card's line in words: "Wait 10 minutes", "contact.status is member", "Add tag vip"..."""
    if step_type is None:
        return f"Unknown step type {node.type!r}"
    describe = SUMMARIES.get(step_type.key)
    try:
        return describe(node.config) if describe else short(step_type.description)
    except (TypeError, AttributeError, KeyError, ValueError):  # a draft's config can be any shape
        return short(step_type.description)


def trigger_summary(trigger_type: str | None, config: Mapping | None) -> str:
    """The trigger card's line: what its config narrows down, or what the type means."""
    if not trigger_type or not catalog.is_known(trigger_type):
        return "Choose what starts the workflow"
    c, kind = catalog.with_defaults(trigger_type, config if isinstance(config, Mapping) else {}), trigger_type
    lines = {
        "lead_created": lambda: f"Only from {value_words(c['leadSources'])}" if c.get("leadSources")
                                else "Any lead source",
        "form_submitted": lambda: f"Form {c['formId']}" if c.get("formId") else "Choose a form",
        "tag_added": lambda: f"Tag {c['tag']}" if c.get("tag") else "Choose a tag",
        "tag_removed": lambda: f"Tag {c['tag']}" if c.get("tag") else "Choose a tag",
        "membership_expiring": lambda: f"{c.get('daysBefore')} days before the membership expires",
        "payment_failed": lambda: f"From {c['minAmountCents'] / 100:.2f} up" if c.get("minAmountCents")
                                  else "Any amount",
        "schedule": lambda: f"Cron {c.get('cronExpression')}" if c.get("scheduleType") == "cron"
                            else f"Every {value_words(c.get('every'))}",
        "webhook": lambda: f"Endpoint {c['endpointId']}" if c.get("endpointId") else "Any endpoint",
    }
    if kind in ("class_booked", "class_missed", "booking_cancelled"):
        lines[kind] = lambda: f"Only {c.get('className') or c.get('classSessionId')}" \
            if c.get("className") or c.get("classSessionId") else "Any class"
    try:
        line = lines[kind]() if kind in lines else None
    except (TypeError, KeyError, ValueError):
        line = None
    return short(line or catalog.get(kind).description)


def config_rows(node: Node, step_type: StepType | None) -> list[tuple[str, str]]:
    """The node's config as (label, text) pairs for a readable definition list, in the schema's order."""
    properties = step_type.config_schema.get("properties", {}) if step_type else {}
    keys = [k for k in properties if k in node.config] + [k for k in node.config if k not in properties]
    return [(_title(properties.get(key, {}), key), _config_value(key, node.config[key])) for key in keys]


def _title(schema: Mapping, key: str) -> str:
    """The property's own title; a shared type's title ("Duration") says less than the key ("Due in")."""
    title = schema.get("title")
    return title if title and title not in ("Duration", "Condition") else _label(key)


def _label(key: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").lower()
    return words[:1].upper() + words[1:]


def _config_value(key: str, value: Any) -> str:
    """One config value in words: conditions read out, branches and variants listed, the rest as written."""
    if key in ("condition", "match"):
        return _condition_text(value)
    if key == "branches" and isinstance(value, list):
        return "\n".join(f"{b.get('name')}: {_condition_text(b.get('condition'))}" for b in value
                         if isinstance(b, Mapping))
    if key == "variants" and isinstance(value, list):
        return "\n".join(f"{v.get('name')}: {v.get('percent')}%" for v in value if isinstance(v, Mapping))
    if isinstance(value, Mapping) and not (set(value) == {"amount", "unit"}):
        return json.dumps(value, indent=2, ensure_ascii=False)
    return value_words(value)


def _condition_text(condition: Any, depth: int = 0) -> str:
    """A condition with every rule on its own line, groups indented."""
    pad = "  " * depth
    if isinstance(condition, Mapping):
        for group, how in (("all", "All of"), ("any", "Any of")):
            if isinstance(condition.get(group), list):
                return "\n".join([f"{pad}{how}:"] + [_condition_text(c, depth + 1) for c in condition[group]])
        if "not" in condition:
            return f"{pad}Not:\n{_condition_text(condition['not'], depth + 1)}"
    return pad + condition_words(condition)
