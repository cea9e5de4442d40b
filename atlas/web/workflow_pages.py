"""The workflows list: the first page staff see, with the API's filters."""
from urllib.parse import urlencode

from flask import Blueprint, flash, g, make_response, redirect, render_template, request, session, url_for
from jinja2_fragments.flask import render_block

from atlas.errors import AtlasError, InsufficientPermissions
from atlas.models import WorkflowStatus
from atlas.services import auth, demo, inflight, triggers
from atlas.services import workflows as service
from atlas.web.session import login_required

bp = Blueprint("workflow_pages", __name__)
SORTS = {"created_at": "Newest", "name": "Name", "last_run_at": "Last run", "usage_count": "Most used"}
MAX_PAGE = 100_000  # a larger page number is a typo; beyond it the offset would overflow SQLite's integers


def _list_params(args) -> dict:
    """The API's list parameters read leniently from a query string (a page falls back instead of failing)."""
    sort_by = args.get("sort_by") if args.get("sort_by") in SORTS else "created_at"
    status = args.get("status") if args.get("status") in {s.value for s in WorkflowStatus} else None
    page = int(args["page"]) if args.get("page", "").isdecimal() and 0 < int(args["page"]) < MAX_PAGE else 1
    return {"status": status, "category": args.get("category") or None, "search": args.get("search", "")[:200] or None,
            "tags": [t for t in args.getlist("tags") if t] or None, "sort_by": sort_by,
            "sort_order": "asc" if sort_by == "name" else "desc", "page": page, "limit": 20}


@bp.route("/")
@login_required
def index():
    """The organization's workflows; htmx asks for just the results block as filters change."""
    context = _list_context(_list_params(request.args))
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "workflow-results":
        response = make_response(render_block("workflows/index.html", "results", **context))
    else:
        response = make_response(render_template("workflows/index.html", **context))
    response.vary.add("HX-Request")  # one URL, two bodies: a cache must not hand the fragment to a full page load
    return response


def _list_context(params: dict) -> dict:
    """One page of workflows (the last one when asked past the end) and the answers the template tests."""
    rows, pagination = service.list_workflows(g.organization.id, **params)
    if not rows and params["page"] > pagination["total_pages"] > 0:  # a stale page link
        params["page"] = pagination["total_pages"]
        rows, pagination = service.list_workflows(g.organization.id, **params)
    filters = service.list_filters(g.organization.id)
    return {"workflows": rows, "pagination": pagination, "filters": filters, "params": params, "sorts": SORTS,
            "in_progress": inflight.counts(g.organization.id, [w.id for w in rows]),
            "triggers": triggers.names(), "memberships": auth.memberships(g.user),
            "can_edit": g.membership.allows("staff"),
            "has_workflows": bool(filters["statuses"]),
            "filtered": any(params[k] for k in ("status", "category", "search", "tags"))}


@bp.route("/workflows/new", methods=["GET", "POST"])
@login_required
def new():
    """Create a draft workflow, blank or from a built-in example, then open it in the builder."""
    if not g.membership.allows("staff"):
        raise InsufficientPermissions()
    form, errors = request.form, {}
    if request.method == "POST":
        body = _new_body(form)
        errors = _new_problems(body)
        if not errors:
            try:
                created = service.create_workflow(g.organization.id, g.user.id,
                                                  {k: v for k, v in body.items() if k != "start"})
            except AtlasError as exc:
                errors = {exc.details.get("field", "form"): exc.message}
            else:
                flash(f"Workflow “{body['name']}” created as a draft.")
                return redirect(url_for("builder_pages.page", workflow_id=created.workflow.id))
    return render_template("workflows/new.html", form=form, errors=errors, trigger_groups=triggers.grouped(),
                           examples=demo.examples(), memberships=auth.memberships(g.user)), 422 if errors else 200


def _new_body(form) -> dict:
    """The create-workflow body from the form: no steps for "blank"; an example brings its steps and its trigger."""
    body = {"name": form.get("name", "").strip(), "description": form.get("description", "").strip() or None,
            "category": form.get("category", "").strip() or None, "trigger_type": form.get("trigger_type", ""),
            "workflow_data": {"schemaVersion": 1, "nodes": [], "edges": []}, "start": form.get("start") or "blank"}
    example = demo.example(body["start"])
    if example is not None:
        body.update(trigger_type=example["trigger_type"], trigger_config=example["trigger_config"],
                    workflow_data=example["workflow_data"], description=body["description"] or example["description"],
                    category=body["category"] or example["category"])
    return body


def _new_problems(body: dict) -> dict:
    """The form's own checks, field by field, in the API's words."""
    problems = {}
    if body["start"] != "blank" and demo.example(body["start"]) is None:
        problems["start"] = "Choose a blank workflow or one of the examples."
    if not body["name"]:
        problems["name"] = "Give the workflow a name."
    elif len(body["name"]) > 120:
        problems["name"] = "Keep the name to 120 characters."
    if body["trigger_type"] not in triggers.names():
        problems["trigger_type"] = "Choose what starts the workflow."
    if body["category"] and len(body["category"]) > 64:
        problems["category"] = "Keep the category to 64 characters."
    if body["description"] and len(body["description"]) > 2000:
        problems["description"] = "Keep the description to 2,000 characters."
    return problems


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
