"""Builder interactions (issue 5): the server time of each thing a person does in the builder, on a 60-step draft.

A gym signs up through the API and creates a valid 60-step workflow (six segments of set_variable, send_sms, wait,
if_else whose two arms add_tag / send_email rejoin at create_task, set_variable, wait, send_sms). A requests.Session
signs in through /login and then does each interaction N times in a row, one at a time, after WARMUP unmeasured
ones, sending what htmx sends (HX-Request, the page's X-CSRFToken, base_revision = the draft revision). The time is
the request's wall time over loopback (the server's work plus a loopback round trip); a Server-Timing header, if the
app sends one, is reported too. One RQ worker runs the test runs: POST .../test answers 202 once the run is handed
to it, and the page then fetches the results (GET .../test/<run id>, timed as "test_results") when the run has
ended; the bench polls for that end every POLL_S, untimed, and reports the time from the POST to the results as
"test_run_to_results", which is what a person waits for (while the cards light up live).
"""
from __future__ import annotations

import os
import re
import time
import uuid

import requests

from bench import percentiles
from bench.stack import running_stack

N = int(os.environ.get("ATLAS_BENCH_BUILDER_N", 100))   # bounded in count...
WARMUP = 5
TIME_LIMIT_S = 60                                        # ...and in time, per interaction
SEGMENTS = 6                                             # 10 steps each
POLL_S = 0.02
HTMX = {"HX-Request": "true", "HX-Target": "builder-panel"}
PENDING = re.compile(r'data-test-pending="[^"]+"[^>]*hx-get="([^"]+)"', re.S)
REVISION = re.compile(r'id="draft-revision" name="base_revision" value="(\d+)"')
CSRF_HEADER = re.compile(r"""hx-headers='\{"X-CSRFToken": "([^"]+)"\}'""")
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def definition() -> dict:
    """60 steps: six segments whose if/else arms rejoin; every step valid."""
    nodes, edges, previous = [], [], None
    for s in range(SEGMENTS):
        ids = {k: f"s{s}_{k}" for k in ("var", "sms", "wait", "check", "tag", "email", "task", "note", "pause",
                                        "nudge")}
        nodes += [
            {"id": ids["var"], "type": "set_variable", "name": f"Remember step {s}",
             "config": {"name": f"segment_{s}", "value": "{{ contact.first_name }}"}},
            {"id": ids["sms"], "type": "send_sms", "name": f"Text {s}",
             "config": {"body": f"Hi {{{{ contact.first_name }}}}, week {s}!"}},
            {"id": ids["wait"], "type": "wait", "name": f"Wait {s}",
             "config": {"duration": {"amount": 2, "unit": "days"}}},
            {"id": ids["check"], "type": "if_else", "name": f"Member yet? {s}", "config": {"condition": {
                "field": "contact.status", "operator": "equals", "value": "member"}}},
            {"id": ids["tag"], "type": "add_tag", "name": f"Tag member {s}", "config": {"tag": f"member-{s}"}},
            {"id": ids["email"], "type": "send_email", "name": f"Offer {s}",
             "config": {"subject": f"Your offer {s}", "body": "Come back, {{ contact.first_name }}."}},
            {"id": ids["task"], "type": "create_task", "name": f"Call {s}",
             "config": {"title": "Call {{ contact.name }}", "dueIn": {"amount": 1, "unit": "days"}}},
            {"id": ids["note"], "type": "set_variable", "name": f"Note {s}",
             "config": {"name": f"called_{s}", "value": "yes"}},
            {"id": ids["pause"], "type": "wait", "name": f"Pause {s}",
             "config": {"duration": {"amount": 3, "unit": "hours"}}},
            {"id": ids["nudge"], "type": "send_sms", "name": f"Nudge {s}", "config": {"body": "See you soon!"}},
        ]
        chain = [("var", "sms"), ("sms", "wait"), ("wait", "check"), ("tag", "task"), ("email", "task"),
                 ("task", "note"), ("note", "pause"), ("pause", "nudge")]
        edges += [{"source": ids[a], "target": ids[b]} for a, b in chain]
        edges += [{"source": ids["check"], "target": ids["tag"], "branch": "true"},
                  {"source": ids["check"], "target": ids["email"], "branch": "false"}]
        if previous:
            edges.append({"source": previous, "target": ids["var"]})
        previous = ids["nudge"]
    return {"schemaVersion": 1, "nodes": nodes, "edges": edges}


def _setup(base: str) -> tuple[str, str, str, str]:
    """Sign up a gym, add a sample contact and create the 60-step workflow through the API; (workflow id, contact
    id, email, password)."""
    email, password = f"bench-{uuid.uuid4().hex[:8]}@example.com", "bench-password-123"
    data = requests.post(f"{base}/api/v2/auth/signup", json={"email": email, "password": password, "name": "Bench",
                                                             "organizationName": "Bench Gym"}, timeout=10).json()
    headers = {"Authorization": f"Bearer {data['token']['accessToken']}",
               "X-Organization-ID": data["organizations"][0]["id"]}
    contact = requests.post(f"{base}/api/v2/contacts", headers=headers, timeout=10, json={
        "firstName": "Sam", "lastName": "Sample", "email": "sam@example.com", "phone": "+15551234567"})
    contact.raise_for_status()
    created = requests.post(f"{base}/api/v2/workflows", headers=headers, timeout=10, json={
        "name": "Sixty-step nurture", "triggerType": "lead_created", "workflowData": definition()})
    created.raise_for_status()
    workflow_id = created.json()["workflow"]["id"]
    checked = requests.post(f"{base}/api/v2/workflows/{workflow_id}/validate", headers=headers, json={}, timeout=10)
    checked.raise_for_status()
    if not checked.json()["isValid"]:
        raise RuntimeError(f"the bench workflow does not validate: {checked.json()}")
    return workflow_id, contact.json()["id"], email, password


class Builder:
    """A signed-in browser session on one workflow's builder, keeping the draft revision as htmx would."""

    def __init__(self, base: str, workflow_id: str, email: str, password: str):
        self.session, self.url = requests.Session(), f"{base}/workflows/{workflow_id}/builder"
        form = self.session.get(f"{base}/login", timeout=10).text
        signed = self.session.post(f"{base}/login", timeout=10, allow_redirects=False, data={
            "csrf_token": CSRF_FIELD.search(form).group(1), "email": email, "password": password})
        if signed.status_code != 302:
            raise RuntimeError(f"sign-in failed: {signed.status_code}")
        self.failures: dict[str, int] = {}
        self.server_timing: dict[str, list[str]] = {}
        self.last_test: dict = {}
        self.reload()

    def reload(self) -> str:
        page = self.session.get(self.url, timeout=10).text
        self.csrf, self.revision = CSRF_HEADER.search(page).group(1), int(REVISION.search(page).group(1))
        return page

    def call(self, label: str | None, method: str, path: str, samples: dict, **form) -> requests.Response:
        """One request, timed into samples[label] (None: untimed); picks up the new draft revision."""
        headers = {**HTMX, "X-CSRFToken": self.csrf}
        data = {"base_revision": self.revision, **form} if method == "POST" else None
        started = time.perf_counter()
        response = self.session.request(method, self.url + path, headers=headers, data=data, timeout=30)
        took = time.perf_counter() - started
        if label is not None:
            samples.setdefault(label, []).append(took)
            if "Server-Timing" in response.headers:
                self.server_timing.setdefault(label, []).append(response.headers["Server-Timing"])
        if response.status_code >= 400:
            key = f"{label or 'untimed'} {response.status_code}"
            self.failures[key] = self.failures.get(key, 0) + 1
            self.reload()
        else:
            found = REVISION.search(response.text)
            if found:
                self.revision = int(found.group(1))
            elif method == "POST":
                self.reload()
        return response


def _interactions(b: Builder, contact_id: str):
    """(name, one round of it) in the order they are measured; each round leaves the draft with 60 steps."""
    counter = {"i": 0}

    def tick() -> int:
        counter["i"] += 1
        return counter["i"]

    def config(s):
        b.call("config_save", "POST", "/nodes/s3_wait/config", s, **{
            "config.duration.amount": str(2 + tick() % 2), "config.duration.unit": "days"})

    def insert_undo_redo(s):
        b.call("insert", "POST", "/insert", s, at="after:s3_note:", step_type="add_tag")
        b.call("undo", "POST", "/undo", s)
        b.call("redo", "POST", "/redo", s)
        b.call(None, "POST", "/undo", s)  # back to 60 steps

    def move(s):
        b.call("move", "POST", "/nodes/s3_pause/move", s, to="up" if tick() % 2 else "down")

    def test_run(s):
        started = time.perf_counter()
        body = b.call("test_run", "POST", "/test", s, contact_id=contact_id, payload='{"source": "bench"}',
                      run_id=str(uuid.uuid4())).text
        pending, deadline = PENDING.search(body), time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            time.sleep(POLL_S)
            body = b.call(None, "GET", "/test/" + pending.group(1).rsplit("/", 1)[1], s).text
            pending = PENDING.search(body)
        b.call("test_results", "GET", "/test/" + re.search(r'data-test-run="([^"]+)"', body).group(1), s)
        if s is not None and "test_run" in s:
            s.setdefault("test_run_to_results", []).append(time.perf_counter() - started)
        status = re.search(r'data-test-status="(\w+)"', body)
        b.last_test = {"status": status.group(1) if status else None,
                       "steps": len(re.findall(r'data-step-id="', body)), "errors": body.count('class="step-error"')}

    return [
        ("page", lambda s: b.call("page", "GET", "", s)),
        ("open_step", lambda s: b.call("open_step", "GET", "/nodes/s3_email", s)),
        ("picker", lambda s: b.call("picker", "GET", "/picker?at=after:s3_note:", s)),
        ("config_save", config),
        ("rename", lambda s: b.call("rename", "POST", "/nodes/s3_tag/rename", s, name=f"Tag member {tick() % 2}")),
        ("insert_undo_redo", insert_undo_redo),
        ("move", move),
        ("open_trigger", lambda s: b.call("open_trigger", "GET", "/trigger", s)),
        ("open_settings", lambda s: b.call("open_settings", "GET", "/settings", s)),
        ("test_run", test_run),
    ]


def run(database: str = "sqlite") -> dict:
    """Each interaction WARMUP times unmeasured, then N times measured, one request at a time."""
    load_before = os.getloadavg()[0]
    with running_stack(database, rq_workers=1) as stack:
        workflow_id, contact_id, email, password = _setup(stack.base)
        b = Builder(stack.base, workflow_id, email, password)
        samples: dict[str, list[float]] = {}
        for _, round_ in _interactions(b, contact_id):
            for _ in range(WARMUP):
                round_({})
            deadline = time.monotonic() + TIME_LIMIT_S
            for _ in range(N):
                if time.monotonic() > deadline:
                    break
                round_(samples)
        steps = len(re.findall(r'data-node-id="', b.reload()))
        size = len(b.session.get(b.url, timeout=10).content)
    result = {"database": database, "server": "gunicorn gthread, 2 workers x 8 threads; 1 RQ worker", "n": N,
              "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
              "page_bytes": size, "cards_on_page": steps, "failures": b.failures, "last_test_run": b.last_test,
              "interactions": {name: percentiles(v) for name, v in samples.items()},
              "meets_50ms_p95": {name: percentiles(v)["p95_ms"] < 50 for name, v in samples.items()
                                 if name != "test_run_to_results"}}
    if b.server_timing:
        result["server_timing_sample"] = {k: v[-1] for k, v in b.server_timing.items()}
    return result


def profile_test_run(rounds: int = 20, top: int = 25) -> str:
    """Where a test run's time goes: POST .../test `rounds` times in-process (Flask test client, SQLite, real Redis),
    each run then advanced in-process as a worker would (testing.run_queued_test), all under cProfile, on the same
    60-step draft; the top functions by cumulative time. `python -m bench.builder`."""
    import cProfile
    import io
    import pstats
    import tempfile
    from pathlib import Path

    from atlas import create_app
    from atlas.config import TestingConfig
    from atlas.devserver import RedisServer
    from atlas.extensions import db
    from atlas.services.testing import run_queued_test

    directory = Path(tempfile.mkdtemp(prefix="atlas-bench-profile-"))
    redis = RedisServer(directory / "redis", persist=False).start()
    try:
        app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{directory / 'atlas.db'}",
                         REDIS_URL=redis.url, RATELIMIT_ENABLED=False)
        with app.app_context():
            db.create_all()
        client = app.test_client()
        signed = client.post("/api/v2/auth/signup", json={"email": "p@example.com", "password": "bench-password-123",
                                                           "name": "P", "organizationName": "P Gym"}).get_json()
        headers = {"Authorization": f"Bearer {signed['token']['accessToken']}",
                   "X-Organization-ID": signed["organizations"][0]["id"]}
        contact = client.post("/api/v2/contacts", headers=headers, json={"firstName": "Sam", "phone": "+15551234567",
                                                                          "email": "sam@example.com"}).get_json()
        workflow = client.post("/api/v2/workflows", headers=headers, json={
            "name": "Sixty", "triggerType": "lead_created", "workflowData": definition()}).get_json()["workflow"]
        client.post("/login", data={"email": "p@example.com", "password": "bench-password-123"})
        url = f"/workflows/{workflow['id']}/builder/test"

        def test_run():
            run_id = str(uuid.uuid4())
            assert client.post(url, headers=HTMX, data={"contact_id": contact["id"], "payload": "{}",
                                                        "run_id": run_id}).status_code == 202
            with app.app_context():
                assert run_queued_test(run_id) in ("completed", "failed")

        for _ in range(3):
            test_run()
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(rounds):
            test_run()
        profiler.disable()
        each = (time.perf_counter() - started) / rounds * 1000
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
        return f"{rounds} test runs, {each:.1f} ms each under cProfile\n{out.getvalue()}"
    finally:
        redis.stop()


if __name__ == "__main__":
    print(profile_test_run())
