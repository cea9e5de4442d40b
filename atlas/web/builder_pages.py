"""The workflow builder: the definition drawn as a flowchart, its problems, and a side panel for one step.

Read-only for now. The hooks for editing: canvas_context(workflow, workflow_data) draws any workflowData (a draft's,
say); every connector's "+" carries its insertion key (data-insert); every card carries data-node-id and opens
/workflows/<id>/builder/nodes/<node_id> in #builder-panel, whose config part is builder/_node_config.html.
"""
from flask import Blueprint, g, make_response, render_template, request
from jinja2_fragments.flask import render_block

from atlas.core import flowchart, steps
from atlas.core import triggers as catalog
from atlas.core.definition import DefinitionError, WorkflowDefinition
from atlas.errors import AtlasError, NotFound
from atlas.services import auth
from atlas.services.workflows import get_workflow, validate_workflow
from atlas.web.session import login_required

bp = Blueprint("builder_pages", __name__, url_prefix="/workflows/<workflow_id>/builder")
SEVERITIES = ("error", "warning", "suggestion")


class NodeNotFound(NotFound):
    code, message = "NODE_NOT_FOUND", "This workflow has no such step."


@bp.route("")
@login_required
def page(workflow_id):
    """The builder: the trigger, the steps as a flowchart, and the problems validation finds."""
    workflow = get_workflow(g.organization.id, workflow_id)
    return render_template("builder/page.html", **canvas_context(workflow, workflow.workflow_data))


@bp.route("/nodes/<node_id>")
@login_required
def node(workflow_id, node_id):
    """One step in the side panel: just the panel for htmx, else the whole builder with the panel open."""
    workflow = get_workflow(g.organization.id, workflow_id)
    context = canvas_context(workflow, workflow.workflow_data, selected=node_id)
    if context["selected"] is None:
        raise NodeNotFound()
    if request.headers.get("HX-Request"):
        response = make_response(render_block("builder/page.html", "panel", **context))
    else:
        response = make_response(render_template("builder/page.html", **context))
    response.vary.add("HX-Request")
    return response


def canvas_context(workflow, data: dict, selected: str | None = None) -> dict:
    """Everything the builder page draws for this workflowData; `selected` names the step the panel shows."""
    definition, issues = _checked(workflow, data)
    cards = {n.id: _card(n, issues) for n in definition.nodes}
    trigger_type = workflow.trigger_type
    trigger = {"name": catalog.get(trigger_type).name if catalog.is_known(trigger_type) else "No trigger yet",
               "summary": flowchart.trigger_summary(trigger_type, workflow.trigger_config),
               "icon": catalog.get(trigger_type).icon if catalog.is_known(trigger_type) else "zap",
               "errors": [i for i in issues if not i.get("node_id") and i["severity"] == "error"]}
    return {"workflow": workflow, "flow": flowchart.structure(definition), "cards": cards, "trigger": trigger,
            "problems": [_problem(i, cards) for i in issues], "selected": _selected(selected, cards),
            "counts": {s: sum(i["severity"] == s for i in issues) for s in SEVERITIES},
            "memberships": auth.memberships(g.user)}


def _checked(workflow, data: dict) -> tuple[WorkflowDefinition, list[dict]]:
    """The parsed definition and its issues, errors first; a malformed document draws as empty with its problems."""
    try:
        report = validate_workflow(workflow.organization_id, workflow.id, data)
        definition = WorkflowDefinition.from_dict(data)
    except (AtlasError, DefinitionError) as exc:
        issues = getattr(exc, "validation", None) or getattr(exc, "issues", None) or []
        return WorkflowDefinition(nodes=(), edges=()), [{"severity": "error", **i} for i in issues]
    return definition, report["errors"] + report["warnings"] + report["suggestions"]


def _card(node, issues: list[dict]) -> dict:
    """What a card shows: its step type's name, category and icon, the line in words, and its own issues."""
    try:
        step_type = steps.get(node.type)
    except steps.UnknownStepType:
        step_type = None
    mine = [i for i in issues if i.get("node_id") == node.id]
    title, line = node.name or (step_type.name if step_type else node.id), flowchart.summary(node, step_type)
    return {"node": node, "step_type": step_type, "type_name": step_type.name if step_type else node.type,
            "category": step_type.category if step_type else "unknown", "icon": step_type.icon if step_type else "",
            "title": title, "summary": "" if line.casefold() == title.casefold() else line, "issues": mine,
            "errors": sum(i["severity"] == "error" for i in mine),
            "warnings": sum(i["severity"] != "error" for i in mine)}


def _problem(issue: dict, cards: dict) -> dict:
    """A problem as the panel lists it: where it is (a card, the trigger, or the workflow) and what it says."""
    node_id = issue.get("node_id")
    if node_id in cards:
        where, anchor = cards[node_id]["title"], f"#node-{node_id}"
    elif str(issue.get("path") or "").startswith("trigger") or issue.get("code") == "NO_TRIGGER":
        where, anchor = "Trigger", "#trigger-card"
    else:
        where, anchor = "Workflow", None
    return {"severity": issue["severity"], "message": issue["message"], "code": issue.get("code"), "where": where,
            "anchor": anchor}


def _selected(node_id: str | None, cards: dict) -> dict | None:
    """The card the side panel shows, with its config as readable rows."""
    card = cards.get(node_id) if node_id else None
    if card is None:
        return None
    return {**card, "rows": flowchart.config_rows(card["node"], card["step_type"])}
