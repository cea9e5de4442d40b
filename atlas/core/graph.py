"""Graph facts about a definition: entry, successors, reachability, cycles, what runs before a node."""
from __future__ import annotations

from collections import defaultdict

from atlas.core.definition import Edge, WorkflowDefinition


class Graph:
    """Adjacency of a definition, computed once."""

    def __init__(self, definition: WorkflowDefinition):
        self.definition = definition
        self.out: dict[str, list[Edge]] = defaultdict(list)
        self.incoming: dict[str, list[Edge]] = defaultdict(list)
        for edge in definition.edges:
            self.out[edge.source].append(edge)
            self.incoming[edge.target].append(edge)

    def entries(self) -> list[str]:
        """Nodes with no incoming edge, in definition order."""
        return [n.id for n in self.definition.nodes if not self.incoming[n.id]]

    def reachable(self, start: str) -> set[str]:
        """Node ids reachable from start, start included."""
        seen, stack = {start}, [start]
        while stack:
            for edge in self.out[stack.pop()]:
                if edge.target not in seen:
                    seen.add(edge.target)
                    stack.append(edge.target)
        return seen

    def cycle(self) -> list[str] | None:
        """One cycle as a list of node ids, or None (iterative depth-first search)."""
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        for root in (n.id for n in self.definition.nodes):
            if root in state:
                continue
            path, stack = [], [(root, iter(self.out[root]))]
            state[root] = 1
            path.append(root)
            while stack:
                node, edges = stack[-1]
                edge = next(edges, None)
                if edge is None:
                    state[node] = 2
                    stack.pop()
                    path.pop()
                elif state.get(edge.target) == 1:
                    return path[path.index(edge.target):] + [edge.target]
                elif edge.target not in state:
                    state[edge.target] = 1
                    path.append(edge.target)
                    stack.append((edge.target, iter(self.out[edge.target])))
        return None

    def ancestors(self, node_id: str) -> set[str]:
        """Nodes from which node_id can be reached (the steps that may have run before it)."""
        seen, stack = set(), [node_id]
        while stack:
            for edge in self.incoming[stack.pop()]:
                if edge.source not in seen:
                    seen.add(edge.source)
                    stack.append(edge.source)
        seen.discard(node_id)
        return seen

    def next_node(self, node_id: str, branch: str | None) -> str | None:
        """Where a run goes from node_id along branch (None: the unlabelled exit)."""
        for edge in self.out[node_id]:
            if edge.branch == branch:
                return edge.target
        return None
