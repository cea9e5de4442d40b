"""Moving a step in the builder through Flask's test client: a drag's insertion key, Move up / Move down from the
panel, refusals (a branching step, nowhere to go), the stale-draft refusal, roles, tenancy; and where Move up / Move
down lead on a flowchart with branches."""
import re

import pytest
from flask import g, render_template

from atlas.core import flowchart
from atlas.core.definition import WorkflowDefinition
from atlas.services import drafts
from atlas.web.builder_edits import move_places
from tests import factories
from tests.web.test_builder_pages import FLOW, HTMX_PANEL, cards, text
from tests.web.test_pages import sign_in

STRAIGHT = {"schemaVersion": 1, "nodes": [
    {"id": "first", "type": "add_tag", "name": "First", "config": {"tag": "one"}},
    {"id": "second", "type": "add_tag", "name": "Second", "config": {"tag": "two"}},
    {"id": "third", "type": "add_tag", "name": "Third", "config": {"tag": "three"}}],
    "edges": [{"source": "first", "target": "second"}, {"source": "second", "target": "third"}]}


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Trial follow-up", workflow_data=FLOW)


@pytest.fixture
def straight(org, staff):
    return factories.make_workflow(org, staff, name="Three tags", workflow_data=STRAIGHT)


def move(client, workflow, node_id, revision=None, **form):
    revision = draft(workflow).revision if revision is None else revision
    return client.post(f"/workflows/{workflow.id}/builder/nodes/{node_id}/move", headers=HTMX_PANEL,
                       data={"base_revision": revision, **form})


def draft(workflow):
    return drafts.get_draft(workflow.organization_id, workflow.id)


def edges(workflow) -> set[tuple]:
    return {(e["source"], e["target"], e.get("branch")) for e in draft(workflow).definition["edges"]}


def canvas(body: str) -> str:
    return re.search(r'<div id="builder" hx-swap-oob="innerHTML">(.*?)</section>', body, re.S).group(1)


def places(workflow, node_id: str) -> dict:
    return move_places(flowchart.structure(WorkflowDefinition.from_dict(draft(workflow).definition)), node_id)


def test_a_dragged_step_moves_down_to_the_connector_it_was_dropped_on(staff_client, straight):
    response = move(staff_client, straight, "first", to="after:second:")
    body = response.get_data(as_text=True)

    assert response.status_code == 200 and response.headers["HX-Reswap"] == "none"  # the panel stays as it was
    assert edges(straight) == {("second", "first", None), ("first", "third", None)}
    assert cards(canvas(body)) == ["second", "first", "third"]  # the canvas, redrawn out of band
    assert f'id="draft-revision" name="base_revision" value="{draft(straight).revision}"' in body
    assert 'id="builder-history" class="builder-history" hx-swap-oob="true"' in body
    assert 'aria-label="Undo: Moved step &#39;First&#39; after &#39;Second&#39;"' in body
    assert straight.workflow_data == STRAIGHT  # only the draft changed


def test_a_dragged_step_moves_up_to_the_start(staff_client, straight):
    assert move(staff_client, straight, "third", to="start").status_code == 200
    assert edges(straight) == {("third", "first", None), ("first", "second", None)}
    assert draft(straight).undo_summary == "Moved step 'Third' to the start"


def test_a_step_can_move_into_another_branch(staff_client, workflow):
    assert move(staff_client, workflow, "tag", to="after:check:false").status_code == 200
    assert {("check", "extra", "true"), ("check", "tag", "false"), ("tag", "email", None)} <= edges(workflow)


def test_move_up_and_down_from_the_panel_go_one_place_and_redraw_the_panel_buttons(staff_client, straight):
    response = move(staff_client, straight, "second", to="down", panel_node="second")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert edges(straight) == {("first", "third", None), ("third", "second", None)}
    control = re.search(r'<div id="move-control".*?</div>\s*</div>', body, re.S).group(0)
    assert 'hx-swap-oob="true"' in control
    assert re.search(r'id="move-up"[^>]*hx-post=', control)  # it can go up again...
    assert re.search(r'id="move-down"[^>]*aria-disabled="true"', control)  # ...but it is last now

    move(staff_client, straight, "second", to="up")
    move(staff_client, straight, "second", to="up")
    assert edges(straight) == {("second", "first", None), ("first", "third", None)}


def test_moving_up_the_first_step_is_refused_and_saves_nothing(staff_client, straight):
    response = move(staff_client, straight, "first", to="up")
    assert response.status_code == 422
    assert "already first in its path" in text(response.get_data(as_text=True))
    assert draft(straight).revision == 0


def test_a_branching_step_cannot_be_moved_and_says_why(staff_client, workflow):
    response = move(staff_client, workflow, "check", to="start")
    assert response.status_code == 422
    assert "'Already a member?' has branches, so it cannot be moved" in text(response.get_data(as_text=True))
    assert 'role="alert"' in response.get_data(as_text=True)  # the error fragment the page shows
    assert draft(workflow).revision == 0 and draft(workflow).definition == FLOW


def test_a_place_that_is_not_on_the_canvas_is_refused(staff_client, straight):
    response = move(staff_client, straight, "first", to="after:nowhere:")
    assert response.status_code == 422 and "There is no step 'nowhere'" in text(response.get_data(as_text=True))
    assert move(staff_client, straight, "ghost", to="start").status_code == 404
    assert draft(straight).revision == 0


def test_a_move_on_a_stale_draft_is_refused_with_a_reload_and_changes_nothing(staff_client, straight, org):
    stale = draft(straight).revision
    colleague = factories.make_user(org, "staff", name="Robin Coach")
    drafts.apply_edit(org.id, colleague.id, straight.id, base_revision=stale, action="rename", node_id="first",
                      name="Robin's name")
    for to in ("after:second:", "down"):
        response = move(staff_client, straight, "first", revision=stale, to=to)
        assert response.status_code == 409 and response.headers["HX-Retarget"] == "#builder-panel"
        assert "Robin Coach" in text(response.get_data(as_text=True))
    assert edges(straight) == {("first", "second", None), ("second", "third", None)}


def test_viewers_cannot_move_steps(client, org, straight):
    sign_in(client, factories.make_user(org, "viewer", name="Vic Viewer"), org)
    response = move(client, straight, "first", to="after:second:")
    assert response.status_code == 403 and "editing needs the staff role" in text(response.get_data(as_text=True))
    assert draft(straight).revision == 0
    page = client.get(f"/workflows/{straight.id}/builder").get_data(as_text=True)
    assert 'id="move-form"' not in page and "data-movable" not in page  # nothing to drag


def test_another_organizations_steps_cannot_be_moved(staff_client):
    other_org = factories.make_org("Rival gym")
    theirs = factories.make_workflow(other_org, factories.make_user(other_org, "owner"), name="Theirs",
                                     workflow_data=STRAIGHT)
    assert move(staff_client, theirs, "first", to="after:second:").status_code == 404
    assert drafts.get_draft(other_org.id, theirs.id).revision == 0


def test_the_builder_page_marks_what_can_be_dragged(staff_client, workflow):
    page = staff_client.get(f"/workflows/{workflow.id}/builder").get_data(as_text=True)
    assert 'id="move-form"' in page and f'/workflows/{workflow.id}/builder/nodes/__node__/move' in page
    assert "vendor/sortablejs/Sortable.min.js" in page and "js/builder-move.js" in page
    assert page.count('<div class="fc-step" data-movable>') == 7  # every card but the two branching ones
    check = re.search(r'<button[^>]*data-node-id="check"[^>]*>', page, re.S).group(0)
    assert 'title="This step has branches, so it cannot be dragged' in check


def test_move_up_and_down_lead_one_place_along_the_path(workflow):
    # welcome, pause, check: yes -> tag, extra, done (an end) | no -> email, opened: yes -> (go to) extra | no -> lost
    assert places(workflow, "welcome") == {"up": None, "down": "after:pause:", "fixed": None}
    assert places(workflow, "pause") == {"up": "start", "down": None, "fixed": None}  # the arms never meet again
    assert places(workflow, "tag") == {"up": None, "down": "after:extra:", "fixed": None}
    assert places(workflow, "extra") == {"up": "after:check:true", "down": None, "fixed": None}  # done ends the run
    assert places(workflow, "email") == {"up": None, "down": None, "fixed": None}
    assert "has branches" in places(workflow, "check")["fixed"]
    assert "ends the run" in places(workflow, "done")["fixed"]
    assert "not connected" in places(workflow, "nowhere")["fixed"]


def test_move_up_and_down_pass_a_whole_branch_where_its_arms_meet(org, staff):
    data = {"schemaVersion": 1, "nodes": [
        {"id": "ask", "type": "if_else", "name": "Member?", "config": {"condition": {
            "field": "contact.status", "operator": "equals", "value": "member"}}},
        {"id": "yes", "type": "add_tag", "name": "Yes tag", "config": {"tag": "y"}},
        {"id": "after", "type": "add_tag", "name": "After", "config": {"tag": "a"}},
        {"id": "last", "type": "add_tag", "name": "Last", "config": {"tag": "l"}}],
        "edges": [{"source": "ask", "target": "yes", "branch": "true"},
                  {"source": "ask", "target": "after", "branch": "false"},
                  {"source": "yes", "target": "after"}, {"source": "after", "target": "last"}]}
    joined = factories.make_workflow(org, staff, name="Joined", workflow_data=data)
    assert places(joined, "after") == {"up": "start", "down": "after:last:", "fixed": None}
    assert places(joined, "yes") == {"up": None, "down": None, "fixed": None}
    drafts.apply_edit(org.id, staff.id, joined.id, base_revision=0, action="move", node_id="after", to="start")
    assert places(joined, "after") == {"up": None, "down": "before:last", "fixed": None}


def test_the_move_control_partial_offers_the_places(app, org, staff, workflow):
    with app.test_request_context():
        g.organization, g.user = org, staff
        g.membership = next(m for m in staff.memberships if m.organization_id == org.id)
        from atlas.web.builder_pages import draft_context
        html = render_template("builder/_move_control.html", **draft_context(workflow, draft(workflow),
                                                                           selected="welcome"))
        assert 'id="move-control"' in html and 'hx-swap-oob' not in html
        assert re.search(r'id="move-up"[^>]*aria-disabled="true"', html, re.S)
        assert re.search(r'id="move-down"\s+class="button-secondary"\s+hx-post="[^"]+/nodes/welcome/move"', html)
        assert """hx-vals='{"panel_node": "welcome", "to": "down"}'""" in html
        branching = render_template("builder/_move_control.html",
                                    **draft_context(workflow, draft(workflow), selected="check"))
        assert "has branches" in branching and "move-up" not in branching
