"""The Atlas app factory: configuration, extensions, blueprints. Nothing happens at import time."""
import importlib

from flask import Flask

from atlas.config import CONFIGS, Config, instance_secret


def create_app(config_class: type[Config] | str = "development", **overrides) -> Flask:
    """Build the app from a config class (or its name) plus explicit overrides."""
    if isinstance(config_class, str):
        config_class = CONFIGS[config_class]
    app = Flask(__name__, instance_relative_config=False)
    app.config.from_object(config_class)
    app.config.update(overrides)
    _init_secrets(app)
    _init_step_modules(app)
    _init_extensions(app)
    _init_surfaces(app)
    return app


def _init_secrets(app: Flask) -> None:
    """Development generates missing secrets under instance/; other environments must be given them."""
    from cryptography.fernet import Fernet

    for key, filename in (("SECRET_KEY", "secret-key"), ("ATLAS_ENCRYPTION_KEY", "encryption-key")):
        if not app.config.get(key):
            if not app.config.get("GENERATE_MISSING_SECRETS"):
                raise RuntimeError(f"{key} must be set in the environment")
            app.config[key] = instance_secret(filename)
    try:
        Fernet(app.config["ATLAS_ENCRYPTION_KEY"])
    except ValueError:
        raise RuntimeError("ATLAS_ENCRYPTION_KEY must be a Fernet key: 32 url-safe base64-encoded bytes "
                           "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')")


def _init_step_modules(app: Flask) -> None:
    """Import the modules ATLAS_STEP_MODULES names so that their step types register; a wrong name fails here."""
    for name in app.config["ATLAS_STEP_MODULES"].split(","):
        if name.strip():
            importlib.import_module(name.strip())


def _init_extensions(app: Flask) -> None:
    """Bind every extension; the order matters where noted."""
    from atlas import models  # noqa: F401  (registers every table on the metadata)
    from atlas.errors import init_errors
    from atlas.extensions import cache, compress, csrf, db, htmx, limiter, migrate, redis_holder
    from atlas.hooks import init_rate_limit_headers, init_request_id, init_sqlite

    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("CACHE_REDIS_URL", app.config["REDIS_URL"])
    init_request_id(app)
    db.init_app(app)
    with app.app_context():
        init_sqlite(app, db.engine)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"))
    redis_holder.init_app(app)
    cache.init_app(app)
    compress.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    from atlas.api import init_api
    from atlas.api.context import raise_rejection

    init_rate_limit_headers(app)  # before the limiter: after_request hooks run in reverse order
    init_api(app)  # before the limiter: its auth hook must run first
    limiter.init_app(app)
    app.before_request(raise_rejection)  # after the limiter, so rejected calls are counted too
    init_errors(app)


def _init_surfaces(app: Flask) -> None:
    """The HTML pages and the CLI; the API blueprints are exempt from CSRF (they use bearer tokens)."""
    from atlas.api import BLUEPRINTS
    from atlas.cli import init_cli
    from atlas.extensions import csrf
    from atlas.web import init_web

    for blueprint in BLUEPRINTS:
        csrf.exempt(blueprint)
    init_web(app)
    init_cli(app)
