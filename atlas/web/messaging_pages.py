"""The outbox and the messaging settings pages (templates, providers, contact policy, inbound SMS URL)."""
from flask import Blueprint, flash, g, make_response, redirect, render_template, request, url_for
from jinja2_fragments.flask import render_block

from atlas.errors import AtlasError, InsufficientPermissions
from atlas.models import MessageStatus
from atlas.services import auth, messaging, policy, templates
from atlas.web.session import login_required

bp = Blueprint("messaging_pages", __name__)
CHANNELS = {"email": "Email", "sms": "SMS"}
MAX_PAGE = 100_000
PLAIN_WORDS = {"max": "The number of messages", "days": "The number of days", "start": "The start of quiet hours",
               "end": "The end of quiet hours"}


def _outbox_params(args) -> dict:
    """The outbox filters read leniently from a query string."""
    page = int(args["page"]) if args.get("page", "").isdecimal() and 0 < int(args["page"]) < MAX_PAGE else 1
    status = args.get("status") if args.get("status") in {s.value for s in MessageStatus} else None
    channel = args.get("channel") if args.get("channel") in CHANNELS else None
    return {"status": status, "channel": channel, "contact_id": args.get("contact_id", "")[:36] or None,
            "page": page, "limit": 25}


@bp.route("/outbox")
@login_required
def outbox():
    """Every message workflows sent or could not send; htmx asks for the results block as filters change."""
    context = _outbox_context(_outbox_params(request.args))
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "outbox-results":
        response = make_response(render_block("outbox/index.html", "results", **context))
    else:
        response = make_response(render_template("outbox/index.html", **context))
    response.vary.add("HX-Request")
    return response


def _outbox_context(params: dict) -> dict:
    """One page of messages, their contacts' names, and the answers the template tests."""
    rows, pagination = messaging.list_outbox(g.organization.id, **params)
    return {"messages": rows, "pagination": pagination, "params": params, "channels": CHANNELS,
            "statuses": [s.value for s in MessageStatus], "names": messaging.contact_names(g.organization.id, rows),
            "memberships": auth.memberships(g.user),
            "filtered": any(params[key] for key in ("status", "channel", "contact_id"))}


def _require_staff() -> None:
    """Changing settings and templates needs the staff role (as the API's mutations do)."""
    if not g.membership.allows("staff"):
        raise InsufficientPermissions()


@bp.route("/settings/messaging")
@login_required
def settings():
    """Templates, provider status, the contact policy and (for staff) the inbound SMS webhook URL."""
    return _settings_page()


def _settings_page(policy_form: dict | None = None, errors: dict | None = None, status: int = 200):
    """The settings page, with the policy form as saved or as just posted (with its errors)."""
    org_id, can_edit = g.organization.id, g.membership.allows("staff")
    inbound = url_for("messaging.SmsInbound", org=org_id, token=messaging.inbound_token(org_id), _external=True)
    context = {"templates": {c: templates.list_templates(org_id, c) for c in CHANNELS}, "channels": CHANNELS,
               "providers": messaging.provider_status(org_id), "can_edit": can_edit,
               "policy": policy_form or _policy_form(policy.settings(org_id)), "errors": errors or {},
               "inbound_url": inbound if can_edit else None, "memberships": auth.memberships(g.user)}
    return render_template("settings/messaging.html", **context), status


def _policy_form(saved: dict) -> dict:
    """The saved policy as the form's flat fields."""
    quiet, caps = saved.get("quietHours") or {}, saved.get("frequencyCaps") or {}
    form = {"quiet_enabled": bool(quiet.get("enabled")), "quiet_start": quiet.get("start", "21:00"),
            "quiet_end": quiet.get("end", "08:00"), "capped_action": saved.get("cappedAction", "defer")}
    for channel in CHANNELS:
        form[f"{channel}_max"] = str((caps.get(channel) or {}).get("max", ""))
        form[f"{channel}_days"] = str((caps.get(channel) or {}).get("days", ""))
    return form


def _policy_changes(form) -> dict:
    """The policy keys from the posted form; an empty cap removes it, a non-number is left for check() to name."""
    caps = {}
    for channel in CHANNELS:
        top, days = (form.get(f"{channel}_{key}", "").strip() for key in ("max", "days"))
        if top or days:
            caps[channel] = {"max": _number(top), "days": _number(days)}
    return {"quietHours": {"enabled": form.get("quiet_enabled") == "on", "start": form.get("quiet_start", ""),
                           "end": form.get("quiet_end", "")},
            "frequencyCaps": caps or None, "cappedAction": form.get("capped_action", "defer")}


def _plain(message: str) -> str:
    """The policy check names API keys ("max must be 1 to 1000."); the form says what the box is for."""
    for key, words in PLAIN_WORDS.items():
        if message.startswith(key + " "):
            return words + message[len(key):]
    return message


def _number(text: str) -> int | str:
    """Digits as an int; anything else as typed, for the policy check to name."""
    return int(text) if text.isdecimal() and len(text) < 7 else text


@bp.route("/settings/messaging/policy", methods=["POST"])
@login_required
def save_policy():
    """Save quiet hours, frequency caps and what happens to a capped message."""
    _require_staff()
    try:
        policy.save(g.organization.id, _policy_changes(request.form))
    except AtlasError as exc:
        errors = {item["field"]: _plain(item["message"]) for item in exc.validation or []}
        form = {**_policy_form({}), **request.form.to_dict(),
                "quiet_enabled": request.form.get("quiet_enabled") == "on"}
        return _settings_page(form, errors, 422)
    flash("Contact policy saved.")
    return redirect(url_for("messaging_pages.settings"))


@bp.route("/settings/messaging/<channel>/templates/new", methods=["GET", "POST"])
@bp.route("/settings/messaging/<channel>/templates/<template_id>", methods=["GET", "POST"])
@login_required
def template_form(channel, template_id=None):
    """Create or edit one template; errors come back beside their field."""
    _require_staff()
    if channel not in CHANNELS:
        raise AtlasError("There is no such channel.", code="NOT_FOUND", status=404)
    template = templates.get_template(g.organization.id, channel, template_id) if template_id else None
    form, errors = request.form if request.method == "POST" else _template_fields(template), {}
    if request.method == "POST":
        errors = _save_template(channel, template_id, form)
        if not errors:
            flash(f"Template “{form.get('name', '').strip()}” saved.")
            return redirect(url_for("messaging_pages.settings"))
    return render_template("settings/template_form.html", form=form, errors=errors, channel=channel,
                           channel_name=CHANNELS[channel], template=template,
                           memberships=auth.memberships(g.user)), 422 if errors else 200


def _template_fields(template) -> dict:
    """A saved template as the form's fields (empty for a new one)."""
    return {"name": template.name, "subject": template.subject or "", "body": template.body} if template else {}


def _save_template(channel: str, template_id: str | None, form) -> dict:
    """Create or update through the service; its refusal as {field: message}."""
    data = {"name": form.get("name", "").strip(), "body": form.get("body", "")}
    if channel == "email":
        data["subject"] = form.get("subject", "").strip()
    if not data["name"]:
        return {"name": "Give the template a name."}
    if not data["body"].strip():
        return {"body": "Write the message."}
    try:
        if template_id:
            templates.update_template(g.organization.id, channel, template_id, data)
        else:
            templates.create_template(g.organization.id, channel, data)
    except AtlasError as exc:
        return {exc.details.get("field") or (exc.validation or [{}])[0].get("field") or "form": exc.message}
    return {}


@bp.route("/settings/messaging/<channel>/templates/<template_id>/delete", methods=["POST"])
@login_required
def delete_template(channel, template_id):
    """Delete a template; one still used by a workflow stays, with a message saying which."""
    _require_staff()
    try:
        template = templates.delete_template(g.organization.id, channel if channel in CHANNELS else "email",
                                             template_id)
    except AtlasError as exc:
        if exc.status == 404:
            raise
        flash(exc.message, "error")
    else:
        flash(f"Template “{template.name}” deleted.")
    return redirect(url_for("messaging_pages.settings"))
