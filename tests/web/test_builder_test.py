"""The builder's test panel through Flask's test client: the panel, running the DRAFT in test mode with a sample contact
and payload, the results, bad JSON, roles, tenancy, and the live events the canvas lights its cards from."""
import html
import json
import re
import uuid
from datetime import timedelta

import pytest

from atlas import realtime
from atlas.core import triggers as catalog
from atlas.extensions import db
from atlas.models import Execution, ExecutionStep, Message
from atlas.services import drafts, executions
from tests import factories
from tests.web.test_pages import sign_in

TEN_MINUTES = {"amount": 10, "unit": "minutes"}
# greet (template on the contact) -> pause (a wait) -> check (if contact is a member): yes -> tag; no -> text them
FLOW = {"schemaVersion": 1, "nodes": [
    {"id": "greet", "type": "set_variable", "name": "Greeting",
     "config": {"name": "greeting", "value": "Hi {{ contact.first_name }} from {{ trigger.source }}"}},
    {"id": "pause", "type": "wait", "name": "Give them time", "config": {"duration": TEN_MINUTES}},
    {"id": "check", "type": "if_else", "name": "Member?",
     "config": {"condition": {"field": "contact.status", "operator": "equals", "value": "member"}}},
    {"id": "tag", "type": "add_tag", "name": "Tag member", "config": {"tag": "member"}},
    {"id": "text", "type": "send_sms", "name": "Welcome text", "config": {"body": "Hi {{ contact.first_name }}!"}}],
    "edges": [{"source": "greet", "target": "pause"}, {"source": "pause", "target": "check"},
              {"source": "check", "target": "tag", "branch": "true"},
              {"source": "check", "target": "text", "branch": "false"}]}
HTMX = {"HX-Request": "true"}


def text(page: str) -> str:
    """The markup's words without tags, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def steps_of(page: str) -> list[tuple[str, str]]:
    """(node id, status) of each step in the results, in order."""
    return re.findall(r'data-step-id="([^"]+)" data-step-status="([^"]+)"', page)


def step(page: str, node_id: str) -> str:
    """One step's markup in the results."""
    return re.search(rf'<li class="step[^"]*" data-step-id="{node_id}".*?</li>', page, re.S).group(0)


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Trial follow-up", workflow_data=FLOW)


def url(workflow, tail: str = "") -> str:
    return f"/workflows/{workflow.id}/builder/test{tail}"


def start(client, workflow, payload=None, contact_id: str = "", run_id: str = "", raw: str | None = None):
    """POST the test form: 202 and the placeholder once the run is handed to the workers, else why not."""
    form = {"payload": raw if raw is not None else json.dumps(payload or {}), "contact_id": contact_id,
            "run_id": run_id}
    return client.post(url(workflow), data=form, headers={**HTMX, "HX-Target": "test-result"})


def run(client, workflow, payload=None, contact_id: str = "", run_id: str = "", raw: str | None = None):
    """Start a test, let a real RQ worker (burst) run it, then fetch the results as the placeholder does."""
    started = start(client, workflow, payload, contact_id, run_id, raw)
    if started.status_code != 202:
        return started
    work_off_the_queue(client.application)
    return client.get(placeholder_url(started.get_data(as_text=True)), headers=HTMX)


def placeholder_url(body: str) -> str:
    """Where the placeholder fetches the results from."""
    return html.unescape(re.search(r'data-test-pending="[^"]+"[^>]*hx-get="([^"]+)"', body, re.S).group(1))


def work_off_the_queue(app) -> None:
    """One burst SimpleWorker over Atlas's queues, as a running worker would take the test's job."""
    from rq import Queue, SimpleWorker

    from atlas.extensions import redis_holder

    db.session.commit()  # the test's own session ends its transaction, as a separate process's would be apart
    queues = [Queue(name, connection=redis_holder.client) for name in app.config["ATLAS_QUEUES"]]
    SimpleWorker(queues, connection=redis_holder.client).work(burst=True)
    db.session.expire_all()


# The panel

def test_the_builder_has_a_test_button_that_opens_the_panel(staff_client, workflow):
    page = staff_client.get(f"/workflows/{workflow.id}/builder").get_data(as_text=True)
    button = re.search(r'<button[^>]*id="test-button".*?</button>', page, re.S).group(0)
    assert f'hx-get="{url(workflow)}"' in button and 'hx-target="#builder-panel"' in button and ">Test<" in button
    assert "js/builder-test.js" in page


def test_the_panel_offers_contacts_and_the_triggers_sample_payload(staff_client, org, workflow):
    sam = factories.make_contact(org, first_name="Sam", last_name="Rivera", email="sam@example.com")
    factories.make_contact(factories.make_org("Rival Gym"), first_name="Theirs", last_name="Only")
    response = staff_client.get(url(workflow), headers=HTMX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body and "HX-Request" in response.headers["Vary"]
    assert '<h2 id="panel-title" tabindex="-1">Test Trial follow-up</h2>' in body
    assert "Nothing is sent." in text(body)
    assert '<option value="">No contact</option>' in body
    assert f'<option value="{sam.id}">Sam Rivera (sam@example.com)</option>' in body and "Theirs" not in body
    textarea = re.search(r'<textarea id="test-payload"[^>]*>(.*?)</textarea>', body, re.S).group(1)
    assert json.loads(html.unescape(textarea)) == catalog.get("lead_created").sample_payload
    assert "  " in html.unescape(textarea)  # pretty, one field a line
    assert f'hx-post="{url(workflow)}"' in body and 'hx-target="#test-result"' in body
    assert f'data-stream-url="/api/v2/workflows/{workflow.id}/stream"' in body
    assert 'role="status" aria-live="polite"' in body
    assert re.search(r'<button type="submit" class="button-primary" id="test-run-button"\s+aria-describedby', body)
    assert "data-node-id" not in body  # builder.js would take the panel for a step's


def test_the_contact_search_narrows_the_options_and_keeps_the_chosen_one(staff_client, org, workflow):
    sam = factories.make_contact(org, first_name="Sam", last_name="Rivera")
    alex = factories.make_contact(org, first_name="Alex", last_name="Chen")
    body = staff_client.get(url(workflow, "/contacts"), query_string={"q": "rivera"}, headers=HTMX)
    options = body.get_data(as_text=True)
    assert sam.id in options and alex.id not in options and "No contact" in options and "<select" not in options
    kept = staff_client.get(url(workflow, "/contacts"), query_string={"q": "rivera", "contact_id": alex.id},
                            headers=HTMX).get_data(as_text=True)
    assert f'<option value="{alex.id}" selected>' in kept and sam.id in kept


# Running the draft

def test_a_run_shows_every_step_in_order_with_its_status_branch_input_and_output(staff_client, org, workflow):
    casey = factories.make_contact(org, first_name="Casey", status="lead")
    run_id = str(uuid.uuid4())
    response = run(staff_client, workflow, {"source": "Instagram"}, contact_id=casey.id, run_id=run_id)
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    assert steps_of(body) == [("greet", "completed"), ("pause", "completed"), ("check", "completed"),
                              ("text", "completed")]
    assert f'data-test-run="{run_id}" data-test-status="completed"' in body
    greet = step(body, "greet")
    assert "Greeting" in text(greet) and "Set variable" in text(greet)
    data = re.search(r'<details class="step-data">.*?</details>', greet, re.S).group(0)  # collapsed: no `open`
    assert "Hi Casey from Instagram" in html.unescape(data) and "{{ contact.first_name }}" in html.unescape(data)
    assert "Fast-forwarded: a real run would wait 10 minutes" in text(step(body, "pause"))
    assert "went the “false” way" in text(step(body, "check"))
    execution = db.session.get(Execution, run_id)  # the run is named as the page asked, so it can follow it live
    assert execution.test_mode and execution.contact_id == casey.id
    assert execution.trigger_data["source"] == "Instagram"  # the payload, and what a trigger's run also reads:
    assert execution.trigger_data["type"] == workflow.trigger_type and execution.trigger_data["eventId"] == \
        f"test-{run_id}" and execution.trigger_data["occurredAt"].startswith(str(execution.created_at.year))
    assert f'href="/workflows/{workflow.id}/executions/{run_id}"' in body


def test_the_answer_comes_before_the_run_a_worker_runs_it_and_the_placeholder_fetches_the_results(staff_client, org,
                                                                                                   workflow):
    run_id, casey = str(uuid.uuid4()), factories.make_contact(org, first_name="Casey", status="lead")
    started = start(staff_client, workflow, {"source": "x"}, contact_id=casey.id, run_id=run_id)
    body = started.get_data(as_text=True)
    assert started.status_code == 202 and "The test is running" in text(body) and not steps_of(body)
    assert f'data-test-pending="{run_id}"' in body and 'hx-trigger="load delay:1s, atlas-test-ended"' in body
    assert 'id="test-fields" class="test-fields" hx-swap-oob="true"' in body  # the form again, problems cleared
    execution = db.session.get(Execution, run_id)
    assert execution.status == "running" and execution.started_at is None
    assert db.session.query(ExecutionStep).filter_by(execution_id=run_id).count() == 0
    again = staff_client.get(placeholder_url(body), headers=HTMX).get_data(as_text=True)
    assert f'data-test-pending="{run_id}"' in again and "No worker has started" not in again
    work_off_the_queue(staff_client.application)
    done = staff_client.get(placeholder_url(body), headers=HTMX).get_data(as_text=True)
    assert "data-test-pending" not in done and f'data-test-run="{run_id}"' in done
    assert [node for node, _ in steps_of(done)] == ["greet", "pause", "check", "text"]


def test_a_test_no_worker_has_taken_says_so(staff_client, org, workflow):
    started = start(staff_client, workflow, {"source": "x"})
    execution_id = re.search(r'data-test-pending="([^"]+)"', started.get_data(as_text=True)).group(1)
    execution = db.session.get(Execution, execution_id)
    execution.created_at -= timedelta(seconds=30)
    db.session.commit()
    body = staff_client.get(placeholder_url(started.get_data(as_text=True)), headers=HTMX).get_data(as_text=True)
    assert "No worker has started this test yet" in text(body) and "data-test-pending" in body


def test_the_results_of_another_run_or_organization_are_a_404(staff_client, org, staff, workflow):
    active = factories.make_workflow(org, staff, name="Live one", workflow_data=FLOW, status="active")
    live, _ = executions.start_execution(org.id, staff.id, active.id, trigger_data={}, input_data={})
    assert staff_client.get(url(active, f"/{live.id}"), headers=HTMX).status_code == 404  # not a test run
    other = factories.make_org()
    theirs = factories.make_workflow(other, name="Theirs", workflow_data=FLOW)
    test_run = start(staff_client, workflow, {"source": "x"}).get_data(as_text=True)
    execution_id = re.search(r'data-test-pending="([^"]+)"', test_run).group(1)
    assert staff_client.get(url(theirs, f"/{execution_id}"), headers=HTMX).status_code == 404
    assert staff_client.get(url(workflow, "/no-such-run"), headers=HTMX).status_code == 404


def test_external_services_are_mocked(staff_client, org, workflow):
    casey = factories.make_contact(org, first_name="Casey", phone="+15550001234")
    body = run(staff_client, workflow, {"source": "x"}, contact_id=casey.id).get_data(as_text=True)
    output = html.unescape(re.search(r"<h4>Output</h4><pre>(.*?)</pre>", step(body, "text"), re.S).group(1))
    assert json.loads(output)["status"] == "mocked" and json.loads(output)["to"] == "+15550001234"
    assert db.session.query(Message).filter(Message.status == "sent").count() == 0


def test_the_steps_the_run_streams_name_the_run_and_each_card(staff_client, org, workflow):
    casey = factories.make_contact(org, first_name="Casey", status="member")
    start = realtime.latest_id(workflow.id)
    run_id = str(uuid.uuid4())
    assert run(staff_client, workflow, {"source": "x"}, contact_id=casey.id, run_id=run_id).status_code == 200
    events = [(name, json.loads(data)) for _, name, data in realtime.read(workflow.id, start, 0)]
    mine = [(name, d.get("nodeId"), d.get("status")) for name, d in events if d["executionId"] == run_id]
    assert mine[0] == ("execution_started", None, None)
    assert ("step_completed", "greet", "completed") in mine and ("step_completed", "tag", "completed") in mine
    assert mine[-1] == ("execution_completed", None, "completed")


def test_a_failed_step_shows_its_error(staff_client, workflow):
    body = run(staff_client, workflow, {"source": "x"}).get_data(as_text=True)  # no contact: the template fails
    assert steps_of(body) == [("greet", "failed")]
    failed = step(body, "greet")
    assert 'data-step-error="contact.first_name is not defined' in failed
    assert '<p class="step-error">contact.first_name is not defined' in failed
    assert 'data-test-status="failed"' in body


def test_the_draft_is_what_runs_not_the_live_workflow(staff_client, org, staff, workflow):
    new = {"schemaVersion": 1, "nodes": [
        {"id": "only", "type": "set_variable", "name": "Only step",
         "config": {"name": "x", "value": "from the draft"}}],
        "edges": []}
    draft = drafts.get_draft(org.id, workflow.id)
    drafts.save_draft(org.id, staff.id, workflow.id, base_revision=draft.revision, summary="Replaced the steps",
                      definition=new, trigger_type="form_submitted")
    panel = staff_client.get(url(workflow), headers=HTMX).get_data(as_text=True)
    assert "A sample of what “Form submitted” sends" in text(panel)  # the draft's trigger, not the live one
    body = run(staff_client, workflow, {}).get_data(as_text=True)
    assert steps_of(body) == [("only", "completed")] and "from the draft" in html.unescape(body)
    db.session.expire_all()
    assert [n["id"] for n in db.session.get(type(workflow), workflow.id).workflow_data["nodes"]][0] == "greet"


def test_a_draft_with_errors_is_refused_with_its_problems(staff_client, org, staff, workflow):
    broken = {"schemaVersion": 1, "nodes": [{"id": "a", "type": "end"}, {"id": "b", "type": "end"}], "edges": []}
    draft = drafts.get_draft(org.id, workflow.id)
    drafts.save_draft(org.id, staff.id, workflow.id, base_revision=draft.revision, summary="Broke it",
                      definition=broken)
    response = run(staff_client, workflow, {})
    body = response.get_data(as_text=True)
    assert response.status_code == 422 and "The test did not run. The draft has errors, so it cannot run." in text(body)
    assert '<ul class="test-issues">' in body and 'data-test-run=' not in body


# Bad input

@pytest.mark.parametrize("raw, message", [
    ('{"source": ', "This is not valid JSON: expecting value at line 1, column 12."),
    ("[1, 2]", "The payload must be a JSON object in braces"),
])
def test_bad_json_gets_a_clear_error_next_to_the_payload(staff_client, workflow, raw, message):
    before = db.session.query(Execution).count()
    response = run(staff_client, workflow, raw=raw)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html.unescape(re.search(r'<p class="field-error" id="test-payload-error"[^>]*>(.*?)</p>',
                                              body).group(1))
    fields = re.search(r'<div id="test-fields" class="test-fields" hx-swap-oob="true">.*', body, re.S).group(0)
    assert 'aria-invalid="true"' in fields and "test-payload-error" in fields
    assert f">{raw}</textarea>" in html.unescape(fields)  # what was typed comes back to be fixed
    assert "The test did not run" in text(body) and db.session.query(Execution).count() == before


def test_an_empty_payload_runs_with_no_trigger_data(staff_client, org, workflow):
    casey = factories.make_contact(org, first_name="Casey", status="member")
    body = run(staff_client, workflow, raw="", contact_id=casey.id).get_data(as_text=True)
    assert steps_of(body)[0] == ("greet", "failed")  # trigger.source is not there: said on the step
    assert "trigger.source is not defined" in html.unescape(body)


def test_another_organizations_contact_is_a_field_error(staff_client, workflow):
    theirs = factories.make_contact(factories.make_org("Rival Gym"))
    response = run(staff_client, workflow, {"source": "x"}, contact_id=theirs.id)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'<p class="field-error" id="test-contact-error">Contact not found', body)


def test_a_run_id_used_before_is_refused(staff_client, org, workflow):
    casey = factories.make_contact(org, first_name="Casey")
    run_id = str(uuid.uuid4())
    assert run(staff_client, workflow, {"source": "x"}, contact_id=casey.id, run_id=run_id).status_code == 200
    again = run(staff_client, workflow, {"source": "x"}, contact_id=casey.id, run_id=run_id)
    assert again.status_code == 409 and "start the test again" in again.get_data(as_text=True)


def test_a_run_id_that_is_no_uuid_is_replaced(staff_client, org, workflow):
    casey = factories.make_contact(org, first_name="Casey")
    body = run(staff_client, workflow, {"source": "x"}, contact_id=casey.id, run_id="x' OR 1=1").get_data(as_text=True)
    run_id = re.search(r'data-test-run="([^"]+)"', body).group(1)
    assert uuid.UUID(run_id) and db.session.get(Execution, run_id).test_mode


# Roles and tenancy

def test_viewers_see_why_they_cannot_run_and_are_refused(client, org, workflow):
    sign_in(client, factories.make_user(org, "viewer", name="Vic Viewer"), org)
    panel = client.get(url(workflow), headers=HTMX).get_data(as_text=True)
    assert re.search(r'id="test-run-button"\s+disabled aria-describedby="test-viewer-note"', panel)
    assert "Your role (viewer) can look at the builder but not run tests" in text(panel)
    before = db.session.query(Execution).count()
    response = run(client, workflow, {"source": "x"})
    assert response.status_code == 403 and "viewers can look but not run" in response.get_data(as_text=True)
    assert db.session.query(Execution).count() == before


def test_another_organizations_workflow_is_a_404(staff_client):
    rival = factories.make_org("Rival Gym")
    theirs = factories.make_workflow(rival, None, name="Their flow", workflow_data=FLOW)
    for response in (staff_client.get(url(theirs), headers=HTMX), staff_client.get(url(theirs, "/contacts")),
                     run(staff_client, theirs, {"source": "x"}), staff_client.get("/workflows/nope/builder/test")):
        assert response.status_code == 404
    assert db.session.query(Execution).filter(Execution.workflow_id == theirs.id).count() == 0


def test_signed_out_visitors_are_sent_to_sign_in(client, workflow):
    response = client.post(url(workflow), data={"payload": "{}"}, headers=HTMX)
    assert response.status_code == 401 and "/login" in response.headers["HX-Redirect"]
