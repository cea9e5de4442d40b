"""Server-Sent Events over real HTTP against gunicorn: tickets, live run events with ids, resume, 50 open streams."""
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

pytestmark = pytest.mark.e2e
FLOW = {"schemaVersion": 1, "nodes": [
    {"id": "greet", "type": "set_variable", "config": {"name": "greeting", "value": "Hi {{ contact.name }}"}},
    {"id": "check", "type": "if_else", "config": {"condition": {"field": "trigger.vip", "operator": "equals",
                                                                "value": True}}},
    {"id": "vip", "type": "set_variable", "config": {"name": "tier", "value": "vip"}},
    {"id": "done", "type": "end", "config": {}}],
    "edges": [{"source": "greet", "target": "check"}, {"source": "check", "target": "vip", "branch": "true"},
              {"source": "check", "target": "done", "branch": "false"}]}


@pytest.fixture(scope="module")
def gym(atlas_server):
    """A gym signed up through the API, with an active workflow, and the headers to call the API as its owner."""
    base = atlas_server.base_url
    signup = requests.post(f"{base}/api/v2/auth/signup", timeout=10, json={
        "email": f"sse-{uuid.uuid4().hex[:8]}@example.com", "password": "stream-password-1", "name": "Sam",
        "organizationName": "Stream Gym"}).json()
    headers = {"Authorization": f"Bearer {signup['token']['accessToken']}",
               "X-Organization-ID": signup["organizations"][0]["id"]}
    workflow = requests.post(f"{base}/api/v2/workflows", headers=headers, timeout=10, json={
        "name": "Live", "triggerType": "manual", "status": "active", "workflowData": FLOW}).json()["workflow"]
    return {"base": base, "headers": headers, "workflow": workflow["id"]}


def open_stream(gym, **params):
    ticket = requests.post(f"{gym['base']}/api/v2/workflows/{gym['workflow']}/stream-tickets", headers=gym["headers"],
                           timeout=10).json()
    return requests.get(f"{gym['base']}/api/v2/workflows/{gym['workflow']}/stream", stream=True, timeout=15,
                        params={"ticket": ticket["ticket"], **params.get("query", {})},
                        headers=params.get("headers", {})), ticket


def events(response):
    """Parse SSE events (id, event, data) from a streaming response, forever."""
    event = {}
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if "event" in event:
                yield event
            event = {}
        elif not line.startswith(":") and ":" in line:
            key, _, value = line.partition(":")
            event[key] = value.strip()


def until_done(stream_events, execution_id):
    seen = []
    for event in stream_events:
        if event["event"] == "heartbeat":
            continue
        data = json.loads(event["data"])
        if data.get("executionId") == execution_id:
            seen.append((event["id"], event["event"], data))
            if event["event"] in ("execution_completed", "execution_failed"):
                return seen
    return seen


def test_a_ticket_opens_the_stream_once_and_it_starts_with_a_heartbeat(gym):
    response, ticket = open_stream(gym)
    with response:
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
        assert next(events(response))["event"] == "heartbeat"
    again = requests.get(f"{gym['base']}/api/v2/workflows/{gym['workflow']}/stream",
                         params={"ticket": ticket["ticket"]}, timeout=10)
    assert again.status_code == 401 and again.json()["error"]["code"] == "INVALID_TICKET"


def test_a_run_streams_its_events_with_ids_and_last_event_id_resumes(gym, worker):
    response, _ = open_stream(gym)
    with response:
        stream = events(response)
        assert next(stream)["event"] == "heartbeat"
        run = requests.post(f"{gym['base']}/api/v2/workflows/{gym['workflow']}/execute", headers=gym["headers"],
                            timeout=10, json={"triggerData": {"vip": True}, "inputData": {"contact": {"name": "Sam"}}})
        execution_id = run.json()["executionId"]
        seen = until_done(stream, execution_id)

    assert [(name, data.get("nodeId")) for _, name, data in seen] == [
        ("execution_started", None), ("step_completed", "greet"), ("step_completed", "check"),
        ("step_completed", "vip"), ("execution_completed", None)]
    assert seen[2][2]["branch"] == "true" and seen[1][2]["output"] == {"name": "greeting", "value": "Hi Sam"}

    resumed, _ = open_stream(gym, headers={"Last-Event-ID": seen[1][0]})
    with resumed:
        replay = until_done(events(resumed), execution_id)
    assert [event_id for event_id, _, _ in replay] == [event_id for event_id, _, _ in seen[2:]]


def test_fifty_open_streams_do_not_stall_the_api(gym):
    streams, opened = [], threading.Barrier(51, timeout=20)

    def hold():
        response, _ = open_stream(gym)
        streams.append(response)
        next(events(response))  # the first heartbeat: the stream is open and being served
        opened.wait()

    with ThreadPoolExecutor(50) as pool:
        futures = [pool.submit(hold) for _ in range(50)]
        opened.wait()
        try:
            answers = [requests.get(f"{gym['base']}/api/v2/workflows", headers=gym["headers"], timeout=10)
                       for _ in range(5)]
            assert [a.status_code for a in answers] == [200] * 5
        finally:
            for response in streams:
                response.close()
        for future in futures:
            future.result()
    assert len(streams) == 50
