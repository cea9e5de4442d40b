"""Publishing from the builder: the header's Publish / Versions / Activate / Pause, the publish panel with safe
publishing for runs in flight, and the version list with restore. Panels fill #builder-panel; every change names
the draft revision it was made on (the canvas's #draft-revision, sent with hx-include).
"""
from flask import Blueprint, g, make_response, render_template, request

from atlas.core import edits
from atlas.errors import (
    AtlasError,
    Conflict,
    InsufficientPermissions,
    ValidationFailed,
)
from atlas.models import WorkflowStatus
from atlas.services import audit, drafts, inflight
from atlas.services.workflows import get_workflow, update_workflow
from atlas.web.builder_edits import revision
from atlas.web.session import login_required

bp = Blueprint("builder_publish", __name__, url_prefix="/workflows/<workflow_id>/builder")
CHOICE_LABELS = {"keep": "Finish on the old version", "move": "Move to the new version at the matching step",
                 "exit": "Exit them"}


@bp.route("/publish")
@login_required
def publish_panel(workflow_id):
    """What publishing the draft will change, what stops it, and the runs in flight to decide for."""
    _require_staff()
    return _panel("builder/_publish_panel.html", _publish_context(workflow_id))


@bp.route("/publish", methods=["POST"])
@login_required
def publish(workflow_id):
    """Publish the draft, then carry out the choice for runs in flight; answer with the version list."""
    _require_staff()
    choice = request.form.get("choice") or "keep"
    try:
        if choice not in inflight.CHOICES:
            raise ValidationFailed(f"Choose what happens to runs in flight: {', '.join(inflight.CHOICES)}.")
        workflow, version, _ = drafts.publish(g.organization.id, g.user.id, workflow_id, revision())
    except AtlasError as exc:
        return _panel("builder/_publish_panel.html", _publish_context(workflow_id, error=exc, choice=choice),
                      exc.status)
    outcome = inflight.apply(g.organization.id, workflow.id, version.version, choice)
    _audit("workflow.publish", workflow.id, version=version.version, inFlight=choice, **_counts(outcome))
    context = _versions_context(workflow_id, published=version.version, outcome=outcome, oob=True)
    return _panel("builder/_versions_panel.html", context)


@bp.route("/versions")
@login_required
def versions_panel(workflow_id):
    """Every published version, newest first, with who published it, when and what it changed."""
    return _panel("builder/_versions_panel.html", _versions_context(workflow_id))


@bp.route("/versions/<int:version>/restore", methods=["POST"])
@login_required
def restore(workflow_id, version):
    """Copy a version into the draft (a change that can be undone), then reload the builder to show it."""
    _require_staff()
    try:
        drafts.restore(g.organization.id, g.user.id, workflow_id, version, revision())
    except AtlasError as exc:
        return _panel("builder/_versions_panel.html", _versions_context(workflow_id, error=exc), exc.status)
    _audit("workflow.restore", workflow_id, version=version)
    response = make_response("", 200)
    response.headers["HX-Refresh"] = "true"
    return response


@bp.route("/activate", methods=["POST"], defaults={"action": "activate"}, endpoint="activate")
@bp.route("/pause", methods=["POST"], defaults={"action": "pause"}, endpoint="pause")
@login_required
def set_status(workflow_id, action):
    """Turn the workflow on or off; activation is refused with its problems listed while it has errors."""
    _require_staff()
    status = WorkflowStatus.ACTIVE if action == "activate" else WorkflowStatus.PAUSED
    workflow = get_workflow(g.organization.id, workflow_id)
    try:
        _check_toggle(workflow, action)
        workflow = update_workflow(g.organization.id, g.user.id, workflow.id, {"status": status}).workflow
    except AtlasError as exc:
        names = {n["id"]: n.get("name") or n["id"] for n in workflow.workflow_data.get("nodes", [])}
        context = {"workflow": workflow, "refused": exc.message, "errors": problems(exc.validation or [], names)}
        response = _panel("builder/_publish_panel.html", context, exc.status)
        response.headers.update({"HX-Retarget": "#builder-panel", "HX-Reswap": "innerHTML"})
        return response
    _audit("workflow.update", workflow.id, status=status)
    return render_template("builder/_publish_actions.html", workflow=workflow, oob_status=True)


def _check_toggle(workflow, action: str) -> None:
    """Activate turns a paused workflow back on, pause an active one; a new workflow is turned on by publishing."""
    allowed = {"activate": WorkflowStatus.PAUSED, "pause": WorkflowStatus.ACTIVE}[action]
    if workflow.status != allowed:
        hint = " Publish it to turn it on." if workflow.status == WorkflowStatus.DRAFT else ""
        raise Conflict(f"The workflow is {workflow.status}, so it cannot be {action}d.{hint}",
                       code="WORKFLOW_STATUS_UNCHANGED")


@bp.app_context_processor
def _template_helpers() -> dict:
    return {"publish_actions": publish_actions}


def publish_actions(workflow, draft=None) -> dict:
    """The header buttons' state: shown to staff and up; Publish disabled with its reason; Activate or Pause."""
    if not g.get("membership") or not g.membership.allows("staff"):
        return {"show": False}
    status, reason = workflow.status, None
    if status == WorkflowStatus.ARCHIVED:
        reason = "Archived: restore it to publish"
    elif status != WorkflowStatus.DRAFT:  # a new workflow is published (turned on) even unchanged
        draft = draft or drafts.get_draft(workflow.organization_id, workflow.id)
        reason = None if draft.dirty else "No changes to publish"
    toggle = {WorkflowStatus.ACTIVE: "pause", WorkflowStatus.PAUSED: "activate"}.get(status)
    return {"show": True, "reason": reason, "toggle": toggle,
            "label": "Publish and turn on" if status == WorkflowStatus.DRAFT else "Publish"}


def problems(issues: list[dict], names: dict) -> list[dict]:
    """Errors as the panels list them, each linking to its card (or the trigger)."""
    out = []
    for issue in (i for i in issues if i.get("severity", "error") == "error"):
        node_id = issue.get("node_id")
        if node_id:
            where, anchor = names.get(node_id) or node_id, f"#node-{node_id}"
        elif str(issue.get("path") or "").startswith("trigger"):
            where, anchor = "Trigger", "#trigger-card"
        else:
            where, anchor = "Workflow", None
        out.append({"message": issue.get("message"), "where": where, "anchor": anchor, "code": issue.get("code")})
    return out


def pending_changes(workflow, draft) -> list[str]:
    """What publishing the draft changes on the live workflow, in words."""
    if workflow.status == WorkflowStatus.DRAFT:
        count = len(draft.definition.get("nodes", []))
        return [f"First version: {count} step{'s' if count != 1 else ''}, started by {draft.trigger_type}"]
    return edits.change_summary({live: getattr(workflow, live) for live in drafts.LIVE.values()},
                                {live: getattr(draft, key) for key, live in drafts.LIVE.items()})


def _publish_context(workflow_id: str, *, error: AtlasError | None = None, choice: str = "keep") -> dict:
    """Everything the publish panel shows."""
    org_id = g.organization.id
    workflow, draft = get_workflow(org_id, workflow_id), drafts.get_draft(org_id, workflow_id)
    names = {n["id"]: n.get("name") or n["id"] for n in draft.definition.get("nodes", [])}
    flight = inflight.in_flight(org_id, workflow.id) if workflow.status != WorkflowStatus.DRAFT else []
    return {"workflow": workflow, "draft": draft, "changes": pending_changes(workflow, draft),
            "errors": problems(draft.issues, names), "actions": publish_actions(workflow, draft),
            "flight": flight, "flight_total": sum(f["count"] for f in flight),
            "flight_waiting": sum(f["waiting"] for f in flight),
            "unmatched": inflight.unmatched(flight, draft.definition), "choice": choice,
            "choices": CHOICE_LABELS, "error": error, "conflict": isinstance(error, drafts.DraftConflict)}


def _versions_context(workflow_id: str, *, error: AtlasError | None = None, published: int | None = None,
                      outcome: dict | None = None, oob: bool = False) -> dict:
    """Everything the version list shows."""
    workflow = get_workflow(g.organization.id, workflow_id)
    return {"workflow": workflow, "versions": drafts.versions(g.organization.id, workflow.id),
            "can_restore": g.membership.allows("staff") and workflow.status != WorkflowStatus.ARCHIVED,
            "tz": g.organization.timezone, "error": error, "conflict": isinstance(error, drafts.DraftConflict),
            "published": published, "outcome": outcome, "oob": oob, "oob_actions": oob, "oob_status": oob}


def _panel(template: str, context: dict, status: int = 200):
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def _counts(outcome: dict) -> dict:
    return {key: outcome[key] for key in ("moved", "kept", "exited")}


def _require_staff() -> None:
    """Publishing, restoring and turning a workflow on or off is for staff and up, as in the API."""
    if not g.membership.allows("staff"):
        raise InsufficientPermissions()


def _audit(action: str, workflow_id: str, **details) -> None:
    """An audit entry like the API's, marked as done from the builder."""
    audit.record(action, organization_id=g.organization.id, user_id=g.user.id, target_type="workflow",
                 target_id=workflow_id, status_code=200, request_id=g.get("request_id"), ip=request.remote_addr,
                 details={"channel": "web", **details})
