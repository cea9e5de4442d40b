"""The contacts list and the contact page: fields, tags, bookings, plans, runs, messages and enrollment decisions."""
from flask import Blueprint, flash, g, make_response, redirect, render_template, request, url_for
from jinja2_fragments.flask import render_block

from atlas.errors import InsufficientPermissions, ValidationFailed
from atlas.models import ContactStatus
from atlas.services import auth, triggers
from atlas.services import contacts as service
from atlas.web.execution_display import STATUS_LABELS as RUN_STATUSES
from atlas.web.session import login_required
from atlas.web.workflow_pages import MAX_PAGE

bp = Blueprint("contact_pages", __name__, url_prefix="/contacts")
STATUSES = {s.value: s.value.replace("_", " ").capitalize() for s in ContactStatus}
OUTCOMES = {"enrolled": "Enrolled", "trigger_mismatch": "Trigger did not match", "filter_failed": "Filter not met",
            "reenrollment_blocked": "Re-enrollment rule", "already_active": "Already in this workflow",
            "suppressed": "Suppressed", "deferred": "Deferred", "exited_by_goal": "Exited by goal",
            "workflow_inactive": "Workflow not active", "error": "Error"}
PER_PAGE = 20


def _list_params(args) -> dict:
    """Search, status, tag and page read leniently from the query string (a bad value is ignored)."""
    page = int(args["page"]) if args.get("page", "").isdecimal() and 0 < int(args["page"]) < MAX_PAGE else 1
    return {"search": args.get("search", "")[:200].strip() or None,
            "status": args.get("status") if args.get("status") in STATUSES else None,
            "tags": [args["tag"][:64]] if args.get("tag") else None, "page": page, "limit": PER_PAGE}


@bp.route("")
@login_required
def index():
    """The organization's contacts; htmx asks for just the results block as filters change."""
    params = _list_params(request.args)
    rows, pagination = service.list_contacts(g.organization.id, **params)
    if not rows and params["page"] > pagination["total_pages"] > 0:  # a stale page link
        params["page"] = pagination["total_pages"]
        rows, pagination = service.list_contacts(g.organization.id, **params)
    context = {"contacts": rows, "pagination": pagination, "params": params, "statuses": STATUSES,
               "tags": service.all_tags(g.organization.id), "memberships": auth.memberships(g.user),
               "sources": _lead_source_names(g.organization.id),
               "filtered": any(params[k] for k in ("search", "status", "tags"))}
    context["has_contacts"] = bool(rows) or context["filtered"]
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "contact-results":
        response = make_response(render_block("contacts/index.html", "results", **context))
    else:
        response = make_response(render_template("contacts/index.html", **context))
    response.vary.add("HX-Request")
    return response


@bp.route("/<contact_id>")
@login_required
def detail(contact_id):
    """One contact: fields, tags, bookings and plans, workflow runs, messages, and why it was (not) enrolled."""
    contact = service.get_contact(g.organization.id, contact_id)
    return render_template("contacts/detail.html", **_detail_context(contact))


def _detail_context(contact, **extra) -> dict:
    return {"contact": contact, **service.overview(g.organization.id, contact), "statuses": STATUSES,
            "outcomes": OUTCOMES, "run_statuses": RUN_STATUSES, "tz": g.organization.timezone,
            "can_edit": g.membership.allows("staff"), "memberships": auth.memberships(g.user), "tag_error": None,
            "sources": _lead_source_names(g.organization.id), **extra}


def _lead_source_names(org_id: str) -> dict:
    """Lead source key -> the name staff gave it (the list shows "Walk-in", not "walk_in")."""
    return {source["key"]: source["name"] for source in triggers.config_options(org_id)["lead_sources"]}


@bp.route("/<contact_id>/tags", methods=["POST"])
@login_required
def add_tag(contact_id):
    """Staff tag the contact (tag_added is reported like any other change)."""
    return _change_tags(contact_id, service.add_tags, "added")


@bp.route("/<contact_id>/tags/remove", methods=["POST"])
@login_required
def remove_tag(contact_id):
    """Staff untag the contact."""
    return _change_tags(contact_id, service.remove_tags, "removed")


def _change_tags(contact_id: str, change, verb: str):
    """Apply a tag change from the form; htmx gets the tags block back, a plain form post a redirect."""
    if not g.membership.allows("staff"):
        raise InsufficientPermissions()
    contact = service.get_contact(g.organization.id, contact_id)
    tag, error = request.form.get("tag", ""), None
    try:
        change(g.organization.id, contact.id, [tag], source="staff")
    except ValidationFailed as exc:
        error = exc.message
    if request.headers.get("HX-Request"):
        context = {"contact": contact, "can_edit": True, "tag_error": error, "tag_value": tag if error else ""}
        return render_block("contacts/detail.html", "tags", **context), 422 if error else 200
    if error:
        flash(error, "error")
    else:
        flash(f"Tag “{tag.strip()}” {verb}.")
    return redirect(url_for("contact_pages.detail", contact_id=contact.id))
