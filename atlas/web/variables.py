"""What a step's templates and conditions can read at a node: the variable picker's list.

variables_for(definition, node_id, trigger_type) -> [{"path", "label", "group", "type"?}], in four groups: the contact,
the trigger's data, workflow variables set earlier and earlier steps' outputs. "Earlier" means a step from which
node_id can be reached (it ran before on some path); steps on other branches or after the node are left out.
"""
from __future__ import annotations

from collections import defaultdict, deque
from typing import Any, Mapping

from atlas.core import steps, triggers
from atlas.web.schema_forms import humanise

CONTACT_FIELDS = [("first_name", "First name", "string"), ("last_name", "Last name", "string"),
                  ("name", "Full name", "string"), ("email", "Email", "string"), ("phone", "Phone", "string"),
                  ("status", "Lead status", "string"), ("lead_source", "Lead source", "string"),
                  ("owner_id", "Owner", "string"), ("timezone", "Time zone", "string"),
                  ("birthday", "Birthday", "string"), ("email_opt_out", "Email opt-out", "boolean"),
                  ("sms_opt_out", "SMS opt-out", "boolean"), ("tags", "Tags", "array"),
                  ("created_at", "Created at", "string"), ("id", "Contact id", "string")]
FIELD_TYPES = {"number": "number", "boolean": "boolean"}


def variables_for(definition: Mapping | None, node_id: str, trigger_type: str, *,
                  custom_fields=()) -> list[dict]:
    """Every data path a template or condition at node_id can read, grouped for the picker."""
    found = [_var(f"contact.{key}", label, "Contact", kind) for key, label, kind in CONTACT_FIELDS]
    found += [_var(f"contact.custom.{c['key']}", c.get("label") or c["key"], "Contact: custom fields",
                   FIELD_TYPES.get(c.get("field_type"), "string")) for c in custom_fields]
    found += _trigger_vars(trigger_type)
    earlier = earlier_nodes(definition or {}, node_id)
    found += [_var(f"vars.{n['config']['name']}", n["config"]["name"], "Workflow variables")
              for n in earlier if n.get("type") == "set_variable" and isinstance(n.get("config"), Mapping)
              and isinstance(n["config"].get("name"), str) and n["config"]["name"]]
    for node in earlier:
        found += _output_vars(node)
    return _unique(found)


def _var(path: str, label: str, group: str, kind: str | None = None) -> dict:
    return {"path": path, "label": label, "group": group, **({"type": kind} if kind else {})}


def _trigger_vars(trigger_type: str) -> list[dict]:
    if not triggers.is_known(trigger_type):
        return []
    trigger = triggers.get(trigger_type)
    group = f"Trigger: {trigger.name}"
    return [_var(path, humanise(path.split(".", 1)[1]), group, _kind(_sample(trigger.sample_payload, path)))
            for path in trigger.provides]


def _sample(payload: Mapping, path: str) -> Any:
    value: Any = payload
    for part in path.split(".")[1:]:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, (int, float)) else None


def _output_vars(node: Mapping) -> list[dict]:
    """steps.<id>.output.<key> for each key of the node's step type's output schema."""
    try:
        step_type = steps.get(node.get("type", ""))
    except steps.UnknownStepType:
        return []
    group = f"{node.get('name') or step_type.name} ({node['id']})"
    props = step_type.output_schema.get("properties", {})
    return [_var(f"steps.{node['id']}.output.{key}", humanise(key), group, _kind_of_schema(schema))
            for key, schema in props.items()]


def _kind_of_schema(schema: Mapping) -> str | None:
    kind = schema.get("type")
    return {"boolean": "boolean", "integer": "number", "number": "number"}.get(kind) if isinstance(kind, str) else None


def _unique(found: list[dict]) -> list[dict]:
    seen, out = set(), []
    for item in found:
        if item["path"] not in seen:
            seen.add(item["path"])
            out.append(item)
    return out


def earlier_nodes(definition: Mapping, node_id: str) -> list[dict]:
    """The nodes from which node_id can be reached, nearest the start first (breadth-first from the entries)."""
    nodes = [n for n in definition.get("nodes") or [] if isinstance(n, Mapping) and isinstance(n.get("id"), str)]
    incoming, outgoing = defaultdict(list), defaultdict(list)
    for edge in definition.get("edges") or []:
        if isinstance(edge, Mapping):
            incoming[edge.get("target")].append(edge.get("source"))
            outgoing[edge.get("source")].append(edge.get("target"))
    before, stack = set(), [node_id]
    while stack:
        for source in incoming[stack.pop()]:
            if source not in before and source != node_id:
                before.add(source)
                stack.append(source)
    return [n for n in _breadth_first(nodes, incoming, outgoing) if n["id"] in before]


def _breadth_first(nodes: list[dict], incoming, outgoing) -> list[dict]:
    """The nodes in breadth-first order from the entries (nodes with no incoming edge), then any left over."""
    by_id = {n["id"]: n for n in nodes}
    queue, seen, order = deque(n["id"] for n in nodes if not incoming[n["id"]]), set(), []
    while queue:
        current = queue.popleft()
        if current in seen or current not in by_id:
            continue
        seen.add(current)
        order.append(by_id[current])
        queue.extend(outgoing[current])
    return order + [n for n in nodes if n["id"] not in seen]
