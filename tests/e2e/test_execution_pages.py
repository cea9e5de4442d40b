"""A gym manager in Chromium runs a workflow by hand and watches the run live, with a real worker behind the server."""
import re
import time
import uuid

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.test_browser import assert_accessible, sign_in

pytestmark = pytest.mark.e2e
PASSWORD = "a-long-gym-password"
# Keeps every EventSource the page opens, so a test can ask whether it is still open (readyState 2 is CLOSED).
TRACK_EVENT_SOURCES = """window.atlasSources = [];
window.EventSource = class extends window.EventSource {
  constructor(url, options) { super(url, options); window.atlasSources.push(this); }
};"""


def flow(*nodes, edges) -> dict:
    """workflowData from (id, type, name, config) tuples and (source, target[, branch]) edges."""
    return {"schemaVersion": 1,
            "nodes": [{"id": i, "type": t, "name": n, "config": c} for i, t, n, c in nodes],
            "edges": [{"source": e[0], "target": e[1], **({"branch": e[2]} if len(e) > 2 else {})} for e in edges]}


VIP = {"condition": {"field": "trigger.vip", "operator": "equals", "value": True}}
LIVE = flow(("greet", "set_variable", "Say hello", {"name": "greeting", "value": "Hi {{ contact.name }}"}),
            ("pause", "wait", "Short pause", {"duration": {"amount": 2, "unit": "seconds"}}),
            ("check", "if_else", "VIP?", VIP),
            ("vip", "set_variable", "Tag as VIP", {"name": "tier", "value": "vip"}),
            ("done", "end", "Done", {}),
            edges=[("greet", "pause"), ("pause", "check"), ("check", "vip", "true"), ("check", "done", "false"),
                   ("vip", "done")])
LATER = flow(("note", "set_variable", "Note the renewal", {"name": "renewal", "value": "due"}),
             ("later", "wait", "Wait two hours", {"duration": {"amount": 2, "unit": "hours"}}),
             ("done", "end", "Done", {}),
             edges=[("note", "later"), ("later", "done")])


@pytest.fixture(scope="module")
def gym(atlas_server):
    """A gym signed up through the API with two active workflows: one that runs for a few seconds, one that waits."""
    base, email = atlas_server.base_url, f"manager-{uuid.uuid4().hex[:8]}@example.com"
    signup = requests.post(f"{base}/api/v2/auth/signup", timeout=10, json={
        "email": email, "password": PASSWORD, "name": "Morgan Manager", "organizationName": "Live Runs Gym"}).json()
    headers = {"Authorization": f"Bearer {signup['token']['accessToken']}",
               "X-Organization-ID": signup["organizations"][0]["id"]}
    workflows = {}
    for name, data in (("Class reminder", LIVE), ("Renewal nudge", LATER)):
        created = requests.post(f"{base}/api/v2/workflows", headers=headers, timeout=10, json={
            "name": name, "triggerType": "manual", "status": "active", "workflowData": data})
        assert created.status_code == 201, created.text
        workflows[name] = created.json()["workflow"]["id"]
    return {"email": email, "base": base, "headers": headers, "workflows": workflows}


def api_run(gym, workflow: str) -> str:
    """Start a run through the API, as a trigger would; returns its id once a worker has taken it to its wait."""
    base, headers, workflow_id = gym["base"], gym["headers"], gym["workflows"][workflow]
    execution_id = requests.post(f"{base}/api/v2/workflows/{workflow_id}/execute", headers=headers, timeout=10,
                                 json={}).json()["executionId"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        run = requests.get(f"{base}/api/v2/workflows/{workflow_id}/executions/{execution_id}", headers=headers,
                           timeout=10).json()
        if run["execution"]["status"] == "waiting":
            return execution_id
        time.sleep(0.1)
    raise AssertionError(f"run {execution_id} did not reach its wait")


def open_runs(page, gym, workflow: str) -> None:
    """Sign in and go from the workflows list to one workflow's runs."""
    page.goto("/login")
    sign_in(page, gym["email"], PASSWORD)
    page.get_by_role("link", name=workflow, exact=True).click()
    expect(page.get_by_role("heading", name=workflow, level=1)).to_be_visible()


def run_now(page, **fields) -> None:
    """Open Run now, fill it in, start the run and wait for its page to load."""
    page.locator("summary", has_text="Run now").click()
    for label, value in fields.items():
        page.get_by_label(label).fill(value)
    with page.expect_navigation():
        page.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(r"/executions/[0-9a-f-]{36}$"))


def test_manager_runs_a_workflow_and_watches_it_complete_without_a_reload(page, gym, worker):
    page.add_init_script(TRACK_EVENT_SOURCES)
    open_runs(page, gym, "Class reminder")
    expect(page.get_by_role("heading", name="No runs yet")).to_be_visible()
    assert_accessible(page, "empty run history")

    page.locator("summary", has_text="Run now").click()
    page.get_by_label("Contact name").fill("Priya")
    page.get_by_label("Trigger data").fill("{vip: true}")
    page.get_by_role("button", name="Start run").click()
    expect(page.locator("#trigger_data-error")).to_contain_text("This is not valid JSON")
    expect(page.get_by_label("Trigger data")).to_be_focused()
    expect(page.get_by_label("Contact name")).to_have_value("Priya")
    assert_accessible(page, "run now form with an error")
    page.get_by_label("Trigger data").fill('{"vip": true}')
    with page.expect_navigation():
        page.get_by_role("button", name="Start run").click()

    expect(page).to_have_url(re.compile(r"/executions/[0-9a-f-]{36}$"))
    page.evaluate("window.atlasPageMarker = 'still the same page'")
    navigations, problems = [], []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    steps_at_first = page.locator(".timeline .step").count()
    expect(page.locator("#execution-stream[sse-connect]")).to_have_count(1)

    expect(page.locator("#status-badge")).to_have_text("Completed", timeout=20_000)
    expect(page.locator(".step-name")).to_have_text(["Say hello", "Short pause", "VIP?", "Tag as VIP", "Done"])
    expect(page.locator(".progress-text")).to_have_text("5 of 5 steps done")
    expect(page.locator(".run-summary")).to_contain_text("Completed in")
    expect(page.get_by_text("went the “true” way")).to_be_visible()
    assert steps_at_first < 5, "the steps arrived while the page was open"
    assert page.evaluate("window.atlasPageMarker") == "still the same page" and navigations == []
    expect(page.locator("#execution-stream[sse-connect]")).to_have_count(0)  # finished: the page stopped listening
    assert page.evaluate("window.atlasSources.map(s => [new URL(s.url).pathname, s.readyState])") == [
        [f"/api/v2/workflows/{gym['workflows']['Class reminder']}/stream", 2]]
    expect(page.get_by_text("Cancel run…")).to_have_count(0)
    page.locator(".step").first.get_by_text("Input and output").click()
    expect(page.locator(".step").first.locator("pre").last).to_contain_text('"value": "Hi Priya"')
    assert_accessible(page, "completed run")
    assert problems == [], f"errors in the browser's console: {problems}"


def test_a_waiting_run_says_when_it_resumes_and_can_be_cancelled(page, gym, worker):
    fetched = []  # the run page's requests for its own parts
    page.on("request", lambda r: fetched.append(r.url) if r.method == "GET" and r.headers.get("hx-request") else None)
    open_runs(page, gym, "Renewal nudge")
    run_now(page, **{"Contact name": "Lee"})
    expect(page.locator("#status-badge")).to_have_text("Waiting", timeout=20_000)
    expect(page.locator(".run-summary")).to_have_text(re.compile(
        r"^Waiting at “Wait two hours”: resumes at \d+ \w+ \d{4}, \d\d:\d\d \w+, in about 2 hours\.$"))
    expect(page.locator(".progress-text")).to_have_text("1 of 3 steps done")
    assert_accessible(page, "waiting run")

    page.wait_for_function("document.querySelector('#execution-stream') !== null")
    for _ in range(100):  # the stream has opened: opening it fetched the page's parts once
        if fetched:
            break
        page.wait_for_timeout(50)
    seen = len(fetched)
    assert seen >= 1
    api_run(gym, "Renewal nudge")  # another run of the same workflow, on the same stream
    page.wait_for_timeout(1500)
    assert len(fetched) == seen, "only this run's events fetch the page's parts again"

    page.get_by_role("link", name="Renewal nudge", exact=True).click()
    rows = page.locator(".runs-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Lee")).to_contain_text("Waiting")
    expect(rows.filter(has_text="Lee")).to_contain_text("Resumes")
    assert_accessible(page, "run history")
    rows.filter(has_text="Lee").locator(".run-link").click()

    page.locator("summary", has_text="Cancel run…").click()
    page.get_by_role("button", name="Yes, cancel the run").click()
    expect(page.get_by_role("status").filter(has_text="Run cancelled")).to_be_visible()
    expect(page.locator("#status-badge")).to_have_text("Cancelled")
    expect(page.locator("#execution-stream")).to_have_count(0)
