"""The builder's trigger panel and workflow settings panel.

The trigger card opens the trigger panel: choosing a type saves the draft with that type and its default config
(catalog.with_defaults); the type's config form is drawn from its config schema (atlas.web.schema_forms) and saved to
the draft on every change, like a step's; a scheduled trigger previews its next runs in the organization's timezone.
The header's Settings button opens the settings panel: the draft's enrollment rules (the keys of
catalog.SETTINGS_SCHEMA; other settings keys are kept as they are), and the workflow's description, category and tags,
which are not versioned and so are saved straight onto the workflow (workflows.update_workflow), not the draft.
Responses follow builder_edits: the panel, the canvas and the history out of band; a stale draft is refused (409).
"""
import re
from datetime import timedelta

from flask import Blueprint, g, make_response, render_template, request
from jinja2_fragments.flask import render_block

from atlas.core import schedule
from atlas.core import triggers as catalog
from atlas.core.flowchart import value_words
from atlas.errors import ValidationFailed
from atlas.models.base import utcnow
from atlas.services import builder_options, drafts
from atlas.services.workflows import get_workflow, list_filters, update_workflow
from atlas.web import builder_edits
from atlas.web.builder_edits import editable, revision
from atlas.web.builder_pages import draft_context
from atlas.web.schema_form_input import apply_op, config_from_form
from atlas.web.schema_forms import fields_for, humanise
from atlas.web.session import login_required
from atlas.web.variables import variables_for

bp = Blueprint("builder_settings", __name__, url_prefix="/workflows/<workflow_id>/builder")
TRIGGER, SETTINGS, PAGE = "builder/_trigger_panel.html", "builder/_settings_panel.html", "builder/page.html"
ENROLLMENT = tuple(catalog.SETTINGS_SCHEMA["properties"])
FILTER_SCHEMA = {"type": "object", "properties": {"enrollmentFilter": {
    "type": ["object", "null"], "title": "Only enroll contacts who match",
    "description": "Checked when the trigger fires, on the contact and the trigger's data. Leave it without rules "
                   "to enroll everyone the trigger fires for."}}}
REENROLLMENT_CHOICES = (("never", "Never: a contact goes through this workflow once"),
                        ("always", "Every time the trigger fires"), ("after_days", "Again after some days"))
DEFAULT_DAYS = 30
bp.errorhandler(drafts.DraftConflict)(builder_edits.conflict)


# --- the trigger panel -----------------------------------------------------------------------------------------------

@bp.route("/trigger")
@login_required
def trigger(workflow_id):
    """The trigger panel: the type and its config form for staff, the settings in words for viewers."""
    workflow = get_workflow(g.organization.id, workflow_id)
    return _panel(TRIGGER, trigger_context(workflow, drafts.get_draft(g.organization.id, workflow.id)))


@bp.route("/trigger/type", methods=["POST"])
@login_required
def trigger_type(workflow_id):
    """Change the trigger type: the draft gets the type and its default config; the panel shows the new form."""
    workflow = editable(workflow_id)
    key = request.form.get("trigger_type", "")
    if not catalog.is_known(key):
        raise ValidationFailed("Choose one of the trigger types in the list.", code="UNKNOWN_TRIGGER_TYPE")
    draft = drafts.get_draft(g.organization.id, workflow.id)
    config = draft.trigger_config if key == draft.trigger_type else catalog.with_defaults(key, {})
    draft = drafts.save_draft(g.organization.id, g.user.id, workflow.id, base_revision=revision(),
                              summary=f"Changed the trigger to '{catalog.get(key).name}'", trigger_type=key,
                              trigger_config=config)
    return _respond(workflow, draft, render_template(TRIGGER, **trigger_context(workflow, draft)))


@bp.route("/trigger/config", methods=["POST"])
@login_required
def trigger_config(workflow_id):
    """Save the trigger's config when it is valid; otherwise (or for the form's buttons) redraw the form."""
    workflow = editable(workflow_id)
    draft = drafts.get_draft(g.organization.id, workflow.id)
    kind = _trigger_type_of(draft)
    values, errors = config_from_form(kind.config_schema, request.form,
                                      check=lambda config: catalog.check_config(kind.key, config))
    op = request.form.get("op") or "save"
    if op != "save" or errors:
        values = apply_op(kind.config_schema, values, op) if op != "save" else values
        return _panel(TRIGGER, trigger_context(workflow, draft, values=values, errors={} if op != "save" else errors))
    draft = drafts.save_draft(g.organization.id, g.user.id, workflow.id, base_revision=revision(),
                              summary=f"Changed the settings of the trigger '{kind.name}'", trigger_config=values)
    status = render_block(TRIGGER, "status", oob=True, **trigger_context(workflow, draft))
    return _respond(workflow, draft, status, keep_panel=True)


def trigger_context(workflow, draft, *, values=None, errors=None) -> dict:
    """What the trigger panel shows: the catalog by category, the config form, the trigger's problems, next runs."""
    known = catalog.is_known(draft.trigger_type)
    kind = catalog.get(draft.trigger_type) if known else None
    config = draft.trigger_config if values is None else values
    context = {**draft_context(workflow, draft), "kind": kind, "type_groups": _type_groups(),
               "trigger_issues": _trigger_issues(draft), "preview": schedule_preview(kind, config),
               "config_rows": _config_rows(kind, draft.trigger_config), "fields": None, "general_errors": [],
               "variables": []}
    if kind is not None and context["can_edit"]:
        options = builder_options.options_for(g.organization.id)
        context["fields"] = fields_for(kind.config_schema, config, options=options, errors=errors or {})
        context["general_errors"] = [m for name, m in (errors or {}).items() if name == "config"]
    return context


def _trigger_type_of(draft) -> catalog.TriggerType:
    if not catalog.is_known(draft.trigger_type):
        raise ValidationFailed("Choose a trigger type first.", code="UNKNOWN_TRIGGER_TYPE")
    return catalog.get(draft.trigger_type)


def _type_groups() -> list[tuple[str, list]]:
    """The type select's optgroups: the catalog's categories in order, each with its types."""
    return [(name, [t for t in catalog.all_types() if t.category == key])
            for key, (name, _) in catalog.CATEGORIES.items()]


def _trigger_issues(draft) -> list[dict]:
    """The draft's problems that concern its trigger (not a step, not the enrollment settings)."""
    return [i for i in draft.issues if not i.get("node_id") and (
        str(i.get("path") or "").startswith("trigger") or i.get("code") in ("NO_TRIGGER", "UNKNOWN_TRIGGER_TYPE"))]


def _config_rows(kind, config) -> list[tuple[str, str]]:
    """The trigger's config as (label, words) for viewers."""
    if kind is None:
        return []
    props = kind.config_schema.get("properties", {})
    return [(props.get(key, {}).get("title") or humanise(key), value_words(value))
            for key, value in catalog.with_defaults(kind.key, config).items()]


def schedule_preview(kind, config, now=None, tz_name: str | None = None) -> dict | None:
    """The next three runs of a scheduled trigger in the organization's timezone, or why there are none."""
    if kind is None or kind.timing != catalog.SCHEDULED or not isinstance(config, dict):
        return None
    if config.get("scheduleType") not in ("cron", "recurring"):
        return None
    tz_name = tz_name or g.organization.timezone or "UTC"
    tz, now = schedule.zone(tz_name), now or utcnow()
    try:
        plan = schedule.parse_schedule(config, tz=tz, created_at=now)
    except (schedule.ScheduleError, KeyError, TypeError):
        return {"timezone": tz_name, "runs": [], "problem": "Fix the schedule to see when it runs."}
    runs = schedule.occurrences(plan, tz, now, now + timedelta(days=366 * 5), limit=3)
    return {"timezone": tz_name, "runs": [run_words(r, tz) for r in runs],
            "problem": None if runs else "This schedule has no run in the next five years."}


def run_words(instant, tz) -> str:
    """A run time as staff read it: 'Monday 30 November 2026 at 09:00'."""
    local = instant.astimezone(tz)
    return f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M}"


# --- the settings panel ----------------------------------------------------------------------------------------------

@bp.route("/settings")
@login_required
def settings(workflow_id):
    """The settings panel: enrollment rules (draft) and description, category, tags (workflow)."""
    workflow = get_workflow(g.organization.id, workflow_id)
    return _panel(SETTINGS, settings_context(workflow, drafts.get_draft(g.organization.id, workflow.id)))


@bp.route("/settings/enrollment", methods=["POST"])
@login_required
def enrollment(workflow_id):
    """Save the enrollment rules to the draft's settings (other keys kept); errors redraw the panel, unsaved."""
    workflow = editable(workflow_id)
    draft = drafts.get_draft(g.organization.id, workflow.id)
    rules, errors = rules_from_form(request.form)
    op = request.form.get("op") or "save"
    if op != "save" or errors:
        rules = apply_op(FILTER_SCHEMA, rules, op, prefix="settings") if op != "save" else rules
        return _panel(SETTINGS, settings_context(workflow, draft, rules=rules, errors={} if op != "save" else errors))
    kept = {key: value for key, value in draft.settings.items() if key not in ENROLLMENT}
    draft = drafts.save_draft(g.organization.id, g.user.id, workflow.id, base_revision=revision(),
                              summary="Changed the enrollment rules", settings={**kept, **rules})
    return _respond(workflow, draft, "", keep_panel=True)


@bp.route("/settings/details", methods=["POST"])
@login_required
def details(workflow_id):
    """Save description, category and tags onto the workflow itself (they are not versioned); errors redraw them."""
    workflow = editable(workflow_id)
    changes, errors = details_from_form(request.form)
    if errors:
        context = settings_context(workflow, drafts.get_draft(g.organization.id, workflow.id), details=changes,
                                   details_errors=errors)
        return render_block(SETTINGS, "details", **context)
    workflow = update_workflow(g.organization.id, g.user.id, workflow.id, changes).workflow
    response = make_response(render_block(SETTINGS, "details_status", saved=True, oob=True))
    response.headers["HX-Reswap"] = "none"  # the form stays as the person left it (focus, cursor)
    return response


def rules_from_form(form) -> tuple[dict, dict]:
    """The enrollment rules posted ({settings key: value}) and {field name: problem}; the days only for after_days."""
    form = form.copy()
    if form.get("settings.reenrollment") != "after_days":
        form.pop("settings.reenrollmentDays", None)
    schema = {**catalog.SETTINGS_SCHEMA, "properties": {**catalog.SETTINGS_SCHEMA["properties"],
                                                        **FILTER_SCHEMA["properties"]}}
    rules, errors = config_from_form(schema, form, prefix="settings", check=catalog.check_settings)
    return rules, {_form_name(name): message for name, message in errors.items()}


def _form_name(path: str) -> str:
    """A settings check's path ("settings.enrollmentFilter.all.0.field") as the condition builder names it."""
    return re.sub(r"\.(all|any)\.(\d+)", r".items.\2", re.sub(r"\[(\d+)\]", r".\1", path))


def details_from_form(form) -> tuple[dict, dict]:
    """Description, category and tags as update_workflow takes them, and {field: problem}."""
    description, category = form.get("description", "").strip(), form.get("category", "").strip()
    tags = list(dict.fromkeys(t.strip() for t in form.get("tags", "").split(",") if t.strip()))
    errors = {}
    if len(description) > 2000:
        errors["description"] = "Keep the description to 2000 characters or fewer."
    if len(category) > 64:
        errors["category"] = "Keep the category to 64 characters or fewer."
    if len(tags) > 20 or any(len(t) > 64 for t in tags):
        errors["tags"] = "Use at most 20 tags, each 64 characters or fewer."
    return {"description": description or None, "category": category or None, "tags": tags}, errors


def settings_context(workflow, draft, *, rules=None, errors=None, details=None, details_errors=None) -> dict:
    """What the settings panel shows: the rules (as saved or as posted), the filter's form, the workflow's details."""
    rules = {key: draft.settings[key] for key in ENROLLMENT if key in draft.settings} if rules is None else rules
    options = builder_options.options_for(g.organization.id)
    variables = variables_for({}, "", draft.trigger_type, custom_fields=options["custom_fields"])
    current = {"description": workflow.description or "", "category": workflow.category or "",
               "tags": ", ".join(workflow.tags)}
    if details is not None:
        current = {**current, **{k: (", ".join(v) if k == "tags" else v or "") for k, v in details.items()}}
    return {**draft_context(workflow, draft), "rules": catalog.EnrollmentRules.from_settings(rules), "raw": rules,
            "errors": errors or {}, "choices": REENROLLMENT_CHOICES, "default_days": DEFAULT_DAYS,
            "fields": fields_for(FILTER_SCHEMA, rules, variables=variables, errors=errors or {}, prefix="settings"),
            "variables": variables, "general_errors": _unplaced(errors or {}), "details": current,
            "details_errors": details_errors or {},
            "categories": list_filters(g.organization.id)["categories"]}


def _unplaced(errors: dict) -> list[str]:
    """Problems the form has no field for (shown above it)."""
    placed = ("settings.reenrollment", "settings.oneActive", "settings.exit", "settings.enrollmentFilter.")
    return [message for name, message in errors.items() if not name.startswith(placed)]


# --- responses -------------------------------------------------------------------------------------------------------

def _panel(template: str, context: dict):
    """A panel for #builder-panel (its own fragment whether or not htmx asked)."""
    response = make_response(render_template(template, **context))
    response.vary.add("HX-Request")
    return response


def _respond(workflow, draft, main: str, *, keep_panel: bool = False):
    """`main` (the panel, or out-of-band parts) with the canvas and the history redrawn out of band."""
    context = draft_context(workflow, draft)
    parts = [main, f'<div id="builder" hx-swap-oob="innerHTML">{render_block(PAGE, "canvas", **context)}</div>',
             render_template("builder/_history.html", oob=True, **context)]
    response = make_response("".join(parts))
    if keep_panel:
        response.headers["HX-Reswap"] = "none"  # the form stays as the person left it (focus, cursor)
    return response
