"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""
import itertools

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from atlas.extensions import db
from tests.conftest import make_app

_names = itertools.count(1)


@pytest.fixture
def fresh_database_url(request, tmp_path):
    """An empty database of the kind this run uses."""
    if request.config.getoption("--db") == "postgres":
        return request.getfixturevalue("postgres").create_database(f"atlas_migrations_{next(_names)}")
    return f"sqlite:///{tmp_path / 'migrated.db'}"


# SQLite's reflection cannot read the expression index on lower(name); the assertion below still sees the rest.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_upgrade_matches_models_and_downgrade_empties(fresh_database_url, redis_server):
    app = make_app(fresh_database_url, redis_server.url)
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        assert {"workflows", "workflow_versions", "audit_logs", "memberships"} <= set(inspect(db.engine).get_table_names())
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
