"""Unbound extension singletons; create_app binds them. Imports no Atlas module."""
from flask import current_app, g, request
from flask_caching import Cache
from flask_compress import Compress
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from redis import Redis
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of every Atlas model."""


class RedisHolder:
    """Holds the app's redis-py client, created by init_app from REDIS_URL."""

    def __init__(self) -> None:
        self.client = None

    def init_app(self, app) -> None:
        """Create the client; connections open lazily on first command."""
        self.client = Redis.from_url(app.config["REDIS_URL"])
        app.extensions["atlas_redis"] = self


def _limiter_key() -> str:
    """Rate-limit bucket: the organization when authenticated, else the client address."""
    org = getattr(g, "organization", None)
    return f"org:{org.id}" if org is not None else f"ip:{request.remote_addr}"


def _endpoint_limit() -> str:
    """The limit of the endpoint: the config key its view names in `rate_limit`, else RATELIMIT_DEFAULT.

    Read per request from the serving app's config, because one limiter object serves every app in the process.
    """
    view = current_app.view_functions.get(request.endpoint or "")
    return current_app.config[getattr(getattr(view, "view_class", view), "rate_limit", "RATELIMIT_DEFAULT")]


def _limiter_scope() -> str:
    """The bucket per endpoint; unknown /api paths share one, so that a 404 is limited and has the headers too."""
    return request.endpoint or "unrouted"


def _limiter_exempt() -> bool:
    """Default limits apply to the JSON API only, not to pages, static files or the API docs."""
    return not request.path.startswith("/api/") or (request.blueprint or "").startswith("api-docs")


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
cache = Cache()
compress = Compress()
csrf = CSRFProtect()
htmx = Htmx()
redis_holder = RedisHolder()
limiter = Limiter(key_func=_limiter_key, default_limits=[_endpoint_limit], request_identifier=_limiter_scope,
                  headers_enabled=True, default_limits_exempt_when=_limiter_exempt)
