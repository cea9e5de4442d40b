"""The webhooks page: endpoints with live counters, create (secret shown once), delivery log, replay and test."""
import json
import re

from flask import Blueprint, current_app, flash, g, make_response, redirect, render_template, request, url_for
from jinja2_fragments.flask import render_block

from atlas.errors import AtlasError, InsufficientPermissions, NotFound
from atlas.services import auth, webhook_testing, webhooks
from atlas.services.workflows import list_workflows
from atlas.web.execution_display import relative_words
from atlas.web.session import login_required
from atlas.web.workflow_pages import MAX_PAGE

bp = Blueprint("webhook_pages", __name__, url_prefix="/webhooks")
PER_PAGE = 25
OUTCOMES = {"accepted": "Accepted", "filtered": "Filtered", "duplicate": "Duplicate", "rejected": "Rejected"}
# Why a delivery was refused, as the gym's web developer would say it (the codes are in docs/api-conventions.md).
REASONS = {"WEBHOOK_SIGNATURE_MISSING": "no signature", "WEBHOOK_SIGNATURE_INVALID": "wrong signature",
           "WEBHOOK_TIMESTAMP_INVALID": "unreadable timestamp", "WEBHOOK_TIMESTAMP_STALE": "timestamp too old or new",
           "WEBHOOK_ORIGIN_NOT_ALLOWED": "origin not allowed", "WEBHOOK_PAYLOAD_TOO_LARGE": "too large",
           "WEBHOOK_PAYLOAD_INVALID": "not a JSON object", "WEBHOOK_RATE_LIMITED": "rate limited",
           "WEBHOOK_NOT_FOUND": "endpoint paused or gone"}
EMPTY = {"received": 0, "accepted": 0, "filtered": 0, "duplicates": 0, "rejected": {}, "rejectedTotal": 0,
         "lastReceivedAt": None}
# The service names fields in camelCase (its API words) or snake_case; the form's fields are snake_case.
FIELDS = {"name": "name", "workflowId": "workflow_id", "allowedOrigins": "allowed_origins", "rateLimit": "rate_limit",
          "transformPayload": "transform", "transform": "transform", "filterConditions": "filter_conditions",
          "active": "active", "workflow_id": "workflow_id", "allowed_origins": "allowed_origins",
          "rate_limit": "rate_limit", "filter_conditions": "filter_conditions"}
SAMPLE_PAYLOAD = {"email": "sarah.lee@example.com", "firstName": "Sarah", "lastName": "Lee", "phone": "+15555550123",
                  "form": "Free trial week", "source": "website"}
TRANSFORM_EXAMPLE = ('{"mappings": [\n  {"to": "email", "from": "data.email"},\n'
                     '  {"to": "firstName", "from": "data.first_name", "default": "there"}\n]}')
FILTER_EXAMPLE = '[\n  {"field": "trigger.body.form", "operator": "equals", "value": "Free trial week"}\n]'


# Reading forms

def _json_field(form, key: str, kind: type, errors: dict, words: str):
    """A JSON textarea: None when empty, the parsed value when it is a `kind`, else an error beside the field."""
    text = form.get(key, "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        errors[key] = f"This is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})."
        return None
    if not isinstance(value, kind):
        errors[key] = f"Write {words}."
        return None
    return value


def _endpoint_data(form) -> tuple[dict, dict]:
    """The create/settings form as the service's snake_case data, and the errors only the form can find."""
    errors: dict = {}
    limit = form.get("rate_limit", "").strip()
    if limit and not (limit.isdecimal() and len(limit) < 7 and int(limit) > 0):
        errors["rate_limit"] = "Write a whole number of deliveries per minute, or leave it empty for the default."
    origins = [line.strip() for line in form.get("allowed_origins", "").replace(",", "\n").splitlines()]
    data = {"name": form.get("name", "").strip(), "workflow_id": form.get("workflow_id") or None,
            "allowed_origins": [o for o in origins if o], "rate_limit": int(limit) if not errors and limit else None,
            "transform": _json_field(form, "transform", dict, errors, "a JSON object, or leave it empty"),
            "filter_conditions": _json_field(form, "filter_conditions", (list, dict), errors,
                                             "a JSON list of conditions, or leave it empty") or []}
    if not data["name"]:
        errors["name"] = "Give the endpoint a name, such as “Website trial form”."
    return data, errors


def _service_errors(exc: AtlasError) -> dict:
    """The service's refusal as {form field: message}; what names no field goes at the top of the form."""
    if exc.code == "WORKFLOW_NOT_FOUND":
        return {"workflow_id": "That workflow no longer exists. Pick another, or none."}
    errors: dict = {}
    for item in exc.validation or [{"field": exc.details.get("field"), "message": exc.message}]:
        field = FIELDS.get(str(item.get("field") or "").split(".")[0].split("[")[0], "form")
        message = _plain(item.get("message") or exc.message)
        if field == "allowed_origins" and exc.details.get("origin"):
            message = f"“{exc.details['origin']}”: {message}"
        errors.setdefault(field, message)
    return errors


def _plain(message: str) -> str:
    """ "filterConditions[0].operator: ..." as the form says it: "Condition 1, operator: ..."."""
    message = re.sub(r"^filterConditions\[(\d+)\]\.?", lambda m: f"Condition {int(m[1]) + 1}, ", message)
    message = re.sub(r"^transformPayload\.mappings\[(\d+)\]\.?", lambda m: f"Mapping {int(m[1]) + 1} ", message)
    message = re.sub(r"^(transformPayload|filterConditions)\.?", "", message)
    message = re.sub(r"  +", " ", message).replace(" ,", ",").strip()
    return message[:1].upper() + message[1:]


def _endpoint_form(endpoint=None) -> dict:
    """A saved endpoint as the form's fields (empty for a new one)."""
    if endpoint is None:
        return {"active": True}
    return {"name": endpoint.name, "workflow_id": endpoint.workflow_id or "", "active": endpoint.active,
            "allowed_origins": "\n".join(endpoint.allowed_origins or []),
            "rate_limit": "" if endpoint.rate_limit is None else str(endpoint.rate_limit),
            "transform": _pretty(endpoint.transform) if endpoint.transform else "",
            "filter_conditions": _pretty(endpoint.filter_conditions) if endpoint.filter_conditions else ""}


def _headers_field(text: str, errors: dict) -> dict:
    """Test headers, one "Name: value" a line."""
    headers = {}
    for line in text.splitlines():
        if line.strip():
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                errors["headers"] = f"Write each header as Name: value (this line has no name: “{line.strip()}”)."
                return {}
            headers[name.strip()] = value.strip()
    return headers


def _page_number(args) -> int:
    return int(args["page"]) if args.get("page", "").isdecimal() and 0 < int(args["page"]) < MAX_PAGE else 1


# Shared pieces

def _require_staff() -> None:
    """Creating, changing, testing and replaying need the staff role (as the API's mutations do)."""
    if not g.membership.allows("staff"):
        raise InsufficientPermissions()


def _workflows() -> list:
    """The organization's workflows that are not archived, by name, for the picker and the links."""
    return list_workflows(g.organization.id, limit=500, sort_by="name", sort_order="asc")[0]


def _counters(endpoint, stats: dict | None = None) -> dict:
    """One endpoint's statistics with the words the counters show."""
    stats = stats if stats is not None else webhooks.statistics(g.organization.id, endpoint.id)
    reasons = sorted((stats.get("rejected") or {}).items(), key=lambda item: -item[1])
    last = stats.get("lastReceivedAt")
    return {**stats, "reasons": [(REASONS.get(code, code), n) for code, n in reasons[:3]],
            "last": last, "last_words": relative_words(last) if last else None}


def _base_context(**extra) -> dict:
    return {"can_edit": g.membership.allows("staff"), "memberships": auth.memberships(g.user),
            "tz": g.organization.timezone, "outcomes": OUTCOMES, "reasons": REASONS, **extra}


def _no_store(response):
    """A page that shows a secret must not be cached anywhere."""
    response = make_response(response)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_filter("pretty_json")
def _pretty(value) -> str:
    """JSON as people read it: indented, non-ASCII kept."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


@bp.app_template_filter("ago")
def _ago(when) -> str:
    """'3 minutes ago'."""
    return relative_words(when) if when else "never"


# The list and creating an endpoint

@bp.route("")
@login_required
def index():
    """The organization's endpoints, each with its URL and live counters."""
    endpoints = webhooks.list_endpoints(g.organization.id)
    names = {w.id: w.name for w in _workflows()}
    _, per_endpoint = webhooks.statistics_by_endpoint(g.organization.id)  # one query for every card
    cards = [{"endpoint": e, "url": webhooks.endpoint_url(e), "stats": _counters(e, per_endpoint.get(e.id, EMPTY))}
             for e in endpoints]
    return render_template("webhooks/index.html", **_base_context(cards=cards, workflow_names=names,
                                                                  can_admin=g.membership.allows("admin")))


@bp.route("/new", methods=["GET", "POST"])
@login_required
def create():
    """The create form; on success the secret and a signed example, shown this once."""
    _require_staff()
    form, errors = (request.form, {}) if request.method == "POST" else (_endpoint_form(), {})
    if request.method == "POST":
        data, errors = _endpoint_data(form)
        if not errors:
            try:
                endpoint, secret = webhooks.create_endpoint(g.organization.id, g.user.id, data)
            except AtlasError as exc:
                errors = _service_errors(exc)
            else:
                return _no_store(render_template("webhooks/created.html", **_secret_context(endpoint, secret)))
    context = _base_context(form=form, errors=errors, workflows=_workflows(), transform_example=TRANSFORM_EXAMPLE,
                            filter_example=FILTER_EXAMPLE, default_rate=current_app.config["ATLAS_WEBHOOK_RATE_LIMIT"])
    return render_template("webhooks/new.html", **context), 422 if errors else 200


def _secret_context(endpoint, secret: str, **extra) -> dict:
    """What the once-only secret panel shows: the secret, the URL and a signed curl and Python example."""
    return _base_context(endpoint=endpoint, secret=secret, url=webhooks.endpoint_url(endpoint),
                         instructions=webhooks.test_instructions(endpoint, secret), **extra)


# One endpoint

@bp.route("/<endpoint_id>")
@login_required
def detail(endpoint_id):
    """Settings, rotate and delete, the delivery log and the test form; htmx asks for the log alone as it filters."""
    endpoint = webhooks.get_endpoint(g.organization.id, endpoint_id)
    context = _detail_context(endpoint, _log_params(request.args))
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "delivery-log":
        context["oob_counters"] = True  # the counters learn how many deliveries the log now shows
        response = make_response(render_block("webhooks/endpoint.html", "log", **context))
    else:
        response = make_response(render_template("webhooks/endpoint.html", **context))
    response.vary.add("HX-Request")
    return response


def _log_params(args) -> dict:
    """Outcome and page read leniently (a bad value is ignored)."""
    return {"outcome": args.get("outcome") if args.get("outcome") in OUTCOMES else None, "page": _page_number(args)}


def _detail_context(endpoint, params: dict, **extra) -> dict:
    """The endpoint page's answers: its workflow, counters, one page of deliveries and the forms' states."""
    org_id, workflows = g.organization.id, _workflows()
    rows, total = webhooks.list_deliveries(org_id, endpoint.id, page=params["page"], limit=PER_PAGE,
                                           outcome=params["outcome"])
    pages = -(-total // PER_PAGE)
    if not rows and params["page"] > pages > 0:  # a stale page link
        params["page"] = pages
        rows, total = webhooks.list_deliveries(org_id, endpoint.id, page=pages, limit=PER_PAGE,
                                               outcome=params["outcome"])
    names = {w.id: w.name for w in workflows}
    sample = next((d.payload for d in rows if d.outcome == "accepted" and isinstance(d.payload, dict)), None)
    context = {"endpoint": endpoint, "url": webhooks.endpoint_url(endpoint), "stats": _counters(endpoint),
               "workflows": workflows, "workflow_names": names, "secret_preview": webhooks.secret_preview(endpoint),
               "previous_expires": webhooks.previous_secret_expires_at(endpoint),
               "deliveries": [_delivery_row(d, names) for d in rows], "params": params,
               "pagination": {"total": total, "page": params["page"], "limit": PER_PAGE, "total_pages": pages},
               "form": _endpoint_form(endpoint), "errors": {}, "test_errors": {}, "test_result": None,
               "test_form": {"payload": _pretty(sample or SAMPLE_PAYLOAD)}, "transform_example": TRANSFORM_EXAMPLE,
               "filter_example": FILTER_EXAMPLE, "default_rate": current_app.config["ATLAS_WEBHOOK_RATE_LIMIT"],
               "grace": current_app.config["ATLAS_WEBHOOK_SECRET_GRACE_SECONDS"]}
    return _base_context(**{**context, **extra})


def _delivery_row(delivery, names: dict) -> dict:
    """One delivery with its runs paired to their workflows (for the links to each run's page)."""
    runs = [{"execution_id": run, "workflow_id": workflow, "workflow": names.get(workflow, "A workflow")}
            for run, workflow in zip(delivery.execution_ids or [], delivery.workflow_ids or [])]
    return {"d": delivery, "runs": runs}


@bp.route("/<endpoint_id>/counters")
@login_required
def counters(endpoint_id):
    """The counters alone, polled every few seconds; on the endpoint page it also offers the new deliveries."""
    endpoint = webhooks.get_endpoint(g.organization.id, endpoint_id)
    seen = request.args.get("seen", "")
    context = {"endpoint": endpoint, "stats": _counters(endpoint), "tz": g.organization.timezone,
               "seen": int(seen) if seen.isdecimal() else None}
    return render_template("webhooks/_counters.html", **context)


@bp.route("/<endpoint_id>/settings", methods=["POST"])
@login_required
def save_settings(endpoint_id):
    """Save name, workflow, origins, rate limit, transform, filter and active; errors come back beside fields."""
    _require_staff()
    endpoint = webhooks.get_endpoint(g.organization.id, endpoint_id)
    data, errors = _endpoint_data(request.form)
    data["active"] = request.form.get("active") == "on"
    if not errors:
        try:
            webhooks.update_endpoint(g.organization.id, endpoint.id, data)
        except AtlasError as exc:
            if exc.code == "WEBHOOK_NOT_FOUND":
                raise
            errors = _service_errors(exc)
    if errors:
        form = {**request.form.to_dict(), "active": data["active"]}
        context = _detail_context(endpoint, _log_params({}), form=form, errors=errors)
        return render_template("webhooks/endpoint.html", **context), 422
    flash("Settings saved.")
    return redirect(url_for("webhook_pages.detail", endpoint_id=endpoint.id, _anchor="settings-heading"), 303)


@bp.route("/<endpoint_id>/rotate", methods=["POST"])
@login_required
def rotate(endpoint_id):
    """A new secret, shown this once; the old one keeps working for the grace period chosen."""
    _require_staff()
    grace = request.form.get("grace", "")
    endpoint, secret = webhooks.rotate_secret(g.organization.id, endpoint_id,
                                              int(grace) if grace.isdecimal() and len(grace) < 8 else None)
    context = _detail_context(endpoint, _log_params({}), secret=secret,
                              instructions=webhooks.test_instructions(endpoint, secret))
    return _no_store(render_template("webhooks/endpoint.html", **context))


@bp.route("/<endpoint_id>/delete", methods=["POST"])
@login_required
def delete(endpoint_id):
    """Delete the endpoint and its log; its URL answers 404 from now on."""
    _require_staff()
    endpoint = webhooks.get_endpoint(g.organization.id, endpoint_id)
    name = endpoint.name
    webhooks.delete_endpoint(g.organization.id, endpoint.id)
    flash(f"Webhook “{name}” deleted. Deliveries to its URL are now refused.")
    return redirect(url_for("webhook_pages.index"), 303)


# Testing and replaying

@bp.route("/<endpoint_id>/test", methods=["POST"])
@login_required
def test(endpoint_id):
    """Send a payload through verification, transform, filter and trigger in test mode; show every step."""
    _require_staff()
    endpoint = webhooks.get_endpoint(g.organization.id, endpoint_id)
    errors: dict = {}
    payload = _json_field(request.form, "payload", dict, errors, "a JSON object, such as {\"email\": \"…\"}")
    if payload is None and not errors:
        errors["payload"] = "Write the JSON your website would send."
    headers = _headers_field(request.form.get("headers", ""), errors)
    result = None
    if not errors:
        try:
            result = webhook_testing.test_delivery(g.organization.id, g.user.id, endpoint.id, payload, headers)
        except AtlasError as exc:
            if exc.status == 404:
                raise
            errors["form"] = exc.message
    context = _detail_context(endpoint, _log_params({}), test_form=request.form, test_errors=errors,
                              test_result=_test_result(result) if result else None)
    status = 422 if errors else 200
    if request.headers.get("HX-Request"):  # the form's result, and the log with the test delivery on top
        log = render_block("webhooks/endpoint.html", "log", **context)
        oob = f'<div id="delivery-log" hx-swap-oob="innerHTML">{log}</div>' if result else ""
        return render_block("webhooks/endpoint.html", "test", **context) + oob, status
    return render_template("webhooks/endpoint.html", **context), status


def _test_result(result: dict) -> dict:
    """The test answer (snake_case or camelCase keys) with its workflows named and each run's page where known."""
    names = {w.id: w.name for w in _workflows()}
    triggered = result.get("triggered_workflows", result.get("triggeredWorkflows")) or []
    runs = result.get("execution_ids", result.get("executionIds")) or []
    pairs = zip(triggered, runs) if len(runs) == len(triggered) else ((w, None) for w in triggered)
    return {"success": result.get("success"), "logs": result.get("logs") or [],
            "processed": result.get("processed_payload", result.get("processedPayload")),
            "workflows": [{"id": w, "name": names.get(w, w), "execution_id": run} for w, run in pairs]}


@bp.route("/<endpoint_id>/deliveries/<delivery_id>/replay", methods=["POST"])
@login_required
def replay(endpoint_id, delivery_id):
    """Send a recorded delivery again as a new one, in test mode unless "live" was chosen."""
    _require_staff()
    endpoint = webhooks.get_endpoint(g.organization.id, endpoint_id)
    if webhooks.get_delivery(g.organization.id, delivery_id).endpoint_id != endpoint.id:
        raise NotFound("Delivery not found.", code="WEBHOOK_DELIVERY_NOT_FOUND")
    live, error = request.form.get("mode") == "live", None
    try:
        webhook_testing.replay(g.organization.id, g.user.id, delivery_id, live=live)
    except AtlasError as exc:
        if exc.status == 404:
            raise
        error = exc.message
    if request.headers.get("HX-Request"):
        context = _detail_context(endpoint, _log_params({}), replay_error=error, replayed=not error,
                                  oob_counters=True)
        return render_block("webhooks/endpoint.html", "log", **context), 422 if error else 200
    if error:
        flash(error, "error")
    else:
        flash("Replayed live." if live else "Replayed as a test: nothing was sent.")
    return redirect(url_for("webhook_pages.detail", endpoint_id=endpoint.id, _anchor="log-heading"), 303)
