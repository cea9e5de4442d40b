"""services/webhook_receive.py: one commit per delivery, runs a real worker completes, which workflows a delivery
asks, the 24-hour memory of webhook-ids, and a Redis outage after the commit losing nothing."""
import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from atlas.core import signing
from atlas.errors import AtlasError
from atlas.extensions import db, redis_holder
from atlas.models import EnrollmentDecision, Execution, WebhookDelivery, WebhookMessage, WorkflowTrigger
from atlas.models.base import utcnow
from atlas.services import executions
from atlas.services import webhook_receive as service
from jobs.worker import run_worker
from tests import factories
from tests.conftest import make_app
from tests.support.workers import Worker, worker_env

GREET = {"schemaVersion": 1, "nodes": [{"id": "hello", "type": "set_variable", "config": {
    "name": "greeting", "value": "Hi {{ contact.first_name }} ({{ trigger.body.email }})"}}], "edges": []}


def signed(secret: str, body: dict, msg_id: str = "msg_1") -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    return raw, signing.headers(secret, msg_id, int(time.time()), raw)


def receive(endpoint, secret, body, msg_id="msg_1"):
    raw, headers = signed(secret, body, msg_id)
    return service.receive(endpoint.id, raw, headers, "127.0.0.1")


def flow(org, staff, name, **fields):
    data = {"trigger_type": "webhook", "trigger_config": {}, "status": "active", "workflow_data": GREET, **fields}
    return factories.make_workflow(org, staff, name=name, **data)


def all_rows(model):
    db.session.expire_all()
    return list(db.session.scalars(select(model)))


def test_an_accepted_delivery_commits_once_and_a_real_worker_runs_its_run(org, staff):
    flow(org, staff, "Greeter")
    endpoint, secret = factories.make_webhook(org)
    factories.make_contact(org, first_name="Jane", email="jane@example.com")
    commits = []

    def count(connection):
        commits.append(connection)

    sa_event.listen(db.engine, "commit", count)
    try:
        answer = receive(endpoint, secret, {"email": "jane@example.com"})
    finally:
        sa_event.remove(db.engine, "commit", count)

    assert len(commits) == 1  # delivery, message id, event, decision and run together
    [run] = all_rows(Execution)
    assert answer["workflows_triggered"] == [run.workflow_id] and answer["delivery_id"]
    db.session.commit()
    run_worker(burst=True)
    db.session.expire_all()
    run = db.session.get(Execution, run.id)
    assert run.status == "completed" and run.state["variables"] == {"greeting": "Hi Jane (jane@example.com)"}


def test_a_delivery_about_a_contact_resumes_their_run_waiting_for_a_webhook(org, staff):
    """"Wait until the payment provider's webhook confirms": the wait's event branch goes on, with the body."""
    confirm = {"schemaVersion": 1, "nodes": [
        {"id": "await", "type": "wait_for_event", "config": {"event": "webhook",
                                                            "timeout": {"amount": 3, "unit": "days"}}},
        {"id": "paid", "type": "set_variable", "config": {
            "name": "paid", "value": "{{ steps.await.output.received.body.status }}"}},
        {"id": "chase", "type": "set_variable", "config": {"name": "paid", "value": "no"}}],
        "edges": [{"source": "await", "target": "paid", "branch": "event"},
                  {"source": "await", "target": "chase", "branch": "timeout"}]}
    jane = factories.make_contact(org, first_name="Jane", email="jane@example.com")
    waiting_flow = factories.make_workflow(org, staff, name="Await payment", status="active", trigger_type="manual",
                                           workflow_data=confirm)
    run, _ = executions.start_execution(org.id, staff.id, waiting_flow.id, trigger_data={},
                                        input_data={"contactId": jane.id})
    db.session.commit()
    run_worker(burst=True)
    db.session.expire_all()
    assert db.session.get(Execution, run.id).status == "waiting"
    endpoint, secret = factories.make_webhook(org)  # starts nothing: only the waiting run cares

    answer = receive(endpoint, secret, {"email": "jane@example.com", "status": "succeeded"})

    assert answer["workflows_triggered"] == []
    db.session.expire_all()
    assert db.session.get(Execution, run.id).status == "queued"  # on its way along the event branch
    db.session.commit()  # the test's own read ends before the worker writes (SQLite has one writer)
    run_worker(burst=True)
    db.session.expire_all()
    done = db.session.get(Execution, run.id)
    assert done.status == "completed" and done.state["variables"] == {"paid": "succeeded"}


def test_a_rejection_is_recorded_then_raised(org):
    endpoint, _ = factories.make_webhook(org)
    raw, headers = signed(signing.new_secret(), {"email": "x@example.com"})

    with pytest.raises(AtlasError) as refused:
        service.receive(endpoint.id, raw, headers, "203.0.113.7")

    assert (refused.value.code, refused.value.status) == ("WEBHOOK_SIGNATURE_INVALID", 401)
    [delivery] = all_rows(WebhookDelivery)
    assert (delivery.outcome, delivery.reason, delivery.remote_addr, delivery.payload) == (
        "rejected", "WEBHOOK_SIGNATURE_INVALID", "203.0.113.7", None)


def test_a_declared_length_over_the_cap_is_refused_unread(org):
    endpoint, secret = factories.make_webhook(org)
    raw, headers = signed(secret, {})

    with pytest.raises(AtlasError) as refused:
        service.receive(endpoint.id, b"", headers, None, length=10 * 1024 * 1024)

    assert refused.value.code == "WEBHOOK_PAYLOAD_TOO_LARGE"


def test_which_workflows_a_delivery_asks(org, staff):
    endpoint, secret = factories.make_webhook(org)
    everywhere = flow(org, staff, "Every endpoint")
    here = flow(org, staff, "This endpoint", trigger_config={"endpointId": endpoint.id})
    flow(org, staff, "Another endpoint", trigger_config={"endpointId": "ep_elsewhere"})
    paused = flow(org, staff, "Paused")
    paused.status = "paused"
    extra = flow(org, staff, "Extra trigger", trigger_type="lead_created")
    db.session.add(WorkflowTrigger(organization_id=org.id, workflow_id=extra.id, trigger_type="webhook",
                                   name="From the website", config={"endpointId": endpoint.id}))
    flow(org, staff, "Lead created only", trigger_type="lead_created")
    db.session.commit()

    answer = receive(endpoint, secret, {"email": "nobody@example.com"})

    assert sorted(answer["workflows_triggered"]) == sorted([everywhere.id, here.id, extra.id])
    decided = {d.workflow_id: d.outcome for d in all_rows(EnrollmentDecision)}
    assert decided == {everywhere.id: "enrolled", here.id: "enrolled", extra.id: "enrolled",
                       paused.id: "workflow_inactive"}


def test_the_endpoint_s_workflow_keeps_its_enrollment_rules(org, staff):
    jane = factories.make_contact(org, first_name="Jane", email="jane@example.com")
    own = flow(org, staff, "Once only", trigger_type="lead_created", settings={"reenrollment": "never"})
    endpoint, secret = factories.make_webhook(org, workflow_id=own.id)

    first = receive(endpoint, secret, {"email": "jane@example.com"}, "msg_a")
    second = receive(endpoint, secret, {"email": "jane@example.com"}, "msg_b")

    assert first["workflows_triggered"] == [own.id] and second["workflows_triggered"] == []
    outcomes = sorted(d.outcome for d in all_rows(EnrollmentDecision) if d.contact_id == jane.id)
    assert outcomes == ["enrolled", "reenrollment_blocked"] and len(all_rows(Execution)) == 1


def test_message_ids_are_purged_after_a_day(org):
    endpoint, _ = factories.make_webhook(org)
    now = utcnow()
    db.session.add_all([WebhookMessage(endpoint_id=endpoint.id, message_id="old", delivery_id="d1",
                                       received_at=now - timedelta(hours=25)),
                        WebhookMessage(endpoint_id=endpoint.id, message_id="new", delivery_id="d2",
                                       received_at=now - timedelta(hours=23))])
    db.session.commit()

    assert service.purge_message_ids(now) == 1
    assert [m.message_id for m in all_rows(WebhookMessage)] == ["new"]


def test_the_same_webhook_id_sent_twice_at_once_starts_one_run_and_answers_both(app, org, staff):
    """Real concurrent transactions, eight times over: on PostgreSQL both requests do their work and the second
    commit meets the first's webhook-id (the primary key), so it must answer as a duplicate, not fail."""
    endpoint, secret = factories.make_webhook(org, workflow_id=flow(org, staff, "Website form").id, rate_limit=10000)
    endpoint_id = endpoint.id  # read here: the threads must not touch the test's own session
    db.session.commit()  # the test's own transaction ends first (SQLite has one writer)
    for attempt in range(8):
        barrier, answers = threading.Barrier(2), []
        raw, headers = signed(secret, {"email": "sam@example.com", "n": attempt}, f"msg_race_{attempt}")

        def deliver():
            with app.app_context():
                barrier.wait()
                try:
                    answers.append(service.receive(endpoint_id, raw, headers, "127.0.0.1"))
                except Exception as exc:  # noqa: BLE001 (the test names whatever went wrong)
                    answers.append(exc)
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert all(isinstance(a, dict) for a in answers), [repr(a)[:600] for a in answers]
        assert sorted(bool(a.get("duplicate")) for a in answers) == [False, True], answers
        first, second = sorted(answers, key=lambda a: bool(a.get("duplicate")))
        assert second["original_delivery_id"] == first["delivery_id"]
        assert second["workflows_triggered"] == first["workflows_triggered"] and len(first["workflows_triggered"]) == 1
    db.session.expire_all()
    assert len(all_rows(Execution)) == 8 and len(all_rows(WebhookMessage)) == 8
    assert sorted(d.outcome for d in all_rows(WebhookDelivery)) == ["accepted"] * 8 + ["duplicate"] * 8


def test_a_running_worker_forgets_old_message_ids_in_its_housekeeping(app_ctx, database_url, redis_server, org,
                                                                     tmp_path):
    endpoint, _ = factories.make_webhook(org)
    db.session.add(WebhookMessage(endpoint_id=endpoint.id, message_id="old", delivery_id="d1",
                                  received_at=utcnow() - timedelta(hours=25)))
    db.session.commit()

    def remembered() -> list:
        """The message ids still kept; the transaction ends at once, leaving the database to the worker."""
        ids = [m.message_id for m in all_rows(WebhookMessage)]
        db.session.rollback()
        return ids

    worker = Worker("housekeeper", worker_env(database_url, redis_server.url, tmp_path / "instance",
                                              ATLAS_RECONCILE_SECONDS=0.2), tmp_path)
    try:
        deadline = time.monotonic() + 20
        while remembered() and time.monotonic() < deadline and worker.alive():
            time.sleep(0.1)
        assert remembered() == [], worker.log()
    finally:
        worker.kill()


def test_redis_down_after_the_commit_loses_nothing(app_ctx, database_url, redis_server, org, staff):
    flow(org, staff, "Greeter")
    endpoint, secret = factories.make_webhook(org)
    endpoint_id = endpoint.id
    db.session.remove()
    offline = make_app(database_url, "redis://127.0.0.1:1/0", RATELIMIT_STORAGE_URI=redis_server.url)
    raw, headers = signed(secret, {"email": "x@example.com"})
    try:
        with offline.app_context():
            answer = service.receive(endpoint_id, raw, headers, None)
            db.session.remove()
    finally:
        with offline.app_context():
            db.engine.dispose()
        live = make_app(database_url, redis_server.url)  # the limiter is one object: bind it back to the live Redis
        with live.app_context():
            db.engine.dispose()

    [run] = all_rows(Execution)
    assert answer["workflows_triggered"] == [run.workflow_id] and run.status == "queued"
    assert not redis_holder.client.exists(f"rq:job:{run.job_id}")  # the reconciler re-enqueues it
    assert [d.execution_ids for d in all_rows(WebhookDelivery)] == [[run.id]]
