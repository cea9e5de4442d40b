"""Cross-cutting request behaviour: request ids, and SQLite made safe for several processes."""
import re
import uuid
from contextvars import ContextVar

from flask import g, request
from sqlalchemy import event

SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Whether the current unit of work may write; SQLite write transactions then begin IMMEDIATE.
write_intent: ContextVar[bool] = ContextVar("atlas_write_intent", default=True)


def init_request_id(app) -> None:
    """Every response carries X-Request-ID: the client's if it sent a sane one, else a new one."""

    @app.before_request
    def assign_request_id():
        for name in ("user", "organization", "membership", "audit_action", "audit_target", "api_rejection"):
            g.pop(name, None)  # an app context reused across requests (tests) must not leak identity
        sent = request.headers.get("X-Request-ID", "")
        g.request_id = sent if SANE_REQUEST_ID.match(sent) else uuid.uuid4().hex
        write_intent.set(request.method not in ("GET", "HEAD", "OPTIONS"))

    @app.after_request
    def echo_request_id(response):
        response.headers["X-Request-ID"] = getattr(g, "request_id", "") or uuid.uuid4().hex
        return response


def init_rate_limit_headers(app) -> None:
    """Flask-Limiter sets Retry-After on every limited response; it belongs only on a 429 (or a 503)."""

    @app.after_request
    def strip_retry_after(response):
        if response.status_code not in (429, 503):
            response.headers.pop("Retry-After", None)
        return response


def init_sqlite(app, engine) -> None:
    """WAL, a busy timeout and IMMEDIATE write transactions, so web and worker processes share one file."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write_intent.get() else "BEGIN")
