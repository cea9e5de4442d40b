"""The builder's editing actions: pure functions from a definition to a new one and a summary of the change.

Every action takes workflowData (a dict), never mutates it, and returns (new workflowData, summary). The result is
always a well-formed graph (unique ids, edges between known nodes); it may still have validation issues (a step not
configured yet), which the draft shows on the card they concern.

Places on the canvas are insertion keys: "start" (before the first step) or "after:<node id>:<branch>" (on the
connector leaving that node along that branch; the branch is empty for a node with one exit).
"""
from __future__ import annotations

import copy
import re
from dataclasses import replace

from atlas.core import durations, steps
from atlas.core.definition import NODE_ID, Edge, Node, WorkflowDefinition
from atlas.core.graph import Graph

START = "start"
# A branching step added without a config still needs exits to wire; A/B split has none until it has variants.
STARTER_CONFIGS = {"ab_split": {"variants": [{"name": "A", "percent": 50}, {"name": "B", "percent": 50}]}}


class EditError(ValueError):
    """An edit that cannot be made; the message says why, in the builder's words."""


# --- the actions -------------------------------------------------------------------------------------------------

def insert_step(definition: dict, at: str, step_type: str, node_id: str | None = None, name: str | None = None,
                config: dict | None = None) -> tuple[dict, str]:
    """Add a step of step_type on the connector `at`; a branching step continues along its first exit."""
    workflow = _parse(definition)
    kind = _step_type(step_type)
    if config is None:
        config = copy.deepcopy(STARTER_CONFIGS.get(step_type, {}))
    if not isinstance(config, dict):
        raise EditError("A step's config must be an object.")
    node = Node(id=_new_id(workflow, node_id, step_type), type=step_type,
                name=(name or "").strip() or default_name(kind, config), config=copy.deepcopy(config))
    return _place(workflow, node, at).to_dict(), f"Added step {_label(node)!r}"


def delete_step(definition: dict, node_id: str, keep_branch: str | None = None) -> tuple[dict, str]:
    """Remove a step, joining what came before it to what came after (a branching step: to the kept branch)."""
    workflow = _parse(definition)
    node = _node(workflow, node_id)
    follower, dropped = _exit_to_keep(workflow, node, keep_branch)
    detached = _detach(workflow, node, follower)
    pruned = _prune(detached, dropped)
    summary = f"Deleted step {_label(node)!r}"
    if keep_branch is not None and dropped:
        summary += f", keeping its {keep_branch!r} branch"
        if pruned:
            summary += f" and removing {len(pruned)} step{'s' if len(pruned) != 1 else ''} of the other branches"
    gone = set(pruned)
    return WorkflowDefinition(nodes=tuple(n for n in detached.nodes if n.id not in gone),
                              edges=tuple(e for e in detached.edges if e.source not in gone
                                          and e.target not in gone)).to_dict(), summary


def rename_step(definition: dict, node_id: str, name: str) -> tuple[dict, str]:
    """Give a step a new display name (its id, which templates use, stays)."""
    workflow = _parse(definition)
    node = _node(workflow, node_id)
    new_name = (name or "").strip() if isinstance(name, str) else ""
    if not new_name:
        raise EditError("A step's name cannot be empty.")
    if len(new_name) > 120:
        raise EditError("A step's name can be at most 120 characters.")
    renamed = replace(node, name=new_name)
    return _swap(workflow, renamed).to_dict(), f"Renamed {_label(node)!r} to {new_name!r}"


def duplicate_step(definition: dict, node_id: str) -> tuple[dict, str]:
    """Copy a step (config included) and place the copy right after the original."""
    workflow = _parse(definition)
    node = _node(workflow, node_id)
    if _is_terminal(node):
        raise EditError(f"{_label(node)!r} ends the run, so a copy cannot follow it; add a new step instead.")
    exits = _exits(node)
    copy_ = Node(id=_new_id(workflow, None, node.type), type=node.type, name=f"{_label(node)} (copy)",
                 config=copy.deepcopy(node.config))
    placed = _place(workflow, copy_, f"after:{node.id}:{exits[0] if exits else ''}")
    return placed.to_dict(), f"Duplicated step {_label(node)!r}"


def move_step(definition: dict, node_id: str, to: str) -> tuple[dict, str]:
    """Take a step out of its place (joining its neighbours) and put it on the connector `to`."""
    workflow = _parse(definition)
    node = _node(workflow, node_id)
    source, _ = parse_at(to)
    if source == node.id:
        raise EditError(f"{_label(node)!r} cannot be moved after itself.")
    outs = Graph(workflow).out[node.id]
    if len(outs) > 1 or any(e.branch for e in outs):
        raise EditError(f"{_label(node)!r} has branches, so it cannot be moved; move the steps around it instead.")
    follower = outs[0].target if outs else None
    detached = _detach(workflow, node, follower)
    moved = _place(detached, replace(node), to)
    where = "to the start" if source is None else f"after {_label(_node(moved, source))!r}"
    return moved.to_dict(), f"Moved step {_label(node)!r} {where}"


def set_config(definition: dict, node_id: str, config: dict) -> tuple[dict, str]:
    """Replace a step's config (validation, not this function, says whether it is complete)."""
    workflow = _parse(definition)
    node = _node(workflow, node_id)
    if not isinstance(config, dict):
        raise EditError("A step's config must be an object.")
    changed = replace(node, config=copy.deepcopy(config))
    return _swap(workflow, changed).to_dict(), f"Changed config of {_label(node)!r}"


# --- names, ids and places ---------------------------------------------------------------------------------------

def parse_at(at: str) -> tuple[str | None, str | None]:
    """An insertion key as (source node id or None for the start, branch or None)."""
    if at == START:
        return None, None
    parts = at.split(":", 2) if isinstance(at, str) else []
    if len(parts) != 3 or parts[0] != "after" or not parts[1]:
        raise EditError(f"{at!r} is not a place on the canvas; use 'start', 'after:<step id>:<branch>' or "
                        "'before:<step id>'.")
    return parts[1], parts[2] or None


def _place_before(workflow: WorkflowDefinition, node: Node, target_id: str) -> WorkflowDefinition:
    """Put a node in front of target: every connector into target now leads to the node (where branches join)."""
    target = _node(workflow, target_id)
    if _is_terminal(node):
        raise EditError(f"{_label(node)!r} ends the run, so it can only go where a path ends.")
    exits = _exits(node)
    edges = [Edge(e.source, node.id, e.branch) if e.target == target.id else e for e in workflow.edges]
    edges.append(Edge(node.id, target.id, exits[0] if exits else None))
    at_index = workflow.nodes.index(target)
    return WorkflowDefinition(nodes=(*workflow.nodes[:at_index], node, *workflow.nodes[at_index:]),
                              edges=tuple(edges))


def default_name(kind, config: dict) -> str:
    """A card's name before anyone renames it: the step type's, with a wait's duration in words."""
    if kind.key == "wait" and durations.check_duration(config.get("duration")) is None and "duration" in config:
        return f"Wait {durations.describe(config['duration'])}"
    return kind.name


def unique_id(taken: set[str], base: str) -> str:
    """An identifier-style id from base (a step type) not in taken: send_sms, send_sms_2, ..."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", base).strip("_")[:56] or "step"
    if not re.match(r"[A-Za-z_]", stem):
        stem = f"step_{stem}"
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}_{n}", n + 1
    return candidate


def _new_id(workflow: WorkflowDefinition, node_id: str | None, step_type: str) -> str:
    if node_id is None:
        return unique_id(workflow.node_ids, step_type)
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        raise EditError(f"{node_id!r} cannot be a step id: use letters, digits and underscores, starting with a "
                        "letter or underscore, at most 64 characters.")
    if node_id in workflow.node_ids:
        raise EditError(f"There is already a step with id {node_id!r}.")
    return node_id


def _label(node: Node) -> str:
    return node.name or node.id


# --- graph surgery -----------------------------------------------------------------------------------------------

def _parse(definition: dict) -> WorkflowDefinition:
    """A private deep copy of the definition, parsed (DefinitionError if it is malformed)."""
    return WorkflowDefinition.from_dict(copy.deepcopy(definition))


def _node(workflow: WorkflowDefinition, node_id: str) -> Node:
    for node in workflow.nodes:
        if node.id == node_id:
            return node
    raise EditError(f"There is no step {node_id!r} in this workflow.")


def _step_type(key: str):
    try:
        return steps.get(key)
    except steps.UnknownStepType:
        raise EditError(f"{key!r} is not a step type.") from None


def _known(node: Node):
    try:
        return steps.get(node.type)
    except steps.UnknownStepType:
        return None


def _exits(node: Node) -> list[str]:
    """The node's branch names ([] for one unnamed exit); a config too broken to name them has none."""
    kind = _known(node)
    try:
        return kind.exits(node.config) if kind else []
    except (KeyError, TypeError, AttributeError):
        return []


def _is_branching(node: Node) -> bool:
    kind = _known(node)
    return bool(kind and kind.branches)


def _is_terminal(node: Node) -> bool:
    kind = _known(node)
    return bool(kind and kind.terminal)


def _swap(workflow: WorkflowDefinition, node: Node) -> WorkflowDefinition:
    """The same workflow with one node replaced by its new self."""
    return replace(workflow, nodes=tuple(node if n.id == node.id else n for n in workflow.nodes))


def _place(workflow: WorkflowDefinition, node: Node, at: str) -> WorkflowDefinition:
    """Put a node that is not in the workflow on the connector `at`, rewiring that connector through it."""
    if isinstance(at, str) and at.startswith("before:") and at[len("before:"):]:
        return _place_before(workflow, node, at[len("before:"):])
    source, branch = parse_at(at)
    graph = Graph(workflow)
    edges = list(workflow.edges)
    if source is None:
        entries = graph.entries()
        follower = entries[0] if entries else None
        nodes = [node, *workflow.nodes]
        incoming = None
    else:
        before = _node(workflow, source)
        _check_exit(before, branch)
        old = next((e for e in graph.out[source] if e.branch == branch), None)
        follower = old.target if old else None
        if old:
            edges.remove(old)
        at_index = workflow.nodes.index(before) + 1
        nodes = [*workflow.nodes[:at_index], node, *workflow.nodes[at_index:]]
        incoming = Edge(source, node.id, branch)
    if follower and _is_terminal(node):
        raise EditError(f"{_label(node)!r} ends the run, so it can only go where a path ends.")
    if incoming:
        edges.append(incoming)
    if follower:
        exits = _exits(node)
        edges.append(Edge(node.id, follower, exits[0] if exits else None))
    return WorkflowDefinition(nodes=tuple(nodes), edges=tuple(edges))


def _check_exit(node: Node, branch: str | None) -> None:
    """Whether a step can be added on this exit of node."""
    if _is_terminal(node):
        raise EditError(f"{_label(node)!r} ends the run; nothing can follow it.")
    exits = _exits(node)
    if exits and branch not in exits:
        raise EditError(f"{_label(node)!r} has no branch {branch!r}; its branches are {', '.join(exits)}.")
    if not _is_branching(node) and branch is not None:
        raise EditError(f"{_label(node)!r} has one exit, not a branch {branch!r}.")


def branches_of(workflow: WorkflowDefinition, node: Node) -> list[str]:
    """The branches a node has: its type's exits and any other labels its connectors carry."""
    labels = _exits(node)
    return labels + [e.branch for e in Graph(workflow).out[node.id] if e.branch and e.branch not in labels]


def _exit_to_keep(workflow: WorkflowDefinition, node: Node, keep_branch: str | None) -> tuple[str | None, list[str]]:
    """What follows the node once it is gone, and the heads of the branches that are dropped."""
    outs = Graph(workflow).out[node.id]
    if not (_is_branching(node) or len(outs) > 1 or any(e.branch for e in outs)) or not outs:
        return (outs[0].target if outs else None), []
    names = branches_of(workflow, node)
    if keep_branch is None:
        raise EditError(f"{_label(node)!r} has branches ({', '.join(names)}); choose the branch that stays "
                        "connected (keep_branch). Steps only on the other branches are deleted with it.")
    if keep_branch not in names:
        raise EditError(f"{_label(node)!r} has no branch {keep_branch!r}; its branches are {', '.join(names)}.")
    kept = next((e.target for e in outs if e.branch == keep_branch), None)
    return kept, [e.target for e in outs if e.branch != keep_branch]


def _detach(workflow: WorkflowDefinition, node: Node, follower: str | None) -> WorkflowDefinition:
    """The workflow without node: each connector into it now leads to follower (or ends there)."""
    edges: list[Edge] = []
    for edge in workflow.edges:
        if node.id not in (edge.source, edge.target):
            edges.append(edge)
        elif edge.target == node.id and follower and follower != edge.source:
            edges.append(Edge(edge.source, follower, edge.branch))
    unique = list(dict.fromkeys(edges))
    return WorkflowDefinition(nodes=tuple(n for n in workflow.nodes if n.id != node.id), edges=tuple(unique))


def _prune(workflow: WorkflowDefinition, heads: list[str]) -> list[str]:
    """Node ids reachable from the dropped branch heads that nothing else reaches any more."""
    if not heads:
        return []
    graph = Graph(workflow)
    candidates: set[str] = set()
    for head in heads:
        if head in workflow.node_ids:
            candidates |= graph.reachable(head)
    still_reached: set[str] = set()
    for other in workflow.node_ids - candidates:
        still_reached |= graph.reachable(other)
    return [n.id for n in workflow.nodes if n.id in candidates - still_reached]


# --- what changed between two versions ---------------------------------------------------------------------------

def change_summary(before: dict, after: dict) -> list[str]:
    """What a person would say changed: steps added, removed, renamed, re-configured, moved; trigger; settings.

    before and after hold workflow_data, trigger_type, trigger_config and settings."""
    old, new = _by_id(before.get("workflow_data")), _by_id(after.get("workflow_data"))
    lines = [f"Added step {_name(new[i])!r}" for i in new if i not in old]
    lines += [f"Removed step {_name(old[i])!r}" for i in old if i not in new]
    for node_id in (i for i in new if i in old):
        was, now = old[node_id], new[node_id]
        if _name(was) != _name(now):
            lines.append(f"Renamed {_name(was)!r} to {_name(now)!r}")
        if was.get("type") != now.get("type"):
            lines.append(f"Changed {_name(now)!r} from {was.get('type')} to {now.get('type')}")
        elif was.get("config") != now.get("config"):
            lines.append(f"Changed config of {_name(now)!r}")
    common = old.keys() & new.keys()
    if _order(before.get("workflow_data"), common) != _order(after.get("workflow_data"), common):
        lines.append("Moved or reconnected steps")
    return lines + _trigger_and_settings(before, after)


def _trigger_and_settings(before: dict, after: dict) -> list[str]:
    lines = []
    if before.get("trigger_type") != after.get("trigger_type"):
        lines.append(f"Changed the trigger from {before.get('trigger_type')} to {after.get('trigger_type')}")
    elif (before.get("trigger_config") or {}) != (after.get("trigger_config") or {}):
        lines.append("Changed the trigger's settings")
    old, new = before.get("settings") or {}, after.get("settings") or {}
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if keys:
        lines.append(f"Changed workflow settings: {', '.join(keys)}")
    return lines


def _by_id(data) -> dict[str, dict]:
    nodes = (data or {}).get("nodes", []) if isinstance(data, dict) else []
    return {n["id"]: n for n in nodes if isinstance(n, dict) and "id" in n}


def _name(node: dict) -> str:
    return node.get("name") or node["id"]


def _order(data, ids: set[str]) -> dict[str, set[str]]:
    """For each kept step, the kept steps that can run before it (inserting or deleting a step changes none)."""
    try:
        graph = Graph(WorkflowDefinition.from_dict(data))
    except ValueError:
        return {}
    return {node_id: graph.ancestors(node_id) & ids for node_id in ids}
