"""POST /api/v2/webhooks/send and the outgoing signing secret, against a real local HTTP server.

The server checks every signature with the standardwebhooks package, using the secret the API hands out.
"""
import pytest
from sqlalchemy import select

from atlas.extensions import db
from atlas.models import AuditLog, OrganizationSecret

SEND = "/api/v2/webhooks/send"
SECRET = "/api/v2/webhooks/signing-secret"
QUICK = {"maxAttempts": 3, "backoff": "fixed", "initialDelayMs": 10, "maxDelayMs": 10}


@pytest.fixture
def admin_headers(member):
    return member("admin")[1]


@pytest.fixture
def local_org(org):
    org.settings = {**(org.settings or {}), "httpAllowlist": ["127.0.0.1"]}
    db.session.commit()
    return org


@pytest.fixture
def signed_server(client, server, local_org, admin_headers):
    """The test server, verifying with the secret GET /signing-secret gives the organization's admins."""
    server.webhook_secret = client.get(SECRET, headers=admin_headers).get_json()["secret"]
    return server


def error_of(response):
    return response.status_code, response.get_json()["error"]["code"]


def test_send_signs_and_reports(client, signed_server, staff_headers, connections):
    response = client.post(SEND, headers=staff_headers, json={
        "url": signed_server.url("/signed"), "method": "POST", "payload": {"memberId": "m-1", "plan": "gold"},
        "headers": {"X-Source": "atlas"}, "timeout": 5, "retryConfig": QUICK})
    body = response.get_json()
    assert response.status_code == 200 and body["success"] is True
    assert body["responseStatus"] == 200 and body["responseBody"] == {"verified": True}
    assert body["truncated"] is False and body["error"] is None
    assert set(body["timing"]) == {"dns", "connect", "total"} and body["timing"]["total"] > 0
    assert body["webhookId"].startswith("msg_") and len(body["attempts"]) == 1
    assert body["attempts"][0]["status"] == 200 and body["attempts"][0]["attempt"] == 1
    [request] = signed_server.requests
    assert request["verified"] is True and request["headers"]["webhook-id"] == body["webhookId"]
    assert request["headers"]["X-Source"] == "atlas"
    assert set(connections) == {"127.0.0.1"}
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "webhook.send"))
    assert audit is not None and audit.status_code == 200


def test_retries_after_500s_then_success(client, signed_server, staff_headers):
    signed_server.flaky_ok_at = 3
    body = client.post(SEND, headers=staff_headers, json={
        "url": signed_server.url("/flaky"), "method": "PUT", "payload": {"a": 1}, "retryConfig": QUICK}).get_json()
    assert body["success"] is True and body["responseStatus"] == 200
    assert [a["status"] for a in body["attempts"]] == [500, 500, 200]
    assert [a["retryable"] for a in body["attempts"]] == [True, True, False]
    assert all(r["verified"] for r in signed_server.requests) and len(signed_server.requests) == 3
    assert {r["headers"]["webhook-id"] for r in signed_server.requests} == {body["webhookId"]}


def test_gives_up_after_max_attempts(client, signed_server, staff_headers):
    body = client.post(SEND, headers=staff_headers, json={
        "url": signed_server.url("/status/500"), "method": "POST", "retryConfig": {**QUICK, "maxAttempts": 4}
    }).get_json()
    assert body["success"] is False and body["responseStatus"] == 500
    assert [a["status"] for a in body["attempts"]] == [500] * 4 and len(signed_server.requests) == 4
    assert body["error"]["code"] == "HTTP_SERVER_ERROR"
    assert all(a["error"]["code"] == "HTTP_SERVER_ERROR" for a in body["attempts"])


def test_a_timeout_is_retried_and_reported(client, signed_server, staff_headers):
    body = client.post(SEND, headers=staff_headers, json={
        "url": signed_server.url("/slow"), "method": "POST", "timeout": 0.5,
        "retryConfig": {**QUICK, "maxAttempts": 2}}).get_json()
    assert body["success"] is False and body["responseStatus"] is None
    assert [a["error"]["code"] for a in body["attempts"]] == ["TIMEOUT", "TIMEOUT"]
    assert body["attempts"][0]["timing"]["dns"] is None and body["attempts"][0]["timing"]["total"] > 0
    assert len(signed_server.requests) == 2 and all(r["verified"] for r in signed_server.requests)


def test_4xx_is_not_retried(client, signed_server, staff_headers):
    body = client.post(SEND, headers=staff_headers, json={
        "url": signed_server.url("/status/400"), "method": "POST", "retryConfig": QUICK}).get_json()
    assert body["success"] is False and body["responseStatus"] == 400 and len(body["attempts"]) == 1
    assert body["responseBody"] == {"error": "nope"} and len(signed_server.requests) == 1


def test_the_response_body_is_capped(client, signed_server, staff_headers):
    body = client.post(SEND, headers=staff_headers, json={"url": signed_server.url("/big"), "method": "GET"}
                       ).get_json()
    assert body["success"] is True and body["truncated"] is True and len(body["responseBody"]) == 16 * 1024


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/iam/", "http://127.0.0.1:9/"])
def test_ssrf_is_refused_with_the_client_code(client, org, staff_headers, connections, target):
    response = client.post(SEND, headers=staff_headers, json={"url": target, "method": "POST",
                                                              "retryConfig": QUICK})
    assert error_of(response) == (422, "SSRF_BLOCKED") and connections == []
    assert "allowlist" in response.get_json()["error"]["message"]


def test_loopback_passes_only_once_allowlisted(client, org, server, staff_headers):
    refused = client.post(SEND, headers=staff_headers, json={"url": server.url("/json"), "method": "GET"})
    assert error_of(refused) == (422, "SSRF_BLOCKED") and server.requests == []
    org.settings = {"httpAllowlist": ["127.0.0.1"]}
    db.session.commit()
    sent = client.post(SEND, headers=staff_headers, json={"url": server.url("/json"), "method": "GET"})
    assert sent.status_code == 200 and sent.get_json()["responseBody"] == {"hello": "world", "n": 1}


@pytest.mark.parametrize("body, code, field", [
    ({"url": "http://example.com/", "method": "PATCH"}, "VALIDATION_FAILED", "method"),
    ({"url": "ftp://example.com/x", "method": "POST"}, "INVALID_URL", None),
    ({"url": "http:///nohost", "method": "POST"}, "INVALID_URL", None),
    ({"url": "http://user:pw@example.com/", "method": "POST"}, "INVALID_URL", None),
    ({"method": "POST"}, "VALIDATION_FAILED", "url"),
    ({"url": "http://example.com/", "retryConfig": {"maxAttempts": 6}}, "VALIDATION_FAILED",
     "retryConfig.maxAttempts"),
    ({"url": "http://example.com/", "retryConfig": {"maxAttempts": 0}}, "VALIDATION_FAILED",
     "retryConfig.maxAttempts"),
    ({"url": "http://example.com/", "retryConfig": {"backoff": "linear"}}, "VALIDATION_FAILED",
     "retryConfig.backoff"),
    ({"url": "http://example.com/", "retryConfig": {"initialDelayMs": 2000, "maxDelayMs": 100}},
     "VALIDATION_FAILED", "retryConfig.maxDelayMs"),
    ({"url": "http://example.com/", "retryConfig": {"jitter": True}}, "VALIDATION_FAILED", "retryConfig.jitter"),
    ({"url": "http://example.com/", "timeout": 0}, "VALIDATION_FAILED", "timeout"),
    ({"url": "http://example.com/", "timeout": 31}, "VALIDATION_FAILED", "timeout"),
    ({"url": "http://example.com/", "method": "GET", "payload": {"a": 1}}, "VALIDATION_FAILED", "payload"),
    ({"url": "http://example.com/", "payload": [1, 2]}, "VALIDATION_FAILED", "payload"),
    ({"url": "http://example.com/", "headers": {"X-N": 5}}, "VALIDATION_FAILED", "headers.X-N.value"),
    ({"url": "http://example.com/", "headers": {"webhook-signature": "v1,forged"}}, "WEBHOOK_HEADER_RESERVED",
     "headers.webhook-signature"),
    ({"url": "http://example.com/", "headers": {"Webhook-Id": "msg_mine"}}, "WEBHOOK_HEADER_RESERVED",
     "headers.Webhook-Id"),
    ({"url": "http://example.com/", "headers": {"webhook-timestamp": "1"}}, "WEBHOOK_HEADER_RESERVED",
     "headers.webhook-timestamp"),
    ({"url": "http://example.com/", "headers": {"Host": "internal"}}, "WEBHOOK_HEADER_RESERVED", "headers.Host"),
    ({"url": "http://example.com/", "headers": {"Content-Length": "1"}}, "WEBHOOK_HEADER_RESERVED",
     "headers.Content-Length"),
])
def test_bad_requests_are_refused_precisely(client, staff_headers, connections, body, code, field):
    response = client.post(SEND, headers=staff_headers, json=body)
    payload = response.get_json()
    assert error_of(response) == (422, code), payload
    if field:
        assert field in [item["field"] for item in payload["validation"]], payload
    assert connections == []


def test_a_header_with_a_line_break_is_refused(client, local_org, server, staff_headers):
    response = client.post(SEND, headers=staff_headers, json={
        "url": server.url("/echo"), "headers": {"X-Evil": "a\r\nInjected: yes"}})
    assert error_of(response) == (422, "INVALID_HEADER") and server.requests == []


def test_sending_needs_staff(client, member, server):
    _, viewer = member("viewer")
    response = client.post(SEND, headers=viewer, json={"url": server.url("/json"), "method": "GET"})
    assert error_of(response) == (403, "INSUFFICIENT_PERMISSIONS") and server.requests == []


# --- the signing secret --------------------------------------------------------------------------------------------

def test_the_secret_is_for_admins(client, member, staff_headers):
    assert error_of(client.get(SECRET, headers=staff_headers)) == (403, "INSUFFICIENT_PERMISSIONS")
    assert error_of(client.post(SECRET + "/rotate", headers=staff_headers)) == (403, "INSUFFICIENT_PERMISSIONS")
    _, owner = member("owner")
    body = client.get(SECRET, headers=owner).get_json()
    assert body["secret"].startswith("whsec_") and body["scheme"] == "standard-webhooks"
    assert body["headers"] == ["webhook-id", "webhook-timestamp", "webhook-signature"] and body["createdAt"]


def test_the_secret_is_stable_and_stored_encrypted(client, org, admin_headers):
    first = client.get(SECRET, headers=admin_headers).get_json()["secret"]
    assert client.get(SECRET, headers=admin_headers).get_json()["secret"] == first
    rows = db.session.scalars(select(OrganizationSecret).where(OrganizationSecret.organization_id == org.id)).all()
    assert len(rows) == 1 and first not in rows[0].secret_encrypted and first[6:] not in rows[0].secret_encrypted


def test_after_a_rotation_both_secrets_sign_until_the_grace_period_ends(client, signed_server, staff_headers,
                                                                        admin_headers):
    old = signed_server.webhook_secret
    rotated = client.post(SECRET + "/rotate", headers=admin_headers)  # the default grace: a day
    new = rotated.get_json()["secret"]
    assert rotated.status_code == 200 and new != old and rotated.get_json()["previousSecretExpiresAt"]
    assert client.get(SECRET, headers=admin_headers).get_json()["secret"] == new
    request = {"url": signed_server.url("/signed"), "method": "POST", "retryConfig": {"maxAttempts": 1}}
    assert client.post(SEND, headers=staff_headers, json=request).get_json()["success"] is True  # old receiver
    assert len(signed_server.requests[-1]["headers"]["webhook-signature"].split()) == 2
    signed_server.webhook_secret = new
    assert client.post(SEND, headers=staff_headers, json=request).get_json()["success"] is True  # switched

    at_once = client.post(SECRET + "/rotate", headers=admin_headers, json={"gracePeriodSeconds": 0}).get_json()
    assert at_once["previousSecretExpiresAt"] is None
    stale = client.post(SEND, headers=staff_headers, json=request).get_json()  # the receiver still has `new`
    assert stale["responseStatus"] == 401 and signed_server.requests[-1]["verified"] is False
    assert len(signed_server.requests[-1]["headers"]["webhook-signature"].split()) == 1
    assert error_of(client.post(SECRET + "/rotate", headers=admin_headers, json={"gracePeriodSeconds": -1})) == (
        422, "VALIDATION_FAILED")


def test_organizations_do_not_share_secrets(client, signed_server, staff_headers, admin_headers, outsider_headers):
    ours = client.get(SECRET, headers=admin_headers).get_json()["secret"]
    theirs = client.get(SECRET, headers=outsider_headers).get_json()["secret"]
    assert ours != theirs
    rotated = client.post(SECRET + "/rotate", headers=outsider_headers).get_json()["secret"]
    assert client.get(SECRET, headers=admin_headers).get_json()["secret"] == ours != rotated
    signed_server.webhook_secret = rotated  # a receiver holding the other organization's secret
    body = client.post(SEND, headers=staff_headers, json={"url": signed_server.url("/signed"), "method": "POST",
                                                          "retryConfig": {"maxAttempts": 1}}).get_json()
    assert body["success"] is False and signed_server.requests[-1]["verified"] is False
