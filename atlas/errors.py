"""AtlasError and its subclasses, mapped to HTTP once: the error envelope for /api, a page for HTML."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

from flask import g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class AtlasError(Exception):
    """An error a client can act on: an HTTP status, a stable code and a message."""

    status = 400
    code = "BAD_REQUEST"
    message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, details: dict | None = None,
                 validation: list | None = None, code: str | None = None, status: int | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details or {}
        self.validation = validation
        self.code = code or self.code
        self.status = status or self.status


class Unauthenticated(AtlasError):
    status, code, message = 401, "UNAUTHENTICATED", "Authentication is required."


class InsufficientPermissions(AtlasError):
    status, code, message = 403, "INSUFFICIENT_PERMISSIONS", "Your role does not allow this action."


class NotFound(AtlasError):
    status, code, message = 404, "NOT_FOUND", "The resource was not found."


class WorkflowNotFound(NotFound):
    code, message = "WORKFLOW_NOT_FOUND", "Workflow not found."


class Conflict(AtlasError):
    status, code, message = 409, "CONFLICT", "The request conflicts with the current state."


class ValidationFailed(AtlasError):
    status, code, message = 422, "VALIDATION_FAILED", "The request did not pass validation."


class InvalidWorkflowData(ValidationFailed):
    code, message = "INVALID_WORKFLOW_DATA", "workflowData is not a valid workflow definition."


class SignupDisabled(AtlasError):
    status, code, message = 403, "SIGNUP_DISABLED", "Sign-up is turned off on this Atlas installation."


# werkzeug's HTTP errors, mapped to our codes.
HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "INSUFFICIENT_PERMISSIONS",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_FAILED",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}

HTTP_MESSAGES = {
    404: "No such endpoint.",
    405: "This method is not allowed on this endpoint.",
    413: "The request body is larger than this endpoint accepts.",
    429: "Rate limit exceeded; retry after the time in X-RateLimit-Reset.",
    500: "An internal error occurred; it has been logged with this request id.",
}


# Pages speak to people, not to API clients.
PAGE_MESSAGES = {
    404: "There is no page at this address.",
    405: "This page cannot be used that way.",
    413: "What you sent is too large.",
    429: "That was a lot of tries in a short time. Wait a minute, then try again.",
}


def wants_api(path: str | None = None) -> bool:
    """Whether a response for this path takes the JSON envelope."""
    return (path or request.path).startswith("/api/")


def envelope(code: str, message: str, status: int, details: dict | None = None, validation: list | None = None):
    """The seed's ApiErrorResponse as a Flask response."""
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "requestId": getattr(g, "request_id", None),
        }
    }
    if validation is not None:
        body["validation"] = [{camelcase(k): v for k, v in item.items()} for item in validation]
    return jsonify(body), status


def camelcase(name: str) -> str:
    """snake_case -> camelCase, the API's key style."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def validation_list(messages, prefix: str = "", top: bool = True) -> list[dict]:
    """Flatten marshmallow's nested messages into [{field, message}] with camelCase paths."""
    out: list[dict] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key in ("json", "query", "form", "headers", "path") and top:  # webargs' location, not a field
                out.extend(validation_list(value, "", top=False))
                continue
            name = "" if key == "_schema" else str(key)
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            out.extend(validation_list(value, path, top=False))
    elif isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        out.extend({"field": prefix or None, "message": m} for m in messages)
    elif isinstance(messages, list):
        for item in messages:
            out.extend(validation_list(item, prefix, top=False))
    else:
        out.append({"field": prefix or None, "message": str(messages)})
    return out


def handle_atlas_error(error: AtlasError):
    """Render an AtlasError for the API or for a page."""
    if wants_api():
        response, status = envelope(error.code, error.message, error.status, error.details, error.validation)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="atlas"'
        return response, status
    return render_page_error(error.status, error.message)


def handle_http_exception(error: HTTPException):
    """Render werkzeug's HTTP errors (routing, 405, 413, 415, webargs 422, limiter 429)."""
    status = error.code or 500
    if not wants_api():
        return render_page_error(status, PAGE_MESSAGES.get(status) or error.description)
    data = getattr(error, "data", None) or {}
    if status == 422 and "messages" in data:
        items = validation_list(data["messages"])
        summary = "; ".join(f"{i['field']}: {i['message']}" if i["field"] else i["message"] for i in items[:5])
        return envelope("VALIDATION_FAILED", f"Invalid request: {summary}", 422, validation=items)
    message = HTTP_MESSAGES.get(status) or error.description or "Request failed."
    response, status = envelope(HTTP_CODES.get(status, "HTTP_ERROR"), message, status)
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]  # such as a 405's Allow
    for key, value in headers + list((data.get("headers") or {}).items()):
        response.headers[key] = value
    return response, status


def handle_unexpected(error: Exception):
    """Log the traceback server-side; the client sees only the request id."""
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    log.exception("unhandled error in request %s", getattr(g, "request_id", "-"))
    if wants_api():
        return envelope("INTERNAL_ERROR", HTTP_MESSAGES[500], 500)
    return render_page_error(500, HTTP_MESSAGES[500])


def render_page_error(status: int, message: str):
    """A friendly HTML error page, or a small fragment for htmx requests."""
    template = "errors/_fragment.html" if request.headers.get("HX-Request") else "errors/error.html"
    return render_template(template, status=status, message=message), status


def init_errors(app) -> None:
    """Register the handlers; flask-smorest's default HTTPException handler is replaced."""
    app.register_error_handler(AtlasError, handle_atlas_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
