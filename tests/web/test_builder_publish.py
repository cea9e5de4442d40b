"""Publishing from the builder through Flask's test client: the header's buttons, the publish panel (changes,
problems, runs in flight and the choice for them), the version list and restore, activate and pause, roles, tenancy
and the stale-draft conflict."""
import re

import pytest
from sqlalchemy import select

from atlas.extensions import db
from atlas.models import Execution, Workflow, WorkflowVersion
from atlas.services import drafts, executions, runner, workflows
from tests import factories
from tests.web.test_builder_pages import text
from tests.web.test_pages import sign_in

HTMX = {"HX-Request": "true", "HX-Target": "builder-panel"}
TEN_MINUTES = {"amount": 10, "unit": "minutes"}
BROKEN = {"schemaVersion": 1, "nodes": [
    {"id": "pause", "type": "wait", "name": "Pause", "config": {"duration": {"amount": 10}}}], "edges": []}


def nurture(wait_id: str = "pause") -> dict:
    """greet -> wait 10 minutes -> nudge."""
    return {"schemaVersion": 1, "nodes": [
        {"id": "greet", "type": "set_variable", "name": "Greet", "config": {"name": "g", "value": "hi"}},
        {"id": wait_id, "type": "wait", "name": "Give them time", "config": {"duration": TEN_MINUTES}},
        {"id": "nudge", "type": "set_variable", "name": "Nudge", "config": {"name": "n", "value": "go"}}],
        "edges": [{"source": "greet", "target": wait_id}, {"source": wait_id, "target": "nudge"}]}


@pytest.fixture
def live(org, staff):
    """An active workflow: a -> b, version 1."""
    return factories.make_workflow(org, staff, name="Lead nurture", status="active")


def url(workflow, path: str = "") -> str:
    return f"/workflows/{workflow.id}/builder{path}"


def revision(org, workflow) -> int:
    return drafts.get_draft(org.id, workflow.id).revision


def rename_b(org, staff, workflow) -> drafts.Draft:
    """A change in the draft: step b renamed."""
    return drafts.apply_edit(org.id, staff.id, workflow.id, base_revision=revision(org, workflow), action="rename",
                             node_id="b", name="Welcome text")


def actions(page: str) -> str:
    found = re.search(r'<div class="publish-actions" id="publish-actions".*?</div>', page, re.S)
    return found.group(0) if found else ""


def post(client, workflow, path: str, **form):
    return client.post(url(workflow, path), data=form, headers=HTMX)


# --- the header ---------------------------------------------------------------------------------------------------

def test_the_header_shows_staff_publish_versions_and_pause_with_publish_disabled_without_changes(staff_client, live):
    bar = actions(staff_client.get(url(live)).get_data(as_text=True))
    assert f'hx-get="{url(live, "/versions")}" hx-target="#builder-panel"' in bar
    assert f'hx-post="{url(live, "/pause")}"' in bar and "Activate" not in bar
    assert re.search(r'<button[^>]*data-action="publish" disabled aria-describedby="publish-reason">Publish</button>',
                     bar)
    assert '<span class="publish-reason" id="publish-reason">No changes to publish</span>' in bar


def test_publish_is_enabled_once_the_draft_changed_and_a_new_workflow_says_it_turns_on(staff_client, org, staff,
                                                                                        live):
    rename_b(org, staff, live)
    bar = actions(staff_client.get(url(live)).get_data(as_text=True))
    assert f'hx-get="{url(live, "/publish")}" hx-target="#builder-panel">Publish</button>' in bar
    new = factories.make_workflow(org, staff, name="Fresh")
    bar = actions(staff_client.get(url(new)).get_data(as_text=True))
    assert ">Publish and turn on</button>" in bar and "Pause" not in bar and "Activate" not in bar


def test_viewers_see_no_buttons_and_are_refused_every_change(client, org, live):
    viewer = factories.make_user(org, "viewer", name="Vic Viewer")
    sign_in(client, viewer, org)
    assert 'id="publish-actions"' not in client.get(url(live)).get_data(as_text=True)
    assert client.get(url(live, "/publish"), headers=HTMX).status_code == 403
    for path in ("/publish", "/pause", "/activate", "/versions/1/restore"):
        assert post(client, live, path, base_revision=0).status_code == 403, path
    assert db.session.get(Workflow, live.id).status == "active"


def test_another_organizations_workflow_is_not_found(client, org, live):
    rival = factories.make_org("Rival Barbell Club")
    sign_in(client, factories.make_user(rival, "owner", name="Rita Rival"), rival)
    assert client.get(url(live, "/publish"), headers=HTMX).status_code == 404
    assert client.get(url(live, "/versions"), headers=HTMX).status_code == 404
    for path in ("/publish", "/pause", "/versions/1/restore"):
        assert post(client, live, path, base_revision=0).status_code == 404, path
    assert db.session.get(Workflow, live.id).status == "active"


# --- publishing ---------------------------------------------------------------------------------------------------

def test_the_publish_panel_shows_what_changes(staff_client, org, staff, live):
    rename_b(org, staff, live)
    response = staff_client.get(url(live, "/publish"), headers=HTMX)
    panel = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="panel-title"' in panel
    assert "What changes Renamed 'b' to 'Welcome text'" in text(panel)
    assert f'hx-post="{url(live, "/publish")}"' in panel and 'hx-include="#draft-revision"' in panel
    assert "Runs in flight" not in panel  # none


def test_publish_is_refused_while_errors_remain_each_linking_to_its_card(staff_client, org, staff):
    workflow = factories.make_workflow(org, staff, name="Broken", workflow_data=BROKEN)
    panel = staff_client.get(url(workflow, "/publish"), headers=HTMX).get_data(as_text=True)
    assert re.search(r'<a href="#node-pause">Pause</a>\s*<span class="problem-message">config.duration', panel)
    assert "must be fixed before this can be published" in panel and "hx-post" not in panel

    response = post(staff_client, workflow, "/publish", base_revision=revision(org, workflow))

    assert response.status_code == 422
    assert 'data-code="INVALID_WORKFLOW_DATA"' in response.get_data(as_text=True)
    assert '<a href="#node-pause">Pause</a>' in response.get_data(as_text=True)
    assert db.session.get(Workflow, workflow.id).status == "draft"
    assert not db.session.scalars(select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow.id)).all()


def test_publish_makes_a_version_with_its_summary_and_answers_with_the_version_list(staff_client, org, staff, live):
    rename_b(org, staff, live)

    response = post(staff_client, live, "/publish", base_revision=revision(org, live), choice="keep")

    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    version = db.session.scalar(select(WorkflowVersion).where(WorkflowVersion.workflow_id == live.id,
                                                              WorkflowVersion.version == 2))
    assert version.change_summary == ["Renamed 'b' to 'Welcome text'"]
    assert "Published version 2. New runs use it." in text(page)
    newest = re.search(r'<li class="version version-live" data-version="2">.*?</li>\s*</ul>', page, re.S).group(0)
    assert "Version 2 Live Sam Staff" in text(newest) and "Renamed 'b' to 'Welcome text'" in text(newest)
    assert "Restore into draft" not in newest
    assert f'hx-post="{url(live, "/versions/1/restore")}"' in page
    bar = actions(page)  # the header's buttons, out of band: nothing left to publish
    assert 'hx-swap-oob="true"' in bar and "No changes to publish" in bar
    assert '<span class="badge badge-active" id="workflow-status" hx-swap-oob="true">Active</span>' in page


def test_a_restore_that_names_no_draft_revision_asks_for_a_reload_like_every_edit(staff_client, org, staff):
    workflow = factories.make_workflow(org, staff, name="Fresh")
    response = post(staff_client, workflow, "/versions/1/restore")
    assert response.status_code == 409
    assert "Reload the builder: this change did not say which draft it was made on." in response.get_data(as_text=True)


def test_publishing_a_new_workflow_turns_it_on(staff_client, org, staff):
    workflow = factories.make_workflow(org, staff, name="Fresh")
    response = post(staff_client, workflow, "/publish", base_revision=0)
    assert response.status_code == 200
    assert db.session.get(Workflow, workflow.id).status == "active"
    assert "First version: 2 steps, started by lead_created" in response.get_data(as_text=True)


def test_a_stale_draft_is_refused_with_a_message_and_a_reload_button(staff_client, org, staff, live):
    base = revision(org, live)
    robin = factories.make_user(org, "staff", name="Robin Coach")
    drafts.apply_edit(org.id, robin.id, live.id, base_revision=base, action="rename", node_id="b", name="Hers")

    response = post(staff_client, live, "/publish", base_revision=base, choice="keep")

    panel = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Robin Coach saved a newer version of this draft" in text(panel)
    assert f'<a class="button-secondary" href="{url(live)}">Reload the builder</a>' in panel
    assert db.session.get(Workflow, live.id).version == 1


def test_a_missing_revision_or_an_unknown_choice_is_refused_in_the_panel(staff_client, org, staff, live):
    rename_b(org, staff, live)
    missing = post(staff_client, live, "/publish", choice="keep")  # answered like an edit without one: reload
    assert missing.status_code == 409 and "Reload the builder: this change did not say which draft it was made on." \
        in missing.get_data(as_text=True)
    odd = post(staff_client, live, "/publish", base_revision=revision(org, live), choice="teleport")
    assert odd.status_code == 422 and "Choose what happens to runs in flight" in odd.get_data(as_text=True)
    assert db.session.get(Workflow, live.id).version == 1


# --- safe publishing ----------------------------------------------------------------------------------------------

@pytest.fixture
def busy(org, staff):
    """An active nurture workflow with two contacts waiting at its wait and one run not started yet."""
    workflow = factories.make_workflow(org, staff, name="Busy", status="active", workflow_data=nurture())
    ids = []
    for name in ("Ann", "Bo", "Cy"):
        execution, _ = executions.start_execution(org.id, None, workflow.id, trigger_data={},
                                                  input_data={"contact": {"id": f"c-{name}", "name": name}})
        ids.append(execution.id)
    db.session.commit()
    for execution_id in ids[:2]:
        runner.run_execution(execution_id)
    db.session.expire_all()
    return workflow


def change_draft(org, staff, workflow, data):
    drafts.save_draft(org.id, staff.id, workflow.id, base_revision=revision(org, workflow), summary="Edited",
                      definition=data)


def test_the_panel_shows_contacts_at_each_step_and_the_three_choices(staff_client, org, staff, busy):
    change_draft(org, staff, busy, nurture(wait_id="longer_pause"))

    panel = staff_client.get(url(busy, "/publish"), headers=HTMX).get_data(as_text=True)

    assert "Runs in flight: 3 contacts" in text(panel) and "(2 waiting)" in panel
    rows = [text(r) for r in re.findall(r'<tr data-node-id="[^"]*">.*?</tr>', panel, re.S)]
    assert rows == ["Not started yet 1 0", "Give them time 2 2"]
    assert re.search(r'<input type="radio" name="choice" value="keep" checked', panel)
    assert 'value="move"' in panel and 'value="exit"' in panel
    unmatched = re.findall(r'<li data-node-id="([^"]+)">([^<]*)</li>', panel)
    assert unmatched == [("pause", "Give them time (2 contacts)")]


def test_publish_moving_runs_puts_them_on_the_new_version(staff_client, org, staff, busy):
    data = nurture()
    data["nodes"][2]["config"]["value"] = "v2"
    change_draft(org, staff, busy, data)

    response = post(staff_client, busy, "/publish", base_revision=revision(org, busy), choice="move")

    assert response.status_code == 200
    assert "Runs in flight: 3 moved to version 2." in text(response.get_data(as_text=True))
    db.session.expire_all()
    assert set(db.session.scalars(select(Execution.version).where(Execution.workflow_id == busy.id))) == {2}


def test_publish_exiting_runs_cancels_them(staff_client, org, staff, busy):
    change_draft(org, staff, busy, nurture(wait_id="longer_pause"))
    response = post(staff_client, busy, "/publish", base_revision=revision(org, busy), choice="exit")
    assert "3 exited." in text(response.get_data(as_text=True))
    db.session.expire_all()
    assert set(db.session.scalars(select(Execution.status).where(Execution.workflow_id == busy.id))) == {"cancelled"}


# --- versions and restore -----------------------------------------------------------------------------------------

def test_versions_newest_first_in_the_gyms_time_zone_and_restore_into_the_draft(client, staff, live):
    org = db.session.get(type(staff.memberships[0].organization), live.organization_id)
    org.timezone = "America/New_York"
    db.session.commit()
    sign_in(client, staff, org)
    rename_b(org, staff, live)
    post(client, live, "/publish", base_revision=revision(org, live), choice="keep")

    panel = client.get(url(live, "/versions"), headers=HTMX).get_data(as_text=True)
    assert re.findall(r'data-version="(\d+)"', panel) == ["2", "1"]
    published = db.session.scalar(select(WorkflowVersion.created_at).where(WorkflowVersion.workflow_id == live.id,
                                                                           WorkflowVersion.version == 2))
    assert published.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")).strftime("%H:%M E") in panel
    assert 'hx-confirm="Restore version 1 into the draft?' in panel

    response = post(client, live, "/versions/1/restore", base_revision=revision(org, live))

    assert response.status_code == 200 and response.headers["HX-Refresh"] == "true"
    draft = drafts.get_draft(org.id, live.id)
    assert draft.definition == db.session.get(WorkflowVersion, db.session.scalar(select(WorkflowVersion.id).where(
        WorkflowVersion.workflow_id == live.id, WorkflowVersion.version == 1))).workflow_data
    assert draft.dirty and draft.undo_summary == "Restored version 1"


def test_restore_on_a_stale_draft_says_so(staff_client, org, staff, live):
    rename_b(org, staff, live)
    response = post(staff_client, live, "/versions/1/restore", base_revision=0)
    assert response.status_code == 409 and "Reload the builder" in response.get_data(as_text=True)


# --- activate and pause -------------------------------------------------------------------------------------------

def test_pause_then_activate(staff_client, live):
    paused = post(staff_client, live, "/pause")
    assert paused.status_code == 200
    body = paused.get_data(as_text=True)
    assert f'hx-post="{url(live, "/activate")}"' in body and ">Activate</button>" in body
    assert 'id="workflow-status" hx-swap-oob="true">Paused</span>' in body
    assert db.session.get(Workflow, live.id).status == "paused"

    active = post(staff_client, live, "/activate")
    assert active.status_code == 200 and ">Pause</button>" in active.get_data(as_text=True)
    assert db.session.get(Workflow, live.id).status == "active"


def test_activation_is_refused_with_the_problems_listed(staff_client, org, staff):
    workflow = factories.make_workflow(org, staff, name="Broken", workflow_data=BROKEN)
    workflows.update_workflow(org.id, staff.id, workflow.id, {"status": "paused"})

    response = post(staff_client, workflow, "/activate")

    body = response.get_data(as_text=True)
    assert response.status_code == 422 and response.headers["HX-Retarget"] == "#builder-panel"
    assert "cannot be activated" in body and '<a href="#node-pause">Pause</a>' in body
    assert db.session.get(Workflow, workflow.id).status == "paused"


def test_a_new_workflow_is_turned_on_by_publishing_not_activate(staff_client, org, staff):
    workflow = factories.make_workflow(org, staff, name="Fresh")
    response = post(staff_client, workflow, "/activate")
    assert response.status_code == 409 and "Publish it to turn it on." in response.get_data(as_text=True)
    assert db.session.get(Workflow, workflow.id).status == "draft"
