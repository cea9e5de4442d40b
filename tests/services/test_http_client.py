"""The outgoing HTTP client against a real local http.server; the SSRF guard refuses before any connection.

A spy on socket.create_connection records every address the client connects to and refuses anything but loopback,
so no test can send traffic off this machine even if the guard broke.
"""
import ipaddress
import json
import socket

import pytest

from atlas.core.steps.base import StepError
from atlas.services import http_client
from atlas.services.http_client import allowed_by, is_blocked, send

LOCAL = ["127.0.0.1"]


# --- the guard, address by address -------------------------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
    "169.254.0.1", "0.0.0.0", "100.64.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
    "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::a00:1", "2002:a00:1::1"])
def test_internal_addresses_are_blocked(address):
    assert is_blocked(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert not is_blocked(ipaddress.ip_address(address))


def test_the_allowlist_names_hosts_or_networks():
    ten = ipaddress.ip_address("10.1.2.3")
    assert allowed_by(["10.0.0.0/8"], "crm.internal", ten)
    assert allowed_by(["crm.internal"], "CRM.internal.", ten)
    assert allowed_by(["*.internal"], "crm.internal", ten)
    assert allowed_by(["127.0.0.1"], "x", ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not allowed_by(["10.0.0.0/16"], "crm.internal", ten)
    assert not allowed_by(["other.internal", "not a cidr/99"], "crm.internal", ten)
    assert not allowed_by(None, "crm.internal", ten)


# --- refusals before connecting ----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://10.0.0.1/admin", "http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/",
    "http://localhost/", "https://localhost:8443/", "http://2130706433/", "http://0x7f.1/", "http://[::ffff:10.0.0.1]/",
    "http://[fd00:ec2::254]/latest/meta-data/", "http://0.0.0.0:80/"])
def test_internal_targets_are_refused_without_connecting(url, connections):
    with pytest.raises(StepError) as refused:
        send(None, "GET", url, allowlist=[], timeout=2)
    assert refused.value.code == "SSRF_BLOCKED" and refused.value.retryable is False
    assert "allowlist" in refused.value.message
    assert connections == []


def test_the_refusal_names_the_resolved_address(connections):
    with pytest.raises(StepError, match=r"localhost \((127\.0\.0\.1|::1)\)"):
        send(None, "GET", "http://localhost/", allowlist=[])


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1:70/", "http:///nohost",
                                 "http://user:pw@127.0.0.1/", "http://127.0.0.1:99999/"])
def test_only_plain_http_urls_are_accepted(url, connections):
    with pytest.raises(StepError) as refused:
        send(None, "GET", url, allowlist=LOCAL)
    assert refused.value.code == "INVALID_URL" and connections == []


def test_an_allowlisted_server_redirecting_to_a_blocked_address_is_refused_at_that_hop(server, connections):
    for blocked in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://[::1]/"):
        with pytest.raises(StepError) as refused:
            send(None, "GET", server.url(f"/redirect?to={blocked}"), allowlist=LOCAL)
        assert refused.value.code == "SSRF_BLOCKED"
    assert connections == ["127.0.0.1"] * 3  # only the allowed first hops were ever connected to
    assert [r["path"] for r in server.requests] == ["/redirect"] * 3


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(server, connections, monkeypatch):
    """DNS rebinding: the first answer is checked; a later answer (here: a blocked one) is never used."""
    real, answers = socket.getaddrinfo, []

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.test":
            first = not answers
            answers.append(host)
            target = "127.0.0.1" if first else "10.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (target, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    port = server.httpd.server_address[1]
    response = send(None, "GET", f"http://rebind.test:{port}/echo", allowlist=["127.0.0.1"])
    assert response.status == 200 and len(answers) == 1 and connections == ["127.0.0.1"]
    assert response.content()["headers"]["Host"] == f"rebind.test:{port}"  # the name is kept for the server


# --- real requests to an allowed local server -----------------------------------------------------------------------

def test_json_answers_are_parsed_and_timed(server, connections):
    response = send(None, "GET", server.url("/json"), allowlist=LOCAL)
    assert response.status == 200 and response.content() == {"hello": "world", "n": 1}
    assert response.headers["etag"] == '"v1"' and response.final_url == server.url("/json")
    assert set(response.timing) == {"dns", "connect", "total"} and response.timing["total"] >= 0
    assert connections == ["127.0.0.1"]


def test_method_headers_and_body_are_sent(server):
    response = send(None, "PATCH", server.url("/echo"), headers={"X-Token": "abc", "Host": "evil.example"},
                    body='{"a": 1}', allowlist=LOCAL)
    echo = response.content()
    assert echo["method"] == "PATCH" and echo["body"] == '{"a": 1}' and echo["headers"]["X-Token"] == "abc"
    assert echo["headers"]["Host"] == server.base.removeprefix("http://")  # Host cannot be overridden
    assert echo["headers"]["User-Agent"].startswith("Atlas-Workflows")


def test_header_injection_is_refused(server):
    with pytest.raises(StepError) as refused:
        send(None, "GET", server.url("/echo"), headers={"X-A": "1\r\nX-Injected: yes"}, allowlist=LOCAL)
    assert refused.value.code == "INVALID_HEADER" and server.requests == []


def test_the_body_is_capped(server):
    response = send(None, "GET", server.url("/big"), allowlist=LOCAL)
    assert len(response.body) == http_client.MAX_BODY_BYTES and response.truncated
    assert send(None, "GET", server.url("/json"), allowlist=LOCAL).truncated is False


def test_redirects_are_followed_within_the_allowlist(server):
    response = send(None, "POST", server.url("/redirect?to=/echo&status=303"), body="x", allowlist=LOCAL)
    assert response.status == 200 and response.content()["method"] == "GET" and response.redirects == 1
    assert response.final_url == server.url("/echo")
    kept = send(None, "PUT", server.url("/redirect?to=/echo&status=307"), body="keep", allowlist=LOCAL).content()
    assert kept["method"] == "PUT" and kept["body"] == "keep"


def test_credentials_are_not_carried_to_another_host(server):
    target = server.url("/echo").replace("127.0.0.1", "localhost")
    echo = send(None, "GET", server.url(f"/redirect?to={target}"), headers={"Authorization": "Bearer s3cret"},
                allowlist=["127.0.0.1", "localhost"])
    sent = echo.content()["headers"]
    assert "Authorization" not in sent and sent["Host"].startswith("localhost")
    same = send(None, "GET", server.url("/redirect?to=/echo"), headers={"Authorization": "Bearer s3cret"},
                allowlist=LOCAL)
    assert same.content()["headers"]["Authorization"] == "Bearer s3cret"


def test_too_many_redirects(server):
    with pytest.raises(StepError) as failed:
        send(None, "GET", server.url("/loop"), allowlist=LOCAL)
    assert failed.value.code == "TOO_MANY_REDIRECTS" and len(server.requests) == http_client.MAX_REDIRECTS + 1


def test_a_slow_server_times_out_retryably(server):
    with pytest.raises(StepError) as failed:
        send(None, "GET", server.url("/slow"), allowlist=LOCAL, timeout=0.3)
    assert failed.value.code == "TIMEOUT" and failed.value.retryable


def test_a_closed_port_is_a_retryable_connection_failure(connections):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StepError) as failed:
        send(None, "GET", f"http://127.0.0.1:{port}/", allowlist=LOCAL, timeout=2)
    assert failed.value.code == "CONNECTION_FAILED" and failed.value.retryable


def test_the_organizations_allowlist_is_used_when_none_is_given(app_ctx, server):
    from atlas.extensions import db
    from tests.factories import make_org

    org = make_org()
    with pytest.raises(StepError, match="SSRF|allowlist"):
        send(org.id, "GET", server.url("/json"))
    org.settings = {"httpAllowlist": ["127.0.0.1/32"]}
    db.session.commit()
    assert send(org.id, "GET", server.url("/json")).status == 200


# --- the http_request step through the effects port, and a real run retrying a 500 --------------------------------

def _org(allowlist=LOCAL):
    from atlas.extensions import db
    from tests.factories import make_org

    org = make_org()
    org.settings = {"httpAllowlist": allowlist}
    db.session.commit()
    return org


def _step(org, config: dict, *, mock=False, attempt=1):
    from datetime import datetime, timezone

    from atlas.core import steps
    from atlas.core.steps.base import StepContext
    from atlas.services import effects
    from atlas.services.effects import EffectContext

    port = effects.port(EffectContext(org_id=org.id, execution_id="e-1", mock=mock))
    data = {"trigger": {"id": 42}, "contact": {"email": "sarah@example.com"}, "vars": {}, "steps": {}}
    ctx = StepContext(node_id="hook", config=config, data=data, now=datetime.now(timezone.utc), execution_id="e-1",
                      attempt=attempt, idempotency_key=f"e-1:hook:{attempt}", effects=port)
    return steps.get("http_request").run(ctx).output


def test_the_step_posts_json_and_parses_the_answer(app_ctx, server):
    org = _org()
    out = _step(org, {"method": "POST", "url": server.url("/echo?lead={{ trigger.id }}"),
                      "headers": {"X-Lead": "{{ trigger.id }}"}, "payload": {"email": "{{ contact.email }}"}})
    assert out["status"] == 200 and out["durationMs"] >= 0 and out["truncated"] is False
    assert out["headers"]["content-type"] == "application/json" and "server" not in out["headers"]
    echo = out["body"]
    assert json.loads(echo["body"]) == {"email": "sarah@example.com"} and echo["headers"]["X-Lead"] == "42"
    assert echo["headers"]["Content-Type"] == "application/json"
    assert server.requests[0]["path"] == "/echo"


def test_the_step_caps_a_large_body(app_ctx, server):
    out = _step(_org(), {"method": "GET", "url": server.url("/big")})
    assert out["truncated"] is True and len(out["body"]) == http_client.MAX_BODY_BYTES


def test_5xx_is_retryable_and_4xx_permanent_with_the_status(app_ctx, server):
    org = _org()
    with pytest.raises(StepError) as outage:
        _step(org, {"method": "GET", "url": server.url("/status/502")})
    assert outage.value.retryable and outage.value.code == "HTTP_SERVER_ERROR" and "502" in outage.value.message
    with pytest.raises(StepError) as missing:
        _step(org, {"method": "GET", "url": server.url("/status/404")})
    assert not missing.value.retryable and missing.value.code == "HTTP_CLIENT_ERROR"
    assert "HTTP 404" in missing.value.message and "nope" in missing.value.message
    with pytest.raises(StepError) as throttled:
        _step(org, {"method": "GET", "url": server.url("/status/429")})
    assert throttled.value.retryable


def test_without_the_allowlist_the_step_is_refused_before_connecting(app_ctx, server, connections):
    with pytest.raises(StepError) as refused:
        _step(_org(allowlist=[]), {"method": "GET", "url": server.url("/json")})
    assert refused.value.code == "SSRF_BLOCKED" and not refused.value.retryable
    assert connections == [] and server.requests == []


def test_mock_mode_sends_nothing(app_ctx, server):
    out = _step(_org(), {"method": "PUT", "url": server.url("/echo"), "payload": "hello"}, mock=True)
    assert out["mock"] is True and out["request"]["method"] == "PUT" and out["request"]["payload"] == "hello"
    assert out["request"]["headers"]["Content-Type"].startswith("text/plain") and server.requests == []


def test_a_run_retries_a_500_and_then_completes(app_ctx, server):
    from datetime import timedelta

    from sqlalchemy import select, update

    from atlas.extensions import db
    from atlas.models import Execution, ExecutionStep
    from atlas.models.base import utcnow
    from atlas.services import executions, runner
    from jobs.worker import run_worker
    from tests.factories import make_workflow

    org = _org()
    nodes = [{"id": "hook", "type": "http_request", "config": {"method": "GET", "url": server.url("/flaky")}}]
    workflow = make_workflow(org, None, status="active", workflow_data={"schemaVersion": 1, "nodes": nodes,
                                                                        "edges": []})
    run, _ = executions.start_execution(org.id, None, workflow.id, trigger_data={}, input_data={})
    db.session.commit()
    run_worker(burst=True)
    db.session.expire_all()
    run = db.session.get(Execution, run.id)
    assert run.status == "waiting" and run.error_code == "HTTP_SERVER_ERROR"
    assert run.resume_at - utcnow() > timedelta(seconds=1)  # backoff, not an immediate hammering
    db.session.execute(update(Execution).where(Execution.id == run.id).values(
        resume_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert runner.run_execution(run.id) == "completed"
    db.session.expire_all()
    run = db.session.get(Execution, run.id)
    attempts = db.session.scalars(select(ExecutionStep).where(ExecutionStep.execution_id == run.id)
                                  .order_by(ExecutionStep.attempt)).all()
    assert run.status == "completed" and [a.status for a in attempts] == ["retrying", "completed"]
    assert attempts[1].output["status"] == 200 and attempts[1].output["body"] == {"ok": True}
    assert server.flaky_calls == 2


def test_a_signed_step_is_a_standard_webhook_with_one_id_across_its_retries(app_ctx, server):
    from atlas.services import signing_secrets

    org = _org()
    server.webhook_secret = signing_secrets.signing_secret(org.id)  # the server verifies with standardwebhooks
    config = {"method": "POST", "url": server.url("/signed"), "payload": {"email": "{{ contact.email }}"},
              "sign": True}
    first, retried = _step(org, config, attempt=1), _step(org, config, attempt=2)
    assert first["status"] == retried["status"] == 200 and first["body"] == {"verified": True}
    ids = [r["headers"]["webhook-id"] for r in server.requests]
    assert ids[0] == ids[1] and ids[0].startswith("msg_") and all(r["verified"] for r in server.requests)
    assert json.loads(server.requests[0]["body"]) == {"email": "sarah@example.com"}

    server.requests.clear()
    _step(org, {**config, "sign": False, "url": server.url("/echo")})
    assert not any(name.lower().startswith("webhook-") for name in server.requests[0]["headers"])
    mocked = _step(org, config, mock=True)
    assert mocked["signed"] is True and "webhook-signature" not in mocked["request"]["headers"]
