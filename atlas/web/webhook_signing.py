"""The organization's outgoing signing secret on the webhooks page: shown on request and rotated, by admins only."""
from flask import Blueprint, current_app, g, make_response, render_template, request

from atlas.errors import InsufficientPermissions
from atlas.services import signing_secrets
from atlas.web.session import login_required

bp = Blueprint("webhook_signing", __name__, url_prefix="/webhooks/signing-secret")
GRACE_CHOICES = {"default": None, "hour": 3600, "now": 0}  # how long the old secret also signs after a rotation


@bp.route("")
@login_required
def show():
    """The secret, for the admin who asked to see it (a fragment, never cached)."""
    _require_admin()
    return _fragment(rotated=False)


@bp.route("/rotate", methods=["POST"])
@login_required
def rotate():
    """A new secret; the old one also signs for the grace period chosen."""
    _require_admin()
    grace = GRACE_CHOICES.get(request.form.get("grace", "default"))
    signing_secrets.rotate_signing_secret(g.organization.id, grace)
    return _fragment(rotated=True)


def _require_admin() -> None:
    """The secret lets anyone sign as the gym: admins and the owner only (as in the API)."""
    if not g.membership.allows("admin"):
        raise InsufficientPermissions("The signing secret is shown and rotated by an admin or the owner.")


def _fragment(rotated: bool):
    """The secret, when it was made, the previous one's grace, and the rotate form (#wh-signing-secret)."""
    info = signing_secrets.secret_info(g.organization.id)
    hours = current_app.config["ATLAS_WEBHOOK_SECRET_GRACE_SECONDS"] / 3600
    response = make_response(render_template("webhooks/_signing_secret.html", info=info, rotated=rotated,
                                              default_hours=f"{hours:g}", tz=g.organization.timezone))
    response.headers["Cache-Control"] = "no-store"
    response.vary.add("HX-Request")
    return response
