"""API fixtures: members of every role, a second organization with its own workflow, apps with other settings."""
import functools

import pytest

from atlas.extensions import db
from atlas.services import auth
from tests import factories
from tests.conftest import make_app

# Real scrypt hashes, each distinct password hashed once per run: one costs ~75 ms and the tests create hundreds of
# users. Verification (check_password_hash) stays uncached, so sign-in is tested for real.
_hash_once = functools.cache(auth.hash_password)


@pytest.fixture(autouse=True)
def hash_each_password_once(monkeypatch):
    monkeypatch.setattr(auth, "hash_password", _hash_once)


@pytest.fixture
def member(org):
    """A factory: (user, headers) for a new member of org with the given role."""

    def build(role: str):
        user = factories.make_user(org, role, name=f"{role.title()} Member")
        return user, factories.headers(user, org)

    return build


@pytest.fixture
def other_org(app_ctx):
    return factories.make_org("Rival Barbell Club")


@pytest.fixture
def outsider(other_org):
    """The owner of the other organization, a member of ours in no role."""
    return factories.make_user(other_org, "owner", name="Olga Outsider")


@pytest.fixture
def outsider_headers(outsider, other_org):
    return factories.headers(outsider, other_org)


@pytest.fixture
def foreign_workflow(other_org, outsider):
    """A workflow of the other organization, with a category and tags of its own."""
    return factories.make_workflow(other_org, outsider, name="Rival secret plan", category="Espionage",
                                   tags=["rival-only"], description="Poach their members")


@pytest.fixture
def build_app(app_ctx, database_url, redis_server):
    """A factory for another app on the same database and Redis, with config overrides; disposed afterwards.

    Requests to it run in their own app context. On SQLite, end the test's own transaction first
    (db.session.remove()): it may hold the write lock that the other app's engine would wait for.
    """
    built = []

    def build(**overrides):
        application = make_app(database_url, redis_server.url, **overrides)
        built.append(application)
        return application

    yield build
    for application in built:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
