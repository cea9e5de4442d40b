"""The flowchart structure the builder draws, and the cards' lines in words; no app needed."""
import json
import re
from pathlib import Path

import pytest

from atlas.core import steps
from atlas.core.definition import Node, WorkflowDefinition
from atlas.core.flowchart import Arm, Branch, End, GoTo, Step, config_rows, structure, summary, trigger_summary

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflow-format.md"
EXAMPLES = [json.loads(block) for block in re.findall(r"```json\n(\{\n  \"schemaVersion\".*?)\n```", DOC.read_text(),
                                                       re.S)]
YES = {"condition": {"field": "trigger.vip", "operator": "equals", "value": True}}
TEN_MINUTES = {"duration": {"amount": 10, "unit": "minutes"}}
SPLIT3 = {"branches": [{"name": n, "condition": {"field": "contact.tier", "operator": "equals", "value": n}}
                       for n in ("gold", "silver", "bronze")]}
CONFIGS = {"if_else": YES, "wait": TEN_MINUTES, "split": SPLIT3, "set_variable": {"name": "x", "value": 1},
           "end": {}, "wait_for_event": {"event": "class_booked", "timeout": {"amount": 7, "unit": "days"}}}


def definition(nodes: str, *edges) -> WorkflowDefinition:
    """Nodes as "id:type id:type" (type set_variable when left out); edges as (source, target[, branch])."""
    parsed = []
    for spec in nodes.split():
        node_id, _, kind = spec.partition(":")
        kind = kind or "set_variable"
        parsed.append({"id": node_id, "type": kind, "name": node_id.title(), "config": CONFIGS[kind]})
    return WorkflowDefinition.from_dict({"nodes": parsed, "edges": [
        {"source": e[0], "target": e[1], **({"branch": e[2]} if len(e) > 2 else {})} for e in edges]})


def sketch(items) -> list:
    """Items as plain data: node ids, ("goto", id), "end", and {node: {label: arm items}} for branches."""
    out = []
    for item in items:
        if isinstance(item, Step):
            out.append(item.node.id)
        elif isinstance(item, End):
            out.append("end")
        elif isinstance(item, GoTo):
            out.append(("goto", item.node_id))
        else:
            out.append({item.node.id: {arm.label: sketch(arm.items) for arm in item.arms}})
    return out


def every_node_once(flow, definition) -> None:
    """Each node is drawn exactly once, on the main path or among the orphans."""
    def ids(items):
        for item in items:
            if isinstance(item, (Step, Branch)):
                yield item.node.id
            if isinstance(item, Branch):
                for arm in item.arms:
                    yield from ids(arm.items)
    drawn = list(ids(flow.items)) + [i for group in flow.orphans for i in ids(group)]
    assert sorted(drawn) == sorted(definition.node_ids)


def test_straight_line_ends_once_with_insertion_keys_after_each_step():
    d = definition("a b c", ("a", "b"), ("b", "c"))
    flow = structure(d)
    assert sketch(flow.items) == ["a", "b", "c", "end"]
    assert [i.insert for i in flow.items[:3]] == ["after:a:", "after:b:", "after:c:"]
    assert flow.entry == "a" and flow.start_insert == "start" and flow.orphans == ()


def test_if_else_with_both_arms_ending():
    d = definition("w:wait check:if_else yes no", ("w", "check"), ("check", "yes", "true"), ("check", "no", "false"))
    flow = structure(d)
    assert sketch(flow.items) == ["w", {"check": {"Yes": ["yes", "end"], "No": ["no", "end"]}}]
    branch = flow.items[1]
    assert branch.join is None and branch.join_insert is None
    assert [(a.branch, a.insert, a.joins) for a in branch.arms] == [
        ("true", "after:check:true", False), ("false", "after:check:false", False)]


def test_if_else_that_rejoins_continues_with_the_join():
    d = definition("check:if_else yes no after", ("check", "yes", "true"), ("check", "no", "false"),
                   ("yes", "after"), ("no", "after"))
    flow = structure(d)
    assert sketch(flow.items) == [{"check": {"Yes": ["yes"], "No": ["no"]}}, "after", "end"]
    assert flow.items[0].join == "after" and flow.items[0].join_insert == "before:after"
    assert all(arm.joins for arm in flow.items[0].arms)


def test_an_arm_straight_into_the_join_is_empty():
    d = definition("check:if_else yes after", ("check", "yes", "true"), ("check", "after", "false"), ("yes", "after"))
    assert sketch(structure(d).items) == [{"check": {"Yes": ["yes"], "No": []}}, "after", "end"]


def test_split_with_three_branches_and_default_where_two_rejoin():
    d = definition("seg:split g s b other meet", ("seg", "g", "gold"), ("seg", "s", "silver"),
                   ("seg", "b", "bronze"), ("seg", "other", "default"), ("g", "meet"), ("s", "meet"))
    flow = structure(d)
    assert sketch(flow.items) == [{"seg": {"gold": ["g", "meet", "end"], "silver": ["s", ("goto", "meet")],
                                           "bronze": ["b", "end"], "Otherwise": ["other", "end"]}}]
    assert [a.branch for a in flow.items[0].arms] == ["gold", "silver", "bronze", "default"]
    every_node_once(flow, d)


def test_nested_branches_join_at_their_own_join_then_the_outer_one():
    d = definition("outer:if_else inner:if_else x y z last",
                   ("outer", "inner", "true"), ("outer", "z", "false"), ("inner", "x", "true"),
                   ("inner", "y", "false"), ("x", "last"), ("y", "last"), ("z", "last"))
    assert sketch(structure(d).items) == [
        {"outer": {"Yes": [{"inner": {"Yes": ["x"], "No": ["y"]}}], "No": ["z"]}}, "last", "end"]


def test_inner_join_before_the_outer_one():
    d = definition("outer:if_else inner:if_else x y mid z last",
                   ("outer", "inner", "true"), ("outer", "z", "false"), ("inner", "x", "true"),
                   ("inner", "y", "false"), ("x", "mid"), ("y", "mid"), ("mid", "last"), ("z", "last"))
    flow = structure(d)
    assert sketch(flow.items) == [
        {"outer": {"Yes": [{"inner": {"Yes": ["x"], "No": ["y"]}}, "mid"], "No": ["z"]}}, "last", "end"]
    assert flow.items[0].arms[0].items[0].join == "mid"


def test_an_arm_whose_inner_branch_ends_every_path_does_not_flow_on():
    d = definition("outer:if_else inner:if_else x y z last", ("outer", "inner", "true"), ("outer", "z", "false"),
                   ("inner", "x", "true"), ("inner", "y", "false"), ("z", "last"))
    outer = structure(d).items[0]
    assert sketch([outer]) == [{"outer": {"Yes": [{"inner": {"Yes": ["x", "end"], "No": ["y", "end"]}}],
                                          "No": ["z", "last", "end"]}}]
    assert [arm.joins for arm in outer.arms] == [False, False] and outer.join is None


def test_an_inner_branch_that_meets_at_the_outer_join_flows_on():
    d = definition("outer:if_else inner:if_else x y z last", ("outer", "inner", "true"), ("outer", "z", "false"),
                   ("inner", "x", "true"), ("inner", "y", "false"), ("x", "last"), ("y", "last"), ("z", "last"))
    outer = structure(d).items[0]
    assert outer.arms[0].items[0].join == "last" and [arm.joins for arm in outer.arms] == [True, True]
    assert outer.arms[0].items[0].join_insert is None and outer.join_insert == "before:last"


def test_wait_for_event_has_event_and_timeout_arms():
    d = definition("await:wait_for_event back lost:end", ("await", "back", "event"), ("await", "lost", "timeout"))
    assert sketch(structure(d).items) == [{"await": {"Event arrived": ["back", "end"], "Timed out": ["lost", "end"]}}]


def test_a_second_path_into_a_placed_node_is_a_goto():
    d = definition("check:if_else a b shared c", ("check", "a", "true"), ("check", "b", "false"),
                   ("a", "shared"), ("b", "shared"), ("shared", "c"))
    assert sketch(structure(d).items) == [{"check": {"Yes": ["a"], "No": ["b"]}}, "shared", "c", "end"]
    uneven = definition("check:if_else a b shared", ("check", "a", "true"), ("check", "b", "false"),
                        ("a", "shared"), ("b", "shared"))
    assert sketch(structure(uneven).items)[1] == "shared"  # a plain rejoin is a join, not a goto
    # a node reached by two paths of different branches with a step of its own in between
    d = definition("top:if_else left:if_else a b c shared",
                   ("top", "left", "true"), ("top", "c", "false"), ("left", "a", "true"), ("left", "b", "false"),
                   ("a", "shared"), ("c", "shared"))
    flow = structure(d)
    assert sketch(flow.items) == [{"top": {"Yes": [{"left": {"Yes": ["a", "shared", "end"], "No": ["b", "end"]}}],
                                           "No": ["c", ("goto", "shared")]}}]
    every_node_once(flow, d)


def test_unconnected_nodes_are_orphans_structured_apart():
    d = definition("a b lone1 lone2 island", ("a", "b"), ("lone1", "lone2"))
    flow = structure(d)
    assert sketch(flow.items) == ["a", "b", "end"]
    assert [sketch(group) for group in flow.orphans] == [["lone1", "lone2", "end"], ["island", "end"]]


def test_a_cycle_in_a_broken_draft_is_drawn_with_a_goto():
    d = definition("a b c", ("a", "b"), ("b", "c"), ("c", "b"))
    assert sketch(structure(d).items) == ["a", "b", "c", ("goto", "b")]
    loop = definition("x y", ("x", "y"), ("y", "x"))  # no entry at all
    assert sketch(structure(loop).items) == ["x", "y", ("goto", "x")]


def test_a_missing_exit_ends_its_arm_and_an_unknown_type_is_a_plain_card():
    d = WorkflowDefinition.from_dict({"nodes": [
        {"id": "check", "type": "if_else", "config": YES}, {"id": "yes", "type": "mystery"}],
        "edges": [{"source": "check", "target": "yes", "branch": "true"}]})
    assert sketch(structure(d).items) == [{"check": {"Yes": ["yes", "end"], "No": ["end"]}}]


def test_an_empty_definition_is_the_start_and_an_end():
    flow = structure(WorkflowDefinition.from_dict({"schemaVersion": 1, "nodes": [], "edges": []}))
    assert flow.entry is None and sketch(flow.items) == ["end"] and flow.orphans == ()


def test_doc_example_lead_nurture():
    flow = structure(WorkflowDefinition.from_dict(EXAMPLES[0]))
    assert sketch(flow.items) == ["welcome_sms", "pause", {"booked": {
        "Yes": ["booked_goal", "thanks", "end"], "No": ["trial_email", "end"]}}]


def test_doc_example_missed_class_win_back():
    flow = structure(WorkflowDefinition.from_dict(EXAMPLES[1]))
    assert sketch(flow.items) == [{"segment": {
        "regular": ["nudge_sms", {"await_booking": {"Event arrived": ["back", "end"], "Timed out": ["lost", "end"]}}],
        "drifting": ["coach_task", "end"], "Otherwise": ["checkin_email", "end"]}}]
    assert isinstance(flow.items[0].arms[0], Arm)


def test_sixty_steps_in_a_line_and_deep_nesting_structure():
    nodes = " ".join(f"n{i}" for i in range(60))
    d = definition(nodes, *[(f"n{i}", f"n{i + 1}") for i in range(59)])
    assert len(structure(d).items) == 61


# --- the cards' lines ---------------------------------------------------------------------------------------------

def line(kind: str, config: dict) -> str:
    return summary(Node(id="n", type=kind, config=config), steps.get(kind))


@pytest.mark.parametrize(("kind", "config", "words"), [
    ("wait", TEN_MINUTES, "Wait 10 minutes"),
    ("wait", {"duration": {"amount": 1, "unit": "days"}}, "Wait 1 day"),
    ("wait_until", {"until": "2026-12-01T09:00:00Z"}, "Wait until 1 Dec 2026, 09:00"),
    ("wait_until", {"until": "{{ trigger.startsAt }}"}, "Wait until {trigger.startsAt}"),
    ("wait_for_event", CONFIGS["wait_for_event"], "Wait up to 7 days for class booked"),
    ("if_else", {"condition": {"field": "contact.status", "operator": "equals", "value": "member"}},
     "contact.status is member"),
    ("if_else", {"condition": {"all": [{"field": "contact.status", "operator": "in", "value": ["trial", "member"]}]}
                 }, "contact.status is one of trial, member"),
    ("if_else", {"condition": {"all": [{"field": "a", "operator": "is_empty"}, {"field": "b", "operator": "is_empty"}]}
                 }, "2 rules, all must hold"),
    ("if_else", {"condition": {"any": [YES["condition"], YES["condition"], YES["condition"]]}},
     "3 rules, any may hold"),
    ("if_else", {"condition": {"field": "contact.age", "operator": "between", "value": [18, 30]}},
     "contact.age is between 18 and 30"),
    ("if_else", {"condition": {"not": {"field": "contact.email", "operator": "is_empty"}}},
     "not (contact.email is empty)"),
    ("split", SPLIT3, "4 branches"),
    ("ab_split", {"variants": [{"name": "A", "percent": 50}, {"name": "B", "percent": 50}]}, "A 50% · B 50%"),
    ("send_sms", {"body": "Hi {{ contact.first_name | default('there') }}, welcome!"},
     "Hi {contact.first_name}, welcome!"),
    ("send_sms", {"templateId": "tpl_1"}, "Template: tpl_1"),
    ("send_email", {"subject": "Your free class", "body": "..."}, "Your free class"),
    ("set_variable", {"name": "x", "value": "booked"}, "vars.x = booked"),
    ("http_request", {"method": "POST", "url": "https://hooks.example.com/lead"},
     "POST https://hooks.example.com/lead"),
    ("add_tag", {"tag": "vip"}, "Add tag vip"),
    ("remove_tag", {"tag": "vip"}, "Remove tag vip"),
    ("create_task", {"title": "Call {{ contact.name }}", "dueIn": {"amount": 1, "unit": "days"}},
     "Task: Call {contact.name} · due in 1 day"),
    ("change_lead_status", {"status": "former_member"}, "Set status to former member"),
    ("goal", {"event": "class_booked"}, "Reached when class booked happens"),
    ("end", {}, "The run ends here"),
])
def test_summaries_in_words(kind, config, words):
    assert line(kind, config) == words


def test_long_text_is_cut_and_a_broken_config_still_reads():
    assert line("send_sms", {"body": "word " * 40}).endswith("…") and len(line("send_sms", {"body": "w " * 90})) <= 70
    assert line("wait", {"duration": "soon"}) == "Wait (no duration set)"
    assert line("ab_split", {"variants": "x"}) == steps.get("ab_split").description[:69].rstrip() + "…"
    assert summary(Node(id="n", type="mystery"), None) == "Unknown step type 'mystery'"


@pytest.mark.parametrize(("kind", "config", "words"), [
    ("lead_created", {"leadSources": ["website", "instagram"]}, "Only from website, instagram"),
    ("lead_created", {}, "Any lead source"),
    ("class_booked", {}, "Any class"),
    ("form_submitted", {}, "Choose a form"),
    ("tag_added", {"tag": "vip"}, "Tag vip"),
    ("birthday", {}, "It is the contact's birthday (checked daily in their timezone)."),
    ("class_missed", {"className": "HIIT 45"}, "Only HIIT 45"),
    ("membership_expiring", {}, "7 days before the membership expires"),
    ("schedule", {"scheduleType": "cron", "cronExpression": "0 9 * * 1"}, "Cron 0 9 * * 1"),
    ("schedule", {"scheduleType": "recurring", "every": {"amount": 2, "unit": "hours"}}, "Every 2 hours"),
    (None, None, "Choose what starts the workflow"),
])
def test_trigger_lines(kind, config, words):
    assert trigger_summary(kind, config) == words


def test_config_rows_read_the_config_in_the_schemas_order():
    node = Node(id="n", type="create_task", config={"dueIn": {"amount": 1, "unit": "days"}, "title": "Call",
                                                    "extra_key": {"a": 1}})
    assert config_rows(node, steps.get("create_task")) == [
        ("Title (templated)", "Call"), ("Due in", "1 day"), ("Extra key", '{\n  "a": 1\n}')]
    check = Node(id="c", type="if_else", config={"condition": {"all": [
        {"field": "contact.status", "operator": "equals", "value": "lead"},
        {"any": [{"field": "trigger.source", "operator": "in", "value": ["web", "ig"]}]}]}})
    assert config_rows(check, steps.get("if_else")) == [
        ("Condition", "All of:\n  contact.status is lead\n  Any of:\n    trigger.source is one of web, ig")]
