"""The workflow definition (workflowData): nodes joined by edges, parsed from JSON."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
# Ids appear in templates as steps.<id>.output, so they are identifiers.
NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class DefinitionError(ValueError):
    """workflowData is not shaped like a definition; carries every problem found."""

    def __init__(self, issues: list[dict]):
        super().__init__("; ".join(i["message"] for i in issues))
        self.issues = issues


@dataclass(frozen=True)
class Node:
    """One step of a workflow: a step type with its config."""

    id: str
    type: str
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    position: dict[str, float] | None = None


@dataclass(frozen=True)
class Edge:
    """A connector from one node to the next; branch names the exit of a branching node."""

    source: str
    target: str
    branch: str | None = None


@dataclass(frozen=True)
class WorkflowDefinition:
    """A parsed workflowData document."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    schema_version: int = SCHEMA_VERSION

    @property
    def node_ids(self) -> set[str]:
        """The ids of every node."""
        return {n.id for n in self.nodes}

    @classmethod
    def from_dict(cls, data: Any) -> WorkflowDefinition:
        """Parse workflowData; raises DefinitionError listing every structural problem."""
        issues: list[dict] = []
        if not isinstance(data, dict):
            raise DefinitionError([_issue("NOT_AN_OBJECT", "workflowData must be a JSON object.")])
        version = data.get("schemaVersion", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            issues.append(_issue("UNSUPPORTED_SCHEMA_VERSION", f"schemaVersion {version!r} is not supported; use 1."))
        nodes = _parse_list(data, "nodes", _parse_node, issues)
        edges = _parse_list(data, "edges", _parse_edge, issues)
        _check_ids(nodes, edges, issues)
        if issues:
            raise DefinitionError(issues)
        return cls(nodes=tuple(nodes), edges=tuple(edges))

    def to_dict(self) -> dict:
        """The JSON form, as stored and returned by the API."""
        return {
            "schemaVersion": self.schema_version,
            "nodes": [{"id": n.id, "type": n.type, "name": n.name, "config": n.config,
                       **({"position": n.position} if n.position else {})} for n in self.nodes],
            "edges": [{"source": e.source, "target": e.target, **({"branch": e.branch} if e.branch else {})}
                      for e in self.edges],
        }


def _issue(code: str, message: str, node_id: str | None = None) -> dict:
    return {"severity": "error", "code": code, "message": message, "node_id": node_id}


def _parse_list(data: dict, key: str, parse, issues: list[dict]) -> list:
    """Parse data[key] as a list of items; missing means empty."""
    raw = data.get(key, [])
    if not isinstance(raw, list):
        issues.append(_issue("NOT_A_LIST", f"workflowData.{key} must be a list."))
        return []
    parsed = [parse(i, item, issues) for i, item in enumerate(raw)]
    return [p for p in parsed if p is not None]


def _parse_node(index: int, raw: Any, issues: list[dict]) -> Node | None:
    where = f"nodes[{index}]"
    if not isinstance(raw, dict):
        issues.append(_issue("INVALID_NODE", f"{where} must be an object."))
        return None
    node_id, node_type = raw.get("id"), raw.get("type")
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        issues.append(_issue("INVALID_NODE", f"{where}.id must be letters, digits and underscores, starting with a "
                                             "letter or underscore, at most 64 characters (it is used as steps.<id>)."))
        return None
    if not isinstance(node_type, str) or not node_type.strip():
        issues.append(_issue("INVALID_NODE", f"{where}.type must be a non-empty string.", node_id))
        return None
    config = raw.get("config", {})
    if not isinstance(config, dict):
        issues.append(_issue("INVALID_NODE", f"{where}.config must be an object.", node_id))
        return None
    position = raw.get("position")
    if position is not None and not (isinstance(position, dict) and set(position) == {"x", "y"} and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in position.values())):
        issues.append(_issue("INVALID_NODE", f"{where}.position must be {{x, y}} numbers.", node_id))
        return None
    return Node(id=node_id, type=node_type, name=str(raw.get("name") or ""), config=config, position=position)


def _parse_edge(index: int, raw: Any, issues: list[dict]) -> Edge | None:
    where = f"edges[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("source"), str) or not isinstance(raw.get("target"), str):
        issues.append(_issue("INVALID_EDGE", f"{where} must be an object with string source and target."))
        return None
    branch = raw.get("branch")
    if branch is not None and not isinstance(branch, str):
        issues.append(_issue("INVALID_EDGE", f"{where}.branch must be a string.", raw["source"]))
        return None
    return Edge(source=raw["source"], target=raw["target"], branch=branch)


def _check_ids(nodes: list[Node], edges: list[Edge], issues: list[dict]) -> None:
    """Node ids are unique and every edge joins two known nodes."""
    seen: set[str] = set()
    for node in nodes:
        if node.id in seen:
            issues.append(_issue("DUPLICATE_NODE_ID", f"Node id {node.id!r} is used more than once.", node.id))
        seen.add(node.id)
    for edge in edges:
        for end in ("source", "target"):
            ref = getattr(edge, end)
            if ref not in seen:
                issues.append(_issue("UNKNOWN_NODE", f"An edge's {end} names unknown node {ref!r}.", edge.source))
