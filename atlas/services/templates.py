"""Email and SMS templates: stored per organization, written in the same Jinja sandbox as step configs."""
from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from atlas.core import templating
from atlas.core.steps.messaging import SMS_MAX_CHARS
from atlas.errors import Conflict, NotFound, ValidationFailed
from atlas.extensions import db
from atlas.models import MessageTemplate, Workflow
from atlas.services.tenancy import scoped

CHANNELS = ("email", "sms")
NOUNS = {"email": "email template", "sms": "SMS template"}


class TemplateNotFound(NotFound):
    code, message = "TEMPLATE_NOT_FOUND", "Template not found."


def list_templates(org_id: str, channel: str) -> list[MessageTemplate]:
    """The organization's templates on one channel, by name."""
    query = scoped(MessageTemplate, org_id).where(MessageTemplate.channel == channel)
    return list(db.session.scalars(query.order_by(func.lower(MessageTemplate.name), MessageTemplate.id)))


def get_template(org_id: str, channel: str, template_id: str) -> MessageTemplate:
    """One template of the organization on this channel; another organization's id is simply not found."""
    template = db.session.scalar(scoped(MessageTemplate, org_id).where(
        MessageTemplate.channel == channel, MessageTemplate.id == template_id))
    if template is None:
        raise TemplateNotFound(f"{NOUNS[channel].capitalize()} not found.")
    return template


def create_template(org_id: str, channel: str, data: dict) -> MessageTemplate:
    """A new template, checked and committed."""
    template = MessageTemplate(organization_id=org_id, channel=channel, name=data["name"],
                               subject=data.get("subject"), body=data["body"])
    _check(template)
    return _save(template)


def update_template(org_id: str, channel: str, template_id: str, data: dict) -> MessageTemplate:
    """Change the fields given; the result is checked as a whole."""
    template = get_template(org_id, channel, template_id)
    for key in ("name", "subject", "body"):
        if key in data:
            setattr(template, key, data[key])
    try:
        _check(template)
    except (ValidationFailed, Conflict):
        db.session.rollback()  # the refused changes must not reach a later commit
        raise
    return _save(template)


def delete_template(org_id: str, channel: str, template_id: str) -> MessageTemplate:
    """Delete a template that no workflow uses (409 TEMPLATE_IN_USE names the workflows that do)."""
    template = get_template(org_id, channel, template_id)
    users = workflows_using(org_id, template_id)
    if users:
        raise Conflict(f"The template is used by {', '.join(users)}; change those steps first.",
                       code="TEMPLATE_IN_USE", details={"workflows": users})
    db.session.delete(template)
    db.session.commit()
    return template


def workflows_using(org_id: str, template_id: str) -> list[str]:
    """Names of the organization's workflows with a step that sends this template."""
    rows = db.session.execute(select(Workflow.name, Workflow.workflow_data).where(
        Workflow.organization_id == org_id, Workflow.status != "archived")).all()
    return sorted(name for name, data in rows
                  if any((node.get("config") or {}).get("templateId") == template_id
                         for node in (data or {}).get("nodes", []) if isinstance(node, dict)))


def _check(template: MessageTemplate) -> None:
    """The name is free, the text compiles in the sandbox and fits the channel."""
    if template.channel == "email" and not (template.subject or "").strip():
        raise ValidationFailed("An email template needs a subject.",
                               validation=[{"field": "subject", "message": "Must not be blank."}])
    if template.channel == "sms" and len(template.body) > SMS_MAX_CHARS:
        message = f"An SMS template can be at most {SMS_MAX_CHARS:,} characters; this one has {len(template.body):,}."
        raise ValidationFailed(message, code="SMS_TOO_LONG", validation=[{"field": "body", "message": message}])
    for field in ("subject", "body"):
        _compile(field, getattr(template, field))
    _name_free(template)


def _compile(field: str, text: str | None) -> None:
    """422 INVALID_TEMPLATE naming the field and the line when the text does not compile or reads an unknown root."""
    problems = templating.check(text) if text else []
    if problems:
        message = problems[0]["message"]
        line = re.search(r"line (\d+)", message) if problems[0]["code"] == "SYNTAX_ERROR" else None
        details = {"field": field, "line": int(line.group(1)) if line else None}
        raise ValidationFailed(f"The {field} is not a valid template: {message}", code="INVALID_TEMPLATE",
                               details=details, validation=[{"field": field, "message": message}])


def _name_free(template: MessageTemplate) -> None:
    """409 TEMPLATE_NAME_TAKEN when another template on the channel has the name, ignoring case."""
    with db.session.no_autoflush:  # the edited row must not reach the unique index before this check
        clash = db.session.scalar(scoped(MessageTemplate, template.organization_id).where(
            MessageTemplate.channel == template.channel, func.lower(MessageTemplate.name) == template.name.lower(),
            MessageTemplate.id != (template.id or "")))
    if clash is not None:
        raise _name_taken(template)


def _name_taken(template: MessageTemplate) -> Conflict:
    """The 409 for a name another template on the channel has."""
    return Conflict(f"There is already an {NOUNS[template.channel]} named {template.name!r}.",
                    code="TEMPLATE_NAME_TAKEN", details={"field": "name"})


def _save(template: MessageTemplate) -> MessageTemplate:
    """Commit; a concurrent insert of the same name is the same 409."""
    db.session.add(template)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise _name_taken(template) from None
    return template


def template_dict(template: MessageTemplate) -> dict:
    """A template as the API shows it, with the data paths it reads."""
    variables = set()
    for text in (template.subject, template.body):
        variables |= templating.references(text) if text else set()
    return {"id": template.id, "name": template.name, "channel": template.channel, "subject": template.subject,
            "body": template.body, "variables": sorted(variables), "created_at": template.created_at,
            "updated_at": template.updated_at}
