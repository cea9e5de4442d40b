"""Who is calling /api/v2: bearer token, organization membership, role, body checks, audit."""
from __future__ import annotations

import json

from flask import current_app, g, request, session
from werkzeug.exceptions import HTTPException

from atlas.core.storable import all_storable, storable
from atlas.errors import (
    AtlasError,
    InsufficientPermissions,
    Unauthenticated,
    ValidationFailed,
)
from atlas.extensions import db
from atlas.services import audit, auth

PUBLIC, USER, ORG, STREAM = "public", "user", "org", "stream"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
UNSTORABLE = "The request contains a NUL character or an unpaired surrogate, which Atlas cannot store."


def access(level: str = ORG, role: str | None = None, safe: tuple[str, ...] = ()):
    """Class decorator: who may call a MethodView (default: organization members; mutations need staff).

    `safe` names methods that change nothing despite their verb (POST .../validate): any member may call them
    and they leave no audit entry.
    """

    def mark(view_class):
        view_class.atlas_access = level
        view_class.atlas_role = role
        view_class.atlas_safe = frozenset(safe)
        return view_class

    return mark


def is_mutation(view_class=None) -> bool:
    """Whether this request can change something."""
    view_class = view_class or _view_class()
    return request.method in MUTATING and request.method not in getattr(view_class, "atlas_safe", ())


def _view_class():
    view = current_app.view_functions.get(request.endpoint)
    return getattr(view, "view_class", view)


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated("Send an access token in the Authorization: Bearer header.")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("The Authorization header must be 'Bearer <token>'.", code="INVALID_TOKEN")
    return token.strip()


def _check_json_body(view_class=None) -> None:
    """A body on a mutating call must be a JSON object of storable text (415, 400 and 422 otherwise)."""
    if request.method not in MUTATING or not request.content_length and not request.data:
        return
    if getattr(view_class, "atlas_form_body", False):  # a provider's webhook posts a form (inbound SMS)
        return
    if not request.is_json:
        raise AtlasError("Send the request body as JSON with Content-Type: application/json.",
                         code="UNSUPPORTED_MEDIA_TYPE", status=415)
    try:
        body = json.loads(request.get_data())
    except ValueError as exc:
        raise AtlasError(f"The request body is not valid JSON: {exc}.", code="MALFORMED_JSON", status=400)
    except RecursionError:
        raise AtlasError("The request body is not valid JSON: it is nested too deeply.", code="MALFORMED_JSON",
                         status=400)
    if not isinstance(body, dict):
        kind = "an array" if isinstance(body, list) else "a bare value"
        _refuse(f"The request body must be a JSON object, not {kind}.")
    if not all_storable(body):
        _refuse(UNSTORABLE)


def _check_url() -> None:
    """No NUL in the path or query string: PostgreSQL refuses to compare text with one (a 500 otherwise)."""
    query = [text for pair in request.args.items(multi=True) for text in pair]
    if not all(storable(text) for text in (request.path, *query)):
        _refuse(UNSTORABLE)


def _refuse(message: str):
    """A 422 about the request as a whole."""
    raise ValidationFailed(message, validation=[{"field": None, "message": message}])


def _join_organization(user) -> None:
    org_id = request.headers.get("X-Organization-ID", "").strip()
    if not org_id:
        raise AtlasError("Send the organization's id in the X-Organization-ID header.",
                         code="ORGANIZATION_REQUIRED", status=400)
    member = auth.membership(user.id, org_id)
    if member is None:
        raise AtlasError("You are not a member of this organization.", code="ORGANIZATION_ACCESS_DENIED",
                         status=403)
    g.membership, g.organization = member, member.organization


def _required_role(view_class) -> str | None:
    explicit = getattr(view_class, "atlas_role", None)
    if isinstance(explicit, dict):
        explicit = explicit.get(request.method)
    if explicit:
        return explicit
    return "staff" if is_mutation(view_class) else None


def authenticate_request() -> None:
    """before_request for /api/v2, before the limiter so that limits key on the organization.

    A failure is kept for raise_rejection, which runs after the limiter: rejected calls count against a limit
    and carry the rate-limit headers like every other API response.
    """
    if not request.path.startswith("/api/") or request.routing_exception is not None:
        return
    if request.blueprint == "api-docs":
        return
    try:
        _authenticate(_view_class())
    except (AtlasError, HTTPException) as error:  # HTTPException: 413 while reading the body
        g.api_rejection = error


def raise_rejection() -> None:
    """before_request, registered after the limiter: fail the call authenticate_request rejected."""
    error = g.pop("api_rejection", None)
    if error is not None:
        raise error


def _authenticate(view_class) -> None:
    """Token, membership and role as the view requires, then the body's shape."""
    level = getattr(view_class, "atlas_access", ORG)
    if level == STREAM and _stream_credentials():
        return
    if level != PUBLIC:
        g.user = auth.user_from_token(_bearer_token())
        if level in (ORG, STREAM):
            _join_organization(g.user)
            role = _required_role(view_class)
            if role and not g.membership.allows(role):
                raise InsufficientPermissions(
                    f"This action needs the {role} role or higher; your role here is {g.membership.role}.")
    _check_url()
    _check_json_body(view_class)


def _stream_credentials() -> bool:
    """An EventSource cannot send headers: it brings a single-use ticket, or (pages) the session cookie."""
    from atlas.realtime.stream import redeem_ticket

    ticket = request.args.get("ticket")
    if ticket:
        grant = redeem_ticket(ticket)
        if grant is None or grant["workflow"] != (request.view_args or {}).get("workflow_id"):
            raise Unauthenticated("The stream ticket is unknown, used or expired; ask for a new one.",
                                  code="INVALID_TICKET")
        user_id, org_id = grant["user"], grant["organization"]
    elif "user_id" in session and "Authorization" not in request.headers:
        user_id, org_id = session["user_id"], session.get("org_id", "")
    else:
        return False
    member = auth.membership(user_id, org_id)
    if member is None:
        raise Unauthenticated("The stream's credentials no longer name a member of the organization.")
    g.user, g.membership, g.organization = member.user, member, member.organization
    return True


def audit_mutation(response):
    """after_request: every authenticated mutating API call leaves an audit entry."""
    if request.path.startswith("/api/") and getattr(g, "organization", None) and is_mutation():
        action = getattr(g, "audit_action", None) or f"{request.method} {request.url_rule}"
        target_type, target_id = getattr(g, "audit_target", (None, None))
        if response.status_code >= 400:
            db.session.rollback()
        if target_id is None and request.view_args:  # the URL's most specific id (an execution's, not its workflow's)
            sent = str(list(request.view_args.values())[-1])
            target_id = sent[:64] if storable(sent) else None  # the client's text: cut to the column, no NUL
        audit.record(action, organization_id=g.organization.id, user_id=g.user.id, target_type=target_type,
                     target_id=target_id, status_code=response.status_code, request_id=g.request_id,
                     ip=request.remote_addr)
    return response
