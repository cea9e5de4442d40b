"""Every /api failure has the one error envelope; no traceback or SQL reaches a client; X-Request-ID everywhere."""
import json
import logging
import re

import pytest
from sqlalchemy.exc import OperationalError

from atlas.api.context import PUBLIC
from tests import factories
from tests.api.helpers import assert_error, missing_id, validation

HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def test_unknown_api_route_is_a_json_404(client, staff_headers):
    error = assert_error(client.get("/api/v2/no-such-thing", headers=staff_headers), 404, "NOT_FOUND")
    assert error["message"] == "No such endpoint."


def test_unknown_api_route_needs_no_token_to_be_a_json_404(client):
    assert_error(client.post("/api/v1/workflows", json={}), 404, "NOT_FOUND")


def test_wrong_method_is_405_with_allow(client, staff_headers):
    response = client.delete("/api/v2/workflows", headers=staff_headers)

    error = assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert error["message"] == "This method is not allowed on this endpoint."
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_body_over_the_cap_is_413(client, app, staff_headers):
    body = b'{"name": "' + b"x" * app.config["MAX_CONTENT_LENGTH"] + b'"}'

    response = client.post("/api/v2/workflows", headers=staff_headers, data=body, content_type="application/json")

    error = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["message"] == "The request body is larger than this endpoint accepts."


@pytest.mark.parametrize("content_type, data", [
    ("application/x-www-form-urlencoded", "name=Welcome"),
    ("text/plain", '{"name": "Welcome"}'),
    ("multipart/form-data; boundary=x", "--x--"),
])
def test_non_json_body_is_415(client, staff_headers, content_type, data):
    response = client.post("/api/v2/workflows", headers=staff_headers, data=data, content_type=content_type)

    error = assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert error["message"] == "Send the request body as JSON with Content-Type: application/json."


@pytest.mark.parametrize("data", ['{"name": ', "{'name': 'single quotes'}", b'"\xff\xfe"',
                                  "[" * 100_000 + "]" * 100_000],
                         ids=["truncated", "single-quotes", "not-utf8", "nested-too-deep"])
def test_malformed_json_is_400(client, staff_headers, data):
    response = client.post("/api/v2/workflows", headers=staff_headers, data=data, content_type="application/json")

    error = assert_error(response, 400, "MALFORMED_JSON")
    assert error["message"].startswith("The request body is not valid JSON")


@pytest.mark.parametrize("data, kind", [("[]", "an array"), ('"Welcome"', "a bare value"), ("null", "a bare value"),
                                        ("42", "a bare value")])
def test_json_that_is_not_an_object_is_a_clear_422(client, staff_headers, data, kind):
    response = client.put(f"/api/v2/workflows/{missing_id()}", headers=staff_headers, data=data,
                          content_type="application/json")

    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert error["message"] == f"The request body must be a JSON object, not {kind}."


UNSTORABLE = "The request contains a NUL character or an unpaired surrogate, which Atlas cannot store."


NESTED_NUL = {"nodes": [{"id": "a", "type": "wait", "config": {"k\u0000": 1}}]}


@pytest.mark.parametrize("change", [{"name": "Wel\u0000come"}, {"description": "\ud800 lone surrogate"},
                                    {"workflowData": NESTED_NUL}, {"tags": ["ok", "\udfff"]}],
                         ids=["nul", "surrogate", "nested-key", "in-list"])
def test_text_no_database_can_store_is_a_422_not_a_500(client, staff_headers, change):
    body = json.dumps(factories.workflow_body(**change), ensure_ascii=True)

    response = client.post("/api/v2/workflows", headers=staff_headers, data=body, content_type="application/json")

    assert assert_error(response, 422, "VALIDATION_FAILED")["message"] == UNSTORABLE


@pytest.mark.parametrize("url", ["/api/v2/workflows?search=%00", "/api/v2/workflows?category=a%00b",
                                 "/api/v2/workflows?tags=x,%00", "/api/v2/workflows?%00=1", "/api/v2/workflows/%00"])
def test_a_nul_in_the_url_is_a_422_not_a_500(client, staff_headers, url):
    assert assert_error(client.get(url, headers=staff_headers), 422, "VALIDATION_FAILED")["message"] == UNSTORABLE


def test_a_nul_in_a_sign_in_is_a_422(client):
    response = client.post("/api/v2/auth/token", json={"email": "a@example.com\u0000", "password": "x"})

    assert_error(response, 422, "VALIDATION_FAILED")


def test_paired_surrogates_are_ordinary_text(client, staff_headers):
    body = json.dumps(factories.workflow_body(name="Welcome \U0001F4AA"), ensure_ascii=True)  # "\ud83d\udcaa"
    assert "\\ud83d\\udcaa" in body

    response = client.post("/api/v2/workflows", headers=staff_headers, data=body, content_type="application/json")

    assert response.status_code == 201 and response.json["workflow"]["name"] == "Welcome \U0001F4AA"


def test_validation_errors_list_every_field_at_once(client, staff_headers):
    response = client.post("/api/v2/workflows", headers=staff_headers,
                           json={"name": "", "triggerType": "Lead Created", "colour": "red"})

    assert validation(response) == {
        "name": "Must not be blank.",
        "triggerType": "triggerType must be a lower-case identifier such as lead_created.",
        "workflowData": "Missing data for required field.",
        "colour": "Unknown field.",
    }
    message = response.json["error"]["message"]
    assert message.startswith("Invalid request: ") and "colour: Unknown field." in message


def test_nested_validation_paths_are_dotted(client, staff_headers):
    response = client.post("/api/v2/workflows", headers=staff_headers,
                           json=factories.workflow_body(tags=["ok", "x" * 65]))

    assert validation(response) == {"tags.1": "Longer than maximum length 64."}


def test_error_responses_carry_no_html(client, staff_headers):
    for response in (client.get("/api/v2/nope"), client.delete("/api/v2/workflows", headers=staff_headers),
                     client.get(f"/api/v2/workflows/{missing_id()}", headers=staff_headers)):
        assert response.mimetype == "application/json"
        assert b"<" not in response.get_data()


# --- 500 ----------------------------------------------------------------------------------------------------------

@pytest.fixture
def failing_app(build_app):
    """An app with a route that fails the way a database outage would, its error message full of SQL."""
    application = build_app()

    def explode():
        raise OperationalError("SELECT password_hash FROM users WHERE email = 'owner@gym.example'", {},
                               RuntimeError("disk I/O error at /var/lib/atlas/atlas.db"))

    explode.atlas_access = PUBLIC
    application.add_url_rule("/api/v2/explode", view_func=explode, methods=["GET", "POST"])
    return application


def test_an_unexpected_error_is_a_500_with_no_traceback_or_sql(failing_app, caplog):
    caplog.set_level(logging.ERROR, logger="atlas.errors")

    response = failing_app.test_client().get("/api/v2/explode", headers={"X-Request-ID": "req-500"})

    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert error["message"] == "An internal error occurred; it has been logged with this request id."
    assert error["requestId"] == "req-500" and error["details"] == {}
    body = response.get_data(as_text=True)
    for leak in ("Traceback", "SELECT", "password_hash", "OperationalError", "disk I/O", "/var/lib", ".py"):
        assert leak not in body
    [record] = [r for r in caplog.records if "req-500" in r.getMessage()]
    assert record.exc_info and record.exc_info[0] is OperationalError  # the traceback goes to the log instead


# --- X-Request-ID -------------------------------------------------------------------------------------------------

def test_a_sane_request_id_is_echoed(client, staff_headers):
    response = client.get("/api/v2/workflows", headers={**staff_headers, "X-Request-ID": "gw-1234.abc:ZZ_-"})

    assert response.headers["X-Request-ID"] == "gw-1234.abc:ZZ_-"


def test_a_request_id_is_generated_when_none_is_sent(client, staff_headers):
    first = client.get("/api/v2/workflows", headers=staff_headers).headers["X-Request-ID"]
    second = client.get("/api/v2/workflows", headers=staff_headers).headers["X-Request-ID"]

    assert HEX_ID.match(first) and HEX_ID.match(second) and first != second


@pytest.mark.parametrize("sent", ["has space", "x" * 129, "<script>alert(1)</script>", "a;b", "", "é"])
def test_an_insane_request_id_is_replaced(client, sent):
    response = client.get("/api/v2/no-such-thing", headers={"X-Request-ID": sent})

    assert HEX_ID.match(response.headers["X-Request-ID"])
    assert response.json["error"]["requestId"] == response.headers["X-Request-ID"]


def test_the_request_id_is_the_one_in_the_error_body(client):
    response = client.get("/api/v2/me", headers={"X-Request-ID": "trace-42"})

    assert assert_error(response, 401, "UNAUTHENTICATED")["requestId"] == "trace-42"


@pytest.mark.parametrize("path", ["/api/v2/openapi.json", "/static/css/atlas.css", "/api/v2/me"])
def test_every_response_carries_a_request_id(client, path):
    assert HEX_ID.match(client.get(path).headers["X-Request-ID"])
