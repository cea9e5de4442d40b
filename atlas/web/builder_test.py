"""The builder's test panel: run the draft in test mode with a sample contact and trigger payload, see every step.

The POST validates and hands the run to a worker (services.testing.start_test: waits fast-forwarded, external
services mocked) and answers 202 at once with a placeholder. While it runs, builder-test.js follows the workflow's
live stream and lights each card as its step completes; it names the run in advance (run_id, a UUID it makes) so it
can pick that run's events out of the workflow's stream from the first one. When the run ends (its stream event, or
the placeholder's own polling) the placeholder fetches the results.
"""
import json
import uuid

from flask import Blueprint, g, make_response, render_template, request, url_for
from jinja2_fragments.flask import render_block

from atlas.core import flowchart, steps
from atlas.core import triggers as catalog
from atlas.core.definition import DefinitionError, WorkflowDefinition
from atlas.core.storable import all_storable
from atlas.errors import AtlasError, InsufficientPermissions, NotFound
from atlas.models.base import utcnow
from atlas.services import contacts, drafts, testing
from atlas.services.executions import get_execution
from atlas.services.workflows import get_workflow
from atlas.web import execution_display as display
from atlas.web.session import login_required

bp = Blueprint("builder_test", __name__, url_prefix="/workflows/<workflow_id>/builder")
CONTACT_CHOICES = 50  # contacts in the select; typing in the search box finds the others
MAX_PAYLOAD_BYTES = 64 * 1024
DRAFT_HAS_ERRORS = "The draft has errors, so it cannot run. Fix these first (the Problems list shows them too):"
WAITS = {"wait", "wait_until", "wait_for_event"}  # fast-forwarded in a test
NO_WORKER_SECONDS = 5  # a test not started by then: say that no worker has taken it


@bp.route("/test")
@login_required
def panel(workflow_id):
    """The test panel for #builder-panel: a contact, the trigger payload (the trigger's sample) and Run test."""
    draft = drafts.get_draft(g.organization.id, workflow_id)
    form = {"contact_id": "", "q": "", "payload": _pretty(_sample(draft.trigger_type))}
    return _fragment(render_template("builder/_test_panel.html", **_panel_context(draft, form, {})))


@bp.route("/test/contacts")
@login_required
def contact_options(workflow_id):
    """The contact select's options for what was typed in its search box (the chosen one stays listed)."""
    get_workflow(g.organization.id, workflow_id)  # another organization's workflow is a 404 here too
    form = {"contact_id": request.args.get("contact_id", ""), "q": request.args.get("q", "")[:100]}
    return _fragment(render_block("builder/_test_panel.html", "contact_options", choices=_choices(form), form=form))


@bp.route("/test", methods=["POST"])
@login_required
def run(workflow_id):
    """Start the draft in test mode on a worker: 202 and a placeholder that fetches the results when it ends, or
    why it did not start, with the form again showing any problem."""
    draft = drafts.get_draft(g.organization.id, workflow_id)
    if not g.membership.allows("staff"):
        raise InsufficientPermissions("Running a test needs the staff role or higher; viewers can look but not run.")
    form, test_data, errors = read_test_form(request.form)
    pending, refusal, status = None, None, 422
    if not errors:
        try:
            execution = testing.start_test(g.organization.id, g.user.id, draft.workflow_id, test_data,
                                           definition=draft.definition, trigger_type=draft.trigger_type,
                                           trigger_config=draft.trigger_config, execution_id=form["run_id"])
            pending, status = _pending(draft.workflow_id, execution.id, waited=0.0), 202
        except NotFound as exc:  # the chosen contact is gone (the workflow was found above)
            errors["contact_id"] = exc.message
        except AtlasError as exc:  # errors in the draft, a run id already used
            message = DRAFT_HAS_ERRORS if exc.code == "INVALID_WORKFLOW_DATA" else exc.message
            refusal = {"message": message, "issues": [i.get("message") for i in exc.validation or []][:10]}
            status = exc.status
    context = _result_context(draft, form, errors, None, refusal)
    context["pending"] = pending
    body = render_template("builder/_test_result.html", **context)  # and the fields again, each problem on its own
    return _fragment(body + render_block("builder/_test_panel.html", "fields", **context), status)


@bp.route("/test/<execution_id>")
@login_required
def result(workflow_id, execution_id):
    """A started test's results for #test-result once it has ended; until then the placeholder again."""
    draft = drafts.get_draft(g.organization.id, workflow_id)
    execution = get_execution(g.organization.id, draft.workflow_id, execution_id)
    report = testing.report(g.organization.id, execution.id)
    if report is None:
        waited = (utcnow() - execution.created_at).total_seconds() if execution.started_at is None else 0.0
        return _fragment(render_template("builder/_test_result.html",
                                         pending=_pending(draft.workflow_id, execution.id, waited)))
    context = _result_context(draft, {}, {}, report, None)
    return _fragment(render_template("builder/_test_result.html", **context))


def _pending(workflow_id: str, execution_id: str, waited: float) -> dict:
    """The placeholder of a test that has not ended: where to fetch its results, and whether no worker took it yet."""
    return {"id": execution_id, "no_worker": waited > NO_WORKER_SECONDS,
            "url": url_for("builder_test.result", workflow_id=workflow_id, execution_id=execution_id)}


def read_test_form(form) -> tuple[dict, dict, dict]:
    """(the values to show again, the testData to run, {field: problem}) from the posted form."""
    values = {"contact_id": form.get("contact_id", "").strip()[:64], "q": "", "payload": form.get("payload", ""),
              "run_id": _run_id(form.get("run_id", ""))}
    payload, problem = _payload(values["payload"])
    test_data = {"trigger": payload, **({"contactId": values["contact_id"]} if values["contact_id"] else {})}
    return values, test_data, {"payload": problem} if problem else {}


def _payload(text: str) -> tuple[dict, str | None]:
    """The payload textarea: a JSON object (empty means {}), or what is wrong with it."""
    if not text.strip():  # the text itself is parsed, so lines and columns match what the user sees
        return {}, None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PAYLOAD_BYTES:
        return {}, "Keep the payload under 64 KB."
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, f"This is not valid JSON: {exc.msg.lower()} at line {exc.lineno}, column {exc.colno}."
    except RecursionError:
        return {}, "This JSON is nested too deeply to read."
    if not isinstance(value, dict):
        return {}, 'The payload must be a JSON object in braces, such as {"formName": "Free trial"}.'
    if not all_storable(value):
        return {}, "The payload cannot contain NUL characters or unpaired surrogates."
    return value, None


def _run_id(text: str) -> str | None:
    """The id the page chose for the run, if it is a UUID; else the run gets one of its own."""
    try:
        return str(uuid.UUID(text.strip())) if text.strip() else None
    except ValueError:
        return None


def _sample(trigger_type: str | None) -> dict:
    """The trigger type's sample payload ({} for a workflow with no known trigger yet)."""
    return dict(catalog.get(trigger_type).sample_payload) if catalog.is_known(trigger_type) else {}


def _pretty(value) -> str:
    """Pretty JSON, as the panel shows payloads, configs and outputs."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _choices(form: dict) -> list[dict]:
    """The contacts the select offers: those matching the search, with the chosen one kept at the top."""
    rows, _ = contacts.list_contacts(g.organization.id, search=form.get("q") or None, limit=CONTACT_CHOICES)
    chosen = form.get("contact_id")
    if chosen and all(c.id != chosen for c in rows):
        try:
            rows = [contacts.get_contact(g.organization.id, chosen), *rows]
        except NotFound:
            pass
    return [{"id": c.id, "label": _contact_label(c)} for c in rows]


def _contact_label(contact) -> str:
    """How a contact reads in the select: "Sam Rivera (sam@example.com)"."""
    name = f"{contact.first_name or ''} {contact.last_name or ''}".strip() or "No name"
    return f"{name} ({contact.email})" if contact.email else name


def _panel_context(draft, form: dict, errors: dict) -> dict:
    """What the panel's template tests: the answers, not the questions."""
    workflow = get_workflow(g.organization.id, draft.workflow_id)
    trigger = catalog.get(draft.trigger_type).name if catalog.is_known(draft.trigger_type) else None
    return {"workflow": workflow, "form": form, "errors": errors, "choices": _choices(form), "trigger_name": trigger,
            "can_run": g.membership.allows("staff"), "role": g.membership.role,
            "stream_url": url_for("stream.Stream", workflow_id=workflow.id)}


def _result_context(draft, form: dict, errors: dict, result: dict | None, refusal: dict | None) -> dict:
    """The panel's context plus the run's steps as rows the template prints."""
    context = _panel_context(draft, form, errors)
    context.update(result=None, refusal=refusal, steps=[], oob=True)
    if result:
        nodes = _nodes(draft.definition)
        context["result"] = {"id": result["test_execution_id"], "status": result["status"], "error": result["error"],
                             "label": display.STATUS_LABELS.get(result["status"], result["status"]),
                             "took": display.duration_words(result["performance"]["total_ms"]),
                             "url": url_for("execution_pages.detail", workflow_id=draft.workflow_id,
                                            execution_id=result["test_execution_id"])}
        context["steps"] = [_step_row(r, nodes.get(r["node_id"])) for r in result["results"]]
    return context


def _nodes(data: dict) -> dict:
    """The draft's steps by id, for their names."""
    try:
        return {n.id: n for n in WorkflowDefinition.from_dict(data).nodes}
    except DefinitionError:
        return {}


def _step_row(record: dict, node) -> dict:
    """One step of the test: its name, status, branch, config and output as pretty JSON, and a fast-forwarded wait."""
    step_type = _step_type(record["step_type"])
    waited = record["step_type"] in WAITS
    return {"node_id": record["node_id"], "name": (node.name if node else None) or record["node_id"],
            "type": step_type.name if step_type else record["step_type"], "status": record["status"],
            "label": display.STATUS_LABELS.get(record["status"], str(record["status"]).title()),
            "attempt": record["attempt"], "branch": record["branch"], "error": record["error"],
            "took": display.duration_words(record["duration_ms"]),
            "waited": flowchart.summary(node, step_type) if waited and node and step_type else None,
            "input": _pretty(record["input"]) if record["input"] not in (None, {}) else None,
            "output": _pretty(record["output"]) if record["output"] not in (None, {}) else None}


def _step_type(key: str):
    """The registered step type, or None for one this app does not know."""
    try:
        return steps.get(key)
    except steps.UnknownStepType:
        return None


def _fragment(body: str, status: int = 200):
    """A fragment for htmx; it varies on HX-Request like the builder's other endpoints."""
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response
