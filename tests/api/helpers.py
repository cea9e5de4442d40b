"""Assertions shared by the API tests."""
import re
import uuid

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
ERROR_KEYS = {"code", "message", "details", "timestamp", "requestId"}


def assert_error(response, status: int, code: str) -> dict:
    """The response is the seed's error envelope with this status and code; returns its error object."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) <= {"error", "validation"}
    error = body["error"]
    assert set(error) == ERROR_KEYS
    assert error["code"] == code, error
    assert error["requestId"] == response.headers["X-Request-ID"]
    assert TIMESTAMP.match(error["timestamp"]), error["timestamp"]
    assert isinstance(error["details"], dict) and error["message"]
    return error


def validation(response) -> dict:
    """The 422's validation list as {field: message} (one message per field in these tests)."""
    assert_error(response, 422, response.get_json()["error"]["code"])
    return {item["field"]: item["message"] for item in response.get_json()["validation"]}


def without_timestamp(response) -> bytes:
    """The body with the error timestamp blanked, for byte-for-byte comparison of two error responses."""
    return re.sub(rb'"timestamp":"[^"]*"', b'"timestamp":""', response.get_data())


def missing_id() -> str:
    """An id that names no row."""
    return str(uuid.uuid4())
