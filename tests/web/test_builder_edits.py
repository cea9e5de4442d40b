"""Editing in the builder through Flask's test client: the picker, insert, config autosave and its errors, rename,
duplicate, delete (a branching step asks which branch stays), undo/redo, the stale-draft refusal, roles, tenancy."""
import re

import pytest

from atlas.services import drafts
from tests import factories
from tests.web.test_builder_pages import FLOW, HTMX_PANEL, cards, text
from tests.web.test_pages import sign_in


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Trial follow-up", workflow_data=FLOW)


def post(client, workflow, path, revision=None, **form):
    revision = drafts.get_draft(workflow.organization_id, workflow.id).revision if revision is None else revision
    return client.post(f"/workflows/{workflow.id}/builder/{path}", headers=HTMX_PANEL,
                       data={"base_revision": revision, **form})


def node_ids(workflow) -> list[str]:
    return [n["id"] for n in drafts.get_draft(workflow.organization_id, workflow.id).definition["nodes"]]


def test_the_picker_lists_step_types_by_category_for_its_connector(staff_client, workflow):
    body = staff_client.get(f"/workflows/{workflow.id}/builder/picker?at=after:welcome:",
                            headers=HTMX_PANEL).get_data(as_text=True)
    assert '<input type="hidden" name="at" value="after:welcome:">' in body
    assert [m for m in re.findall(r"<legend>([^<]+)</legend>", body)] == ["Flow control", "Messages", "CRM",
                                                                         "Integrations"]
    assert 'name="step_type" value="wait"' in body and "Send SMS" in text(body)


def test_inserting_a_step_saves_the_draft_opens_the_step_and_redraws_the_canvas(staff_client, workflow):
    response = post(staff_client, workflow, "insert", at="after:welcome:", step_type="add_tag")
    body = response.get_data(as_text=True)

    assert response.status_code == 200
    assert node_ids(workflow)[:2] == ["welcome", "add_tag"]
    assert '<h2 id="panel-title" tabindex="-1">' in body and 'name="config.tag"' in body  # the new step, open
    canvas = re.search(r'<div id="builder" hx-swap-oob="innerHTML">(.*?)</section>', body, re.S).group(1)
    assert cards(canvas)[:3] == ["welcome", "add_tag", "pause"]
    draft = drafts.get_draft(workflow.organization_id, workflow.id)
    assert f'id="draft-revision" name="base_revision" value="{draft.revision}"' in body
    assert 'id="builder-history" class="builder-history" hx-swap-oob="true"' in body and draft.can_undo
    assert draft.definition != workflow.workflow_data and draft.dirty  # the live workflow is untouched


def test_a_config_change_is_saved_at_once_without_redrawing_the_panel(staff_client, workflow):
    response = post(staff_client, workflow, "nodes/pause/config", **{"config.duration.amount": "25",
                                                                     "config.duration.unit": "minutes"})
    assert response.status_code == 200 and response.headers["HX-Reswap"] == "none"
    pause = next(n for n in drafts.get_draft(workflow.organization_id, workflow.id).definition["nodes"]
                 if n["id"] == "pause")
    assert pause["config"] == {"duration": {"amount": 25, "unit": "minutes"}}
    assert "Wait 25 minutes" in text(response.get_data(as_text=True))  # the card's summary, redrawn


def test_an_invalid_config_comes_back_with_the_error_and_nothing_is_saved(staff_client, workflow):
    before = drafts.get_draft(workflow.organization_id, workflow.id).revision
    response = post(staff_client, workflow, "nodes/pause/config", **{"config.duration.amount": "soon",
                                                                     "config.duration.unit": "minutes"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and 'class="field-error"' in body and 'aria-invalid="true"' in body
    assert 'value="soon"' in body  # what was typed stays
    assert drafts.get_draft(workflow.organization_id, workflow.id).revision == before


def test_adding_a_rule_redraws_the_condition_without_saving(staff_client, workflow):
    before = drafts.get_draft(workflow.organization_id, workflow.id).revision
    form = {"config.condition.kind": "rule", "config.condition.field": "contact.status",
            "config.condition.operator": "equals", "config.condition.value": "member",
            "op": "add_rule:config.condition"}
    body = post(staff_client, workflow, "nodes/check/config", **form).get_data(as_text=True)
    assert body.count('name="config.condition.items.') > 0 and "hx-swap-oob" not in body
    assert drafts.get_draft(workflow.organization_id, workflow.id).revision == before


def test_rename_duplicate_and_delete(staff_client, workflow):
    post(staff_client, workflow, "nodes/pause/rename", name="Give them a day")
    assert "Give them a day" in text(staff_client.get(f"/workflows/{workflow.id}/builder").get_data(as_text=True))
    post(staff_client, workflow, "nodes/welcome/duplicate")
    copy = node_ids(workflow)[1]
    assert node_ids(workflow)[0] == "welcome" and copy not in {n["id"] for n in FLOW["nodes"]}
    response = post(staff_client, workflow, f"nodes/{copy}/delete")
    assert response.headers["HX-Trigger"] == "builder:close-panel" and copy not in node_ids(workflow)


def test_deleting_a_branching_step_asks_which_branch_stays(staff_client, workflow):
    asked = post(staff_client, workflow, "nodes/check/delete").get_data(as_text=True)
    assert re.findall(r'name="keep_branch" value="(\w+)"', asked) == ["true", "false"] and "Yes" in text(asked)
    assert "check" in node_ids(workflow)

    post(staff_client, workflow, "nodes/check/delete", keep_branch="true")
    remaining = node_ids(workflow)
    assert "check" not in remaining and "tag" in remaining and "email" not in remaining and "lost" not in remaining


def test_undo_and_redo_walk_the_saved_history(staff_client, workflow):
    post(staff_client, workflow, "nodes/pause/rename", name="One")
    post(staff_client, workflow, "nodes/pause/rename", name="Two")
    name = lambda: next(n["name"] for n in drafts.get_draft(workflow.organization_id, workflow.id)  # noqa: E731
                        .definition["nodes"] if n["id"] == "pause")
    post(staff_client, workflow, "undo")
    assert name() == "One"
    post(staff_client, workflow, "undo")
    assert name() == "Give them time"
    post(staff_client, workflow, "redo")
    assert name() == "One"


def test_a_change_on_a_stale_draft_is_refused_with_a_reload_and_changes_nothing(staff_client, workflow, org):
    stale = drafts.get_draft(workflow.organization_id, workflow.id).revision
    colleague = factories.make_user(org, "staff", name="Robin Coach")
    drafts.apply_edit(org.id, colleague.id, workflow.id, base_revision=stale, action="rename", node_id="pause",
                      name="Robin's name")

    response = post(staff_client, workflow, "nodes/pause/rename", revision=stale, name="Mine")
    body = response.get_data(as_text=True)
    assert response.status_code == 409 and response.headers["HX-Retarget"] == "#builder-panel"
    assert "Robin Coach" in text(body) and "Reload the builder" in body
    assert next(n["name"] for n in drafts.get_draft(org.id, workflow.id).definition["nodes"]
                if n["id"] == "pause") == "Robin's name"


def test_viewers_cannot_edit(client, org, workflow):
    sign_in(client, factories.make_user(org, "viewer", name="Vic Viewer"), org)
    assert post(client, workflow, "nodes/pause/rename", name="Nope").status_code == 403
    assert client.get(f"/workflows/{workflow.id}/builder/picker", headers=HTMX_PANEL).status_code == 403
    assert drafts.get_draft(workflow.organization_id, workflow.id).revision == 0


def test_another_organizations_workflow_cannot_be_edited(staff_client):
    other_org = factories.make_org("Rival gym")
    theirs = factories.make_workflow(other_org, factories.make_user(other_org, "owner"), name="Theirs",
                                     workflow_data=FLOW)
    assert post(staff_client, theirs, "nodes/pause/rename", name="Hijack").status_code == 404
    assert drafts.get_draft(other_org.id, theirs.id).revision == 0
