"""validate(definition): graph checks, every issue at once, each naming its node; the performance estimate."""
import pytest

from atlas.core.definition import WorkflowDefinition
from atlas.core.validation import estimate_performance, has_errors, validate


def graph(edges: str, extra_nodes: str = "") -> WorkflowDefinition:
    """'a>b b>c' -> a definition with those edges (and any extra, unconnected nodes)."""
    pairs = [tuple(e.split(">")) for e in edges.split()]
    ids = list(dict.fromkeys([n for pair in pairs for n in pair] + extra_nodes.split()))
    return WorkflowDefinition.from_dict({"nodes": [{"id": n, "type": "wait"} for n in ids],
                                         "edges": [{"source": s, "target": t} for s, t in pairs]})


def codes(definition) -> list[tuple[str, str, str | None]]:
    return [(i["severity"], i["code"], i["node_id"]) for i in validate(definition)]


@pytest.mark.parametrize("edges", ["a>b", "a>b b>c c>d", "a>b a>c b>d c>d", "a>b b>c c>b"])
def test_a_connected_graph_with_one_first_step_is_valid(edges):
    assert validate(graph(edges)) == []


def test_a_single_step_is_valid():
    assert validate(graph("", "only")) == []


def test_an_empty_workflow_is_only_a_warning():
    issues = validate(WorkflowDefinition.from_dict({}))

    assert issues == [{"severity": "warning", "code": "EMPTY_WORKFLOW", "node_id": None,
                       "message": "The workflow has no steps yet; add one before activating."}]
    assert not has_errors(issues)


def test_two_first_steps():
    [issue] = validate(graph("a>c b>c"))

    assert (issue["severity"], issue["code"], issue["node_id"]) == ("error", "ENTRY_NOT_UNIQUE", "a")
    assert issue["message"] == ("The workflow has 2 first steps (a, b); connect them so that exactly one step has "
                                "no incoming connector.")


def test_a_closed_loop_has_no_first_step():
    [issue] = validate(graph("a>b b>a"))

    assert (issue["code"], issue["node_id"]) == ("ENTRY_NOT_UNIQUE", None)
    assert issue["message"] == "Every step has an incoming connector, so the workflow has no first step."


def test_every_unreachable_step_is_named():
    assert codes(graph("a>b c>d d>c")) == [("error", "UNREACHABLE_NODE", "c"), ("error", "UNREACHABLE_NODE", "d")]
    assert validate(graph("a>b c>d d>c"))[0]["message"] == "Step 'c' cannot be reached."


@pytest.mark.parametrize("issues, expected", [
    ([], False),
    ([{"severity": "warning"}, {"severity": "suggestion"}], False),
    ([{"severity": "warning"}, {"severity": "error"}], True),
])
def test_has_errors(issues, expected):
    assert has_errors(issues) is expected


def test_the_estimate_admits_there_is_no_history():
    estimate = estimate_performance(graph("a>b b>c"))

    assert estimate["basis"] == "none" and estimate["step_count"] == 3
    assert estimate["estimated_duration_ms"] is None
    assert estimate["note"].startswith("No execution history yet")
