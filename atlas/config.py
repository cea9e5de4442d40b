"""Configuration classes, read from the environment."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
INSTANCE_DIR = Path(os.environ.get("ATLAS_INSTANCE_DIR", BASE_DIR / "instance"))


def _bool(name: str, default: bool) -> bool:
    """Read a boolean flag such as ATLAS_ALLOW_SIGNUP=false."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def instance_secret(filename: str) -> str:
    """A secret generated on first use and kept under instance/ (development only)."""
    path = INSTANCE_DIR / filename
    if path.exists():
        return path.read_text().strip()
    from cryptography.fernet import Fernet

    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    value = Fernet.generate_key().decode()
    path.write_text(value)
    path.chmod(0o600)
    return value


class Config:
    """Defaults shared by every environment."""

    GENERATE_MISSING_SECRETS = False
    SECRET_KEY = os.environ.get("SECRET_KEY")
    ATLAS_ENCRYPTION_KEY = os.environ.get("ATLAS_ENCRYPTION_KEY")
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'atlas.db'}")
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

    MAX_CONTENT_LENGTH = int(os.environ.get("ATLAS_MAX_BODY_BYTES", 1024 * 1024))
    ATLAS_ALLOW_SIGNUP = _bool("ATLAS_ALLOW_SIGNUP", True)
    ATLAS_DEMO_PASSWORD = os.environ.get("ATLAS_DEMO_PASSWORD")

    JWT_ISSUER = os.environ.get("ATLAS_JWT_ISSUER", "atlas")
    JWT_TTL_SECONDS = int(os.environ.get("ATLAS_JWT_TTL_SECONDS", 3600))

    RATELIMIT_DEFAULT = os.environ.get("ATLAS_RATELIMIT_DEFAULT", "1000 per hour")
    RATELIMIT_AUTH = os.environ.get("ATLAS_RATELIMIT_AUTH", "20 per minute")
    RATELIMIT_ENABLED = _bool("ATLAS_RATELIMIT_ENABLED", True)

    API_TITLE = "Atlas Workflow API"
    API_VERSION = "v2"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v2"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/static/vendor/swagger-ui/"

    CACHE_TYPE = "RedisCache"
    COMPRESS_MIMETYPES = ["application/json", "text/html", "text/css", "application/javascript"]
    COMPRESS_MIN_SIZE = 500
    COMPRESS_ALGORITHM = ["gzip"]
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # The session lives in the cookie: re-sending an unchanged one on every request lets a slow background request
    # (an htmx refresh, a stream) overwrite the cookie a form post just set, and lose its flash message.
    SESSION_REFRESH_EACH_REQUEST = False

    ATLAS_QUEUES = ("atlas-high", "atlas-default", "atlas-low")
    ATLAS_JOB_TIMEOUT = int(os.environ.get("ATLAS_JOB_TIMEOUT", 120))  # seconds one slice of a run may take
    ATLAS_MAX_QUEUE_DEPTH = int(os.environ.get("ATLAS_MAX_QUEUE_DEPTH", 50000))  # past it: 503 QUEUE_FULL
    ATLAS_SSE_HEARTBEAT = float(os.environ.get("ATLAS_SSE_HEARTBEAT", 15))
    ATLAS_SSE_MAX_SECONDS = float(os.environ.get("ATLAS_SSE_MAX_SECONDS", 600))
    ATLAS_RECONCILE_SECONDS = float(os.environ.get("ATLAS_RECONCILE_SECONDS", 5))
    # A worker's lease on a run: the job timeout plus this grace (for clock skew); then another worker takes over.
    ATLAS_LEASE_GRACE_SECONDS = float(os.environ.get("ATLAS_LEASE_GRACE_SECONDS", 30))
    # Comma-separated modules imported at start so that the step types they register can be used (a gym's own steps).
    ATLAS_STEP_MODULES = os.environ.get("ATLAS_STEP_MODULES", "")
    # A run job also runs the run jobs waiting behind it (jobs/runs.py): RQ's per-job bookkeeping is paid once.
    ATLAS_DRAIN_RUNS = _bool("ATLAS_DRAIN_RUNS", True)
    # RQ logs three INFO lines per job; at hundreds of runs a second that is noise, so workers log warnings and up.
    ATLAS_WORKER_LOG_LEVEL = os.environ.get("ATLAS_WORKER_LOG_LEVEL", "WARNING")
    # Providers (issue 4). Unset: messages stay in the outbox marked not sent.
    SMTP_URL = os.environ.get("SMTP_URL")  # smtp://user:pass@host:port (smtps:// for implicit TLS)
    EMAIL_FROM = os.environ.get("EMAIL_FROM", "Atlas <no-reply@atlas.local>")
    SMS_PROVIDER_URL = os.environ.get("SMS_PROVIDER_URL")  # Twilio-style Messages endpoint (form post)
    SMS_ACCOUNT_SID = os.environ.get("SMS_ACCOUNT_SID")
    SMS_AUTH_TOKEN = os.environ.get("SMS_AUTH_TOKEN")
    SMS_FROM = os.environ.get("SMS_FROM")
    ATLAS_HTTP_TIMEOUT = float(os.environ.get("ATLAS_HTTP_TIMEOUT", 10))  # ceiling for outgoing HTTP requests
    ATLAS_MAX_WORKFLOW_DEPTH = int(os.environ.get("ATLAS_MAX_WORKFLOW_DEPTH", 3))  # nested run_workflow calls
    ATLAS_SCHEDULER_CATCHUP_HOURS = float(os.environ.get("ATLAS_SCHEDULER_CATCHUP_HOURS", 24))
    ATLAS_DECISION_RETENTION_DAYS = int(os.environ.get("ATLAS_DECISION_RETENTION_DAYS", 90))
    ATLAS_WEBHOOK_MAX_BYTES = int(os.environ.get("ATLAS_WEBHOOK_MAX_BYTES", 256 * 1024))  # one delivery's body
    ATLAS_WEBHOOK_RATE_LIMIT = int(os.environ.get("ATLAS_WEBHOOK_RATE_LIMIT", 600))  # per endpoint per minute
    ATLAS_WEBHOOK_SECRET_GRACE_SECONDS = int(os.environ.get("ATLAS_WEBHOOK_SECRET_GRACE_SECONDS", 24 * 3600))


class DevelopmentConfig(Config):
    """`make run`: embedded SQLite and Redis; missing secrets are generated under instance/."""

    GENERATE_MISSING_SECRETS = True


class TestingConfig(Config):
    """The test suite: the fixtures set DATABASE_URL and REDIS_URL."""

    TESTING = True
    SECRET_KEY = "test-secret-key-not-for-production"
    ATLAS_ENCRYPTION_KEY = "l6Tfvw0pV0OTdqyR-3YtQeJtt7xUrhxS_NGB_9A3YJQ="
    WTF_CSRF_ENABLED = False


class ProductionConfig(Config):
    """Everything from the environment; create_app refuses to start without secrets."""

    SESSION_COOKIE_SECURE = _bool("ATLAS_SECURE_COOKIES", True)


CONFIGS = {"development": DevelopmentConfig, "testing": TestingConfig, "production": ProductionConfig}
