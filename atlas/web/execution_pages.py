"""A workflow's runs: the history with its analytics and Run now, and one run's page, which follows it live over SSE."""
from datetime import date, datetime, time, timedelta

from flask import (
    Blueprint,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from jinja2_fragments.flask import render_block

from atlas import realtime
from atlas.errors import AtlasError, Conflict, InsufficientPermissions, NotFound
from atlas.services import audit, auth, queue_admin, runner, triggers
from atlas.services import executions as service
from atlas.services.workflows import get_workflow
from atlas.web import execution_display as display
from atlas.web.run_form import read_run_form
from atlas.web.session import login_required
from atlas.web.workflow_pages import MAX_PAGE

bp = Blueprint("execution_pages", __name__, url_prefix="/workflows/<workflow_id>/executions")
# The stream carries every run of the workflow; the page listens to these, filtered to its own run in the browser.
LIVE_EVENTS = tuple(event for event in realtime.EVENTS if event.startswith(("execution_", "step_")))
PER_PAGE = 20


# The run history

@bp.route("")
@login_required
def index(workflow_id):
    """The workflow's runs, newest first, with analytics; htmx asks for just the results as filters change."""
    context = _list_context(workflow_id, _list_params(request.args))
    return _page_or_block("executions/index.html", "results", "execution-results", context)


def _list_params(args) -> dict:
    """Status, dates and page read leniently from the query string (a bad value is ignored, not an error)."""
    status = args.get("status") if args.get("status") in display.STATUS_LABELS else None
    page = int(args["page"]) if args.get("page", "").isdecimal() and 0 < int(args["page"]) < MAX_PAGE else 1
    start, end = _day(args.get("from")), _day(args.get("to"))
    if start and end and start > end:
        start, end = end, start
    return {"status": status, "from": start, "to": end, "page": page}


def _day(text: str | None) -> date | None:
    """A YYYY-MM-DD date from a date picker, or None."""
    try:
        return date.fromisoformat(text) if text and len(text) == 10 else None
    except ValueError:
        return None


def _list_context(workflow_id: str, params: dict, **extra) -> dict:
    """One page of runs (the last one when asked past the end), the analytics, and the answers the template tests."""
    workflow = get_workflow(g.organization.id, workflow_id)
    rows, pagination, analytics = _runs(workflow.id, params)
    if not rows and params["page"] > pagination["total_pages"] > 0:  # a stale page link
        params["page"] = pagination["total_pages"]
        rows, pagination, analytics = _runs(workflow.id, params)
    filtered = any(params[k] for k in ("status", "from", "to"))
    return {"workflow": workflow, "executions": rows, "pagination": pagination, "analytics": analytics,
            "params": params, "filtered": filtered, "has_runs": bool(rows) or filtered,
            "statuses": display.STATUS_LABELS,
            "trigger": triggers.names().get(workflow.trigger_type, workflow.trigger_type),
            "can_run": g.membership.allows("staff"), "tz": g.organization.timezone,
            "memberships": auth.memberships(g.user), "form": {}, "errors": {}, "run_open": False, **extra}


def _runs(workflow_id: str, params: dict) -> tuple:
    """list_executions with the dates turned into the gym's midnights (the end date counts in full)."""
    tz = display.zone(g.organization.timezone)
    start = datetime.combine(params["from"], time.min, tzinfo=tz) if params["from"] else None
    end = datetime.combine(params["to"] + timedelta(days=1), time.min, tzinfo=tz) if params["to"] else None
    return service.list_executions(g.organization.id, workflow_id, status=params["status"], start_date=start,
                                   end_date=end, page=params["page"], limit=PER_PAGE)


# Run now

@bp.route("/run", methods=["POST"])
@login_required
def run(workflow_id):
    """Start a run by hand and go to its page; otherwise the form again, each problem on its field."""
    _require_staff()
    workflow = get_workflow(g.organization.id, workflow_id)
    arguments, errors = read_run_form(request.form)
    if not errors:
        try:
            execution, _ = service.start_execution(g.organization.id, g.user.id, workflow.id, **arguments)
        except NotFound:
            raise
        except AtlasError as exc:  # not active, errors in a test run's steps, a full queue: said on the form
            errors = {"form": exc.message, "issues": [i["message"] for i in exc.validation or []][:5]}
        else:
            _audit("workflow.execute", execution.id)
            return _go(url_for(".detail", workflow_id=workflow.id, execution_id=execution.id))
    return _run_form_again(workflow, errors)


def _run_form_again(workflow, errors: dict):
    """The form with its problems (422): alone for htmx, else on the list page with the form open."""
    if request.headers.get("HX-Request"):
        return render_block("executions/index.html", "run_form", workflow=workflow, form=request.form,
                            errors=errors), 422
    context = _list_context(workflow.id, _list_params({}), form=request.form, errors=errors, run_open=True)
    return render_template("executions/index.html", **context), 422


# One run

@bp.route("/<execution_id>")
@login_required
def detail(workflow_id, execution_id):
    """One run: status, progress, steps and log; while it runs, htmx fetches its parts again on each of its events."""
    return _page_or_block("executions/detail.html", "live_update", "execution-live",
                          _detail_context(workflow_id, execution_id))


def _detail_context(workflow_id: str, execution_id: str) -> dict:
    """The run as the page shows it, and what this member may do with it."""
    details = service.execution_details(g.organization.id, workflow_id, execution_id)
    execution, tz = details["execution"], g.organization.timezone
    definition = _definition(execution)
    names = display.node_names(definition)
    finished, staff = display.is_finished(execution), g.membership.allows("staff")
    return {"workflow": get_workflow(g.organization.id, workflow_id), "execution": execution, "tz": tz,
            "steps": display.step_rows(details["steps"], names), "logs": display.log_rows(details["logs"], tz),
            "progress": display.progress(execution, definition), "listening": not finished,
            "summary": display.status_sentence(execution, names, tz), "statuses": display.STATUS_LABELS,
            "can_cancel": staff and not finished, "can_retry": staff and execution.status == "failed",
            "failed_step": names.get(execution.failed_node, execution.failed_node),
            "stream_url": url_for("stream.Stream", workflow_id=execution.workflow_id), "live_events": LIVE_EVENTS,
            "memberships": auth.memberships(g.user)}


def _definition(execution):
    """The definition the run follows, for step names and progress; None if it cannot be read."""
    try:
        return runner.definition_of(execution)
    except (ValueError, TypeError):
        return None


@bp.route("/<execution_id>/cancel", methods=["POST"])
@login_required
def cancel(workflow_id, execution_id):
    """Stop a run that has not finished, then show it again."""
    _require_staff()
    try:
        service.cancel_execution(g.organization.id, workflow_id, execution_id)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        _audit("execution.cancel", execution_id)
        flash("Run cancelled: the steps that ran stay done, and no further step runs.")
    return redirect(url_for(".detail", workflow_id=workflow_id, execution_id=execution_id), 303)


@bp.route("/<execution_id>/retry", methods=["POST"])
@login_required
def retry(workflow_id, execution_id):
    """Run a failed run again from the step that failed, then show it."""
    _require_staff()
    service.get_execution(g.organization.id, workflow_id, execution_id)  # this workflow's run, or a 404
    try:
        queue_admin.retry(g.organization.id, execution_id)
    except Conflict as exc:
        flash(exc.message, "error")
    else:
        _audit("execution.retry", execution_id)
        flash("Retrying from the step that failed; the steps before it are not repeated.")
    return redirect(url_for(".detail", workflow_id=workflow_id, execution_id=execution_id), 303)


# Shared

def _require_staff() -> None:
    """Starting, cancelling and retrying runs is for staff and up, as in the API."""
    if not g.membership.allows("staff"):
        raise InsufficientPermissions()


def _audit(action: str, execution_id: str) -> None:
    """The same audit entry the API leaves for this action, marked as done from the pages."""
    audit.record(action, organization_id=g.organization.id, user_id=g.user.id, target_type="execution",
                 target_id=execution_id, status_code=200, request_id=g.request_id, ip=request.remote_addr,
                 details={"channel": "web"})


def _page_or_block(template: str, block: str, target: str, context: dict):
    """The whole page, or just the named block when htmx asks to fill the element with this id."""
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == target:
        response = make_response(render_block(template, block, **context))
    else:
        response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")  # one URL, two bodies: a cache must not hand the fragment to a full page load
    return response


def _go(url: str):
    """Navigate there: htmx follows HX-Redirect with a real page load; a plain form post gets a 303."""
    if request.headers.get("HX-Request"):
        response = make_response("", 200)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)


@bp.app_template_filter("local_time")
def local_time(when, tz, style="minutes") -> str:
    """A moment in the organization's time zone."""
    return display.local_time(when, tz, style)


@bp.app_template_filter("duration")
def duration(ms) -> str:
    """Milliseconds in words."""
    return display.duration_words(ms)
