"""The contact policy across all workflows of an organization: consent, quiet hours, frequency caps.

The keys live in Organization.settings (see atlas/core/policy.py for their meaning and defaults). check() reads
them and the outbox, and answers a Verdict; record() leaves a skip or defer in the decision log.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from atlas.core import policy as core
from atlas.core.policy import DEFER, SEND, SKIP, Verdict  # noqa: F401  (re-exported for callers)
from atlas.errors import ValidationFailed
from atlas.extensions import db
from atlas.models import Message, MessageStatus, Organization
from atlas.services import decisions

KEYS = ("quietHours", "frequencyCaps", "cappedAction")
COUNTED = (MessageStatus.SENT, MessageStatus.QUEUED)  # what a cap counts: messages sent, or on their way


def check(org_id: str, contact: dict, channel: str, now: datetime) -> Verdict:
    """The policy's verdict on one message on `channel` to this contact now."""
    org = db.session.get(Organization, org_id)
    settings = org.settings if org else {}
    rules = core.parse(settings)
    cap = rules.caps.get(channel)
    sent = recent_sends(org_id, contact, channel, now - timedelta(days=cap.days)) if cap else []
    return core.evaluate(rules, contact, channel, now, sent=sent, org_tz=org.timezone if org else None)


def recent_sends(org_id: str, contact: dict, channel: str, since: datetime) -> list[datetime]:
    """When this contact was sent (or is being sent) messages on `channel` since then, from every workflow.

    A CRM contact is matched by id; a contact that only exists in a run's data by its address. Test messages
    do not count.
    """
    query = select(Message.created_at).where(
        Message.organization_id == org_id, Message.channel == channel, Message.status.in_(COUNTED),
        Message.test_mode.is_(False), Message.created_at > since)
    address = contact.get("email" if channel == "email" else "phone")
    if contact.get("id"):
        query = query.where(Message.contact_id == str(contact["id"]))
    elif address:
        query = query.where(Message.to_address == address)
    else:
        return []
    return list(db.session.scalars(query))


def record(ctx, verdict: Verdict, kind: str, *, channel: str, node_id: str | None = None) -> None:
    """Add the decision for a skip or a defer to the session (not for test runs, nor outside a workflow)."""
    if verdict.action == SEND or ctx.test_mode or not ctx.workflow_id:
        return
    outcome = decisions.SUPPRESSED if verdict.action == SKIP else decisions.DEFERRED
    detail = {"rule": verdict.rule, "channel": channel, "nodeId": node_id,
              "until": verdict.until.isoformat() if verdict.until else None}
    decisions.record(ctx.org_id, ctx.workflow_id, contact_id=ctx.contact_id, event_type=kind, outcome=outcome,
                     reason=verdict.reason, detail=detail, execution_id=ctx.execution_id)


def settings(org_id: str) -> dict:
    """The organization's policy keys as saved (absent keys left out)."""
    org = db.session.get(Organization, org_id)
    return {key: org.settings[key] for key in KEYS if org and key in (org.settings or {})}


def save(org_id: str, changes: dict) -> dict:
    """Replace the policy keys given in changes (None removes one); every other setting is kept."""
    problems = core.check(changes)
    if problems:
        raise ValidationFailed(problems[0]["message"], validation=problems, code="INVALID_CONTACT_POLICY")
    org = db.session.get(Organization, org_id)
    updated = dict(org.settings or {})
    for key in KEYS:
        if key in changes:
            if changes[key] is None:
                updated.pop(key, None)
            else:
                updated[key] = changes[key]
    org.settings = updated  # a new dict: the JSON column sees the change
    db.session.commit()
    return settings(org_id)
