"""The builder's draft: saved at once, optimistic concurrency, undo/redo in the database, publish, versions, restore."""
import threading
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from atlas.core import edits
from atlas.errors import AtlasError
from atlas.extensions import db
from atlas.models import Workflow, WorkflowDraft, WorkflowDraftRevision, WorkflowVersion
from atlas.services import drafts, workflows
from tests import factories

TEN_MINUTES = {"amount": 10, "unit": "minutes"}


@pytest.fixture
def gym(org):
    """The organization's id, usable across reloads (rows of a removed session cannot be read)."""
    return SimpleNamespace(id=org.id)


@pytest.fixture
def sam(staff):
    return SimpleNamespace(id=staff.id)


@pytest.fixture
def robin(org):
    return SimpleNamespace(id=factories.make_user(org, "staff", name="Robin Coach").id)


@pytest.fixture
def flow(org, staff):
    """A live workflow: a -> b."""
    workflow = factories.make_workflow(org, staff, name="Lead nurture", status="active")
    return SimpleNamespace(id=workflow.id, workflow_data=workflow.workflow_data)


def reload():
    """What a page reload amounts to: a fresh session, nothing remembered in memory."""
    db.session.remove()


def refused(call, code: str, status: int) -> AtlasError:
    with pytest.raises(AtlasError) as caught:
        call()
    assert (caught.value.code, caught.value.status) == (code, status), caught.value.message
    return caught.value


def add_wait(gym, user, flow, base: int, at: str = "after:a:") -> drafts.Draft:
    return drafts.apply_edit(gym.id, user.id, flow.id, base_revision=base, action="insert", at=at, step_type="wait",
                             config={"duration": TEN_MINUTES})


def history(flow) -> list[int]:
    return list(db.session.scalars(select(WorkflowDraftRevision.revision).where(
        WorkflowDraftRevision.workflow_id == flow.id).order_by(WorkflowDraftRevision.revision)))


# --- reading and saving ------------------------------------------------------------------------------------------

def test_a_workflow_never_edited_has_a_draft_equal_to_itself_at_revision_zero(gym, flow):
    draft = drafts.get_draft(gym.id, flow.id)
    assert (draft.revision, draft.dirty, draft.can_undo, draft.can_redo) == (0, False, False, False)
    assert draft.definition == flow.workflow_data and draft.trigger_type == "lead_created"
    assert draft.issues == [] and draft.updated_by is None
    assert db.session.scalar(select(func.count()).select_from(WorkflowDraft)) == 0  # reading writes nothing


def test_a_save_records_a_revision_and_leaves_the_live_workflow_alone(gym, sam, flow):
    live = dict(flow.workflow_data)
    draft = add_wait(gym, sam, flow, 0)
    assert (draft.revision, draft.dirty, draft.can_undo, draft.updated_by) == (1, True, True, "Sam Staff")
    assert draft.undo_summary == "Added step 'Wait 10 minutes'"
    assert [n["id"] for n in draft.definition["nodes"]] == ["a", "wait", "b"]
    reload()
    assert db.session.get(Workflow, flow.id).workflow_data == live
    assert drafts.get_draft(gym.id, flow.id).definition == draft.definition


def test_a_second_save_on_a_stale_revision_is_refused_and_changes_nothing(gym, sam, robin, flow):
    seen_by_robin = drafts.get_draft(gym.id, flow.id).revision
    saved = add_wait(gym, sam, flow, 0)
    error = refused(lambda: drafts.apply_edit(gym.id, robin.id, flow.id, base_revision=seen_by_robin,
                                              action="rename", node_id="a", name="Robin's name"), "DRAFT_CONFLICT", 409)
    assert "Sam Staff saved a newer version of this draft at " in error.message and "Reload" in error.message
    assert error.details["currentRevision"] == 1 and error.details["updatedBy"] == "Sam Staff"
    reload()
    draft = drafts.get_draft(gym.id, flow.id)
    assert draft.revision == 1 and draft.definition == saved.definition and history(flow) == [0, 1]
    refused(lambda: drafts.save_draft(gym.id, robin.id, flow.id, base_revision=0, summary="x",
                                      settings={"reentry": "never"}), "DRAFT_CONFLICT", 409)


@pytest.mark.parametrize("saves_before", [0, 1])
def test_of_two_simultaneous_saves_on_one_revision_exactly_one_wins(app, gym, sam, robin, flow, saves_before):
    """Real concurrent transactions: the first save of a draft (no row yet) and a later one (row locked)."""
    base = add_wait(gym, sam, flow, 0).revision if saves_before else 0
    db.session.commit()  # the test's own transaction ends first (SQLite has one writer)
    barrier, outcomes = threading.Barrier(2), []

    def save(user_id: str, name: str):
        with app.app_context():
            barrier.wait()
            try:
                drafts.apply_edit(gym.id, user_id, flow.id, base_revision=base, action="rename", node_id="a",
                                  name=name)
                outcomes.append("saved")
            except AtlasError as exc:
                outcomes.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=save, args=(u.id, n)) for u, n in ((sam, "Sam's"), (robin, "Robin's"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["DRAFT_CONFLICT", "saved"]
    reload()
    assert drafts.get_draft(gym.id, flow.id).revision == base + 1 and len(history(flow)) == base + 2


def test_the_conflict_message_says_when_you_saved_it_yourself_elsewhere(gym, sam, flow):
    add_wait(gym, sam, flow, 0)
    error = refused(lambda: add_wait(gym, sam, flow, 0), "DRAFT_CONFLICT", 409)
    assert error.message.startswith("You saved a newer version of this draft in another window at ")


def test_a_malformed_definition_is_refused_and_nothing_saved(gym, sam, flow):
    bad = {"nodes": [{"id": "a", "type": "wait"}, {"id": "a", "type": "wait"}], "edges": [{"source": "a", "target": "x"}]}
    error = refused(lambda: drafts.save_draft(gym.id, sam.id, flow.id, base_revision=0, summary="Broke it",
                                              definition=bad), "INVALID_WORKFLOW_DATA", 422)
    assert {"DUPLICATE_NODE_ID", "UNKNOWN_NODE"} <= {i["code"] for i in error.validation}
    reload()
    assert drafts.get_draft(gym.id, flow.id).revision == 0 and history(flow) == []


def test_an_incomplete_draft_is_saved_with_its_issues_on_their_steps(gym, sam, flow):
    draft = drafts.apply_edit(gym.id, sam.id, flow.id, base_revision=0, action="insert", at="after:b:",
                              step_type="send_sms", node_id="sms")
    assert draft.revision == 1
    assert any(i["severity"] == "error" and i["node_id"] == "sms" for i in draft.issues)
    draft = drafts.save_draft(gym.id, sam.id, flow.id, base_revision=1, summary="Changed the trigger",
                              trigger_type="no_such_trigger")
    assert any(i["code"] == "UNKNOWN_TRIGGER_TYPE" for i in draft.issues) and draft.trigger_type == "no_such_trigger"


def test_bad_edits_and_bad_fields_are_refused_with_precise_codes(gym, sam, flow):
    refused(lambda: drafts.apply_edit(gym.id, sam.id, flow.id, base_revision=0, action="delete", node_id="nope"),
            "INVALID_EDIT", 422)
    refused(lambda: drafts.apply_edit(gym.id, sam.id, flow.id, base_revision=0, action="explode"),
            "INVALID_EDIT", 422)
    refused(lambda: drafts.apply_edit(gym.id, sam.id, flow.id, base_revision=0, action="rename", node_id="a"),
            "INVALID_EDIT", 422)
    refused(lambda: drafts.save_draft(gym.id, sam.id, flow.id, base_revision="0", summary="x", settings={}),
            "VALIDATION_FAILED", 422)
    refused(lambda: drafts.save_draft(gym.id, sam.id, flow.id, base_revision=0, summary=" ", settings={}),
            "VALIDATION_FAILED", 422)
    refused(lambda: drafts.save_draft(gym.id, sam.id, flow.id, base_revision=0, summary="x", settings=[]),
            "VALIDATION_FAILED", 422)
    assert history(flow) == []


def test_a_save_that_changes_nothing_adds_no_revision(gym, sam, flow):
    add_wait(gym, sam, flow, 0)
    same = drafts.save_draft(gym.id, sam.id, flow.id, base_revision=1, summary="Nothing",
                             trigger_type="lead_created")
    assert same.revision == 1 and history(flow) == [0, 1]


def test_another_organizations_workflow_looks_missing(gym, sam, flow):
    stranger = factories.make_org("Other Gym")
    refused(lambda: drafts.get_draft(stranger.id, flow.id), "WORKFLOW_NOT_FOUND", 404)
    refused(lambda: add_wait(stranger, sam, flow, 0), "WORKFLOW_NOT_FOUND", 404)
    refused(lambda: drafts.versions(stranger.id, flow.id), "WORKFLOW_NOT_FOUND", 404)


# --- undo and redo -----------------------------------------------------------------------------------------------

def test_undo_and_redo_survive_a_reload(gym, sam, flow):
    original = drafts.get_draft(gym.id, flow.id).definition
    first = add_wait(gym, sam, flow, 0)
    second = drafts.apply_edit(gym.id, sam.id, flow.id, base_revision=1, action="rename", node_id="a", name="Hi")
    reload()
    undone = drafts.undo(gym.id, sam.id, flow.id, second.revision)
    assert undone.definition == first.definition and undone.revision == 3 and undone.position == 1
    assert undone.can_redo and undone.redo_summary == "Renamed 'a' to 'Hi'"
    reload()
    again = drafts.get_draft(gym.id, flow.id)
    assert again.definition == first.definition and again.undo_summary == "Added step 'Wait 10 minutes'"
    back_to_start = drafts.undo(gym.id, sam.id, flow.id, again.revision)
    assert back_to_start.definition == original and not back_to_start.can_undo and not back_to_start.dirty
    refused(lambda: drafts.undo(gym.id, sam.id, flow.id, back_to_start.revision), "NOTHING_TO_UNDO", 409)
    reload()
    redone = drafts.redo(gym.id, sam.id, flow.id, back_to_start.revision)
    redone = drafts.redo(gym.id, sam.id, flow.id, redone.revision)
    assert redone.definition == second.definition and not redone.can_redo
    refused(lambda: drafts.redo(gym.id, sam.id, flow.id, redone.revision), "NOTHING_TO_REDO", 409)


def test_undo_on_a_stale_revision_is_a_conflict(gym, sam, robin, flow):
    add_wait(gym, sam, flow, 0)
    drafts.undo(gym.id, sam.id, flow.id, 1)
    refused(lambda: drafts.undo(gym.id, robin.id, flow.id, 1), "DRAFT_CONFLICT", 409)  # revision is 2 now


def test_a_new_save_after_an_undo_drops_the_redo_tail(gym, sam, flow):
    add_wait(gym, sam, flow, 0)
    drafts.apply_edit(gym.id, sam.id, flow.id, base_revision=1, action="rename", node_id="a", name="Hi")
    undone = drafts.undo(gym.id, sam.id, flow.id, 2)
    assert undone.can_redo and history(flow) == [0, 1, 2]
    saved = drafts.apply_edit(gym.id, sam.id, flow.id, base_revision=undone.revision, action="rename",
                              node_id="b", name="Bye")
    assert not saved.can_redo and history(flow) == [0, 1, saved.revision]
    refused(lambda: drafts.redo(gym.id, sam.id, flow.id, saved.revision), "NOTHING_TO_REDO", 409)
    assert [n["name"] for n in saved.definition["nodes"]] == ["a", "Wait 10 minutes", "Bye"]


def test_history_keeps_the_newest_200_revisions(gym, sam, flow, monkeypatch):
    monkeypatch.setattr(drafts, "MAX_REVISIONS", 5)
    revision = 0
    for i in range(8):
        revision = drafts.save_draft(gym.id, sam.id, flow.id, base_revision=revision, summary=f"Change {i}",
                                     settings={"description": str(i)}).revision
    assert history(flow) == [4, 5, 6, 7, 8]
    for _ in range(4):
        revision = drafts.undo(gym.id, sam.id, flow.id, revision).revision
    draft = drafts.get_draft(gym.id, flow.id)
    assert draft.settings == {"description": "3"} and not draft.can_undo
    refused(lambda: drafts.undo(gym.id, sam.id, flow.id, revision), "NOTHING_TO_UNDO", 409)


def test_the_real_cap_is_200(gym, sam, flow):
    assert drafts.MAX_REVISIONS == 200
    revision = 0
    for i in range(203):
        revision = drafts.save_draft(gym.id, sam.id, flow.id, base_revision=revision, summary=f"Change {i}",
                                     settings={"description": str(i)}).revision
    kept = history(flow)
    assert len(kept) == 200 and kept[-1] == 203 and kept[0] == 4


# --- publishing, versions, restore -------------------------------------------------------------------------------

def test_publish_is_refused_while_errors_remain(gym, sam, flow):
    draft = drafts.apply_edit(gym.id, sam.id, flow.id, base_revision=0, action="insert", at="after:b:",
                              step_type="send_sms", node_id="sms")
    error = refused(lambda: drafts.publish(gym.id, sam.id, flow.id, draft.revision), "INVALID_WORKFLOW_DATA", 422)
    assert error.validation and all(i["severity"] == "error" for i in error.validation)
    assert {i["node_id"] for i in error.validation} == {"sms"}
    reload()
    assert db.session.get(Workflow, flow.id).version == 1


def test_publish_makes_a_new_version_of_a_live_workflow_with_a_summary(gym, sam, robin, flow):
    draft = add_wait(gym, sam, flow, 0)
    draft = drafts.apply_edit(gym.id, sam.id, flow.id, base_revision=draft.revision, action="rename",
                              node_id="b", name="Second")
    draft = drafts.save_draft(gym.id, sam.id, flow.id, base_revision=draft.revision, summary="Quiet hours",
                              settings={"reentry": "never"})
    workflow, version, summary = drafts.publish(gym.id, robin.id, flow.id, draft.revision)
    assert (workflow.version, workflow.status, version.version) == (2, "active", 2)
    assert summary == ["Added step 'Wait 10 minutes'", "Renamed 'b' to 'Second'", "Changed workflow settings: reentry"]
    assert workflow.workflow_data == draft.definition and workflow.settings == {"reentry": "never"}
    reload()
    assert not drafts.get_draft(gym.id, flow.id).dirty
    listed = drafts.versions(gym.id, flow.id)
    assert [(v.version, v.published_by, v.changes, v.is_current) for v in listed] == [
        (2, "Robin Coach", summary, True), (1, "Sam Staff", ["First version"], False)]
    refused(lambda: drafts.publish(gym.id, sam.id, flow.id, draft.revision), "NOTHING_TO_PUBLISH", 409)


def test_publish_on_a_stale_revision_is_a_conflict(gym, sam, flow):
    add_wait(gym, sam, flow, 0)
    refused(lambda: drafts.publish(gym.id, sam.id, flow.id, 0), "DRAFT_CONFLICT", 409)


def test_publishing_a_new_workflow_turns_it_on(gym, sam):
    flow = factories.make_workflow(gym, sam, name="Fresh")
    assert flow.status == "draft"
    workflow, version, summary = drafts.publish(gym.id, sam.id, flow.id, 0)
    assert (workflow.status, version.version, version.created_by) == ("active", 1, sam.id)
    assert summary == ["First version: 2 steps, started by lead_created"]
    assert drafts.versions(gym.id, flow.id)[0].changes == summary


def test_publishing_a_paused_workflow_records_the_version_and_keeps_it_paused(gym, sam, flow):
    workflows.update_workflow(gym.id, sam.id, flow.id, {"status": "paused"})
    draft = add_wait(gym, sam, flow, 0)
    workflow, version, summary = drafts.publish(gym.id, sam.id, flow.id, draft.revision)
    assert (workflow.status, workflow.version, version.version) == ("paused", 2, 2)
    assert version.workflow_data == draft.definition and summary == ["Added step 'Wait 10 minutes'"]
    workflows.update_workflow(gym.id, sam.id, flow.id, {"status": "active"})
    assert db.session.scalar(select(func.count()).select_from(WorkflowVersion).where(
        WorkflowVersion.workflow_id == flow.id)) == 2


def test_an_archived_workflow_cannot_be_published(gym, sam, flow):
    draft = add_wait(gym, sam, flow, 0)
    workflows.archive_workflow(gym.id, flow.id)
    refused(lambda: drafts.publish(gym.id, sam.id, flow.id, draft.revision), "WORKFLOW_ARCHIVED", 409)


def test_versions_published_through_the_api_get_a_worked_out_summary(gym, sam, flow):
    data, _ = edits.rename_step(flow.workflow_data, "a", "Hello")
    workflows.update_workflow(gym.id, sam.id, flow.id, {"workflow_data": data})
    assert drafts.versions(gym.id, flow.id)[0].changes == ["Renamed 'a' to 'Hello'"]


def test_restore_copies_a_version_into_the_draft_as_a_new_revision(gym, sam, flow):
    v1 = dict(flow.workflow_data)
    draft = add_wait(gym, sam, flow, 0)
    drafts.publish(gym.id, sam.id, flow.id, draft.revision)
    restored = drafts.restore(gym.id, sam.id, flow.id, 1, draft.revision)
    assert restored.definition == v1 and restored.dirty and restored.undo_summary == "Restored version 1"
    undone = drafts.undo(gym.id, sam.id, flow.id, restored.revision)
    assert undone.definition == draft.definition
    refused(lambda: drafts.restore(gym.id, sam.id, flow.id, 9, undone.revision), "VERSION_NOT_FOUND", 404)
    refused(lambda: drafts.restore(gym.id, sam.id, flow.id, 1, restored.revision), "DRAFT_CONFLICT", 409)
