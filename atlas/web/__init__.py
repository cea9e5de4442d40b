"""HTML pages and their htmx fragments; they share services with the API, never handlers."""
from atlas.web import (
    auth_pages,
    builder_edits,
    builder_pages,
    builder_publish,
    builder_settings,
    builder_test,
    contact_pages,
    execution_pages,
    messaging_pages,
    webhook_pages,
    webhook_signing,
    workflow_pages,
)


def init_web(app) -> None:
    """Register the page blueprints and the template globals they share."""
    app.register_blueprint(auth_pages.bp)
    app.register_blueprint(workflow_pages.bp)
    app.register_blueprint(execution_pages.bp)
    app.register_blueprint(contact_pages.bp)
    app.register_blueprint(messaging_pages.bp)
    app.register_blueprint(builder_pages.bp)
    app.register_blueprint(builder_publish.bp)
    app.register_blueprint(builder_test.bp)
    app.register_blueprint(builder_edits.bp)
    app.register_blueprint(builder_settings.bp)
    app.register_blueprint(webhook_pages.bp)
    app.register_blueprint(webhook_signing.bp)
