"""The builder page through Flask's test client: the flowchart's cards, branches, ends and go-tos, the problems panel,
the step panel, roles and tenancy."""
import html
import re

import pytest

from tests import factories
from tests.web.test_pages import sign_in

TEN_MINUTES = {"amount": 10, "unit": "minutes"}
VIP = {"condition": {"field": "contact.status", "operator": "equals", "value": "member"}}
# welcome -> pause -> check: yes -> tag -> extra -> done; no -> email -> opened: yes -> (go to) extra; no -> lost
FLOW = {"schemaVersion": 1, "nodes": [
    {"id": "welcome", "type": "send_sms", "name": "Welcome text", "config": {"body": "Hi {{ contact.first_name }}!"}},
    {"id": "pause", "type": "wait", "name": "Give them time", "config": {"duration": TEN_MINUTES}},
    {"id": "check", "type": "if_else", "name": "Already a member?", "config": VIP},
    {"id": "tag", "type": "add_tag", "name": "Tag as member", "config": {"tag": "member"}},
    {"id": "extra", "type": "set_variable", "name": "Note it", "config": {"name": "noted", "value": "yes"}},
    {"id": "email", "type": "send_email", "name": "Trial offer", "config": {"subject": "Your free class", "body": "."}},
    {"id": "done", "type": "end", "name": "Done", "config": {}},
    {"id": "opened", "type": "if_else", "name": "Opened it?", "config": {"condition": {
        "field": "steps.email.output.status", "operator": "equals", "value": "sent"}}},
    {"id": "lost", "type": "end", "name": "Lost", "config": {}}],
    "edges": [{"source": "welcome", "target": "pause"}, {"source": "pause", "target": "check"},
              {"source": "check", "target": "tag", "branch": "true"},
              {"source": "check", "target": "email", "branch": "false"},
              {"source": "tag", "target": "extra"}, {"source": "extra", "target": "done"},
              {"source": "email", "target": "opened"}, {"source": "opened", "target": "extra", "branch": "true"},
              {"source": "opened", "target": "lost", "branch": "false"}]}
HTMX_PANEL = {"HX-Request": "true", "HX-Target": "builder-panel"}


def text(page: str) -> str:
    """The page's words without tags, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def cards(page: str) -> list[str]:
    """The node ids of the cards, in page order."""
    return re.findall(r'<button type="button" class="fc-card[^"]*"\s+id="node-[^"]+" data-node-id="([^"]+)"', page)


def card(page: str, node_id: str) -> str:
    """One card's markup."""
    return re.search(rf'<button[^>]*data-node-id="{node_id}".*?</button>', page, re.S).group(0)


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Trial follow-up", workflow_data=FLOW)


@pytest.fixture
def viewer_client(client, org):
    sign_in(client, factories.make_user(org, "viewer", name="Vic Viewer"), org)
    return client


def builder(client, workflow) -> str:
    response = client.get(f"/workflows/{workflow.id}/builder")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_trigger_and_every_step_as_a_card_in_flow_order(staff_client, workflow):
    page = builder(staff_client, workflow)
    assert "<h1>Trial follow-up</h1>" in page and 'badge-draft" id="workflow-status">Draft' in page
    assert cards(page) == ["welcome", "pause", "check", "tag", "extra", "done", "email", "opened", "lost"]
    trigger = re.search(r'<button type="button" class="fc-trigger[^>]*>.*?</button>', page, re.S).group(0)
    assert text(trigger) == "Trigger Lead created Any lead source"
    welcome = text(card(page, "welcome"))
    assert welcome == "Send SMS Welcome text Hi {contact.first_name}!"
    assert "Wait 10 minutes" in text(card(page, "pause"))  # the wait's duration in words
    assert "contact.status is member" in text(card(page, "check"))
    assert f'hx-get="/workflows/{workflow.id}/builder/nodes/welcome"' in card(page, "welcome")
    assert 'hx-target="#builder-panel"' in card(page, "welcome")


def test_branch_labels_ends_and_goto(staff_client, workflow):
    page = builder(staff_client, workflow)
    arms = re.findall(r'<div class="fc-arm[^"]*" data-branch="([^"]*)">\s*<div class="fc-connector[^"]*">\s*'
                      r'<span class="fc-label[^"]*">([^<]*)</span>', page)
    assert arms == [("true", "Yes"), ("false", "No"), ("true", "Yes"), ("false", "No")]
    assert page.count('<div class="fc-end"><span>End</span></div>') == 2  # the two paths that end
    goto = re.search(r'<a class="fc-goto" href="#node-extra" data-goto="extra">.*?</a>', page, re.S)
    assert goto and text(goto.group(0)) == "Go to “Note it”"


def test_every_connector_has_an_add_button_that_opens_the_picker_for_its_place(staff_client, workflow):
    page = builder(staff_client, workflow)
    keys = re.findall(r'class="fc-add" data-insert="([^"]+)" aria-label="Add a step here"[^>]*\s+hx-get="[^"]*/picker'
                      r'\?at=[^"]+" hx-target="#builder-panel"', page)
    assert keys == ["start", "after:welcome:", "after:pause:", "after:check:true", "after:tag:", "after:extra:",
                    "after:done:", "after:check:false", "after:email:", "after:opened:true", "after:opened:false",
                    "after:lost:"]


def test_a_rejoining_if_else_continues_below_its_arms(staff_client, org, staff):
    data = {"schemaVersion": 1, "nodes": [n for n in FLOW["nodes"] if n["id"] not in ("opened", "lost")],
            "edges": [e for e in FLOW["edges"] if "opened" not in (e["source"], e["target"])]
            + [{"source": "email", "target": "extra"}]}
    workflow = factories.make_workflow(org, staff, workflow_data=data)
    page = builder(staff_client, workflow)
    assert 'class="fc-branch fc-branch-joins"' in page and 'data-insert="before:extra"' in page
    assert "fc-goto" not in page
    assert cards(page) == ["welcome", "pause", "check", "tag", "email", "extra", "done"]
    assert page.count("<span>End</span>") == 1


def test_the_problems_panel_links_each_problem_to_its_card(staff_client, org, staff):
    broken = {"schemaVersion": 1, "nodes": [
        {"id": "pause", "type": "wait", "name": "Pause", "config": {"duration": {"amount": 10}}},
        {"id": "lonely", "type": "add_tag", "name": "Lonely tag", "config": {"tag": "x"}}], "edges": []}
    workflow = factories.make_workflow(org, staff, workflow_data=broken)
    page = builder(staff_client, workflow)
    problems = re.search(r'<section class="builder-problems.*?</section>', page, re.S).group(0)
    assert re.search(r'<a href="#node-pause">Pause</a>\s*<span class="problem-message">config.duration:', problems)
    assert re.search(r'<li class="problem problem-error" data-code="ENTRY_NOT_UNIQUE">\s*<span class="problem-kind">'
                     r'Error</span>\s*<a href="#node-pause">Pause</a>', problems)
    assert re.search(r'<li class="problem problem-suggestion" data-code="WAIT_AT_END">\s*<span class="problem-kind">'
                     r'Tip</span>', problems)
    assert 'fc-badge-error">2 errors</span>' in problems
    assert 'fc-badge-error">2 errors</span>' in card(page, "pause")
    assert "fc-badge" not in card(page, "lonely")
    assert "has-errors" in card(page, "pause")
    not_connected = re.search(r'<section class="fc-orphans".*?</section>', page, re.S).group(0)
    assert "Not connected" in not_connected and 'data-node-id="lonely"' in not_connected


def test_a_valid_workflow_has_no_problems(staff_client, org, staff):
    workflow = factories.make_workflow(org, staff, workflow_data=factories.definition("a", "b"))
    page = builder(staff_client, workflow)
    assert "No problems found" in page and 'class="problem ' not in page


def test_an_empty_workflow_shows_the_trigger_a_start_and_an_end(staff_client, org, staff):
    workflow = factories.make_workflow(org, staff, workflow_data={"schemaVersion": 1, "nodes": [], "edges": []})
    page = builder(staff_client, workflow)
    assert cards(page) == [] and 'data-insert="start"' in page and '<span>End</span>' in page
    assert "The workflow has no steps yet" in page


def test_the_step_panel_for_htmx_is_just_the_panel(viewer_client, workflow):
    response = viewer_client.get(f"/workflows/{workflow.id}/builder/nodes/pause", headers=HTMX_PANEL)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body and "fc-card" not in body
    assert '<h2 id="panel-title" tabindex="-1">Give them time</h2>' in body
    assert re.search(r"<dt>Duration</dt><dd>10 minutes</dd>", body)
    assert "steps.pause.output" in body and "HX-Request" in response.headers["Vary"]


def test_staff_get_the_step_s_config_form(staff_client, workflow):
    body = staff_client.get(f"/workflows/{workflow.id}/builder/nodes/pause", headers=HTMX_PANEL).get_data(as_text=True)
    form = re.search(r'<form class="node-form".*?</form>', body, re.S).group(0)
    assert 'name="config.duration.amount" value="10"' in form and 'hx-trigger="change delay:400ms, submit"' in form
    assert re.search(r'<option value="minutes"\s+selected', form) or 'value="minutes" selected' in form
    assert 'name="name" value="Give them time"' in body and ">Duplicate</button>" in body


def test_the_step_panel_reads_a_condition(viewer_client, workflow):
    body = viewer_client.get(f"/workflows/{workflow.id}/builder/nodes/check", headers=HTMX_PANEL).get_data(as_text=True)
    assert "If / else" in body and "<dt>Condition</dt><dd>contact.status is member</dd>" in body


def test_the_step_url_without_htmx_is_the_builder_with_the_panel_open(staff_client, workflow):
    page = staff_client.get(f"/workflows/{workflow.id}/builder/nodes/email").get_data(as_text=True)
    assert cards(page)[0] == "welcome"
    assert re.search(r'<div id="builder-panel"[^>]*data-node-id="email"', page)
    assert '<h2 id="panel-title" tabindex="-1">Trial offer</h2>' in page


def test_an_unknown_step_is_a_404(staff_client, workflow):
    response = staff_client.get(f"/workflows/{workflow.id}/builder/nodes/nope", headers=HTMX_PANEL)
    assert response.status_code == 404 and "<html" not in response.get_data(as_text=True)


def test_viewers_can_view_the_builder_and_a_step(viewer_client, workflow):
    client = viewer_client
    page = builder(client, workflow)
    assert cards(page)[:2] == ["welcome", "pause"]
    assert "hx-get" not in re.search(r'<button[^>]*class="fc-add"[^>]*>', page).group(0)  # viewers cannot add
    assert re.search(r'<button[^>]*class="fc-add"[^>]*disabled', page) and 'id="undo-button"' not in page
    panel = client.get(f"/workflows/{workflow.id}/builder/nodes/tag", headers=HTMX_PANEL)
    assert panel.status_code == 200 and "<form" not in panel.get_data(as_text=True)  # the settings, read-only


def test_another_organizations_workflow_is_a_404_page(staff_client, workflow):
    rival = factories.make_org("Rival Gym")
    theirs = factories.make_workflow(rival, None, name="Their flow", workflow_data=FLOW)
    for path in (f"/workflows/{theirs.id}/builder", f"/workflows/{theirs.id}/builder/nodes/welcome",
                 "/workflows/no-such-id/builder"):
        response = staff_client.get(path)
        assert response.status_code == 404 and "Page not found" in response.get_data(as_text=True), path


def test_signed_out_visitors_go_to_sign_in(client, workflow):
    response = client.get(f"/workflows/{workflow.id}/builder")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_list_and_the_runs_page_link_to_the_builder(staff_client, workflow):
    link = f'href="/workflows/{workflow.id}/builder"'
    assert link in staff_client.get("/").get_data(as_text=True)
    assert link in staff_client.get(f"/workflows/{workflow.id}/executions").get_data(as_text=True)


def test_a_trigger_problem_links_to_the_trigger_card(staff_client, org, staff):
    workflow = factories.make_workflow(org, staff, trigger_type="form_submitted",
                                       workflow_data=factories.definition("a"))
    page = builder(staff_client, workflow)
    assert re.search(r'data-code="INVALID_TRIGGER_CONFIG">\s*<span class="problem-kind">Error</span>\s*'
                     r'<a href="#trigger-card">Trigger</a>', page)
    assert re.search(r'<button type="button" class="fc-trigger has-errors" id="trigger-card"', page)


def test_the_canvas_block_renders_on_its_own_for_the_editing_actions(app, org, staff, workflow):
    from flask import g
    from jinja2_fragments.flask import render_block

    from atlas.services import auth
    from atlas.web.builder_pages import canvas_context

    with app.test_request_context(f"/workflows/{workflow.id}/builder"):
        g.user, g.organization, g.membership = staff, org, auth.membership(staff.id, org.id)
        block = render_block("builder/page.html", "canvas", **canvas_context(workflow, FLOW))
    assert "<html" not in block and cards(block)[:3] == ["welcome", "pause", "check"] and 'id="problems"' in block
