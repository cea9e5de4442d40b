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
from atlas.web.schema_form_input import apply_op, config_from_form
from atlas.web.session import login_required

bp = Blueprint("builder_edits", __name__, url_prefix="/workflows/<workflow_id>/builder")
PAGE = "builder/page.html"


@bp.errorhandler(drafts.DraftConflict)
def conflict(error):
    """Someone else saved first: say who and when, change nothing, offer a reload (never a silent overwrite)."""
    response = make_response(render_template("builder/_conflict.html", message=error.message), 409)
    response.headers["HX-Retarget"], response.headers["HX-Reswap"] = "#builder-panel", "innerHTML"
    return response


def editable(workflow_id: str):
    """The workflow, for a member who may change it (staff and up)."""
    if not g.membership.allows("staff"):
        raise InsufficientPermissions("Viewers can look at the builder; editing needs the staff role.")
    return get_workflow(g.organization.id, workflow_id)


def revision() -> int:
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
    workflow = editable(workflow_id)
    context = draft_context(workflow, drafts.get_draft(g.organization.id, workflow.id))
    return render_template("builder/_picker.html", at=request.args.get("at", "start"), **context)


@bp.route("/insert", methods=["POST"])
@login_required
def insert(workflow_id):
    """Add the chosen step on the connector, and open it."""
    workflow = editable(workflow_id)
    before = drafts.get_draft(g.organization.id, workflow.id)
    draft = drafts.apply_edit(g.organization.id, g.user.id, workflow.id, base_revision=revision(), action="insert",
                              at=request.form.get("at", "start"), step_type=request.form.get("step_type", ""))
    added = next((n["id"] for n in draft.definition["nodes"]
                  if n["id"] not in {m["id"] for m in before.definition["nodes"]}), None)
    return _respond(workflow, draft, panel="node", node=added, fields=node_fields(workflow, draft, added))


@bp.route("/nodes/<node_id>/config", methods=["POST"])
@login_required
def config(workflow_id, node_id):
    """Save the step's config when it is valid; otherwise (or for add rule, add group...) redraw the form."""
    workflow = editable(workflow_id)
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
    draft = drafts.apply_edit(g.organization.id, g.user.id, workflow.id, base_revision=revision(),
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
    workflow = editable(workflow_id)
    draft = drafts.get_draft(g.organization.id, workflow.id)
    node = draft_node(draft, node_id)
    if action == "rename":
        draft = drafts.apply_edit(g.organization.id, g.user.id, workflow.id, base_revision=revision(),
                                  action="rename", node_id=node_id, name=request.form.get("name", ""))
        return _respond(workflow, draft, panel="node", node=node_id, fields=node_fields(workflow, draft, node_id))
    if action == "duplicate":
        draft = drafts.apply_edit(g.organization.id, g.user.id, workflow.id, base_revision=revision(),
                                  action="duplicate", node_id=node_id)
        return _respond(workflow, draft)
    if action == "delete":
        branches = steps.get(node["type"]).exits(node.get("config") or {}) if known_type(node["type"]) else []
        if branches and not request.form.get("keep_branch"):
            context = draft_context(workflow, draft, selected=node_id)
            words = {b: flowchart.branch_label(node["type"], b) for b in branches}
            return render_template("builder/_delete_branch.html", branches=branches, branch_labels=words, **context)
        draft = drafts.apply_edit(g.organization.id, g.user.id, workflow.id, base_revision=revision(),
                                  action="delete", node_id=node_id, keep_branch=request.form.get("keep_branch"))
        return _respond(workflow, draft, panel="closed")
    raise NotFound("There is no such builder action.")


@bp.route("/<direction>", methods=["POST"])
@login_required
def history(workflow_id, direction):
    """Undo or redo one change of the draft (Ctrl+Z, Ctrl+Shift+Z)."""
    workflow = editable(workflow_id)
    if direction not in ("undo", "redo"):
        raise NotFound("There is no such builder action.")
    move = drafts.undo if direction == "undo" else drafts.redo
    return _respond(workflow, move(g.organization.id, g.user.id, workflow.id, revision()), panel="closed")


# --- Moving a step: a drag on the canvas (builder-move.js) or Move up / Move down in the panel (_move_control.html) --

@bp.app_template_global("move_places")
def move_places(flow: flowchart.Flow, node_id: str) -> dict:
    """Where Move up / Move down take a step in its own path: {"up": key, "down": key, "fixed": why it cannot}.

    Up puts the step before the item above it (a step, or a whole branch when the step is where its arms meet);
    down puts it after the item below it (after a whole branch: where its arms meet). A step first or last in its
    path has None that way; a branching step, or one the trigger does not reach, has neither and says why."""
    found = _path_of(flow.items, flow.start_insert, node_id)
    if found is None:
        return {"up": None, "down": None, "fixed": "This step is not connected to the trigger yet, so it has no "
                                                    "path to move along."}
    items, entry, at = found
    if isinstance(items[at], flowchart.Branch):
        return {"up": None, "down": None, "fixed": "This step has branches, so it cannot be moved: move the steps "
                                                    "around it instead."}
    if _ends_run(items[at]):
        return {"up": None, "down": None, "fixed": "This step ends the run, so it stays at the end of its path."}
    keys = [entry] + [_key_after(item) for item in items]  # keys[i]: the connector just above items[i]
    below = items[at + 1] if at + 1 < len(items) else None
    can_pass = isinstance(below, flowchart.Branch) or (isinstance(below, flowchart.Step) and not _ends_run(below))
    return {"up": keys[at - 1] if at > 0 else None, "down": _key_after(below) if can_pass else None, "fixed": None}


def _ends_run(item) -> bool:
    """Whether the item is a step after which nothing can come (an "end" step)."""
    try:
        return isinstance(item, flowchart.Step) and steps.get(item.node.type).terminal
    except steps.UnknownStepType:
        return False


def _path_of(items: tuple, entry: str | None, node_id: str):
    """(the items of the path holding the step's card, the key above that path, the card's index) or None."""
    for index, item in enumerate(items):
        if getattr(item, "node", None) is not None and item.node.id == node_id:
            return items, entry, index
        for arm in getattr(item, "arms", ()):
            found = _path_of(arm.items, arm.insert, node_id)
            if found:
                return found
    return None


def _key_after(item) -> str | None:
    """The insertion key just below an item: a step's connector, a branch's join, nothing after an end or a jump."""
    if isinstance(item, flowchart.Step):
        return item.insert
    return item.join_insert if isinstance(item, flowchart.Branch) else None


def _move_target(workflow, draft, node_id: str, to: str) -> str:
    """An insertion key as sent by a drag, or "up" / "down" from the panel worked out on the draft as it is now."""
    if to not in ("up", "down") or revision() != draft.revision:  # a stale draft: apply_edit refuses it (409)
        return to
    place = move_places(draft_context(workflow, draft)["flow"], node_id)[to]
    if place is None:
        where = "first" if to == "up" else "last"
        raise AtlasError(f"This step is already {where} in its path (or has branches), so it cannot move {to}.",
                         code="INVALID_EDIT", status=422)
    return place


@bp.route("/nodes/<node_id>/move", methods=["POST"])
@login_required
def move(workflow_id, node_id):
    """Move a step to the connector `to` (an insertion key, or up / down its path); the panel stays as it is."""
    workflow = editable(workflow_id)
    draft = drafts.get_draft(g.organization.id, workflow.id)
    draft_node(draft, node_id)
    to = _move_target(workflow, draft, node_id, request.form.get("to", ""))
    draft = drafts.apply_edit(g.organization.id, g.user.id, workflow.id, base_revision=revision(), action="move",
                              node_id=node_id, to=to)
    response = _respond(workflow, draft)
    shown = request.form.get("panel_node")  # the step the panel shows: its Move up / Move down, redrawn
    if shown and any(n.get("id") == shown for n in draft.definition.get("nodes", [])):
        context = draft_context(workflow, draft, selected=shown)
        response.set_data(response.get_data(as_text=True)
                          + render_template("builder/_move_control.html", oob=True, **context))
    return response
