"""The builder's picker lists: everything the organization has, and nothing another organization has."""
from sqlalchemy import event

from atlas.extensions import db
from atlas.models import CustomField, Form, LeadSource, MessageTemplate, Role, WorkflowStatus
from atlas.services.builder_options import options_for
from tests import factories


def seed(org, prefix: str):
    """Templates of both channels, a form, a lead source, a custom field, tagged contacts and workflows."""
    db.session.add_all([
        MessageTemplate(organization_id=org.id, channel="email", name=f"{prefix} welcome", subject="Hi", body="Hi"),
        MessageTemplate(organization_id=org.id, channel="sms", name=f"{prefix} reminder", body="See you"),
        Form(organization_id=org.id, name=f"{prefix} trial form"),
        LeadSource(organization_id=org.id, key=f"{prefix.lower()}-web", name=f"{prefix} website"),
        CustomField(organization_id=org.id, key=f"{prefix.lower()}_goal", label=f"{prefix} goal")])
    db.session.commit()
    factories.make_contact(org, tags=[f"{prefix.lower()}-vip", "shared"])
    factories.make_contact(org, tags=["shared"])
    active = factories.make_workflow(org, name=f"{prefix} active")
    active.status = WorkflowStatus.ACTIVE
    factories.make_workflow(org, name=f"{prefix} draft")
    db.session.commit()
    return active


def test_options_list_the_organizations_own_rows(org, staff):
    active = seed(org, "Ours")
    factories.make_user(org, Role.VIEWER, name="Ann Viewer")
    options = options_for(org.id)
    assert [t["name"] for t in options["email_templates"]] == ["Ours welcome"]
    assert [t["name"] for t in options["sms_templates"]] == ["Ours reminder"]
    assert options["tags"] == ["shared", "ours-vip"]  # the most used first
    assert [f["name"] for f in options["forms"]] == ["Ours trial form"]
    assert options["lead_sources"] == [{"key": "ours-web", "name": "Ours website"}]
    assert [(f["key"], f["label"]) for f in options["custom_fields"]] == [("ours_goal", "Ours goal")]
    assert [(s["name"], s["role"]) for s in options["staff"]] == [("Ann Viewer", "viewer"), ("Sam Staff", "staff")]
    assert options["workflows"] == [{"id": active.id, "name": "Ours active"}]  # drafts cannot be started


def test_another_organizations_rows_are_never_listed(org, staff):
    seed(org, "Ours")
    other = factories.make_org("Rival Gym")
    factories.make_user(other, name="Rita Rival")
    seed(other, "Theirs")
    options = options_for(org.id)
    flat = repr(options)
    assert "Theirs" not in flat and "theirs" not in flat and "Rita Rival" not in flat
    theirs = options_for(other.id)
    assert [t["name"] for t in theirs["email_templates"]] == ["Theirs welcome"]
    assert [s["name"] for s in theirs["staff"]] == ["Rita Rival"]


def test_an_empty_organization_has_empty_lists(org):
    assert options_for(org.id) == {"email_templates": [], "sms_templates": [], "tags": [], "forms": [],
                                   "lead_sources": [], "custom_fields": [], "staff": [], "workflows": []}


def test_options_take_a_few_queries(org, staff):
    seed(org, "Ours")
    org_id, statements = org.id, []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        options_for(org_id)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 7
