"""A burst of 2,000 signed webhook deliveries over loopback at concurrency 32 against gunicorn on SQLite: every
accepted delivery is recorded exactly once with the one run it started, and repeated webhook-ids start nothing.

The deliveries are signed with the `standardwebhooks` package, as a sender's own code would sign them. 50 of the
2,000 repeat an earlier webhook-id, shuffled in among the others, so some arrive while their original is still being
processed. The database is read directly afterwards (read-only), so the check does not depend on the API it tests.
"""
import json
import random
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from standardwebhooks.webhooks import Webhook

pytestmark = pytest.mark.e2e
DELIVERIES, REPEATS, CONCURRENCY = 2000, 50, 32
TIME_LIMIT_S = 300  # the burst stops sending past this; the test then fails on the counts
FLOW = {"schemaVersion": 1, "nodes": [
    {"id": "note", "type": "set_variable", "config": {"name": "n", "value": "{{ trigger.body.n }}"}}], "edges": []}


@pytest.fixture(scope="module")
def endpoint(atlas_server):
    """A gym with an active workflow on the webhook trigger and an endpoint that starts it (rate limit raised)."""
    base = atlas_server.base_url
    signup = requests.post(f"{base}/api/v2/auth/signup", timeout=10, json={
        "email": f"burst-{uuid.uuid4().hex[:8]}@example.com", "password": "burst-password-1", "name": "Sam",
        "organizationName": "Burst Gym"}).json()
    headers = {"Authorization": f"Bearer {signup['token']['accessToken']}",
               "X-Organization-ID": signup["organizations"][0]["id"]}
    workflow = requests.post(f"{base}/api/v2/workflows", headers=headers, timeout=10, json={
        "name": "Website form", "triggerType": "webhook", "status": "active", "workflowData": FLOW}).json()["workflow"]
    created = requests.post(f"{base}/api/v2/webhooks", headers=headers, timeout=10, json={
        "name": "Website form", "workflowId": workflow["id"], "rateLimit": 10000})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["endpointUrl"] == f"{base}/api/v2/webhooks/receive/{body['webhook']['id']}"
    return {"url": body["endpointUrl"], "id": body["webhook"]["id"], "secret": body["secretKey"],
            "workflow": workflow["id"]}


def test_every_accepted_delivery_is_recorded_once_with_its_run(atlas_server, endpoint):
    signer = Webhook(endpoint["secret"])
    messages = [(f"msg_{uuid.uuid4().hex}", n) for n in range(DELIVERIES - REPEATS)]
    sends = messages + random.Random(7).sample(messages, REPEATS)
    random.Random(11).shuffle(sends)
    local = threading.local()
    deadline = time.monotonic() + TIME_LIMIT_S

    def deliver(message: tuple[str, int]) -> tuple[str, int, int, dict]:
        if time.monotonic() > deadline:
            return message[0], message[1], 0, {}
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        message_id, n = message
        body = json.dumps({"n": n, "email": f"lead{n}@example.com"})
        now = datetime.now(timezone.utc)  # one instant for the signature and its header, even across a second
        signature = signer.sign(message_id, now, body)
        response = session.post(endpoint["url"], data=body.encode(), timeout=30, headers={
            "Content-Type": "application/json", "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature})
        return message_id, n, response.status_code, response.json()

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(deliver, sends))

    assert [a for a in answers if a[2] != 200][:5] == []  # every one answered 200: accepted or a duplicate
    first = {a[3]["deliveryId"] for a in answers if not a[3].get("duplicate")}
    assert len(first) == DELIVERIES - REPEATS
    assert sum(bool(a[3].get("duplicate")) for a in answers) == REPEATS
    assert all(a[3]["success"] and len(a[3]["workflowsTriggered"]) == 1 for a in answers)

    database = Path(atlas_server.env["ATLAS_INSTANCE_DIR"]) / "atlas.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT id, message_id, outcome, payload, execution_ids FROM webhook_deliveries "
                            "WHERE endpoint_id = ?", (endpoint["id"],)).fetchall()
        runs = dict(conn.execute("SELECT id, trigger_data FROM executions WHERE workflow_id = ?",
                                 (endpoint["workflow"],)).fetchall())
        remembered = conn.execute("SELECT count(*) FROM webhook_messages WHERE endpoint_id = ?",
                                  (endpoint["id"],)).fetchone()[0]
    accepted = [r for r in rows if r[2] == "accepted"]
    assert len(accepted) == DELIVERIES - REPEATS and {r[0] for r in accepted} == first
    assert len({r[1] for r in accepted}) == len(accepted) == remembered  # one recorded delivery per webhook-id
    assert sum(r[2] == "duplicate" for r in rows) == REPEATS and len(rows) == DELIVERIES
    started = [run for r in accepted for run in json.loads(r[4])]
    assert len(started) == len(set(started)) == len(accepted) == len(runs)  # one run each, and no other run
    for _, _, _, payload, execution_ids in accepted:  # each run carries its own delivery's body
        run = json.loads(runs[json.loads(execution_ids)[0]])
        assert run["body"]["n"] == json.loads(payload)["n"]
