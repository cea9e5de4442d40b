"""Thin RQ entry points: they take ids, load, and call a service. The app is built lazily, once per worker."""
import os

_app = None


def get_app():
    """The worker's app: the one already running (atlas worker), else built on first use (never at import time)."""
    global _app
    from flask import current_app, has_app_context

    if has_app_context():
        return current_app._get_current_object()
    if _app is None:
        from atlas import create_app

        _app = create_app(os.environ.get("ATLAS_ENV", "development"))
    return _app
