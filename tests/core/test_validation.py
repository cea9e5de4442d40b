"""validate(definition): every issue at once, each naming its node; and the performance estimate."""
import pytest

from atlas.core.definition import WorkflowDefinition
from atlas.core.validation import estimate_performance, has_errors, validate

TEN_MINUTES = {"amount": 10, "unit": "minutes"}
BOOKED = {"field": "trigger.booked", "operator": "equals", "value": True}


def node(node_id: str, type_: str = "set_variable", **config) -> dict:
    if type_ == "set_variable" and not config:
        config = {"name": f"v_{node_id}", "value": 1}
    return {"id": node_id, "type": type_, "config": config}


def edge(text: str) -> dict:
    """'a>b' or 'a:true>b'."""
    source, target = text.split(">")
    source, _, branch = source.partition(":")
    return {"source": source, "target": target, **({"branch": branch} if branch else {})}


def definition(nodes: list[dict], edges: str = "") -> WorkflowDefinition:
    return WorkflowDefinition.from_dict({"nodes": nodes, "edges": [edge(e) for e in edges.split()]})


def issues(nodes, edges="", **kwargs) -> list[tuple[str, str, str | None]]:
    kwargs.setdefault("trigger_type", "lead_created")
    return [(i["severity"], i["code"], i["node_id"]) for i in validate(definition(nodes, edges), **kwargs)]


def lead_nurture() -> tuple[list[dict], str]:
    nodes = [node("greet"), node("pause", "wait", duration=TEN_MINUTES),
             node("booked", "if_else", condition=BOOKED), node("done", "end"),
             node("remind", "set_variable", name="reminded", value="{{ contact.first_name }} {{ vars.v_greet }}")]
    return nodes, "greet>pause pause>booked booked:true>done booked:false>remind"


def test_a_complete_workflow_is_valid():
    assert issues(*lead_nurture()) == []


def test_no_trigger_is_an_error():
    assert ("error", "NO_TRIGGER", None) in issues(*lead_nurture(), trigger_type=None)


def test_an_empty_workflow_is_only_a_warning():
    found = validate(definition([]), trigger_type="manual")
    assert [(i["severity"], i["code"]) for i in found] == [("warning", "EMPTY_WORKFLOW")] and not has_errors(found)


def test_unknown_step_type():
    assert issues([node("a", "teleport")]) == [("error", "UNKNOWN_STEP_TYPE", "a")]


@pytest.mark.parametrize("config, message", [
    ({}, "config: 'duration' is a required property"),
    ({"duration": {"amount": -1, "unit": "minutes"}}, "config.duration.amount: -1 is less than the minimum of 0"),
    ({"duration": {"amount": 1, "unit": "fortnights"}}, "config.duration.unit: 'fortnights' is not one of"),
    ({"duration": TEN_MINUTES, "colour": "red"}, "config: Additional properties are not allowed"),
])
def test_config_is_checked_against_the_step_type_schema(config, message):
    found = validate(definition([{"id": "a", "type": "wait", "config": config}, node("b")], "a>b"), trigger_type="x")
    [issue] = found
    assert (issue["code"], issue["node_id"]) == ("INVALID_CONFIG", "a") and issue["message"].startswith(message)


@pytest.mark.parametrize("type_, config, code", [
    ("wait", {"duration": {"amount": 4000, "unit": "days"}}, "INVALID_DURATION"),
    ("if_else", {"condition": {"field": "contact.age", "operator": "older_than", "value": 3}}, "UNKNOWN_OPERATOR"),
    ("if_else", {"condition": {"field": "member.age", "operator": "equals", "value": 3}}, "UNKNOWN_ROOT"),
    ("ab_split", {"variants": [{"name": "A", "percent": 50}, {"name": "B", "percent": 40}]}, "PERCENT_TOTAL"),
    ("goal", {}, "GOAL_WITHOUT_TRIGGER"),
])
def test_step_types_check_their_own_config(type_, config, code):
    assert ("error", code, "a") in issues([node("a", type_, **config)])


def test_two_first_steps():
    found = validate(definition([node("a"), node("b"), node("c")], "a>c b>c"), trigger_type="manual")
    assert [(i["code"], i["node_id"]) for i in found] == [("ENTRY_NOT_UNIQUE", "a")]
    assert found[0]["message"] == ("The workflow has 2 first steps (a, b); connect them so that exactly one step has "
                                   "no incoming connector.")


def test_a_cycle_is_named_step_by_step():
    found = validate(definition([node("a"), node("b"), node("c")], "a>b b>c c>b"), trigger_type="manual")
    [cycle] = [i for i in found if i["code"] == "CYCLE"]
    assert cycle["message"].startswith("The steps loop back on themselves: b → c → b.")


def test_every_unreachable_step_is_named():
    found = issues([node("a"), node("b"), node("c"), node("d")], "a>b c>d d>c")
    assert ("error", "UNREACHABLE_NODE", "c") in found and ("error", "UNREACHABLE_NODE", "d") in found


def test_branches_must_each_lead_somewhere_exactly_once():
    nodes = [node("check", "if_else", condition=BOOKED), node("x"), node("y"), node("z")]
    assert issues(nodes, "check:true>x check:true>y check:maybe>z") == [
        ("error", "UNKNOWN_BRANCH", "check"), ("error", "DUPLICATE_BRANCH_EDGE", "check"),
        ("error", "BRANCH_WITHOUT_EXIT", "check")]


def test_split_branches_come_from_its_config_plus_default():
    split = node("s", "split", branches=[{"name": "vip", "condition": BOOKED}])
    assert issues([split, node("x"), node("y")], "s:vip>x s:default>y") == []
    assert issues([split, node("x")], "s:vip>x") == [("error", "BRANCH_WITHOUT_EXIT", "s")]


def test_a_plain_step_has_one_unlabelled_exit():
    assert issues([node("a"), node("b"), node("c")], "a>b a>c") == [("error", "MULTIPLE_EXITS", "a")]
    assert issues([node("a"), node("b")], "a:true>b") == [("error", "UNKNOWN_BRANCH", "a")]


def test_nothing_follows_an_end():
    assert issues([node("a", "end"), node("b")], "a>b") == [("error", "END_HAS_EXIT", "a")]


@pytest.mark.parametrize("value, code", [
    ("{{ steps.ghost.output.x }}", "UNKNOWN_STEP_REFERENCE"),
    ("{{ steps.later.output.x }}", "STEP_NOT_BEFORE"),
    ("{{ vars.never_set }}", "UNKNOWN_VARIABLE"),
    ("{{ member.name }}", "UNKNOWN_ROOT"),
    ("{{ contact.name ", "SYNTAX_ERROR"),
])
def test_template_references_must_resolve(value, code):
    nodes = [node("first"), node("uses", "set_variable", name="x", value=value), node("later")]
    assert ("error", code, "uses") in issues(nodes, "first>uses uses>later")


def test_variables_come_from_earlier_steps_or_the_workflow():
    nodes = [node("first", "set_variable", name="greeting", value="hi"),
             node("uses", "set_variable", name="x", value="{{ vars.greeting }} {{ vars.gym_name }}")]
    assert issues(nodes, "first>uses", known_vars={"gym_name"}) == []
    assert issues(nodes, "first>uses") == [("error", "UNKNOWN_VARIABLE", "uses")]


def test_condition_fields_are_references_too():
    nodes = [node("check", "if_else", condition={"field": "steps.after.output.x", "operator": "is_empty"}),
             node("after"), node("other")]
    assert ("error", "STEP_NOT_BEFORE", "check") in issues(nodes, "check:true>after check:false>other")


def test_warnings_and_suggestions_do_not_block():
    nodes = [node("a"), node("long", "wait", duration={"amount": 120, "unit": "days"})]
    found = validate(definition(nodes, "a>long"), trigger_type="manual")
    assert [(i["severity"], i["code"]) for i in found] == [("warning", "LONG_WAIT"), ("suggestion", "WAIT_AT_END")]
    assert not has_errors(found)
    assert found[0]["message"] == ("Step 'long' waits 120 days, longer than 90 days; the contact's situation will "
                                   "likely have changed by then.")


@pytest.mark.parametrize("found, expected", [
    ([], False), ([{"severity": "warning"}, {"severity": "suggestion"}], False),
    ([{"severity": "warning"}, {"severity": "error"}], True)])
def test_has_errors(found, expected):
    assert has_errors(found) is expected


def test_the_estimate_says_it_uses_defaults_and_follows_the_longest_path():
    estimate = estimate_performance(definition(*lead_nurture()[:1], lead_nurture()[1]))
    assert estimate["basis"] == "defaults" and "stated defaults" in estimate["note"]
    assert estimate["estimated_duration_ms"] == 4.0  # greet, pause, booked, remind: 1 ms each (control)


def test_the_estimate_uses_measured_history_when_there_is_some():
    nodes, edges = lead_nurture()
    history = {"set_variable": 2.5, "wait": 1.5, "if_else": 0.5, "end": 0.1}
    assert estimate_performance(definition(nodes, edges), history)["estimated_duration_ms"] == 7.0
    assert estimate_performance(definition(nodes, edges), history)["basis"] == "history"
    assert estimate_performance(definition(nodes, edges), {"wait": 100.0})["basis"] == "mixed"


def test_an_empty_workflow_has_no_estimate():
    assert estimate_performance(definition([])) == {"basis": "none", "step_count": 0, "estimated_duration_ms": None,
                                                     "note": "The workflow has no steps."}
