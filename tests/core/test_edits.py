"""The builder's editing actions on definitions: tricky graphs, never mutating the input, always well-formed."""
import copy

import pytest

from atlas.core import edits
from atlas.core.definition import WorkflowDefinition
from atlas.core.edits import EditError
from atlas.core.graph import Graph
from atlas.core.validation import validate

TEN_MINUTES = {"amount": 10, "unit": "minutes"}
BOOKED = {"field": "trigger.booked", "operator": "equals", "value": True}


def node(node_id: str, type_: str = "set_variable", **config) -> dict:
    if type_ == "set_variable" and not config:
        config = {"name": f"v_{node_id}", "value": 1}
    return {"id": node_id, "type": type_, "name": node_id.title(), "config": config}


def flow(nodes: list[dict], edges: str = "") -> dict:
    """nodes and edges written 'a>b' or 'a:true>b'."""
    out = []
    for text in edges.split():
        source, target = text.split(">")
        source, _, branch = source.partition(":")
        out.append({"source": source, "target": target, **({"branch": branch} if branch else {})})
    return {"schemaVersion": 1, "nodes": nodes, "edges": out}


def wiring(data: dict) -> set[str]:
    """The edges of a definition written as in flow()."""
    return {f"{e['source']}{':' + e['branch'] if e.get('branch') else ''}>{e['target']}" for e in data["edges"]}


def ids(data: dict) -> list[str]:
    return [n["id"] for n in data["nodes"]]


def errors(data: dict) -> list[tuple[str, str | None]]:
    issues = validate(WorkflowDefinition.from_dict(data), trigger_type="lead_created")
    return [(i["code"], i["node_id"]) for i in issues if i["severity"] == "error"]


def line() -> dict:
    return flow([node("a"), node("b"), node("c")], "a>b b>c")


def branched() -> dict:
    """a -> check (if/else); true: yes1 -> yes2 -> join; false: no1 -> join; join -> tail."""
    return flow([node("a"), node("check", "if_else", condition=BOOKED), node("yes1"), node("yes2"), node("no1"),
                 node("join"), node("tail")],
                "a>check check:true>yes1 yes1>yes2 yes2>join check:false>no1 no1>join join>tail")


def frozen(data: dict):
    """Call an action through this to assert it did not mutate its input."""
    before = copy.deepcopy(data)

    def check(result):
        assert data == before
        WorkflowDefinition.from_dict(result[0])  # still well-formed: unique ids, edges to known nodes
        return result
    return check


# --- insert ------------------------------------------------------------------------------------------------------

def test_insert_on_a_connector_rewires_it_through_the_new_step():
    data = line()
    new, summary = frozen(data)(edits.insert_step(data, "after:a:", "wait", config={"duration": TEN_MINUTES}))
    assert ids(new) == ["a", "wait", "b", "c"]
    assert wiring(new) == {"a>wait", "wait>b", "b>c"}
    assert summary == "Added step 'Wait 10 minutes'"
    assert errors(new) == []


def test_insert_at_the_start_and_at_an_open_end():
    new, _ = edits.insert_step(line(), "start", "send_sms", name="Say hi")
    assert wiring(new) == {"send_sms>a", "a>b", "b>c"} and new["nodes"][0]["name"] == "Say hi"
    new, _ = edits.insert_step(new, "after:c:", "end")
    assert wiring(new) == {"send_sms>a", "a>b", "b>c", "c>end"}


def test_insert_into_an_empty_workflow():
    new, summary = edits.insert_step({"nodes": [], "edges": []}, "start", "wait")
    assert ids(new) == ["wait"] and new["edges"] == [] and summary == "Added step 'Wait'"


def test_generated_ids_are_unique_identifiers():
    data = line()
    for _ in range(3):
        data, _ = edits.insert_step(data, "after:a:", "send_sms")
    assert {"send_sms", "send_sms_2", "send_sms_3"} <= set(ids(data))
    assert edits.unique_id({"x"}, "3d-thing") == "step_3d_thing"


def test_insert_with_a_chosen_id_refuses_a_taken_or_bad_one():
    with pytest.raises(EditError, match="already a step"):
        edits.insert_step(line(), "after:a:", "wait", node_id="b")
    with pytest.raises(EditError, match="cannot be a step id"):
        edits.insert_step(line(), "after:a:", "wait", node_id="9 lives")


def test_a_branching_step_on_a_path_continues_along_its_first_exit_and_leaves_the_others_open():
    new, _ = frozen(line())(edits.insert_step(line(), "after:a:", "if_else", node_id="booked",
                                              config={"condition": BOOKED}))
    assert wiring(new) == {"a>booked", "booked:true>b", "b>c"}
    assert ("BRANCH_WITHOUT_EXIT", "booked") in errors(new)  # the open 'false' branch is shown on the card


def test_an_ab_split_without_config_gets_two_variants_to_wire():
    new, _ = edits.insert_step(line(), "after:a:", "ab_split")
    assert wiring(new) == {"a>ab_split", "ab_split:A>b", "b>c"}


def test_insert_on_a_branch():
    new, _ = edits.insert_step(branched(), "after:check:false", "send_email", node_id="mail")
    assert {"check:false>mail", "mail>no1"} <= wiring(new) and "check:false>no1" not in wiring(new)
    new, _ = edits.insert_step(new, "after:check:true", "wait", node_id="pause")
    assert {"check:true>pause", "pause>yes1"} <= wiring(new)


def test_insert_on_a_rejoining_branch_keeps_the_other_arm():
    new, _ = edits.insert_step(branched(), "after:no1:", "wait", node_id="pause")
    assert {"no1>pause", "pause>join", "yes2>join"} <= wiring(new)


def test_insert_refuses_bad_places():
    with pytest.raises(EditError, match="no branch 'maybe'; its branches are true, false"):
        edits.insert_step(branched(), "after:check:maybe", "wait")
    with pytest.raises(EditError, match="one exit"):
        edits.insert_step(line(), "after:a:true", "wait")
    with pytest.raises(EditError, match="not a place"):
        edits.insert_step(line(), "sideways:a", "wait")
    with pytest.raises(EditError, match="no step 'zz'"):
        edits.insert_step(line(), "after:zz:", "wait")
    with pytest.raises(EditError, match="not a step type"):
        edits.insert_step(line(), "after:a:", "teleport")
    with pytest.raises(EditError, match="only go where a path ends"):
        edits.insert_step(line(), "after:a:", "end")
    ended, _ = edits.insert_step(line(), "after:c:", "end")
    with pytest.raises(EditError, match="nothing can follow"):
        edits.insert_step(ended, "after:end:", "wait")


# --- delete ------------------------------------------------------------------------------------------------------

def test_delete_joins_the_neighbours():
    data = line()
    new, summary = frozen(data)(edits.delete_step(data, "b"))
    assert ids(new) == ["a", "c"] and wiring(new) == {"a>c"} and summary == "Deleted step 'B'"


def test_delete_the_first_and_the_last_step():
    assert wiring(edits.delete_step(line(), "a")[0]) == {"b>c"}
    assert wiring(edits.delete_step(line(), "c")[0]) == {"a>b"}


def test_delete_a_step_on_a_branch_keeps_the_branch_label():
    new, _ = edits.delete_step(branched(), "no1")
    assert {"check:false>join", "check:true>yes1"} <= wiring(new)
    assert errors(new) == []


def test_delete_a_step_reached_from_two_branches():
    new, _ = edits.delete_step(branched(), "join")
    assert {"yes2>tail", "no1>tail"} <= wiring(new) and errors(new) == []


def test_delete_a_branching_step_asks_which_branch_to_keep():
    with pytest.raises(EditError, match=r"has branches \(true, false\); choose the branch"):
        edits.delete_step(branched(), "check")
    with pytest.raises(EditError, match="no branch 'maybe'"):
        edits.delete_step(branched(), "check", keep_branch="maybe")


def test_delete_a_branching_step_keeping_one_arm_removes_steps_only_on_the_other():
    data = branched()
    new, summary = frozen(data)(edits.delete_step(data, "check", keep_branch="true"))
    assert ids(new) == ["a", "yes1", "yes2", "join", "tail"]  # no1 only on 'false'; join is also on 'true'
    assert wiring(new) == {"a>yes1", "yes1>yes2", "yes2>join", "join>tail"}
    assert summary == "Deleted step 'Check', keeping its 'true' branch and removing 1 step of the other branches"
    assert errors(new) == []


def test_delete_a_branching_step_keeping_the_short_arm():
    new, _ = edits.delete_step(branched(), "check", keep_branch="false")
    assert ids(new) == ["a", "no1", "join", "tail"]
    assert wiring(new) == {"a>no1", "no1>join", "join>tail"}


def test_delete_a_branching_step_whose_kept_branch_is_open():
    data = flow([node("a"), node("check", "if_else", condition=BOOKED), node("yes")], "a>check check:true>yes")
    new, _ = edits.delete_step(data, "check", keep_branch="false")
    assert ids(new) == ["a"] and new["edges"] == []


def test_delete_keeps_a_dropped_arm_step_that_another_path_still_reaches():
    """A 'go to' link: step shared is on the false arm and also follows the earlier split's other arm."""
    data = flow([node("first", "if_else", condition=BOOKED), node("check", "if_else", condition=BOOKED),
                 node("yes"), node("shared"), node("other")],
                "first:true>check first:false>other other>shared check:true>yes check:false>shared")
    new, _ = edits.delete_step(data, "check", keep_branch="true")
    assert "shared" in ids(new) and "other>shared" in wiring(new) and "first:true>yes" in wiring(new)


# --- rename, duplicate, move, config -----------------------------------------------------------------------------

def test_rename_changes_the_name_not_the_id():
    data = line()
    new, summary = frozen(data)(edits.rename_step(data, "b", "  Welcome SMS "))
    assert new["nodes"][1] == {**data["nodes"][1], "name": "Welcome SMS"} and summary == "Renamed 'B' to 'Welcome SMS'"
    with pytest.raises(EditError, match="cannot be empty"):
        edits.rename_step(data, "b", "  ")


def test_duplicate_places_the_copy_right_after_the_original():
    data = line()
    new, summary = frozen(data)(edits.duplicate_step(data, "b"))
    assert ids(new) == ["a", "b", "set_variable", "c"] and wiring(new) == {"a>b", "b>set_variable", "set_variable>c"}
    copy_ = new["nodes"][2]
    assert copy_["name"] == "B (copy)" and copy_["config"] == data["nodes"][1]["config"]
    assert copy_["config"] is not data["nodes"][1]["config"]
    assert summary == "Duplicated step 'B'"


def test_duplicate_a_branching_step_goes_on_its_first_branch():
    new, _ = edits.duplicate_step(branched(), "check")
    assert {"check:true>if_else", "if_else:true>yes1", "check:false>no1"} <= wiring(new)


def test_duplicate_an_end_is_refused():
    ended, _ = edits.insert_step(line(), "after:c:", "end")
    with pytest.raises(EditError, match="ends the run"):
        edits.duplicate_step(ended, "end")


def test_move_detaches_and_reinserts():
    data = line()
    new, summary = frozen(data)(edits.move_step(data, "a", "after:c:"))
    assert wiring(new) == {"b>c", "c>a"} and summary == "Moved step 'A' after 'C'"
    new, summary = edits.move_step(line(), "c", "start")
    assert wiring(new) == {"c>a", "a>b"} and summary == "Moved step 'C' to the start"
    assert errors(new) == []


def test_move_within_a_branch_and_across_branches():
    new, _ = edits.move_step(branched(), "yes2", "after:check:true")
    assert {"check:true>yes2", "yes2>yes1", "yes1>join"} <= wiring(new)
    new, _ = edits.move_step(branched(), "yes1", "after:no1:")
    assert {"check:true>yes2", "no1>yes1", "yes1>join"} <= wiring(new) and errors(new) == []


def test_move_refuses_a_branching_step_and_a_move_after_itself():
    with pytest.raises(EditError, match="has branches"):
        edits.move_step(branched(), "check", "start")
    with pytest.raises(EditError, match="after itself"):
        edits.move_step(line(), "b", "after:b:")


def test_set_config_replaces_the_config_and_validation_judges_it():
    data = flow([node("pause", "wait", duration=TEN_MINUTES)])
    new, summary = frozen(data)(edits.set_config(data, "pause", {"duration": {"amount": -1, "unit": "days"}}))
    assert new["nodes"][0]["config"] == {"duration": {"amount": -1, "unit": "days"}}
    assert summary == "Changed config of 'Pause'" and ("INVALID_CONFIG", "pause") in errors(new)
    with pytest.raises(EditError, match="must be an object"):
        edits.set_config(data, "pause", ["nope"])


def test_every_result_of_a_long_edit_session_is_well_formed():
    data = {"nodes": [], "edges": []}
    data, _ = edits.insert_step(data, "start", "send_sms", node_id="sms")
    data, _ = edits.insert_step(data, "after:sms:", "wait", node_id="pause", config={"duration": TEN_MINUTES})
    data, _ = edits.insert_step(data, "after:pause:", "if_else", node_id="booked", config={"condition": BOOKED})
    data, _ = edits.insert_step(data, "after:booked:true", "send_email", node_id="mail")
    data, _ = edits.insert_step(data, "after:booked:false", "create_task", node_id="task")
    data, _ = edits.duplicate_step(data, "pause")
    data, _ = edits.move_step(data, "wait", "after:mail:")
    data, _ = edits.delete_step(data, "booked", keep_branch="false")
    assert ids(data) == ["sms", "pause", "task"] and wiring(data) == {"sms>pause", "pause>task"}
    graph = Graph(WorkflowDefinition.from_dict(data))
    assert graph.entries() == ["sms"] and graph.cycle() is None


# --- change summaries --------------------------------------------------------------------------------------------

def side(data: dict, trigger="lead_created", config=None, settings=None) -> dict:
    return {"workflow_data": data, "trigger_type": trigger, "trigger_config": config or {}, "settings": settings or {}}


def test_change_summary_names_each_change():
    before = line()
    after, _ = edits.insert_step(before, "after:a:", "wait", config={"duration": TEN_MINUTES})
    after, _ = edits.delete_step(after, "c")
    after, _ = edits.rename_step(after, "a", "Greet")
    after, _ = edits.set_config(after, "b", {"name": "v_b", "value": 2})
    assert edits.change_summary(side(before), side(after)) == [
        "Added step 'Wait 10 minutes'", "Removed step 'C'", "Renamed 'A' to 'Greet'", "Changed config of 'B'"]


def test_change_summary_sees_moves_triggers_and_settings():
    before = line()
    after, _ = edits.move_step(before, "a", "after:c:")
    assert edits.change_summary(side(before), side(after, "form_submitted", settings={"reentry": "never"})) == [
        "Moved or reconnected steps", "Changed the trigger from lead_created to form_submitted",
        "Changed workflow settings: reentry"]
    assert edits.change_summary(side(before), side(before, config={"formId": "x"})) == ["Changed the trigger's settings"]
    assert edits.change_summary(side(before), side(before)) == []


def test_a_step_inserted_before_a_join_takes_every_connector_into_it():
    from atlas.core import edits

    definition = {"schemaVersion": 1, "nodes": [
        {"id": "check", "type": "if_else", "config": {"condition": {"field": "contact.status", "operator": "equals",
                                                                      "value": "member"}}},
        {"id": "yes", "type": "set_variable", "config": {"name": "a", "value": "1"}},
        {"id": "no", "type": "set_variable", "config": {"name": "a", "value": "2"}},
        {"id": "done", "type": "end", "config": {}}],
        "edges": [{"source": "check", "target": "yes", "branch": "true"},
                  {"source": "check", "target": "no", "branch": "false"},
                  {"source": "yes", "target": "done"}, {"source": "no", "target": "done"}]}
    after, summary = edits.insert_step(definition, "before:done", "wait", config={"duration": {"amount": 1,
                                                                                              "unit": "days"}})
    edges = {(e["source"], e["target"], e.get("branch")) for e in after["edges"]}
    assert {("yes", "wait", None), ("no", "wait", None), ("wait", "done", None)} <= edges
    assert not any(target == "done" and source in ("yes", "no") for source, target, _ in edges)
    assert summary.startswith("Added step")
    with pytest.raises(edits.EditError):
        edits.insert_step(definition, "before:nowhere", "wait")
