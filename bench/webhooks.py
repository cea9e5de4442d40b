"""Incoming webhooks (issue 6): signed deliveries over loopback to one endpoint, as a booking widget or a form
provider would send them in a burst.

A gym signs up through the API, creates an active workflow on the webhook trigger and an endpoint that starts it
(rate limit raised to 10,000 a minute). DELIVERIES signed deliveries (the `standardwebhooks` package signs them;
5 % repeat an earlier webhook-id, shuffled in) go out from CONCURRENCY client threads with one keep-alive session
each. No RQ worker runs: each accepted delivery's run is committed with it and its job queued in Redis, so the web
processes' work is what is measured (verification, deduplication, the event, the enrollment decision, the run, one
commit, the enqueue). Then the database is counted: every accepted delivery must be recorded once with its run.
"""
from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import requests
from sqlalchemy import create_engine, text

from bench import percentiles
from bench.stack import running_stack

DELIVERIES = int(os.environ.get("ATLAS_BENCH_WEBHOOKS", 2000))  # bounded in count...
REPEAT_SHARE = 0.05
CONCURRENCY = 32
TIME_LIMIT_S = 120                                                # ...and in time
FLOW = {"schemaVersion": 1, "nodes": [
    {"id": "note", "type": "set_variable", "config": {"name": "n", "value": "{{ trigger.body.n }}"}}], "edges": []}


def _endpoint(base: str) -> dict:
    """Sign up, an active workflow on the webhook trigger, an endpoint starting it; its URL, secret and ids."""
    signup = requests.post(f"{base}/api/v2/auth/signup", timeout=10, json={
        "email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": "bench-password-123", "name": "Bench",
        "organizationName": "Bench Gym"}).json()
    headers = {"Authorization": f"Bearer {signup['token']['accessToken']}",
               "X-Organization-ID": signup["organizations"][0]["id"]}
    workflow = requests.post(f"{base}/api/v2/workflows", headers=headers, timeout=10, json={
        "name": "Website form", "triggerType": "webhook", "status": "active", "workflowData": FLOW}).json()
    created = requests.post(f"{base}/api/v2/webhooks", headers=headers, timeout=10, json={
        "name": "Website form", "workflowId": workflow["workflow"]["id"], "rateLimit": 10000}).json()
    return {"url": created["endpointUrl"], "secret": created["secretKey"], "id": created["webhook"]["id"],
            "workflow": workflow["workflow"]["id"]}


def _fire(endpoint: dict) -> tuple[list[tuple[float, int, dict]], float]:
    """Every delivery once (some webhook-ids twice), CONCURRENCY at a time: (seconds, status, answer) each."""
    from standardwebhooks.webhooks import Webhook

    signer, local = Webhook(endpoint["secret"]), threading.local()
    unique = [(f"msg_{uuid.uuid4().hex}", n) for n in range(int(DELIVERIES * (1 - REPEAT_SHARE)))]
    sends = unique + random.Random(7).sample(unique, DELIVERIES - len(unique))
    random.Random(11).shuffle(sends)
    deadline = time.monotonic() + TIME_LIMIT_S

    def one(message: tuple[str, int]):
        if time.monotonic() > deadline:
            return None
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        body, now = json.dumps({"n": message[1], "email": f"lead{message[1]}@example.com"}), datetime.now(timezone.utc)
        headers = {"Content-Type": "application/json", "webhook-id": message[0],  # one instant for both
                   "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": signer.sign(message[0], now, body)}
        started = time.perf_counter()
        response = session.post(endpoint["url"], data=body.encode(), headers=headers, timeout=30)
        return time.perf_counter() - started, response.status_code, response.json()

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = [a for a in pool.map(one, sends) if a is not None]
    return answers, time.perf_counter() - started


def _accounted(database_url: str | None, instance, endpoint: dict) -> dict:
    """What the database holds afterwards: deliveries by outcome, runs, and whether each accepted one has its run."""
    url = database_url or f"sqlite:///{instance / 'atlas.db'}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT outcome, execution_ids FROM webhook_deliveries WHERE endpoint_id = :e"),
                            {"e": endpoint["id"]}).all()
        runs = conn.execute(text("SELECT count(*) FROM executions WHERE workflow_id = :w"),
                            {"w": endpoint["workflow"]}).scalar()
    engine.dispose()
    accepted = [json.loads(ids) if isinstance(ids, str) else ids for outcome, ids in rows if outcome == "accepted"]
    return {"accepted": len(accepted), "duplicates": sum(o == "duplicate" for o, _ in rows), "runs": runs,
            "every_accepted_has_one_run": all(len(ids) == 1 for ids in accepted) and runs == len(accepted)}


def run(database: str = "sqlite") -> dict:
    """DELIVERIES signed deliveries at CONCURRENCY, then the count in the database."""
    load_before = os.getloadavg()[0]
    with running_stack(database, rq_workers=0) as stack:
        endpoint = _endpoint(stack.base)
        answers, wall = _fire(endpoint)
        database_counts = _accounted(stack.database_url, stack.instance, endpoint)
    statuses: dict[str, int] = {}
    for _, status, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {"database": database, "server": "gunicorn gthread, 2 workers x 8 threads; no RQ worker",
            "deliveries": len(answers), "concurrency": CONCURRENCY, "repeated_webhook_ids": DELIVERIES -
            int(DELIVERIES * (1 - REPEAT_SHARE)), "statuses": statuses, "per_s": round(len(answers) / wall, 1),
            "latency": percentiles([a[0] for a in answers]), "database_counts": database_counts,
            "answered_duplicate": sum(bool(a[2].get("duplicate")) for a in answers),
            "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}}
