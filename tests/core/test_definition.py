"""WorkflowDefinition.from_dict / to_dict: parsing workflowData and reporting every structural problem at once."""
import dataclasses

import pytest

from atlas.core.definition import SCHEMA_VERSION, DefinitionError, Edge, Node, WorkflowDefinition

DATA = {
    "schemaVersion": 1,
    "nodes": [{"id": "start", "type": "send_sms", "name": "Welcome text", "config": {"body": "Hi {{ lead.name }}"}},
              {"id": "check", "type": "if_else", "name": "Booked?", "config": {}},
              {"id": "email", "type": "send_email", "name": "", "config": {}}],
    "edges": [{"source": "start", "target": "check"}, {"source": "check", "target": "email", "branch": "no"}],
}


def problems(data) -> list[tuple[str, str, str | None]]:
    """(code, message, node_id) of every issue from_dict reports."""
    with pytest.raises(DefinitionError) as caught:
        WorkflowDefinition.from_dict(data)
    assert all(i["severity"] == "error" for i in caught.value.issues)
    return [(i["code"], i["message"], i["node_id"]) for i in caught.value.issues]


def test_parses_nodes_and_edges():
    definition = WorkflowDefinition.from_dict(DATA)

    assert definition.nodes[0] == Node("start", "send_sms", "Welcome text", {"body": "Hi {{ lead.name }}"})
    assert definition.edges == (Edge("start", "check"), Edge("check", "email", "no"))
    assert definition.node_ids == {"start", "check", "email"}
    assert definition.schema_version == SCHEMA_VERSION == 1


def test_positions_are_kept_when_given():
    data = {"schemaVersion": 1, "nodes": [{"id": "a", "type": "wait", "name": "", "config": {},
                                           "position": {"x": 10, "y": 20.5}}], "edges": []}
    assert WorkflowDefinition.from_dict(data).to_dict() == data


def test_round_trips_through_to_dict():
    definition = WorkflowDefinition.from_dict(DATA)

    assert definition.to_dict() == DATA
    assert WorkflowDefinition.from_dict(definition.to_dict()) == definition


def test_fills_in_defaults():
    definition = WorkflowDefinition.from_dict({"nodes": [{"id": "a", "type": "wait", "name": None}]})

    assert definition.to_dict() == {
        "schemaVersion": 1, "nodes": [{"id": "a", "type": "wait", "name": "", "config": {}}], "edges": []}


def test_an_empty_document_is_an_empty_definition():
    assert WorkflowDefinition.from_dict({}) == WorkflowDefinition(nodes=(), edges=())


def test_is_immutable():
    definition = WorkflowDefinition.from_dict(DATA)

    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.nodes[0].type = "http_request"
    with pytest.raises(dataclasses.FrozenInstanceError):
        definition.edges = ()


@pytest.mark.parametrize("data", [[], "nodes", None, 3])
def test_must_be_an_object(data):
    assert problems(data) == [("NOT_AN_OBJECT", "workflowData must be a JSON object.", None)]


ID_RULE = ("nodes[0].id must be letters, digits and underscores, starting with a letter or underscore, at most 64 characters (it is used as steps.<id>).")


@pytest.mark.parametrize("data, expected", [
    ({"schemaVersion": 2}, ("UNSUPPORTED_SCHEMA_VERSION", "schemaVersion 2 is not supported; use 1.", None)),
    ({"schemaVersion": "1"}, ("UNSUPPORTED_SCHEMA_VERSION", "schemaVersion '1' is not supported; use 1.", None)),
    ({"nodes": {"a": {}}}, ("NOT_A_LIST", "workflowData.nodes must be a list.", None)),
    ({"edges": "a->b"}, ("NOT_A_LIST", "workflowData.edges must be a list.", None)),
    ({"nodes": ["a"]}, ("INVALID_NODE", "nodes[0] must be an object.", None)),
    ({"nodes": [{"type": "wait"}]}, ("INVALID_NODE", ID_RULE, None)),
    ({"nodes": [{"id": "  ", "type": "wait"}]}, ("INVALID_NODE", ID_RULE, None)),
    ({"nodes": [{"id": 1, "type": "wait"}]}, ("INVALID_NODE", ID_RULE, None)),
    ({"nodes": [{"id": "send-sms", "type": "wait"}]}, ("INVALID_NODE", ID_RULE, None)),
    ({"nodes": [{"id": "1st", "type": "wait"}]}, ("INVALID_NODE", ID_RULE, None)),
    ({"nodes": [{"id": "a", "type": "wait", "position": {"x": 1}}]},
     ("INVALID_NODE", "nodes[0].position must be {x, y} numbers.", "a")),
    ({"nodes": [{"id": "a"}]}, ("INVALID_NODE", "nodes[0].type must be a non-empty string.", "a")),
    ({"nodes": [{"id": "a", "type": "wait", "config": []}]},
     ("INVALID_NODE", "nodes[0].config must be an object.", "a")),
    ({"nodes": [{"id": "a", "type": "wait"}], "edges": [["a", "a"]]},
     ("INVALID_EDGE", "edges[0] must be an object with string source and target.", None)),
    ({"nodes": [{"id": "a", "type": "wait"}], "edges": [{"source": "a"}]},
     ("INVALID_EDGE", "edges[0] must be an object with string source and target.", None)),
    ({"nodes": [{"id": "a", "type": "wait"}], "edges": [{"source": "a", "target": "a", "branch": 1}]},
     ("INVALID_EDGE", "edges[0].branch must be a string.", "a")),
    ({"nodes": [{"id": "a", "type": "wait"}, {"id": "a", "type": "send_sms"}]},
     ("DUPLICATE_NODE_ID", "Node id 'a' is used more than once.", "a")),
    ({"nodes": [{"id": "a", "type": "wait"}], "edges": [{"source": "ghost", "target": "a"}]},
     ("UNKNOWN_NODE", "An edge's source names unknown node 'ghost'.", "ghost")),
])
def test_each_structural_problem(data, expected):
    assert problems(data) == [expected]


def test_every_problem_is_reported_at_once():
    data = {"schemaVersion": 3,
            "nodes": [{"id": "a", "type": "wait"}, "b", {"id": "a", "type": "wait"}, {"id": "c"}],
            "edges": [{"source": "a", "target": "b"}, {"source": "x", "target": "y"}, 7]}

    assert [code for code, _, _ in problems(data)] == [
        "UNSUPPORTED_SCHEMA_VERSION", "INVALID_NODE", "INVALID_NODE", "INVALID_EDGE", "DUPLICATE_NODE_ID",
        "UNKNOWN_NODE", "UNKNOWN_NODE", "UNKNOWN_NODE"]


def test_the_error_message_joins_every_problem():
    with pytest.raises(DefinitionError) as caught:
        WorkflowDefinition.from_dict({"schemaVersion": 2, "nodes": "x"})

    assert str(caught.value) == "schemaVersion 2 is not supported; use 1.; workflowData.nodes must be a list."
    assert isinstance(caught.value, ValueError)
