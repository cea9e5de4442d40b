"""The builder's trigger panel and workflow settings panel through Flask's test client: the trigger types, a type change
(default config, the trigger card redrawn), config saves and their errors, a schedule's next runs, enrollment rules
saved to the draft, description/category/tags saved to the workflow, roles, tenancy and the stale-draft refusal."""
import html
import re
from datetime import UTC, datetime

import pytest

from atlas.core import triggers as catalog
from atlas.extensions import db
from atlas.services import drafts
from atlas.services.workflows import get_workflow
from tests import factories
from tests.web.test_builder_pages import FLOW, HTMX_PANEL, text
from tests.web.test_pages import sign_in

FILTER = {"settings.enrollmentFilter.kind": "rule", "settings.enrollmentFilter.field": "contact.status",
          "settings.enrollmentFilter.operator": "equals", "settings.enrollmentFilter.value": "lead",
          "settings.enrollmentFilter.value.type": "string"}
RULES = {"settings.reenrollment": "after_days", "settings.reenrollmentDays": "30",
         "settings.oneActiveRunPerContact": ["false", "true"], "settings.exitOnUnsubscribe": "false",
         "settings.exitWhenMember": ["false", "true"], **FILTER}


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Trial follow-up", workflow_data=FLOW,
                                   settings={"custom": "kept", "reenrollment": "never"})


def draft_of(workflow):
    return drafts.get_draft(workflow.organization_id, workflow.id)


def post(client, workflow, path, revision=None, **form):
    revision = draft_of(workflow).revision if revision is None else revision
    return client.post(f"/workflows/{workflow.id}/builder/{path}", headers=HTMX_PANEL,
                       data={"base_revision": revision, **form})


def trigger_card(body: str) -> str:
    return re.search(r'<button type="button" class="fc-trigger[^>]*>.*?</button>', body, re.S).group(0)


def test_the_trigger_card_opens_the_trigger_panel_listing_the_types_by_category(staff_client, workflow):
    page = staff_client.get(f"/workflows/{workflow.id}/builder").get_data(as_text=True)
    assert f'hx-get="/workflows/{workflow.id}/builder/trigger"' in trigger_card(page)
    assert f'hx-get="/workflows/{workflow.id}/builder/settings"' in page  # the header's Settings button

    body = staff_client.get(f"/workflows/{workflow.id}/builder/trigger", headers=HTMX_PANEL).get_data(as_text=True)
    groups = [html.unescape(g) for g in re.findall(r'<optgroup label="([^"]+)">', body)]
    assert groups == [name for name, _ in catalog.CATEGORIES.values()]
    options = re.findall(r'<option value="(\w+)" title="[^"]*" (selected)?', body)
    assert {key for key, _ in options} == {t.key for t in catalog.all_types()}
    assert [key for key, chosen in options if chosen] == ["lead_created"]
    assert catalog.get("class_missed").description in text(body)
    assert 'name="config.leadSources"' in body  # the config form of the current type


def test_changing_the_type_saves_defaults_and_redraws_the_trigger_card(staff_client, workflow):
    response = post(staff_client, workflow, "trigger/type", trigger_type="membership_expiring")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    draft = draft_of(workflow)
    assert draft.trigger_type == "membership_expiring" and draft.trigger_config == {"daysBefore": 7}
    assert get_workflow(workflow.organization_id, workflow.id).trigger_type == "lead_created"  # live untouched
    assert 'name="config.daysBefore"' in body and 'value="7"' in body  # the new form, in the panel
    canvas = re.search(r'<div id="builder" hx-swap-oob="innerHTML">(.*)', body, re.S).group(1)
    assert text(trigger_card(canvas)) == "Trigger Membership expiring 7 days before the membership expires"
    page = staff_client.get(f"/workflows/{workflow.id}/builder").get_data(as_text=True)
    assert "Membership expiring" in text(trigger_card(page))  # the page draws the draft's trigger
    assert draft.undo_summary == "Changed the trigger to 'Membership expiring'"


def test_a_config_change_is_saved_and_a_bad_one_is_a_field_error(staff_client, workflow):
    post(staff_client, workflow, "trigger/type", trigger_type="tag_added")
    assert draft_of(workflow).trigger_config == {}
    page = staff_client.get(f"/workflows/{workflow.id}/builder").get_data(as_text=True)
    assert "has-errors" in trigger_card(page)  # the tag is required

    response = post(staff_client, workflow, "trigger/config", **{"config.tag": "trial-pass"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["HX-Reswap"] == "none"
    assert draft_of(workflow).trigger_config == {"tag": "trial-pass"}
    assert "Tag trial-pass" in text(trigger_card(body)) and "has-errors" not in trigger_card(body)
    assert 'id="trigger-status" class="trigger-status" hx-swap-oob="true"' in body

    before = draft_of(workflow).revision
    bad = post(staff_client, workflow, "trigger/config", **{"config.tag": "x" * 200}).get_data(as_text=True)
    assert 'class="field-error"' in bad and "120 characters or fewer" in bad and 'aria-invalid="true"' in bad
    assert draft_of(workflow).revision == before and draft_of(workflow).trigger_config == {"tag": "trial-pass"}
    unknown = post(staff_client, workflow, "trigger/type", trigger_type="moon_phase")
    assert unknown.status_code == 422 and draft_of(workflow).trigger_type == "tag_added"


def test_the_trigger_panel_lists_the_triggers_problems(staff_client, workflow):
    post(staff_client, workflow, "trigger/type", trigger_type="form_submitted")
    body = staff_client.get(f"/workflows/{workflow.id}/builder/trigger", headers=HTMX_PANEL).get_data(as_text=True)
    issues = re.search(r'<div id="trigger-status".*?</div>', body, re.S).group(0)
    assert "formId" in issues and "problem-error" in issues


def test_a_schedule_previews_its_next_runs_in_the_gyms_time_zone(staff_client, org, workflow):
    org.timezone = "Europe/London"
    db.session.commit()
    post(staff_client, workflow, "trigger/type", trigger_type="schedule")
    body = post(staff_client, workflow, "trigger/config", **{"config.scheduleType": "cron",
                                                             "config.cronExpression": "0 9 * * 1"}).get_data(
        as_text=True)
    assert draft_of(workflow).trigger_config == {"scheduleType": "cron", "cronExpression": "0 9 * * 1"}
    runs = re.findall(r"<li>(Monday [^<]+ at 09:00)</li>", body)
    assert len(runs) == 3 and "Europe/London" in body

    bad = post(staff_client, workflow, "trigger/config", **{"config.scheduleType": "cron",
                                                           "config.cronExpression": "every monday"})
    assert "not a valid cron expression" in bad.get_data(as_text=True)
    assert draft_of(workflow).trigger_config["cronExpression"] == "0 9 * * 1"


def test_schedule_preview_arithmetic_for_recurring():
    from atlas.web.builder_settings import schedule_preview
    now = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    config = {"scheduleType": "recurring", "every": {"amount": 1, "unit": "days"}, "startAt": "2026-03-01T09:00"}
    preview = schedule_preview(catalog.get("schedule"), config, now=now, tz_name="Europe/London")
    assert preview["runs"] == ["Sunday 29 March 2026 at 09:00", "Monday 30 March 2026 at 09:00",
                               "Tuesday 31 March 2026 at 09:00"]  # across the clocks going forward
    assert schedule_preview(catalog.get("tag_added"), {}, now=now, tz_name="UTC") is None


def test_enrollment_rules_are_saved_to_the_drafts_settings(staff_client, workflow):
    body = staff_client.get(f"/workflows/{workflow.id}/builder/settings", headers=HTMX_PANEL).get_data(as_text=True)
    assert 'id="reenroll-never" name="settings.reenrollment"\n               value="never" checked' in body
    assert 'data-shown-for="after_days"' in body and "/settings/messaging" in body

    response = post(staff_client, workflow, "settings/enrollment", **RULES)
    assert response.status_code == 200 and response.headers["HX-Reswap"] == "none"
    settings = draft_of(workflow).settings
    assert settings == {"custom": "kept", "reenrollment": "after_days", "reenrollmentDays": 30,
                        "oneActiveRunPerContact": True, "exitOnUnsubscribe": False, "exitWhenMember": True,
                        "enrollmentFilter": {"field": "contact.status", "operator": "equals", "value": "lead"}}
    assert get_workflow(workflow.organization_id, workflow.id).settings["reenrollment"] == "never"

    post(staff_client, workflow, "settings/enrollment", **{**RULES, "settings.reenrollment": "always",
                                                            "settings.enrollmentFilter.kind": "all"})
    settings = draft_of(workflow).settings
    assert settings["reenrollment"] == "always" and "reenrollmentDays" not in settings
    assert "enrollmentFilter" not in settings and settings["custom"] == "kept"


def test_bad_enrollment_rules_are_field_errors_and_nothing_is_saved(staff_client, workflow):
    before = draft_of(workflow).revision
    body = post(staff_client, workflow, "settings/enrollment",
                **{**RULES, "settings.reenrollmentDays": "0"}).get_data(as_text=True)
    assert 'id="f-settings-reenrollmentDays-error"' in body and "Enter 1 or more." in body
    assert 'value="0"' in body and draft_of(workflow).revision == before


def test_adding_a_filter_rule_redraws_without_saving(staff_client, workflow):
    before = draft_of(workflow).revision
    body = post(staff_client, workflow, "settings/enrollment",
                **{**RULES, "op": "add_rule:settings.enrollmentFilter"}).get_data(as_text=True)
    assert 'name="settings.enrollmentFilter.items.1.field"' in body and draft_of(workflow).revision == before


def test_description_category_and_tags_are_saved_to_the_workflow(staff_client, workflow):
    response = staff_client.post(f"/workflows/{workflow.id}/builder/settings/details", headers=HTMX_PANEL,
                                 data={"description": "Welcome new trial members", "category": "Lead nurture",
                                       "tags": "trial, onboarding, trial"})
    assert response.status_code == 200 and "Saved to the workflow." in response.get_data(as_text=True)
    saved = get_workflow(workflow.organization_id, workflow.id)
    assert (saved.description, saved.category, sorted(saved.tags)) == ("Welcome new trial members", "Lead nurture",
                                                                       ["onboarding", "trial"])
    assert draft_of(workflow).revision == 0  # not the draft

    bad = staff_client.post(f"/workflows/{workflow.id}/builder/settings/details", headers=HTMX_PANEL,
                            data={"description": "", "category": "c" * 65, "tags": ""}).get_data(as_text=True)
    assert 'id="wf-category-error"' in bad and get_workflow(workflow.organization_id, workflow.id).category == \
        "Lead nurture"


def test_viewers_read_the_panels_but_cannot_change_them(client, org, workflow):
    sign_in(client, factories.make_user(org, "viewer", name="Vic Viewer"), org)
    trigger = client.get(f"/workflows/{workflow.id}/builder/trigger", headers=HTMX_PANEL).get_data(as_text=True)
    assert "Lead created" in trigger and "<select" not in trigger and "Any lead source" in text(trigger)
    settings = client.get(f"/workflows/{workflow.id}/builder/settings", headers=HTMX_PANEL).get_data(as_text=True)
    assert "<form" not in settings and "Enroll a contact again" in settings
    page = client.get(f"/workflows/{workflow.id}/builder").get_data(as_text=True)
    assert f'/workflows/{workflow.id}/builder/settings"' not in page
    assert post(client, workflow, "trigger/type", trigger_type="birthday").status_code == 403
    assert post(client, workflow, "settings/enrollment", **RULES).status_code == 403
    assert client.post(f"/workflows/{workflow.id}/builder/settings/details", headers=HTMX_PANEL,
                       data={"category": "Hijacked"}).status_code == 403
    assert draft_of(workflow).revision == 0 and get_workflow(org.id, workflow.id).category is None


def test_another_organizations_workflow_answers_404(staff_client):
    other_org = factories.make_org("Rival gym")
    theirs = factories.make_workflow(other_org, factories.make_user(other_org, "owner"), name="Theirs",
                                     workflow_data=FLOW)
    assert staff_client.get(f"/workflows/{theirs.id}/builder/trigger", headers=HTMX_PANEL).status_code == 404
    assert staff_client.get(f"/workflows/{theirs.id}/builder/settings", headers=HTMX_PANEL).status_code == 404
    assert post(staff_client, theirs, "trigger/type", trigger_type="birthday").status_code == 404
    assert post(staff_client, theirs, "settings/enrollment", **RULES).status_code == 404
    assert staff_client.post(f"/workflows/{theirs.id}/builder/settings/details", headers=HTMX_PANEL,
                             data={"category": "Hijacked"}).status_code == 404
    assert drafts.get_draft(other_org.id, theirs.id).revision == 0
    assert get_workflow(other_org.id, theirs.id).category is None


def test_a_change_on_a_stale_draft_is_refused_with_a_reload(staff_client, workflow, org):
    stale = draft_of(workflow).revision
    colleague = factories.make_user(org, "staff", name="Robin Coach")
    drafts.save_draft(org.id, colleague.id, workflow.id, base_revision=stale, summary="Robin's trigger",
                      trigger_type="birthday", trigger_config={})
    for path, form in (("trigger/type", {"trigger_type": "tag_added"}), ("trigger/config", {}),
                       ("settings/enrollment", RULES)):
        response = post(staff_client, workflow, path, revision=stale, **form)
        assert response.status_code == 409 and response.headers["HX-Retarget"] == "#builder-panel", path
        assert "Robin Coach" in text(response.get_data(as_text=True))
    draft = draft_of(workflow)
    assert draft.trigger_type == "birthday" and draft.settings["reenrollment"] == "never"
