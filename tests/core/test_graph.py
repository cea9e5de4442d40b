"""Graph facts: entries, reachability, cycles, ancestors, next node."""
import pytest

from atlas.core.definition import WorkflowDefinition
from atlas.core.graph import Graph


def graph(edges: str, extra: str = "") -> Graph:
    """'a>b b:true>c' -> a graph with those edges (branch after a colon) plus unconnected nodes."""
    parsed = []
    for text in edges.split():
        source, target = text.split(">")
        source, _, branch = source.partition(":")
        parsed.append({"source": source, "target": target, **({"branch": branch} if branch else {})})
    ids = list(dict.fromkeys([n for e in parsed for n in (e["source"], e["target"])] + extra.split()))
    return Graph(WorkflowDefinition.from_dict({"nodes": [{"id": n, "type": "end"} for n in ids], "edges": parsed}))


@pytest.mark.parametrize("edges, extra, entries", [
    ("a>b b>c", "", ["a"]), ("a>c b>c", "", ["a", "b"]), ("a>b b>a", "", []), ("a>b", "z", ["a", "z"])])
def test_entries(edges, extra, entries):
    assert graph(edges, extra).entries() == entries


def test_reachable_follows_every_branch():
    assert graph("a:true>b a:false>c c>d x>y").reachable("a") == {"a", "b", "c", "d"}


@pytest.mark.parametrize("edges, cycle", [
    ("a>b b>c", None), ("a>b a>c b>d c>d", None), ("a>b b>c c>a", ["a", "b", "c", "a"]),
    ("a>b b>c c>b", ["b", "c", "b"]), ("a>a", ["a", "a"])])
def test_cycle(edges, cycle):
    assert graph(edges).cycle() == cycle


def test_ancestors_are_every_step_that_can_run_before():
    g = graph("a:true>b a:false>c b>d c>d d>e")
    assert g.ancestors("d") == {"a", "b", "c"} and g.ancestors("b") == {"a"} and g.ancestors("a") == set()


def test_next_node_by_branch():
    g = graph("a:true>b a:false>c c>d")
    assert (g.next_node("a", "true"), g.next_node("a", "false"), g.next_node("c", None), g.next_node("d", None)) == (
        "b", "c", "d", None)
