"""Outgoing webhooks against a real local HTTP server that verifies each signature with the standardwebhooks package.

The `connections` spy refuses any connection off loopback, so no test can send traffic elsewhere.
"""
import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from atlas.core import signing
from atlas.errors import AtlasError
from atlas.extensions import db
from atlas.models import OrganizationSecret
from atlas.services import secrets, signing_secrets, webhook_send
from tests import factories

QUICK = {"max_attempts": 3, "backoff": "fixed", "initial_delay_ms": 10, "max_delay_ms": 10}


@pytest.fixture
def local_org(org):
    """Our organization, allowed to reach 127.0.0.1 (the test server)."""
    org.settings = {**(org.settings or {}), "httpAllowlist": ["127.0.0.1"]}
    db.session.commit()
    return org


@pytest.fixture
def signed_server(server, local_org):
    """The test server, checking signatures with the organization's secret."""
    server.webhook_secret = signing_secrets.signing_secret(local_org.id)
    return server


def send(org, server, path, **kwargs):
    kwargs.setdefault("method", "POST")
    return webhook_send.send(org.id, url=server.url(path), **kwargs)


# --- the secret ----------------------------------------------------------------------------------------------------

def test_the_secret_is_made_once_and_stored_only_encrypted(app_ctx, org):
    plain = signing_secrets.signing_secret(org.id)
    assert plain.startswith("whsec_") and signing.key_of(plain)
    assert signing_secrets.signing_secret(org.id) == plain
    row = db.session.scalar(select(OrganizationSecret).where(OrganizationSecret.organization_id == org.id))
    assert row.kind == "webhook_signing" and plain not in row.secret_encrypted
    assert plain.removeprefix("whsec_") not in row.secret_encrypted
    assert secrets.decrypt(row.secret_encrypted) == plain


def test_each_organization_has_its_own_secret(app_ctx, org):
    other = factories.make_org("Elsewhere")
    assert signing_secrets.signing_secret(org.id) != signing_secrets.signing_secret(other.id)


def test_a_lost_race_for_the_first_secret_takes_the_winners_row(app_ctx, org):
    winner = signing_secrets.signing_secret(org.id)
    row = signing_secrets._create_secret_row(org.id)  # what a concurrent first use does once the other committed
    assert secrets.decrypt(row.secret_encrypted) == winner
    assert db.session.scalar(select(func.count()).select_from(OrganizationSecret)) == 1


def test_concurrent_first_uses_agree_on_one_secret(app, app_ctx, org):
    org_id, results, errors = org.id, [], []
    db.session.remove()
    barrier = threading.Barrier(4)

    def first_use():
        with app.app_context():
            try:
                barrier.wait(5)
                results.append(signing_secrets.signing_secret(org_id))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(results) == 4 and len(set(results)) == 1
    assert db.session.scalar(select(func.count()).select_from(OrganizationSecret)) == 1


def test_rotation_replaces_the_secret_and_the_old_one_signs_only_in_its_grace(app_ctx, org):
    before = signing_secrets.signing_secret(org.id)
    after = signing_secrets.rotate_signing_secret(org.id, grace_seconds=3600)
    assert after != before and signing_secrets.signing_secret(org.id) == after
    assert signing_secrets.signing_keys(org.id) == [after, before]
    row = db.session.scalar(select(OrganizationSecret))
    assert before not in (row.previous_secret_encrypted or "")  # kept encrypted too
    row.previous_expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)  # the grace is over
    db.session.commit()
    assert signing_secrets.signing_keys(org.id) == [after]
    assert signing_secrets.secret_info(org.id)["previous_secret_expires_at"] is None
    assert db.session.scalar(select(func.count()).select_from(OrganizationSecret)) == 1


# --- sending -------------------------------------------------------------------------------------------------------

def test_a_webhook_is_signed_over_the_exact_body(signed_server, local_org, connections):
    answer = send(local_org, signed_server, "/signed", payload={"event": "member.joined", "name": "Zoë"},
                  headers={"X-Gym": "iron"})
    assert answer["success"] is True and answer["response_status"] == 200
    assert answer["response_body"] == {"verified": True}
    [request] = signed_server.requests
    assert request["verified"] is True and request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"event": "member.joined", "name": "Zoë"}
    assert request["headers"]["webhook-id"] == answer["webhook_id"] and answer["webhook_id"].startswith("msg_")
    assert request["headers"]["X-Gym"] == "iron"
    # our own verifier agrees with the standardwebhooks package
    h = request["headers"]
    assert signing.verify([signed_server.webhook_secret], h["webhook-id"], h["webhook-timestamp"],
                          h["webhook-signature"], request["body"], datetime.now(timezone.utc).timestamp())
    assert set(answer["timing"]) == {"dns", "connect", "total"} and len(answer["attempts"]) == 1
    assert connections and set(connections) == {"127.0.0.1"}


def test_another_secret_does_not_verify(server, local_org):
    server.webhook_secret = signing.new_secret()
    answer = send(local_org, server, "/signed", payload={"a": 1}, retry={"max_attempts": 1})
    assert answer["success"] is False and answer["response_status"] == 401
    assert server.requests[0]["verified"] is False


def test_a_standardwebhooks_signature_matches_ours(signed_server, local_org):
    send(local_org, signed_server, "/echo", payload={"x": [1, 2]})
    request = signed_server.requests[0]
    h = request["headers"]
    sent = datetime.fromtimestamp(int(h["webhook-timestamp"]), tz=timezone.utc)
    theirs = Webhook(signed_server.webhook_secret).sign(h["webhook-id"], sent, request["body"].decode())
    assert theirs == h["webhook-signature"]


def test_500s_are_retried_with_the_same_id_and_a_fresh_signature(signed_server, local_org):
    signed_server.flaky_ok_at = 3
    answer = send(local_org, signed_server, "/flaky", payload={"n": 1}, retry=QUICK)
    assert answer["success"] is True and answer["response_status"] == 200 and answer["response_body"] == {"ok": True}
    assert [a["status"] for a in answer["attempts"]] == [500, 500, 200]
    assert [a["error"]["code"] if a["error"] else None for a in answer["attempts"]] == [
        "HTTP_SERVER_ERROR", "HTTP_SERVER_ERROR", None]
    assert [a["attempt"] for a in answer["attempts"]] == [1, 2, 3]
    requests = signed_server.requests
    assert len(requests) == 3 and all(r["verified"] for r in requests)
    assert {r["headers"]["webhook-id"] for r in requests} == {answer["webhook_id"]}
    assert {r["body"] for r in requests} == {b'{"n": 1}'}
    assert len({r["headers"]["webhook-signature"] for r in requests}) >= 1  # per-attempt timestamp, same id
    assert [a["timestamp"] for a in answer["attempts"]] == [int(r["headers"]["webhook-timestamp"]) for r in requests]


def test_it_gives_up_after_max_attempts(signed_server, local_org):
    answer = send(local_org, signed_server, "/status/503", payload={}, retry=QUICK)
    assert answer["success"] is False and answer["response_status"] == 503
    assert [a["status"] for a in answer["attempts"]] == [503, 503, 503]
    assert answer["error"]["code"] == "HTTP_SERVER_ERROR" and len(signed_server.requests) == 3
    assert "delay_ms" in answer["attempts"][0] and "delay_ms" not in answer["attempts"][-1]


def test_4xx_is_not_retried(signed_server, local_org):
    answer = send(local_org, signed_server, "/status/404", payload={}, retry=QUICK)
    assert answer["success"] is False and answer["response_status"] == 404
    assert answer["response_body"] == {"error": "nope"} and len(answer["attempts"]) == 1
    assert answer["error"]["code"] == "HTTP_CLIENT_ERROR" and answer["attempts"][0]["retryable"] is False


def test_429_waits_as_asked_up_to_the_max_delay(signed_server, local_org):
    retry = {**QUICK, "max_attempts": 2, "max_delay_ms": 2000}
    honoured = send(local_org, signed_server, "/status/429?retry_after=1", retry=retry)
    assert [a["status"] for a in honoured["attempts"]] == [429, 429]
    assert honoured["attempts"][0]["delay_ms"] == 1000
    too_long = send(local_org, signed_server, "/status/429?retry_after=3600", retry=retry)
    assert len(too_long["attempts"]) == 1 and "Retry-After" in too_long["error"]["message"]


def test_a_timeout_is_retried_and_reported(signed_server, local_org):
    answer = send(local_org, signed_server, "/slow", payload={}, timeout=0.3,
                  retry={**QUICK, "max_attempts": 2})
    assert answer["success"] is False and answer["response_status"] is None and answer["response_body"] is None
    assert [a["error"]["code"] for a in answer["attempts"]] == ["TIMEOUT", "TIMEOUT"]
    assert all(a["retryable"] and a["timing"]["total"] > 0 for a in answer["attempts"])
    assert len(signed_server.requests) == 2
    assert len({r["headers"]["webhook-id"] for r in signed_server.requests}) == 1


def test_a_refused_connection_is_retried(local_org, connections):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answer = webhook_send.send(local_org.id, url=f"http://127.0.0.1:{port}/", method="POST", retry=QUICK)
    assert [a["error"]["code"] for a in answer["attempts"]] == ["CONNECTION_FAILED"] * 3


def test_the_response_body_is_capped(signed_server, local_org):
    answer = send(local_org, signed_server, "/big", method="GET")
    assert answer["success"] is True and answer["truncated"] is True
    assert len(answer["response_body"]) == webhook_send.RESPONSE_BODY_MAX_BYTES


def test_get_sends_no_body_and_delete_an_empty_object_both_signed(signed_server, local_org):
    send(local_org, signed_server, "/signed", method="GET")
    send(local_org, signed_server, "/signed", method="DELETE")
    assert [(r["method"], r["body"], r["verified"]) for r in signed_server.requests] == [
        ("GET", b"", True), ("DELETE", b"{}", True)]


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/"])
def test_internal_addresses_are_refused_without_an_attempt(local_org, connections, target):
    with pytest.raises(AtlasError) as refused:
        webhook_send.send(local_org.id, url=target, method="POST", retry=QUICK)
    assert refused.value.code == "SSRF_BLOCKED" and refused.value.status == 422 and connections == []


def test_loopback_is_refused_unless_allowlisted(app_ctx, org, server, connections):
    with pytest.raises(AtlasError) as refused:
        webhook_send.send(org.id, url=server.url("/json"), method="POST", retry=QUICK)
    assert refused.value.code == "SSRF_BLOCKED" and server.requests == [] and connections == []


def test_a_redirect_to_an_internal_address_is_refused(signed_server, local_org, connections):
    with pytest.raises(AtlasError) as refused:
        send(local_org, signed_server, "/redirect?to=http://169.254.169.254/", retry=QUICK)
    assert refused.value.code == "SSRF_BLOCKED" and len(signed_server.requests) == 1


@pytest.mark.parametrize("name", ["webhook-id", "Webhook-Signature", "WEBHOOK-TIMESTAMP", "Host", "content-length"])
def test_reserved_headers_cannot_be_overridden(local_org, name):
    with pytest.raises(AtlasError) as refused:
        webhook_send.send(local_org.id, url="http://127.0.0.1:9/", method="POST", headers={name: "x"})
    assert refused.value.code == "WEBHOOK_HEADER_RESERVED" and refused.value.status == 422
    assert refused.value.validation == [{"field": f"headers.{name}", "message": "reserved header"}]


def test_retry_after_reads_seconds_and_dates():
    assert webhook_send.retry_after_seconds("7") == 7.0
    assert webhook_send.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert webhook_send.retry_after_seconds("soon") is None


def test_the_timeout_is_capped_by_the_configured_ceiling(app_ctx):
    ceiling = app_ctx.config["ATLAS_HTTP_TIMEOUT"]
    assert webhook_send.timeout_for(None) == ceiling
    assert webhook_send.timeout_for(ceiling + 100) == ceiling
    assert webhook_send.timeout_for(0.5) == 0.5


def test_retries_stop_when_the_time_budget_is_spent(signed_server, local_org, monkeypatch):
    monkeypatch.setattr(webhook_send, "TOTAL_BUDGET_SECONDS", 0.5)
    answer = send(local_org, signed_server, "/status/500",
                  retry={"max_attempts": 5, "backoff": "fixed", "initial_delay_ms": 1000, "max_delay_ms": 1000})
    assert len(answer["attempts"]) == 1 and "budget is spent" in answer["error"]["message"]
