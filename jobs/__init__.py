"""Thin RQ entry points: they take ids, load, and call a service. The app is built lazily, once per worker."""
import os

_app = None


def get_app():
    """The worker's app, built on first use (never at import time)."""
    global _app
    if _app is None:
        from atlas import create_app

        _app = create_app(os.environ.get("ATLAS_ENV", "development"))
    return _app
