"""CRM steps through the real effects port against the database: tags, fields, status, owners, tasks."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from atlas.core import steps
from atlas.core.steps.base import StepContext, StepError
from atlas.extensions import db
from atlas.models import Contact, Event, StaffTask
from atlas.services import crm_actions, effects
from atlas.services.effects import EffectContext
from tests import factories

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)


def run_step(org, key: str, config: dict, contact=None, *, mock=False, key_suffix="1", execution_id="e-1"):
    """Run one step as a workflow run would, its side effects performed by the registered handlers."""
    contact_id = contact.id if contact is not None else None
    port = effects.port(EffectContext(org_id=org.id, execution_id=execution_id, contact_id=contact_id, mock=mock))
    data = {"trigger": {"source": "instagram"}, "contact": {"id": contact_id, "first_name": "Sarah"}, "vars": {},
            "steps": {}}
    ctx = StepContext(node_id="n1", config=config, data=data, now=NOW, execution_id=execution_id,
                      idempotency_key=f"{execution_id}:n1:{key_suffix}", effects=port)
    return steps.get(key).run(ctx).output


def fresh(contact) -> Contact:
    db.session.expire_all()
    return db.session.get(Contact, contact.id)


def events_of(contact, event_type):
    return db.session.scalars(select(Event).where(Event.contact_id == contact.id, Event.type == event_type)).all()


def test_add_tag_adds_once_and_reports_tag_added(org):
    contact = factories.make_contact(org, tags=["vip"])
    assert run_step(org, "add_tag", {"tag": "from-{{ trigger.source }}"}, contact) == \
        {"tag": "from-instagram", "changed": True}
    assert run_step(org, "add_tag", {"tag": "vip"}, contact) == {"tag": "vip", "changed": False}
    assert fresh(contact).tags == ["from-instagram", "vip"]
    assert [e.payload["tag"] for e in events_of(contact, "tag_added")] == ["from-instagram"]


def test_remove_tag_removes_only_what_is_there(org):
    contact = factories.make_contact(org, tags=["trial", "vip"])
    assert run_step(org, "remove_tag", {"tag": "trial"}, contact)["changed"] is True
    assert run_step(org, "remove_tag", {"tag": "never"}, contact)["changed"] is False
    assert fresh(contact).tags == ["vip"]
    assert len(events_of(contact, "tag_removed")) == 1


def test_update_contact_field_standard_and_custom(org):
    contact = factories.make_contact(org, lead_source="walk-in")
    out = run_step(org, "update_contact_field", {"field": "lead_source", "value": "{{ trigger.source }}"}, contact)
    assert out == {"field": "lead_source", "value": "instagram", "previous": "walk-in", "changed": True}
    run_step(org, "update_contact_field", {"field": "custom.goal", "value": "run 5k"}, contact)
    run_step(org, "update_contact_field", {"field": "birthday", "value": "1990-04-21"}, contact)
    row = fresh(contact)
    assert row.lead_source == "instagram" and row.custom_fields == {"goal": "run 5k"}
    assert row.birthday.isoformat() == "1990-04-21"


def test_a_value_the_crm_refuses_is_a_permanent_step_error(org):
    contact = factories.make_contact(org)
    with pytest.raises(StepError) as refused:
        run_step(org, "update_contact_field", {"field": "phone", "value": "call me"}, contact)
    assert refused.value.code == "INVALID_PHONE" and not refused.value.retryable


def test_change_lead_status_reports_status_changed(org):
    contact = factories.make_contact(org)
    out = run_step(org, "change_lead_status", {"status": "trial"}, contact)
    assert out == {"status": "trial", "previous": "lead", "changed": True}
    assert fresh(contact).status == "trial"
    assert run_step(org, "change_lead_status", {"status": "trial"}, contact)["changed"] is False
    assert len(events_of(contact, "status_changed")) == 1


def test_assign_owner_to_a_user_or_round_robin(org, staff):
    second = factories.make_user(org, "admin", name="Ada Admin")
    factories.make_user(org, "viewer", name="Vic Viewer")  # viewers are never in the rotation
    a, b, c = (factories.make_contact(org) for _ in range(3))
    picks = [run_step(org, "assign_owner", {"userId": "round_robin"}, person)["ownerId"] for person in (a, b, c)]
    assert picks[0] != picks[1] and picks[2] == picks[0] and set(picks) == {staff.id, second.id}
    assert fresh(b).owner_id == picks[1]
    out = run_step(org, "assign_owner", {"userId": second.id}, a)
    assert out == {"ownerId": second.id, "previousOwnerId": picks[0], "method": "user"}


def test_assign_owner_refuses_a_user_of_another_organization(org, staff):
    other = factories.make_org()
    stranger = factories.make_user(other, "staff")
    contact = factories.make_contact(org)
    with pytest.raises(StepError) as refused:
        run_step(org, "assign_owner", {"userId": stranger.id}, contact)
    assert refused.value.code == "OWNER_NOT_FOUND" and fresh(contact).owner_id is None


def test_create_task_once_per_idempotency_key(org, staff):
    contact = factories.make_contact(org, owner_id=staff.id)
    config = {"title": "Call {{ contact.first_name }}", "dueIn": {"amount": 1, "unit": "days"}}
    first = run_step(org, "create_task", config, contact)
    again = run_step(org, "create_task", config, contact)  # the same key: a replay after a crash
    assert first["created"] is True and again["created"] is False and again["taskId"] == first["taskId"]
    tasks = db.session.scalars(select(StaffTask).where(StaffTask.organization_id == org.id)).all()
    assert len(tasks) == 1
    task = tasks[0]
    assert task.title == "Call Sarah" and task.assignee_id == staff.id and task.contact_id == contact.id
    assert task.due_at.replace(tzinfo=timezone.utc) == datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
    assert task.execution_id == "e-1" and task.idempotency_key == "e-1:n1:1"
    run_step(org, "create_task", config, contact, key_suffix="2")  # another attempt is another key
    assert db.session.query(StaffTask).count() == 2


def test_create_task_for_a_chosen_assignee(org, staff):
    contact = factories.make_contact(org)
    out = run_step(org, "create_task", {"title": "Welcome pack", "assignee": staff.id}, contact)
    assert out["assigneeId"] == staff.id and out["dueAt"] is None


def test_mock_mode_changes_nothing(org, staff):
    contact = factories.make_contact(org, tags=["vip"])
    assert run_step(org, "add_tag", {"tag": "new"}, contact, mock=True)["mock"] is True
    assert run_step(org, "remove_tag", {"tag": "vip"}, contact, mock=True)["mock"] is True
    run_step(org, "change_lead_status", {"status": "lost"}, contact, mock=True)
    run_step(org, "update_contact_field", {"field": "custom.goal", "value": "x"}, contact, mock=True)
    owner = run_step(org, "assign_owner", {"userId": "round_robin"}, contact, mock=True)
    task = run_step(org, "create_task", {"title": "Call"}, contact, mock=True)
    assert owner["ownerId"] == staff.id and task == {"title": "Call", "assigneeId": None, "dueAt": None,
                                                     "taskId": None, "created": False, "mock": True}
    row = fresh(contact)
    assert row.tags == ["vip"] and row.status == "lead" and row.custom_fields == {} and row.owner_id is None
    assert db.session.query(StaffTask).count() == 0 and db.session.query(Event).count() == 0
    assert run_step(org, "assign_owner", {"userId": "round_robin"}, contact)["ownerId"] == staff.id  # turn unspent


def test_no_contact_and_another_organizations_contact(org):
    for key, config in [("add_tag", {"tag": "x"}), ("create_task", {"title": "x"}),
                        ("change_lead_status", {"status": "lost"})]:
        with pytest.raises(StepError) as missing:
            run_step(org, key, config, None)
        assert missing.value.code == "NO_CONTACT" and not missing.value.retryable
    foreign = factories.make_contact(factories.make_org(), tags=["theirs"])
    with pytest.raises(StepError) as hidden:
        run_step(org, "remove_tag", {"tag": "theirs"}, foreign)
    assert hidden.value.code == "CONTACT_NOT_FOUND"
    assert fresh(foreign).tags == ["theirs"]


def test_round_robin_needs_staff(org):
    contact = factories.make_contact(org)
    with pytest.raises(StepError) as refused:
        run_step(org, "assign_owner", {"userId": "round_robin"}, contact)
    assert refused.value.code == "NO_STAFF"
    assert crm_actions.staff_ids(org.id) == []
