"""The workflows list: the first page staff see, with the API's filters."""
from urllib.parse import urlencode

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from jinja2_fragments.flask import render_block

from atlas.errors import AtlasError, InsufficientPermissions
from atlas.models import WorkflowStatus
from atlas.services import auth
from atlas.services import workflows as service
from atlas.web.session import login_required

bp = Blueprint("workflow_pages", __name__)
# The trigger catalog arrives with the triggers issue; until then the new-workflow form offers the common ones.
TRIGGERS = {"lead_created": "A new lead is created", "form_submitted": "A form is submitted",
            "class_booked": "A class is booked", "class_missed": "A member misses a class",
            "membership_expiring": "A membership is about to expire", "payment_failed": "A payment fails",
            "manual": "Started by hand"}
SORTS = {"created_at": "Newest", "name": "Name", "last_run_at": "Last run", "usage_count": "Most used"}


def _list_params(args) -> dict:
    """The API's list parameters read leniently from a query string (a page falls back instead of failing)."""
    sort_by = args.get("sort_by") if args.get("sort_by") in SORTS else "created_at"
    status = args.get("status") if args.get("status") in {s.value for s in WorkflowStatus} else None
    page = int(args["page"]) if args.get("page", "").isdigit() and int(args["page"]) > 0 else 1
    return {"status": status, "category": args.get("category") or None, "search": args.get("search") or None,
            "tags": [t for t in args.getlist("tags") if t] or None, "sort_by": sort_by,
            "sort_order": "asc" if sort_by == "name" else "desc", "page": page, "limit": 20}


@bp.route("/")
@login_required
def index():
    """The organization's workflows; htmx asks for just the results block as filters change."""
    params = _list_params(request.args)
    rows, pagination = service.list_workflows(g.organization.id, **params)
    context = {"workflows": rows, "pagination": pagination, "filters": service.list_filters(g.organization.id),
               "params": params, "sorts": SORTS, "memberships": auth.memberships(g.user),
               "can_edit": g.membership.allows("staff"),
               "filtered": any(params[k] for k in ("status", "category", "search", "tags"))}
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "workflow-results":
        return render_block("workflows/index.html", "results", **context)
    return render_template("workflows/index.html", **context)


@bp.route("/workflows/new", methods=["GET", "POST"])
@login_required
def new():
    """Create a draft workflow: a name, a trigger and a category; steps come in the builder."""
    if not g.membership.allows("staff"):
        raise InsufficientPermissions()
    form, error = request.form, None
    if request.method == "POST":
        body = {"name": form.get("name", "").strip(), "description": form.get("description", "").strip() or None,
                "category": form.get("category", "").strip() or None, "trigger_type": form.get("trigger_type", ""),
                "workflow_data": {"schemaVersion": 1, "nodes": [], "edges": []}}
        try:
            _check_new(body)
            service.create_workflow(g.organization.id, g.user.id, body)
        except AtlasError as exc:
            error = exc.message
        else:
            flash(f"Workflow “{body['name']}” created as a draft.")
            return redirect(url_for("workflow_pages.index"))
    return render_template("workflows/new.html", form=form, error=error, triggers=TRIGGERS,
                           memberships=auth.memberships(g.user)), 422 if error else 200


def _check_new(body: dict) -> None:
    """The form's own checks, in the API's words."""
    if not body["name"]:
        raise AtlasError("Give the workflow a name.")
    if len(body["name"]) > 120:
        raise AtlasError("Keep the name to 120 characters.")
    if body["trigger_type"] not in TRIGGERS:
        raise AtlasError("Choose what starts the workflow.")


@bp.app_template_filter("merge_page")
def merge_page(args: dict, page: int) -> str:
    """The current query string with another page number."""
    return urlencode({**args, "page": page})


@bp.route("/organizations/switch", methods=["POST"])
@login_required
def switch_organization():
    """Work in another organization the user belongs to."""
    org_id = request.form.get("organization_id", "")
    if auth.membership(g.user.id, org_id) is not None:
        session["org_id"] = org_id
    return redirect(url_for("workflow_pages.index"))
