"""Editing in the builder: every change is saved to the draft at once and comes back with the redrawn canvas.

Each edit posts the draft revision it was made on (#draft-revision, inside the canvas, redrawn with it); a stale one
is refused (409 DRAFT_CONFLICT) with a message and a reload link in #builder-status, never a silent overwrite.
Responses: the side panel (#builder-panel) as the main swap where the panel shows something, the canvas and the
history buttons as out-of-band swaps.
"""
from flask import Blueprint, g, make_response, render_template, request
from jinja2_fragments.flask import render_block

from atlas.core import flowchart, steps
from atlas.errors import AtlasError, InsufficientPermissions, NotFound
from atlas.services import drafts
from atlas.services.workflows import get_workflow
from atlas.web.builder_pages import draft_context, draft_node, known_type, node_fields
from atlas.web.schema_forms import apply_op, config_from_form
from atlas.web.session import login_required

bp = Blueprint("builder_edits", __name__, url_prefix="/workflows/<workflow_id>/builder")
PAGE = "builder/page.html"


@bp.errorhandler(drafts.DraftConflict)
def conflict(error):
    """Someone else saved first: say who and when, change nothing, offer a reload (never a silent overwrite)."""
    response = make_response(render_template("builder/_conflict.html", message=error.message), 409)
    response.headers["HX-Retarget"], response.headers["HX-Reswap"] = "#builder-panel", "innerHTML"
    return response


def _editable(workflow_id: str):
    """The workflow, for a member who may change it (staff and up)."""
    if not g.membership.allows("staff"):
        raise InsufficientPermissions("Viewers can look at the builder; editing needs the staff role.")
    return get_workflow(g.organization.id, workflow_id)


def _revision() -> int:
    try:
        return int(request.values.get("base_revision", ""))
    except ValueError:
        raise AtlasError("Reload the builder: this change did not say which draft it was made on.",
                         code="DRAFT_CONFLICT", status=409) from None


def _respond(workflow, draft, *, panel: str | None = None, node: str | None = None, fields=None,
             general_errors=(), picker_at: str | None = None):
    """The panel ('node', 'picker', 'closed' or None to leave it) and the canvas and history out of band."""
    context = draft_context(workflow, draft, selected=node)
    if fields is not None:
        context.update(fields=fields, general_errors=list(general_errors))
    parts = [f'<div id="builder" hx-swap-oob="innerHTML">{render_block(PAGE, "canvas", **context)}</div>',
             render_template("builder/_history.html", oob=True, **context)]
    if panel == "node":
        parts.insert(0, render_block(PAGE, "panel", **context))
    elif panel == "picker":
        parts.insert(0, render_template("builder/_picker.html", at=picker_at, **context))
    response = make_response("".join(parts))
    if panel is None:
        response.headers["HX-Reswap"] = "none"  # the panel stays as the person left it (focus, cursor)
    elif panel == "closed":
        response.headers["HX-Trigger"] = "builder:close-panel"
    return response


@bp.route("/picker")
@login_required
def picker(workflow_id):
    """The step picker for one connector: categories, search, descriptions."""
    workflow = _editable(workflow_id)
    context = draft_context(workflow, drafts.get_draft(g.organization.id, workflow.id))
    return render_template("builder/_picker.html", at=request.args.get("at", "start"), **context)


@bp.route("/insert", methods=["POST"])
@login_required
def insert(workflow_id):
    """Add the chosen step on the connector, and open it."""
    workflow = _editable(workflow_id)
    before = drafts.get_draft(g.organization.id, workflow.id)
    draft = drafts.apply_edit(g.organization.id, g.user.id, workflow.id, base_revision=_revision(), action="insert",
                              at=request.form.get("at", "start"), step_type=request.form.get("step_type", ""))
    added = next((n["id"] for n in draft.definition["nodes"]
                  if n["id"] not in {m["id"] for m in before.definition["nodes"]}), None)
    return _respond(workflow, draft, panel="node", node=added, fields=node_fields(workflow, draft, added))


@bp.route("/nodes/<node_id>/config", methods=["POST"])
@login_required
def config(workflow_id, node_id):
    """Save the step's config when it is valid; otherwise (or for add rule, add group...) redraw the form."""
    workflow = _editable(workflow_id)
    draft = drafts.get_draft(g.organization.id, workflow.id)
    node = draft_node(draft, node_id)
    step_type = steps.get(node["type"])
    values, errors = config_from_form(step_type.config_schema, request.form, check=step_type.check)
    op = request.form.get("op") or "save"
    if op != "save":
        values = apply_op(step_type.config_schema, values, op)
        return _redraw(workflow, draft, node_id, values, {})
    if errors:
        return _redraw(workflow, draft, node_id, values, errors)
    draft = drafts.apply_edit(g.organization.id, g.user.id, workflow.id, base_revision=_revision(),
                              action="set_config", node_id=node_id, config=values)
    return _respond(workflow, draft)


def _redraw(workflow, draft, node_id, values, errors):
    """The panel again, with what was typed and what is wrong, nothing saved."""
    fields = node_fields(workflow, draft, node_id, values=values, errors=errors)
    general = [message for name, message in errors.items() if name == "config"]
    context = draft_context(workflow, draft, selected=node_id)
    return render_block(PAGE, "panel", fields=fields, general_errors=general, **context)


@bp.route("/nodes/<node_id>/<action>", methods=["POST"])
@login_required
def edit(workflow_id, node_id, action):
    """Rename, duplicate or delete a step (a branching step asks which branch stays)."""
    workflow = _editable(workflow_id)
    draft = drafts.get_draft(g.organization.id, workflow.id)
    node = draft_node(draft, node_id)
    if action == "rename":
        draft = drafts.apply_edit(g.organization.id, g.user.id, workflow.id, base_revision=_revision(),
                                  action="rename", node_id=node_id, name=request.form.get("name", ""))
        return _respond(workflow, draft, panel="node", node=node_id, fields=node_fields(workflow, draft, node_id))
    if action == "duplicate":
        draft = drafts.apply_edit(g.organization.id, g.user.id, workflow.id, base_revision=_revision(),
                                  action="duplicate", node_id=node_id)
        return _respond(workflow, draft)
    if action == "delete":
        branches = steps.get(node["type"]).exits(node.get("config") or {}) if known_type(node["type"]) else []
        if branches and not request.form.get("keep_branch"):
            context = draft_context(workflow, draft, selected=node_id)
            words = {b: flowchart.branch_label(node["type"], b) for b in branches}
            return render_template("builder/_delete_branch.html", branches=branches, branch_labels=words, **context)
        draft = drafts.apply_edit(g.organization.id, g.user.id, workflow.id, base_revision=_revision(),
                                  action="delete", node_id=node_id, keep_branch=request.form.get("keep_branch"))
        return _respond(workflow, draft, panel="closed")
    raise NotFound("There is no such builder action.")


@bp.route("/<direction>", methods=["POST"])
@login_required
def history(workflow_id, direction):
    """Undo or redo one change of the draft (Ctrl+Z, Ctrl+Shift+Z)."""
    workflow = _editable(workflow_id)
    if direction not in ("undo", "redo"):
        raise NotFound("There is no such builder action.")
    move = drafts.undo if direction == "undo" else drafts.redo
    return _respond(workflow, move(g.organization.id, g.user.id, workflow.id, _revision()), panel="closed")
