"""Staff sessions in the browser: the signed-in user and the organization they are working in."""
from functools import wraps
from urllib.parse import urlsplit

from flask import g, make_response, redirect, request, session, url_for

from atlas.extensions import db
from atlas.models import User
from atlas.services import auth


def start_session(user: User, organization_id: str | None = None) -> None:
    """Remember the user (and their first organization unless one is named) in the cookie session."""
    session.clear()
    session["user_id"] = user.id
    if organization_id is None:
        first = next(iter(auth.memberships(user)), None)
        organization_id = first.organization_id if first else None
    session["org_id"] = organization_id
    session.permanent = True


def load_session() -> bool:
    """Fill g.user, g.membership and g.organization from the session; False when signed out."""
    user = db.session.get(User, session.get("user_id") or "")
    member = auth.membership(user.id, session.get("org_id") or "") if user else None
    if user is None or member is None:
        return False
    g.user, g.membership, g.organization = user, member, member.organization
    return True


def login_required(view):
    """Pages need a signed-in member; others go to the login page and come back after.

    An htmx request is told to navigate with HX-Redirect: following a plain redirect would swap the whole login
    page into the fragment's target.
    """

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not load_session():
            login = url_for("auth_pages.login", next=_return_path())
            if request.headers.get("HX-Request"):
                response = make_response("", 401)
                response.headers["HX-Redirect"] = login
                return response
            return redirect(login)
        return view(*args, **kwargs)

    return wrapped


def _return_path() -> str:
    """Where to come back to after signing in: the page itself, or for htmx the page the browser shows."""
    current = request.headers.get("HX-Current-URL") if request.headers.get("HX-Request") else None
    if current:
        parsed = urlsplit(current)
        if parsed.netloc == request.host:
            return parsed.path + (f"?{parsed.query}" if parsed.query else "")
    return request.full_path.rstrip("?")
