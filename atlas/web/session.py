"""Staff sessions in the browser: the signed-in user and the organization they are working in."""
from functools import wraps

from flask import g, redirect, request, session, url_for

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
    """Pages need a signed-in member; others go to the login page and come back after."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not load_session():
            return redirect(url_for("auth_pages.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped
