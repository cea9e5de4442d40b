"""Event ingestion and the enrollment decision log (issue 4): POST /api/v2/events with 1 and with 20 workflows.

Every event is evaluated against every active workflow of its organization and leaves one decision per workflow,
matches and non-matches alike. This measures what that costs the request that reports the event.

Setup, through the API: two gyms sign up. Gym "one" has one active workflow (class_missed, any class, one enrolled
run per event). Gym "twenty" has the same workflow plus 19 that do not enroll: 12 wait for other trigger types, 4 for
class_missed of another class (a config mismatch) and 3 have an enrollment filter that fails (contact.status equals
member; the contacts are leads). Gym one gets CONTACTS contacts, gym twenty twice as many: half for each of its
two phases below, so that every phase's contacts build up the same history of runs.

Phases, each EVENTS × `POST /api/v2/events` (class_missed for an existing contact, each with its own idempotency
key) from CONCURRENCY client threads, bounded by PHASE_LIMIT_S; after WARMUP unmeasured events on each server, they
run ROUNDS times in the order A B C, then C B A, so that a steady drift (the tables grow) falls on each alike:
- "w1": gym one, 1 decision per event;
- "w20": gym twenty, 20 decisions per event;
- "w20_no_log": gym twenty through a second gunicorn, on the same database and Redis, whose processes replace
  `decisions.insert_many` with a no-op (`without_decision_log()` below, bench-only: the production code is unchanged).
  Everything is still evaluated and the run still starts; only the INSERT of the decisions is skipped.

No RQ worker runs: the enrolled runs stay queued in Redis, so the web's CPU is ingestion alone and nothing else
competes for the two cores. Decisions written are read back from GET /api/v2/workflows/{id}/enrollment-decisions.
On PostgreSQL the tables are ANALYZEd after the warm-up: without statistics the planner reads a contact's runs, and
an event's idempotency key, through the organization's index, i.e. every run and event of the gym per event.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from atlas.devserver import free_port, stop_process
from bench import percentiles
from bench.executions import Meter, _per_run, _pg_counters
from bench.stack import ROOT, _wait_until_up, running_stack

EVENTS = int(os.environ.get("ATLAS_BENCH_EVENTS", 800))  # per phase: bounded in count...
ROUNDS = int(os.environ.get("ATLAS_BENCH_ROUNDS", 2))
WARMUP = 50                                               # per server and gym, not measured
PHASE_LIMIT_S = 45                                        # ...and in time
CONCURRENCY = 8
CONTACTS = 40
OTHER_TRIGGERS = (("lead_created", {}), ("tag_added", {"tag": "vip"}), ("tag_removed", {"tag": "vip"}),
                  ("class_booked", {}), ("booking_cancelled", {}), ("membership_expiring", {}),
                  ("membership_cancelled", {}), ("payment_failed", {}), ("birthday", {}))


def without_decision_log():
    """gunicorn app factory (`bench.events:without_decision_log()`): the app with the decision INSERT skipped."""
    from atlas.services import decisions
    from wsgi import app

    decisions.insert_many = lambda made: None  # enrollment looks it up at call time, per process
    return app


def definition() -> dict:
    """set_variable -> end: the run is never executed here, only created and queued."""
    return {"schemaVersion": 1, "nodes": [
        {"id": "note", "type": "set_variable", "name": "Note", "config": {"name": "missed", "value": "yes"}},
        {"id": "done", "type": "end", "name": "Done", "config": {}}],
        "edges": [{"source": "note", "target": "done"}]}


def workflow_specs(count: int) -> list[dict]:
    """The matching workflow first, then count - 1 that do not enroll (other types, config mismatch, filter fails)."""
    specs = [{"triggerType": "class_missed", "triggerConfig": {}, "settings": {"oneActiveRunPerContact": False}}]
    for i in range(count - 1):
        if i < 12:
            kind, config = OTHER_TRIGGERS[i % len(OTHER_TRIGGERS)]
            specs.append({"triggerType": kind, "triggerConfig": config, "settings": {}})
        elif i < 16:
            specs.append({"triggerType": "class_missed", "triggerConfig": {"className": "Spin"}, "settings": {}})
        else:
            specs.append({"triggerType": "class_missed", "triggerConfig": {}, "settings": {"enrollmentFilter": {
                "field": "contact.status", "operator": "equals", "value": "member"}}})
    return specs


def _check(response: requests.Response, what: str) -> dict:
    if response.status_code >= 400:
        raise RuntimeError(f"{what}: {response.status_code} {response.text[:500]}")
    return response.json()


def _sign_up(base: str, name: str) -> dict:
    body = {"email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": "bench-password-123",
            "name": "Bench", "organizationName": f"Bench Gym {name}"}
    data = _check(requests.post(f"{base}/api/v2/auth/signup", json=body, timeout=10), "sign up")
    return {"Authorization": f"Bearer {data['token']['accessToken']}",
            "X-Organization-ID": data["organizations"][0]["id"]}


def _contacts(base: str, headers: dict, count: int) -> list[str]:
    """count leads, created through the API."""
    def one(i: int) -> str:
        body = {"firstName": f"Member {i}", "lastName": "Bench", "email": f"member-{i}@bench.example.com"}
        return _check(requests.post(f"{base}/api/v2/contacts", headers=headers, json=body, timeout=10),
                      "create contact")["id"]

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def _workflow(base: str, headers: dict, spec: dict, i: int) -> str:
    """Create, validate and activate one workflow."""
    body = {"name": f"Bench {i} {spec['triggerType']}", "workflowData": definition(), **spec}
    workflow_id = _check(requests.post(f"{base}/api/v2/workflows", headers=headers, json=body, timeout=10),
                         "create workflow")["workflow"]["id"]
    checked = _check(requests.post(f"{base}/api/v2/workflows/{workflow_id}/validate", headers=headers, json={},
                                   timeout=10), "validate")
    if not checked["isValid"]:
        raise RuntimeError(f"bench workflow {i} does not validate: {checked}")
    _check(requests.put(f"{base}/api/v2/workflows/{workflow_id}", headers=headers, json={"status": "active"},
                        timeout=10), "activate")
    return workflow_id


def _gym(base: str, name: str, workflows: int, contacts: int) -> dict:
    headers = _sign_up(base, name)
    return {"headers": headers, "contacts": _contacts(base, headers, contacts),
            "workflows": [_workflow(base, headers, spec, i) for i, spec in enumerate(workflow_specs(workflows))]}


def _half(gym: dict, which: int) -> dict:
    """The gym with half its contacts: each phase's contacts then build up the same history of runs."""
    return {**gym, "contacts": gym["contacts"][which * CONTACTS:(which + 1) * CONTACTS]}


def _decision_total(base: str, gym: dict) -> int:
    """Decisions recorded so far for the gym's workflows, one small list call each."""
    return sum(_check(requests.get(f"{base}/api/v2/workflows/{w}/enrollment-decisions?limit=1",
                                   headers=gym["headers"], timeout=10), "decisions")["pagination"]["total"]
               for w in gym["workflows"])


def _fire(base: str, gym: dict, label: str, count: int) -> tuple[list[dict], float]:
    """POST count class_missed events back to back at CONCURRENCY; the outcomes and the wall time."""
    local, deadline = threading.local(), time.monotonic() + PHASE_LIMIT_S
    url, contacts = f"{base}/api/v2/events", gym["contacts"]

    def one(i: int):
        if time.monotonic() > deadline:
            return None
        if not hasattr(local, "session"):
            local.session = requests.Session()
        body = {"type": "class_missed", "contactId": contacts[i % len(contacts)], "data": {"className": "HIIT"},
                "source": "bench", "idempotencyKey": f"{label}-{i}"}
        started = time.perf_counter()
        response = local.session.post(url, headers=gym["headers"], json=body, timeout=30)
        took = time.perf_counter() - started
        ok = response.status_code == 202
        outcomes = [e["outcome"] for e in response.json()["enrollments"]] if ok else []
        return {"s": took, "ok": ok, "status": response.status_code, "outcomes": outcomes}

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        fired = [r for r in pool.map(one, range(count)) if r is not None]
    return fired, time.perf_counter() - started


def _phase(stack, base: str, server: str, gym: dict, meter: Meter, label: str) -> dict:
    """One phase: fire, then read back what was written; CPU per accepted event for each process group."""
    before, pg_before = _decision_total(stack.base, gym), _pg_counters(stack.database_url)
    meter.mark()
    fired, wall = _fire(base, gym, label, EVENTS)
    cpu = meter.cpu_since_mark()
    pg_after = _pg_counters(stack.database_url)
    accepted = [f for f in fired if f["ok"]]
    per = max(1, len(accepted))
    written = _decision_total(stack.base, gym) - before
    outcomes = Counter(o for f in accepted for o in f["outcomes"])
    cpu_ms = {k: round(v / per * 1000, 2) for k, v in cpu.items()}
    return {
        "workflows": len(gym["workflows"]), "server": server, "events_sent": len(fired), "accepted": len(accepted),
        "errors": dict(Counter(f["status"] for f in fired if not f["ok"])),
        "events_per_s": round(len(accepted) / wall, 1), **percentiles([f["s"] for f in fired]),
        "decisions_written_per_event": round(written / per, 2),
        "decisions_answered_per_event": {k: round(v / per, 2) for k, v in sorted(outcomes.items())},
        "cpu_ms_per_event": {**cpu_ms, "web_hit": cpu_ms[server]}, "wall_s": round(wall, 2),
        "postgres_per_event": _per_run(pg_before, pg_after, len(accepted)),
    }


def _second_web(stack) -> tuple[subprocess.Popen, str]:
    """A second gunicorn like the stack's, on the same database and Redis, without the decision INSERT."""
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "bench.events:without_decision_log()", "--bind",
                            f"127.0.0.1:{port}", "--worker-class", "gthread", "--workers", "2", "--threads", "8"],
                           cwd=ROOT, env=stack.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base)
    except RuntimeError:
        stop_process(web)
        raise
    return web, base


def _analyze(url: str | None) -> None:
    """PostgreSQL: fresh statistics, as a database in service has; a young one's planner scans by organization."""
    if url:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            conn.execute("ANALYZE")


def _groups(stack, no_log: subprocess.Popen) -> dict[str, list[int]]:
    groups = {"web": [stack.web.pid], "web_no_log": [no_log.pid], "redis": [stack.redis_pid],
              "client": [os.getpid()]}
    if stack.postgres_pid:
        groups["postgres"] = [stack.postgres_pid]
    return groups


def _mean(phases: list[dict], *path: str) -> float:
    values = []
    for phase in phases:
        value = phase
        for key in path:
            value = value[key]
        values.append(value)
    return statistics.fmean(values)


def _marginal(phases: dict[str, list[dict]]) -> dict:
    """Per decision: (W=20 - W=1) / 19 for the whole evaluation, (W=20 - W=20 without log) / 20 for the INSERT."""
    def cost(name: str) -> float:  # SQLite works inside the web processes; PostgreSQL in its own
        parts = ("web_hit", "postgres") if "postgres" in phases[name][0]["cpu_ms_per_event"] else ("web_hit",)
        return sum(_mean(phases[name], "cpu_ms_per_event", part) for part in parts)

    w1, w20, no_log = cost("w1"), cost("w20"), cost("w20_no_log")
    p50 = {name: _mean(phases[name], "p50_ms") for name in phases}
    return {
        "cpu_ms_per_event_web_plus_db": {"w1": round(w1, 2), "w20": round(w20, 2), "w20_no_log": round(no_log, 2)},
        "cpu_ms_per_decision_evaluated_and_logged": round((w20 - w1) / 19, 3),
        "cpu_ms_per_decision_insert_only": round((w20 - no_log) / 20, 3),
        "insert_share_of_w20_event": round((w20 - no_log) / w20, 3) if w20 else None,
        "w1_event_cpu_ms": round(w1, 2),
        "p50_ms": {k: round(v, 1) for k, v in p50.items()},
        "events_per_s": {name: round(_mean(phases[name], "events_per_s"), 1) for name in phases},
    }


def run(database: str = "sqlite") -> dict:
    """Set up both gyms, then ROUNDS × (w1, w20, w20_no_log) interleaved on one stack."""
    with running_stack(database, rq_workers=0) as stack:
        one, twenty = _gym(stack.base, "one", 1, CONTACTS), _gym(stack.base, "twenty", 20, 2 * CONTACTS)
        no_log, no_log_base = _second_web(stack)
        try:
            meter = Meter(_groups(stack, no_log))
            meter.start()
            plan = {"w1": (stack.base, "web", one), "w20": (stack.base, "web", _half(twenty, 0)),
                    "w20_no_log": (no_log_base, "web_no_log", _half(twenty, 1))}
            for name, (base, _, gym) in plan.items():
                _fire(base, gym, f"warm-{name}", WARMUP)  # a process's first requests load things lazily
            _analyze(stack.database_url)
            phases: dict[str, list[dict]] = {name: [] for name in plan}
            for r in range(ROUNDS):
                for name in list(plan)[::1 if r % 2 == 0 else -1]:  # A B C, C B A: a steady drift cancels out
                    base, server, gym = plan[name]
                    phases[name].append(_phase(stack, base, server, gym, meter, f"{name}-{r}"))
            meter.stop.set()
        finally:
            stop_process(no_log)
    return {"database": database, "concurrency": CONCURRENCY, "events_per_phase": EVENTS, "rounds": ROUNDS,
            "rq_workers": 0, "server": "gunicorn gthread, 2 workers x 8 threads (each server)",
            "contacts_per_phase": CONTACTS,
            "order": "w1, w20, w20_no_log; then reversed each other round", "phases": phases,
            "marginal": _marginal(phases)}
