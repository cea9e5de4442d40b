"""Sign in, sign up and sign out."""
from urllib.parse import urlparse

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for

from atlas.errors import AtlasError
from atlas.extensions import limiter
from atlas.services import auth
from atlas.web.session import start_session

bp = Blueprint("auth_pages", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in.

    Browsers read a backslash as a slash and drop tabs and newlines inside a URL, so a next of slash-backslash-host
    or slash-tab-slash-host leaves the site as surely as //host does: those go to the workflows list instead.
    """
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(ord(ch) < 32 or ord(ch) == 127 for ch in target) and not urlparse(target).netloc):
        return target
    return url_for("workflow_pages.index")


def _auth_limit() -> str:
    """The API's sign-in limit (per client address) guards the forms too, or they would be the way around it."""
    return current_app.config["RATELIMIT_AUTH"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_auth_limit, methods=["POST"])
def login():
    """The sign-in form."""
    error = None
    if request.method == "POST":
        try:
            user = auth.sign_in(request.form.get("email", ""), request.form.get("password", ""),
                                ip=request.remote_addr, request_id=g.request_id, channel="web")
        except AtlasError as exc:
            error = exc.message
        else:
            start_session(user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", error=error, email=request.form.get("email", ""),
                           allow_signup=current_app.config["ATLAS_ALLOW_SIGNUP"]), 401 if error else 200


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(_auth_limit, methods=["POST"])
def signup():
    """A new gym creates its account and organization."""
    if not current_app.config["ATLAS_ALLOW_SIGNUP"]:
        return render_template("auth/signup_disabled.html"), 403
    form, errors = request.form, {}
    if request.method == "POST":
        fields = [form.get(k, "") for k in ("email", "password", "name", "organization_name")]
        try:
            user, org = auth.signup(*fields, ip=request.remote_addr, request_id=g.request_id)
        except AtlasError as exc:
            errors = {p["field"]: p["message"] for p in exc.validation or []}
            errors = errors or {exc.details.get("field", "form"): exc.message}
        else:
            start_session(user, org.id)
            return redirect(url_for("workflow_pages.index"))
    return render_template("auth/signup.html", form=form, errors=errors), 422 if errors else 200


@bp.route("/logout", methods=["POST"])
def logout():
    """End the session."""
    session.clear()
    return redirect(url_for("auth_pages.login"))
