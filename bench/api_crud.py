"""Workflows CRUD over HTTP: create and list latency and throughput at a fixed concurrency."""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from bench import percentiles
from bench.stack import running_app

CREATES = 300          # bounded in count...
LISTS = 1000
CONCURRENCY = 8
TIME_LIMIT_S = 90      # ...and in time


def _sign_up(base: str) -> dict:
    body = {"email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": "bench-password-123",
            "name": "Bench", "organizationName": "Bench Gym"}
    data = requests.post(f"{base}/api/v2/auth/signup", json=body, timeout=10).json()
    return {"Authorization": f"Bearer {data['token']['accessToken']}", "X-Organization-ID": data["organizations"][0]["id"]}


def _load(calls: list, deadline: float) -> tuple[list[float], float, int]:
    """Run the calls at CONCURRENCY; returns latencies, wall time and the number of failures."""
    local = threading.local()

    def one(call):
        if time.monotonic() > deadline:
            return None
        if not hasattr(local, "session"):
            local.session = requests.Session()
        started = time.perf_counter()
        response = local.session.request(*call[:2], **call[2])
        return time.perf_counter() - started, response.status_code < 400

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        outcomes = [o for o in pool.map(one, calls) if o is not None]
    wall = time.perf_counter() - started
    return [o[0] for o in outcomes], wall, sum(1 for o in outcomes if not o[1])


def run(database: str = "sqlite") -> dict:
    """Create CREATES workflows, then list them LISTS times with varied filters."""
    with running_app(database) as base:
        headers = _sign_up(base)
        deadline = time.monotonic() + TIME_LIMIT_S
        nodes = [{"id": f"n{i}", "type": "wait", "name": f"Step {i}", "config": {}} for i in range(6)]
        edges = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(5)]
        creates = [("POST", f"{base}/api/v2/workflows", {"headers": headers, "json": {
            "name": f"Workflow {i}", "triggerType": "lead_created", "category": ["Leads", "Retention"][i % 2],
            "tags": [f"t{i % 5}"], "workflowData": {"schemaVersion": 1, "nodes": nodes, "edges": edges}}})
            for i in range(CREATES)]
        create_lat, create_wall, create_fail = _load(creates, deadline)
        queries = ["", "?status=draft", "?search=flow 1", "?tags=t1,t2", "?sortBy=name&sortOrder=asc&page=3",
                   "?category=Leads&limit=100"]
        lists = [("GET", f"{base}/api/v2/workflows{queries[i % len(queries)]}", {"headers": headers})
                 for i in range(LISTS)]
        list_lat, list_wall, list_fail = _load(lists, deadline)
    return {
        "concurrency": CONCURRENCY, "database": database, "server": "gunicorn gthread, 2 workers x 8 threads",
        "create": {"requests": len(create_lat), "failures": create_fail,
                   "per_second": round(len(create_lat) / create_wall, 1), **percentiles(create_lat)},
        "list": {"requests": len(list_lat), "failures": list_fail,
                 "per_second": round(len(list_lat) / list_wall, 1), **percentiles(list_lat)},
    }
