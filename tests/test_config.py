"""Configuration: production refuses to start without its secrets; development makes its own."""
import pytest

from atlas import create_app
from atlas.config import ProductionConfig, TestingConfig

FERNET_KEY = "l6Tfvw0pV0OTdqyR-3YtQeJtt7xUrhxS_NGB_9A3YJQ="


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ATLAS_ENCRYPTION_KEY"])
def test_production_refuses_to_start_without_a_secret(missing):
    secrets = {"SECRET_KEY": "s3cret", "ATLAS_ENCRYPTION_KEY": FERNET_KEY, missing: None}
    with pytest.raises(RuntimeError, match=f"{missing} must be set in the environment"):
        create_app(ProductionConfig, SQLALCHEMY_DATABASE_URI="sqlite://", **secrets)


def test_production_starts_with_its_secrets():
    app = create_app(ProductionConfig, SQLALCHEMY_DATABASE_URI="sqlite://", SECRET_KEY="s3cret",
                     ATLAS_ENCRYPTION_KEY=FERNET_KEY)
    assert app.config["SESSION_COOKIE_SECURE"] is True and not app.config.get("GENERATE_MISSING_SECRETS")


def test_an_encryption_key_that_is_not_a_fernet_key_is_refused():
    with pytest.raises(RuntimeError, match="ATLAS_ENCRYPTION_KEY must be a Fernet key"):
        create_app(TestingConfig, SQLALCHEMY_DATABASE_URI="sqlite://", ATLAS_ENCRYPTION_KEY="not-a-key")


def test_development_generates_missing_secrets_once_under_the_instance_folder(tmp_path, monkeypatch):
    from atlas import config

    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    first = create_app("development", SQLALCHEMY_DATABASE_URI="sqlite://", SECRET_KEY=None, ATLAS_ENCRYPTION_KEY=None)
    second = create_app("development", SQLALCHEMY_DATABASE_URI="sqlite://", SECRET_KEY=None, ATLAS_ENCRYPTION_KEY=None)
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == (tmp_path / "secret-key").read_text()
    assert (tmp_path / "encryption-key").stat().st_mode & 0o777 == 0o600


def test_the_step_modules_the_config_names_register_their_step_types_at_start(step_registry):
    from atlas.core import steps

    with pytest.raises(steps.UnknownStepType):
        steps.get("test_sleep")
    create_app(TestingConfig, SQLALCHEMY_DATABASE_URI="sqlite://", ATLAS_STEP_MODULES=" tests.support.slow_steps, ")
    create_app(TestingConfig, SQLALCHEMY_DATABASE_URI="sqlite://", ATLAS_STEP_MODULES="tests.support.slow_steps")

    assert steps.get("test_sleep").side_effects  # registered once, however many apps name it


def test_a_step_module_that_cannot_be_imported_stops_the_app_at_start(step_registry):
    with pytest.raises(ModuleNotFoundError, match="gym_steps_that_do_not_exist"):
        create_app(TestingConfig, SQLALCHEMY_DATABASE_URI="sqlite://", ATLAS_STEP_MODULES="gym_steps_that_do_not_exist")
