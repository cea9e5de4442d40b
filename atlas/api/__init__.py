"""/api/v2: flask-smorest blueprints, the OpenAPI document and the request hooks they share."""
from flask_smorest import Api

from atlas.api import (
    actions,
    audit_logs,
    auth,
    contacts,
    events,
    executions,
    messaging,
    queue,
    stream,
    triggers,
    webhook_receive,
    webhook_send,
    webhooks,
    workflows,
)
from atlas.api.context import ORG, PUBLIC, USER, audit_mutation, authenticate_request
from atlas.api.schemas import ApiErrorResponse
from atlas.errors import handle_http_exception

BLUEPRINTS = (auth.blp, workflows.blp, executions.blp, stream.blp, queue.blp, actions.blp, audit_logs.blp, contacts.blp,
              events.blp, triggers.blp, messaging.blp, webhooks.blp, webhook_receive.blp, webhook_send.blp)

ORG_HEADER = {"in": "header", "name": "X-Organization-ID", "required": True, "schema": {"type": "string"},
              "description": "The organization the call acts in; the caller must be a member."}

SPEC_OPTIONS = {
    "info": {"description": "The Atlas workflow automation API. Authenticate with POST /api/v2/auth/token, then send "
                            "`Authorization: Bearer <token>` and `X-Organization-ID` on every call."},
    "servers": [{"url": "/"}],
    "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
}


class AtlasApi(Api):
    """flask-smorest's Api with the seed's error envelope instead of its default error body."""

    ERROR_SCHEMA = ApiErrorResponse

    def handle_http_exception(self, error):
        return handle_http_exception(error)


api = AtlasApi()


def init_api(app) -> None:
    """Bind the API; the auth hook is registered before the limiter so limits can key on the organization."""
    app.config.setdefault("API_SPEC_OPTIONS", SPEC_OPTIONS)
    app.before_request(authenticate_request)
    app.after_request(audit_mutation)
    api.init_app(app)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    _document_auth(app)


def _document_auth(app) -> None:
    """Mark every operation that needs a token (and the organization header) in the OpenAPI document."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v2/") or rule.endpoint.startswith("api-docs"):
            continue
        view = app.view_functions[rule.endpoint]
        access = getattr(getattr(view, "view_class", view), "atlas_access", ORG)
        path = api.spec._paths.get(_openapi_path(rule.rule))  # apispec keeps paths here; no public mutator
        if not path:
            continue
        for method, operation in path.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            if access == PUBLIC:
                operation["security"] = []
                continue
            operation["security"] = [{"bearerAuth": []}]
            if access != USER:
                operation.setdefault("parameters", []).append(ORG_HEADER)


def _openapi_path(rule: str) -> str:
    """/api/v2/workflows/<workflow_id> -> /api/v2/workflows/{workflow_id}"""
    return rule.replace("<", "{").replace(">", "}")
