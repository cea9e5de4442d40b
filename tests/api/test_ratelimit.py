"""Rate limits: per organization and endpoint (per address before sign-in), kept in Redis, with headers."""
import time

import pytest

from atlas.extensions import db, redis_holder
from tests import factories
from tests.api.helpers import assert_error, missing_id

LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def limit_of(response) -> tuple[int, int, int]:
    """(limit, remaining, reset) from the headers, which every API response carries."""
    return tuple(int(response.headers[name]) for name in LIMIT_HEADERS)


CALLS = {
    "list 200": lambda c, h: c.get("/api/v2/workflows", headers=h),
    "create 201": lambda c, h: c.post("/api/v2/workflows", headers=h, json=factories.workflow_body()),
    "validation 422": lambda c, h: c.post("/api/v2/workflows", headers=h, json={}),
    "malformed 400": lambda c, h: c.post("/api/v2/workflows", headers=h, data="{", content_type="application/json"),
    "form body 415": lambda c, h: c.post("/api/v2/workflows", headers=h, data="name=x",
                                         content_type="application/x-www-form-urlencoded"),
    "too large 413": lambda c, h: c.post("/api/v2/workflows", headers=h, data=b"[" * (1024 * 1024 + 1),
                                         content_type="application/json"),
    "missing 404": lambda c, h: c.get(f"/api/v2/workflows/{missing_id()}", headers=h),
    "no token 401": lambda c, h: c.get("/api/v2/workflows"),
    "not a member 403": lambda c, h: c.get("/api/v2/workflows", headers={**h, "X-Organization-ID": missing_id()}),
    "staff reads audit 403": lambda c, h: c.get("/api/v2/audit-logs", headers=h),
    "unknown route 404": lambda c, h: c.get("/api/v2/nothing-here", headers=h),
    "wrong method 405": lambda c, h: c.patch("/api/v2/workflows", headers=h),
    "me 200": lambda c, h: c.get("/api/v2/me", headers=h),
    "sign-in 401": lambda c, h: c.post("/api/v2/auth/token", json={"email": "x@example.com", "password": "nope"}),
    "sign-up 422": lambda c, h: c.post("/api/v2/auth/signup", json={}),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_every_api_response_carries_the_rate_limit_headers(client, staff_headers, call):
    response = call(client, staff_headers)

    limit, remaining, reset = limit_of(response)
    assert 0 <= remaining < limit
    assert time.time() < reset < time.time() + 86400  # an epoch time within the window, not a delta
    assert "Retry-After" not in response.headers  # Flask-Limiter adds it everywhere; it belongs on 429s only


def test_remaining_counts_down_per_endpoint(client, staff_headers):
    first = limit_of(client.get("/api/v2/workflows", headers=staff_headers))
    second = limit_of(client.get("/api/v2/workflows", headers=staff_headers))
    elsewhere = limit_of(client.get(f"/api/v2/workflows/{missing_id()}", headers=staff_headers))

    assert first[1] == first[0] - 1 and second[1] == first[1] - 1
    assert elsewhere[:2] == first[:2]


def test_the_counters_live_in_redis_keyed_by_organization(client, org, staff_headers):
    client.get("/api/v2/workflows", headers=staff_headers)

    keys = [k.decode() for k in redis_holder.client.keys("*")]
    assert any(f"org:{org.id}" in k and "workflows" in k for k in keys), keys


def test_members_share_their_organization_s_allowance_wherever_they_call_from(client, org, staff_headers, member):
    _, viewer_headers = member("viewer")

    client.get("/api/v2/workflows", headers=staff_headers, environ_base={"REMOTE_ADDR": "198.51.100.1"})
    response = client.get("/api/v2/workflows", headers=viewer_headers, environ_base={"REMOTE_ADDR": "198.51.100.2"})

    limit, remaining, _ = limit_of(response)
    assert remaining == limit - 2


# --- past the limit (another app, configured with tiny limits) ------------------------------------------------------

@pytest.fixture
def tiny(build_app):
    """A client of an app allowing 3 calls per minute per organization and endpoint, 2 for sign-in per address."""
    return build_app(RATELIMIT_DEFAULT="3 per minute", RATELIMIT_AUTH="2 per minute").test_client()


def test_past_the_limit_is_429_with_retry_after(tiny, staff_headers):
    db.session.remove()
    for expected_remaining in (2, 1, 0):
        response = tiny.get("/api/v2/workflows", headers=staff_headers)
        assert response.status_code == 200 and limit_of(response)[:2] == (3, expected_remaining)

    response = tiny.get("/api/v2/workflows", headers=staff_headers)

    error = assert_error(response, 429, "RATE_LIMIT_EXCEEDED")
    assert error["message"] == "Rate limit exceeded; retry after the time in X-RateLimit-Reset."
    assert limit_of(response)[:2] == (3, 0)
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_one_organization_exhausting_its_limit_leaves_another_unaffected(tiny, staff_headers, outsider_headers):
    db.session.remove()
    for _ in range(3):
        tiny.get("/api/v2/workflows", headers=staff_headers)
    assert tiny.get("/api/v2/workflows", headers=staff_headers).status_code == 429

    response = tiny.get("/api/v2/workflows", headers=outsider_headers)

    assert response.status_code == 200 and limit_of(response)[:2] == (3, 2)
    assert tiny.get(f"/api/v2/workflows/{missing_id()}", headers=staff_headers).status_code == 404  # other endpoint


def test_rejected_calls_count_too(tiny, staff_headers):
    db.session.remove()
    for _ in range(3):
        assert tiny.post("/api/v2/workflows", headers=staff_headers, json={}).status_code == 422

    assert_error(tiny.get("/api/v2/workflows", headers=staff_headers), 429, "RATE_LIMIT_EXCEEDED")


def test_sign_in_is_limited_per_address(tiny, staff):
    email = staff.email
    db.session.remove()
    attacker, colleague = {"REMOTE_ADDR": "203.0.113.9"}, {"REMOTE_ADDR": "203.0.113.10"}
    for _ in range(2):
        wrong = tiny.post("/api/v2/auth/token", json={"email": email, "password": "guess"}, environ_base=attacker)
        assert wrong.status_code == 401

    right = {"email": email, "password": factories.PASSWORD}
    assert_error(tiny.post("/api/v2/auth/token", json=right, environ_base=attacker), 429, "RATE_LIMIT_EXCEEDED")
    response = tiny.post("/api/v2/auth/token", json=right, environ_base=colleague)
    assert response.status_code == 200 and limit_of(response)[:2] == (2, 1)


def test_malformed_sign_in_attempts_count_against_the_address(tiny):
    for _ in range(2):
        tiny.post("/api/v2/auth/token", data="{", content_type="application/json")

    assert_error(tiny.post("/api/v2/auth/signup", json={}), 422, "VALIDATION_FAILED")  # its own allowance
    assert_error(tiny.post("/api/v2/auth/token", json={}), 429, "RATE_LIMIT_EXCEEDED")


def test_unauthenticated_calls_are_limited_per_address(tiny):
    for _ in range(3):
        assert tiny.get("/api/v2/workflows").status_code == 401

    assert_error(tiny.get("/api/v2/workflows"), 429, "RATE_LIMIT_EXCEEDED")
    assert tiny.get("/api/v2/workflows", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 401
