"""The workflow builder: the draft drawn as a flowchart, its problems, and a side panel for one step.

canvas_context(workflow, workflow_data) draws any workflowData; draft_context draws the workflow's draft (what the
builder edits: atlas.services.drafts). Every connector's "+" carries its insertion key (data-insert) and opens the
step picker; every card carries data-node-id and opens /workflows/<id>/builder/nodes/<node_id> in #builder-panel,
with the step's config form for staff (builder_edits.py saves the changes).
"""
from flask import Blueprint, g, make_response, render_template, request
from jinja2_fragments.flask import render_block

from atlas.core import flowchart, steps
from atlas.core import triggers as catalog
from atlas.core.definition import DefinitionError, WorkflowDefinition
from atlas.errors import AtlasError, NotFound
from atlas.services import auth, builder_options, drafts
from atlas.services.workflows import get_workflow, validate_workflow
from atlas.web.schema_forms import fields_for
from atlas.web.session import login_required
from atlas.web.variables import variables_for

bp = Blueprint("builder_pages", __name__, url_prefix="/workflows/<workflow_id>/builder")
SEVERITIES = ("error", "warning", "suggestion")


class NodeNotFound(NotFound):
    code, message = "NODE_NOT_FOUND", "This workflow has no such step."


@bp.route("")
@login_required
def page(workflow_id):
    """The builder: the trigger, the steps as a flowchart, and the problems validation finds."""
    workflow = get_workflow(g.organization.id, workflow_id)
    return render_template("builder/page.html", **draft_context(workflow, drafts.get_draft(g.organization.id,
                                                                                          workflow.id)))


@bp.route("/nodes/<node_id>")
@login_required
def node(workflow_id, node_id):
    """One step in the side panel: just the panel for htmx, else the whole builder with the panel open."""
    workflow = get_workflow(g.organization.id, workflow_id)
    draft = drafts.get_draft(g.organization.id, workflow.id)
    context = draft_context(workflow, draft, selected=node_id)
    if context["selected"] is None:
        raise NodeNotFound()
    if context["can_edit"]:
        context["fields"], context["general_errors"] = node_fields(workflow, draft, node_id), []
    if request.headers.get("HX-Request"):
        response = make_response(render_block("builder/page.html", "panel", **context))
    else:
        response = make_response(render_template("builder/page.html", **context))
    response.vary.add("HX-Request")
    return response


def draft_context(workflow, draft, selected: str | None = None) -> dict:
    """canvas_context for the workflow's draft (its trigger and issues), with its revision and history and whether this
    member may edit."""
    return {**canvas_context(workflow, draft.definition, selected=selected, draft=draft), "draft": draft,
            "can_edit": g.membership.allows("staff"), "step_groups": _step_groups()}


def _step_groups() -> list[tuple[str, list]]:
    """The step picker's sections: registered step types by category (flow control first)."""
    order = {"control": 0, "communication": 1, "crm": 2, "integration": 3}
    names = {"control": "Flow control", "communication": "Messages", "crm": "CRM", "integration": "Integrations"}
    kinds = sorted(steps.all_types(), key=lambda t: (order.get(t.category, 9), t.name))
    groups: dict[str, list] = {}
    for kind in kinds:
        groups.setdefault(names.get(kind.category, kind.category.title()), []).append(kind)
    return list(groups.items())


def canvas_context(workflow, data: dict, selected: str | None = None, draft=None) -> dict:
    """Everything the builder page draws for this workflowData; `selected` names the step the panel shows; a `draft`
    (drafts.Draft) gives the trigger and the issues instead of the live workflow."""
    definition, issues = _draft_checked(workflow, draft) if draft is not None else _checked(workflow, data)
    cards = {n.id: _card(n, issues) for n in definition.nodes}
    trigger_type = (draft or workflow).trigger_type
    trigger = {"name": catalog.get(trigger_type).name if catalog.is_known(trigger_type) else "No trigger yet",
               "summary": flowchart.trigger_summary(trigger_type, (draft or workflow).trigger_config),
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


def _draft_checked(workflow, draft) -> tuple[WorkflowDefinition, list[dict]]:
    """The draft's definition and the issues the draft service found (its trigger and settings), errors first."""
    try:
        definition = WorkflowDefinition.from_dict(draft.definition)
    except DefinitionError:
        return _checked(workflow, draft.definition)
    rank = {severity: place for place, severity in enumerate(SEVERITIES)}
    return definition, sorted(draft.issues, key=lambda i: rank.get(i.get("severity"), len(rank)))


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


def node_fields(workflow, draft, node_id: str | None, *, values=None, errors=None):
    """The config form's fields of one step of the draft, with the variables the steps before it provide."""
    node = draft_node(draft, node_id) if node_id else None
    if node is None or not known_type(node["type"]):
        return None
    options = builder_options.options_for(g.organization.id)
    variables = variables_for(draft.definition, node_id, draft.trigger_type, custom_fields=options["custom_fields"])
    return fields_for(steps.get(node["type"]).config_schema, node.get("config") if values is None else values,
                      options=options, variables=variables, errors=errors or {})


def draft_node(draft, node_id: str) -> dict:
    node = next((n for n in draft.definition.get("nodes", []) if n.get("id") == node_id), None)
    if node is None:
        raise NodeNotFound()
    return node


def known_type(key: str) -> bool:
    try:
        steps.get(key)
    except steps.UnknownStepType:
        return False
    return True
