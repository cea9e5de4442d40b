"""The executions pages through Flask's test client: history, analytics, Run now, one run's page, roles, tenancy."""
import html
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from atlas.extensions import db
from atlas.models import AuditLog, Execution, ExecutionStep
from atlas.models.base import utcnow
from atlas.services import executions
from atlas.web import execution_display as display
from jobs.worker import run_worker
from tests import factories
from tests.web.test_pages import sign_in

TEN_MINUTES = {"amount": 10, "unit": "minutes"}
# greet -> route: with trigger.wait, a ten-minute wait; without, a coupon from trigger.coupon (missing: the run fails).
FLOW = {"schemaVersion": 1, "nodes": [
    {"id": "greet", "type": "set_variable", "name": "Say hello", "config": {"name": "greeting", "value": "Hi"}},
    {"id": "route", "type": "if_else", "name": "Wait first?", "config": {"condition": {
        "field": "trigger.wait", "operator": "equals", "value": True}}},
    {"id": "pause", "type": "wait", "name": "Wait 10 minutes", "config": {"duration": TEN_MINUTES}},
    {"id": "coupon", "type": "set_variable", "name": "Add the coupon", "config": {
        "name": "coupon", "value": "{{ trigger.coupon }}"}},
    {"id": "done", "type": "end", "name": "Done", "config": {}}],
    "edges": [{"source": "greet", "target": "route"}, {"source": "route", "target": "pause", "branch": "true"},
              {"source": "route", "target": "coupon", "branch": "false"}, {"source": "pause", "target": "done"},
              {"source": "coupon", "target": "done"}]}
COMPLETES, WAITS, FAILS = {"wait": False, "coupon": "SPRING"}, {"wait": True}, {"wait": False}
HTMX_RESULTS = {"HX-Request": "true", "HX-Target": "execution-results"}
HTMX_LIVE = {"HX-Request": "true", "HX-Target": "execution-live"}


def work():
    """A real RQ worker drains the queues in this process; the test's own transaction ends first."""
    db.session.commit()
    run_worker(burst=True)
    db.session.expire_all()


def start(org, workflow, trigger, test_mode=False, name="Sarah"):
    """A committed, queued run of the workflow."""
    execution, _ = executions.start_execution(org.id, None, workflow.id, trigger_data=trigger, test_mode=test_mode,
                                              input_data={"contact": {"name": name, "email": "sarah@example.com"}})
    return execution


def text(page: str) -> str:
    """The page's words without tags, whitespace collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def run_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-execution-id="([^"]+)"', page)


def status_of(execution_id: str) -> str:
    db.session.expire_all()
    return db.session.get(Execution, execution_id).status


@pytest.fixture
def workflow(org, staff):
    return factories.make_workflow(org, staff, name="Trial follow-up", status="active", workflow_data=FLOW)


@pytest.fixture
def viewer_client(client, org):
    sign_in(client, factories.make_user(org, "viewer", name="Vic Viewer"), org)
    return client


@pytest.fixture
def history(org, workflow):
    """Two completed runs, one failed, one waiting (newest) and a completed test run (oldest), all run by a worker."""
    runs = {"test": start(org, workflow, COMPLETES, test_mode=True, name="Tess")}
    for key, trigger in (("done1", COMPLETES), ("done2", COMPLETES), ("failed", FAILS), ("waiting", WAITS)):
        runs[key] = start(org, workflow, trigger)
    work()
    base = utcnow() - timedelta(hours=1)
    for minutes, key in enumerate(runs):  # distinct, ordered creation times
        db.session.execute(update(Execution).where(Execution.id == runs[key].id).values(
            created_at=base + timedelta(minutes=minutes)))
    db.session.commit()
    return {key: run.id for key, run in runs.items()}


def url(workflow, execution_id: str | None = None, action: str = "") -> str:
    path = f"/workflows/{workflow.id}/executions"
    return path + (f"/{execution_id}" if execution_id else "") + (f"/{action}" if action else "")


# The run history

def test_each_workflow_name_links_to_its_runs(staff_client, workflow):
    page = staff_client.get("/").get_data(as_text=True)
    assert f'<a class="wf-name" href="/workflows/{workflow.id}/executions">Trial follow-up</a>' in page


def test_history_lists_runs_newest_first_with_analytics_in_words(staff_client, workflow, history):
    page = staff_client.get(url(workflow)).get_data(as_text=True)
    assert run_ids(page) == [history[k] for k in ("waiting", "failed", "done2", "done1", "test")]
    words = text(page)
    assert "4 live runs; test runs are not counted" in words
    assert "67% of the finished runs completed" in words  # 2 of the 3 finished live runs
    assert re.search(r"(\d+(\.\d)? (ms|seconds)|under 1 ms) on average from start to finish", words)
    assert re.search(r"Top failure reasons .*trigger\.coupon.* \(1 run, TEMPLATE_ERROR ?\)", words)
    assert "Test run" in words and "Sarah" in words and "Tess" in words
    assert '<span class="badge badge-waiting">Waiting</span>' in page
    assert f'href="/workflows/{workflow.id}/executions/{history["failed"]}"' in page
    assert "5 runs" in words


@pytest.mark.parametrize("query, expected", [
    ("status=failed", ["failed"]),
    ("status=waiting", ["waiting"]),
    ("status=completed", ["done2", "done1", "test"]),
    ("status=bogus&page=x&from=nonsense", ["waiting", "failed", "done2", "done1", "test"]),
])
def test_filter_by_status(staff_client, workflow, history, query, expected):
    page = staff_client.get(f"{url(workflow)}?{query}").get_data(as_text=True)
    assert run_ids(page) == [history[k] for k in expected]
    assert "4 live runs" in text(page)  # the analytics count every status of the dates


def test_filter_by_dates_in_the_gyms_time_zone(staff_client, org, workflow, history):
    org.timezone = "America/New_York"
    db.session.execute(update(Execution).where(Execution.id == history["done1"]).values(
        created_at=datetime(2024, 3, 2, 3, 30, tzinfo=timezone.utc)))  # 1 March, 22:30 in New York
    db.session.commit()
    one_day = staff_client.get(f"{url(workflow)}?from=2024-03-01&to=2024-03-01").get_data(as_text=True)
    assert run_ids(one_day) == [history["done1"]]
    assert "1 live run in these dates" in text(one_day) and "100% of the finished runs completed" in text(one_day)
    assert 'name="from" value="2024-03-01"' in one_day
    reversed_dates = staff_client.get(f"{url(workflow)}?from=2024-03-05&to=2024-02-20").get_data(as_text=True)
    assert run_ids(reversed_dates) == [history["done1"]]
    before = staff_client.get(f"{url(workflow)}?to=2024-02-29").get_data(as_text=True)
    assert run_ids(before) == [] and "No runs match these filters" in before and "No runs yet" not in before
    assert 'role="search"' in before  # the filters stay, to change them


def test_htmx_filter_request_gets_only_the_results_block(staff_client, workflow, history):
    response = staff_client.get(f"{url(workflow)}?status=failed", headers=HTMX_RESULTS)
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200 and run_ids(fragment) == [history["failed"]]
    for chrome in ("<html", "<h1>", 'role="search"', 'id="execution-results"', "Run now"):
        assert chrome not in fragment
    assert "How the runs went" in fragment and "HX-Request" in response.headers["Vary"]


def test_pages_of_runs(staff_client, org, workflow):
    ids = [start(org, workflow, WAITS).id for _ in range(21)]
    first = staff_client.get(url(workflow)).get_data(as_text=True)
    assert len(run_ids(first)) == 20 and "Page 1 of 2 · 21 runs" in first
    assert 'href="?page=2"' in first and "Older →" in first
    second = staff_client.get(f"{url(workflow)}?page=2").get_data(as_text=True)
    assert len(run_ids(second)) == 1 and run_ids(second)[0] in ids and "← Newer" in second
    assert run_ids(staff_client.get(f"{url(workflow)}?page=9").get_data(as_text=True)) == run_ids(second)


def test_empty_history_says_what_to_do(staff_client, workflow):
    page = staff_client.get(url(workflow)).get_data(as_text=True)
    words = text(page)
    assert "No runs yet" in words and "starts by itself on its trigger, “Lead created”" in words
    assert "press Run now and give it a test contact" in words
    assert 'role="search"' not in page and "How the runs went" not in page


# Run now

def test_run_now_starts_a_run_and_goes_to_its_page(staff_client, org, staff, workflow):
    response = staff_client.post(url(workflow, action="run"), data={
        "contact_name": " Priya ", "contact_email": "priya@example.com", "trigger_data": '{"wait": true}'})
    run = db.session.scalar(select(Execution))
    assert response.status_code == 303 and response.headers["Location"] == url(workflow, run.id)
    assert (run.status, run.test_mode, run.trigger_data, run.contact, run.created_by) == \
        ("queued", False, {"wait": True}, {"name": "Priya", "email": "priya@example.com"}, staff.id)
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "workflow.execute"))
    assert (entry.target_id, entry.user_id, entry.details) == (run.id, staff.id, {"channel": "web"})


def test_run_now_through_htmx_navigates_with_hx_redirect(staff_client, workflow):
    response = staff_client.post(url(workflow, action="run"), data={"test_mode": "on"},
                                 headers={"HX-Request": "true", "HX-Target": "run-form"})
    run = db.session.scalar(select(Execution))
    assert response.status_code == 200 and response.headers["HX-Redirect"] == url(workflow, run.id)
    assert run.test_mode and run.trigger_data == {} and run.contact == {}


@pytest.mark.parametrize("trigger, message", [
    ("{wait: true}", "This is not valid JSON: expecting property name enclosed in double quotes at line 1, column 2."),
    ('{"wait": true,}', "This is not valid JSON: "),  # the parser's words differ between Python versions
    ("[1, 2]", 'Trigger data must be a JSON object in braces, such as {"vip": true}.'),
    ('"vip"', 'Trigger data must be a JSON object in braces, such as {"vip": true}.'),
    ('{"x": "\\u0000"}', "Trigger data cannot contain NUL characters or unpaired surrogates."),
])
def test_run_now_with_trigger_data_that_is_not_a_json_object(staff_client, workflow, trigger, message):
    response = staff_client.post(url(workflow, action="run"), data={"trigger_data": trigger, "contact_name": "Kept"},
                                 headers={"HX-Request": "true", "HX-Target": "run-form"})
    fragment = response.get_data(as_text=True)
    error = html.unescape(re.search(r'<p class="field-error" id="trigger_data-error">([^<]*)</p>', fragment).group(1))
    assert response.status_code == 422 and error.startswith(message)
    assert fragment.lstrip().startswith('<form id="run-form"') and "<html" not in fragment
    assert 'aria-invalid="true" aria-describedby="trigger_data-error"' in fragment
    typed = re.search(r'<textarea id="trigger_data"[^>]*>([^<]*)</textarea>', fragment).group(1)
    assert 'value="Kept"' in fragment and html.unescape(typed) == trigger  # what was typed stays
    assert db.session.scalar(select(func.count()).select_from(Execution)) == 0


def test_run_now_without_htmx_shows_the_list_with_the_form_open(staff_client, workflow):
    response = staff_client.post(url(workflow, action="run"), data={"contact_email": "not-an-email"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "<h1>Trial follow-up</h1>" in page
    assert '<details class="run-now" open>' in page
    assert "Enter an email address such as sam@example.com, or leave it empty." in page
    assert db.session.scalar(select(func.count()).select_from(Execution)) == 0


def test_run_now_of_a_draft_needs_a_test_run(staff_client, org, staff):
    draft = factories.make_workflow(org, staff, name="Draft flow", workflow_data=FLOW)
    form = staff_client.get(url(draft)).get_data(as_text=True)
    assert re.search(r'name="test_mode" checked', form) and "only a test run" in form
    refused = staff_client.post(url(draft, action="run"), data={}, headers={"HX-Request": "true"})
    assert refused.status_code == 422
    assert "The workflow is draft; activate it to run it, or run it in test mode." in refused.get_data(as_text=True)
    accepted = staff_client.post(url(draft, action="run"), data={"test_mode": "on"})
    assert accepted.status_code == 303 and db.session.scalar(select(Execution)).test_mode


# One run

def test_a_waiting_run_shows_its_steps_progress_and_when_it_resumes(staff_client, org, workflow):
    run = start(org, workflow, WAITS)
    work()
    page = staff_client.get(url(workflow, run.id)).get_data(as_text=True)
    words = text(page)
    assert '<span class="badge badge-waiting" id="status-badge">Waiting</span>' in page
    assert re.search(r"Waiting at “Wait 10 minutes”: resumes at \d+ \w+ \d{4}, \d\d:\d\d UTC, in (9|10) minutes\.",
                     words)
    assert "2 of 4 steps done" in words and 'aria-valuenow="2"' in page and 'style="width: 50%"' in page
    assert re.findall(r'<span class="step-name">([^<]*)</span>', page) == [
        "Say hello", "Wait first?", "Wait 10 minutes"]
    assert re.findall(r'<span class="step-type">([^<]*)</span>', page) == ["Set variable", "If / else", "Wait"]
    assert "went the “true” way" in words and "Input and output" in words
    assert "greet (set_variable) completed" in words  # the log
    assert "Contact: Sarah (sarah@example.com)" in words and "Cancel run…" in words and "Retry…" not in words


def test_a_running_page_listens_to_the_workflows_stream_for_its_own_run(staff_client, org, workflow):
    run = start(org, workflow, WAITS)
    page = staff_client.get(url(workflow, run.id)).get_data(as_text=True)
    assert "/static/vendor/htmx/sse.min.js" in page
    connector = re.search(r'<div id="execution-stream"[^>]*>', page).group(0)
    assert f'sse-connect="/api/v2/workflows/{workflow.id}/stream"' in connector and 'hx-ext="sse"' in connector
    trigger = html.unescape(re.search(r'hx-trigger="([^"]*)"', connector).group(1))
    mine = f"[JSON.parse(detail.data).executionId=='{run.id}']"
    assert trigger.split(", ") == ["htmx:sseOpen"] + [f"sse:{e}{mine}" for e in (
        "execution_started", "step_completed", "execution_waiting", "execution_completed", "execution_failed",
        "execution_cancelled")]
    assert 'hx-target="#execution-live"' in connector and f'hx-get="{url(workflow, run.id)}"' in connector
    assert "Queued: it starts as soon as a worker is free." in text(page) and "0 of 4 steps done" in text(page)


def test_the_live_fragment_while_running_and_once_finished(staff_client, org, workflow):
    run = start(org, workflow, COMPLETES)
    queued = staff_client.get(url(workflow, run.id), headers=HTMX_LIVE)
    fragment = queued.get_data(as_text=True)
    assert queued.status_code == 200 and "<html" not in fragment and "HX-Request" in queued.headers["Vary"]
    assert '<div id="execution-status" hx-swap-oob="innerHTML">' in fragment and "No step has run yet" in fragment
    assert "execution-stream" not in fragment and "execution-actions" not in fragment  # still listening
    work()
    done = staff_client.get(url(workflow, run.id), headers=HTMX_LIVE).get_data(as_text=True)
    assert '<div id="execution-stream" hx-swap-oob="true"></div>' in done  # replaces the stream's element: it closes
    assert '<div id="execution-actions" hx-swap-oob="innerHTML">' in done and "Cancel run" not in done
    assert re.search(r"Completed in (under )?\d", text(done)) and "4 of 4 steps done" in text(done)


def test_a_finished_run_does_not_listen(staff_client, org, workflow):
    run = start(org, workflow, COMPLETES)
    work()
    page = staff_client.get(url(workflow, run.id)).get_data(as_text=True)
    assert "sse-connect" not in page and "sse.min.js" not in page and 'id="execution-stream"' not in page
    assert 'style="width: 100%"' in page and "Cancel run" not in page and "Retry" not in page
    assert re.findall(r'<span class="step-name">([^<]*)</span>', page) == [
        "Say hello", "Wait first?", "Add the coupon", "Done"]


def test_a_failed_run_shows_its_error_and_offers_retry(staff_client, org, workflow):
    run = start(org, workflow, FAILS)
    work()
    page = staff_client.get(url(workflow, run.id)).get_data(as_text=True)
    words = text(page)
    assert "Failed at “Add the coupon”." in words and "TEMPLATE_ERROR" in words and "2 of 4 steps done" in words
    assert "Retry…" in words and "Run it again from “Add the coupon”, the step that failed?" in words
    assert "Cancel run…" not in words


# Retry and cancel

def test_cancel_a_waiting_run(staff_client, org, staff, workflow):
    run = start(org, workflow, WAITS)
    work()
    response = staff_client.post(url(workflow, run.id, "cancel"))
    assert response.status_code == 303 and response.headers["Location"] == url(workflow, run.id)
    assert status_of(run.id) == "cancelled"
    page = staff_client.get(url(workflow, run.id)).get_data(as_text=True)
    assert 'role="status">Run cancelled: the steps that ran stay done, and no further step runs.</p>' in page
    assert "Cancelled at" in text(page) and "Cancel run…" not in page and "sse-connect" not in page
    again = staff_client.post(url(workflow, run.id, "cancel"), follow_redirects=True).get_data(as_text=True)
    assert 'role="alert">The execution already cancelled; there is nothing to cancel.</p>' in again
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "execution.cancel")) == 1


def test_retry_a_failed_run_from_its_failed_step(staff_client, org, workflow):
    run = start(org, workflow, FAILS)
    work()
    response = staff_client.post(url(workflow, run.id, "retry"), follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Retrying from the step that failed; the steps before it are not repeated." in page
    assert status_of(run.id) == "queued" and "sse-connect" in page
    work()
    attempts = db.session.execute(select(ExecutionStep.node_id, ExecutionStep.attempt).where(
        ExecutionStep.execution_id == run.id).order_by(ExecutionStep.started_at)).all()
    assert attempts == [("greet", 1), ("route", 1), ("coupon", 1), ("coupon", 2)]
    refused = staff_client.post(url(workflow, run.id, "cancel"), follow_redirects=True)
    assert "there is nothing to cancel" in refused.get_data(as_text=True)
    not_failed = start(org, workflow, WAITS)
    answer = staff_client.post(url(workflow, not_failed.id, "retry"), follow_redirects=True).get_data(as_text=True)
    assert "Only failed runs can be retried; this one is queued." in answer


# Roles and tenancy

def test_viewer_sees_runs_but_no_run_retry_or_cancel(viewer_client, org, workflow):
    failed, waiting = start(org, workflow, FAILS), start(org, workflow, WAITS)
    work()
    listed = viewer_client.get(url(workflow)).get_data(as_text=True)
    assert len(run_ids(listed)) == 2 and "Run now" not in listed
    for run in (failed, waiting):
        page = viewer_client.get(url(workflow, run.id)).get_data(as_text=True)
        assert "Retry" not in page and "Cancel run" not in page and "/cancel" not in page and "/retry" not in page
    empty = viewer_client.get(url(factories.make_workflow(org, None, name="Quiet"))).get_data(as_text=True)
    assert "your role can look at runs" in empty and "Run now" not in empty


def test_viewer_gets_403_posting_run_retry_or_cancel(viewer_client, org, workflow):
    failed, waiting = start(org, workflow, FAILS), start(org, workflow, WAITS)
    work()
    for path in (url(workflow, action="run"), url(workflow, failed.id, "retry"), url(workflow, waiting.id, "cancel")):
        response = viewer_client.post(path, data={"trigger_data": "{}"})
        assert response.status_code == 403, path
        assert "Your role does not allow this action." in response.get_data(as_text=True)
    assert (status_of(failed.id), status_of(waiting.id)) == ("failed", "waiting")
    assert db.session.scalar(select(func.count()).select_from(Execution)) == 2


def test_another_organizations_workflows_and_runs_are_404_pages(staff_client, org, staff, workflow):
    other_org = factories.make_org("Rival Gym")
    theirs = factories.make_workflow(other_org, None, name="Their flow", status="active", workflow_data=FLOW)
    their_run = start(other_org, theirs, WAITS)
    mine = start(org, workflow, WAITS)
    sibling = factories.make_workflow(org, staff, name="Sibling", status="active", workflow_data=FLOW)
    for path in (url(theirs), url(theirs, their_run.id), url(workflow, their_run.id), url(sibling, mine.id)):
        response = staff_client.get(path)
        assert response.status_code == 404 and "Page not found" in response.get_data(as_text=True), path
    for path in (url(theirs, action="run"), url(theirs, their_run.id, "cancel"), url(workflow, their_run.id, "cancel"),
                 url(workflow, their_run.id, "retry"), url(sibling, mine.id, "retry")):
        assert staff_client.post(path, data={"test_mode": "on"}).status_code == 404, path
    assert status_of(their_run.id) == "queued" and db.session.scalar(select(func.count()).select_from(Execution)) == 2


def test_signed_out_visitors_go_to_sign_in(client, workflow):
    response = client.get(url(workflow))
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


# Words

@pytest.mark.parametrize("ms, words", [(None, "—"), (0.2, "under 1 ms"), (12.4, "12 ms"), (1400, "1.4 seconds"),
                                       (200_000, "3 min 20 s"), (7_500_000, "2 h 5 min"), (3_600_000, "1 h")])
def test_durations_in_words(ms, words):
    assert display.duration_words(ms) == words


@pytest.mark.parametrize("seconds, words", [(20, "in less than a minute"), (60, "in 1 minute"), (600, "in 10 minutes"),
                                            (7200, "in about 2 hours"), (3 * 86400, "in 3 days"),
                                            (-300, "5 minutes ago")])
def test_relative_times_in_words(seconds, words):
    now = utcnow()
    assert display.relative_words(now + timedelta(seconds=seconds), now) == words
