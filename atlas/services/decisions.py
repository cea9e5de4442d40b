"""The enrollment decision log: why a contact was, or was not, enrolled in a workflow, and what stopped a message.

Every evaluation of an event against a workflow's trigger leaves one row, matches and non-matches alike, and so do
the contact policy's verdicts inside a run (suppressed, deferred) and goal exits. Staff ask "why didn't Sarah get the
trial text?" and read the answer here. Rows older than ATLAS_DECISION_RETENTION_DAYS are purged.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, insert

from atlas.extensions import db
from atlas.models import EnrollmentDecision
from atlas.models.base import new_id, utcnow
from atlas.services.pagination import paginate
from atlas.services.tenancy import scoped

ENROLLED = "enrolled"
TRIGGER_MISMATCH = "trigger_mismatch"  # the event is another type, or the trigger's config excludes it
FILTER_FAILED = "filter_failed"  # a filter condition did not hold (detail names it and the actual value)
REENROLLMENT_BLOCKED = "reenrollment_blocked"
ALREADY_ACTIVE = "already_active"
SUPPRESSED = "suppressed"  # opt-out, consent or a frequency cap stopped it
DEFERRED = "deferred"  # quiet hours or a cap moved it later
EXITED_BY_GOAL = "exited_by_goal"
WORKFLOW_INACTIVE = "workflow_inactive"
ERROR = "error"
OUTCOMES = (ENROLLED, TRIGGER_MISMATCH, FILTER_FAILED, REENROLLMENT_BLOCKED, ALREADY_ACTIVE, SUPPRESSED, DEFERRED,
            EXITED_BY_GOAL, WORKFLOW_INACTIVE, ERROR)


def record(org_id: str, workflow_id: str, *, contact_id: str | None, event_type: str, outcome: str, reason: str,
           detail: dict | None = None, event_id: str | None = None, trigger_key: str | None = None,
           execution_id: str | None = None) -> EnrollmentDecision:
    """Add one decision to the session (the caller commits it with whatever it decided)."""
    decision = build(org_id, workflow_id, contact_id=contact_id, event_type=event_type, outcome=outcome,
                     reason=reason, detail=detail, event_id=event_id, trigger_key=trigger_key,
                     execution_id=execution_id)
    db.session.add(decision)
    return decision


def build(org_id: str, workflow_id: str, *, contact_id: str | None, event_type: str, outcome: str, reason: str,
          detail: dict | None = None, event_id: str | None = None, trigger_key: str | None = None,
          execution_id: str | None = None) -> EnrollmentDecision:
    """A decision not yet in the session, for insert_many."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown decision outcome {outcome!r}")
    return EnrollmentDecision(id=new_id(), organization_id=org_id, workflow_id=workflow_id, contact_id=contact_id,
                              event_id=event_id, event_type=event_type, trigger_key=trigger_key, outcome=outcome,
                              reason=reason, detail=detail or {}, execution_id=execution_id, created_at=utcnow())


COLUMNS = ("id", "organization_id", "workflow_id", "contact_id", "event_id", "event_type", "trigger_key", "outcome",
           "reason", "detail", "execution_id", "created_at")


def insert_many(decisions: list[EnrollmentDecision]) -> None:
    """Write built decisions in one INSERT (event ingestion evaluates every workflow: one statement, not N)."""
    if decisions:
        # Core executemany on the table: the ORM's bulk insert would split rows whose None columns differ.
        db.session.execute(insert(EnrollmentDecision.__table__), [{c: getattr(d, c) for c in COLUMNS}
                                                                   for d in decisions])


def list_decisions(org_id: str, workflow_id: str | None = None, *, contact_id: str | None = None,
                   outcome: str | None = None, page: int = 1, limit: int = 20):
    """One page of decisions, newest first, for a workflow and/or a contact."""
    query = scoped(EnrollmentDecision, org_id)
    if workflow_id:
        query = query.where(EnrollmentDecision.workflow_id == workflow_id)
    if contact_id:
        query = query.where(EnrollmentDecision.contact_id == contact_id)
    if outcome:
        query = query.where(EnrollmentDecision.outcome == outcome)
    return paginate(query.order_by(EnrollmentDecision.created_at.desc(), EnrollmentDecision.id), page, limit)


PURGE_EVERY_SECONDS = 3600


def purge_if_due() -> int | None:
    """purge(), at most once an hour across every worker (a Redis key marks the last pass); None when not due."""
    from atlas.extensions import redis_holder

    if not redis_holder.client.set("atlas:decisions:purged", "1", nx=True, ex=PURGE_EVERY_SECONDS):
        return None
    return purge()


def purge(now=None) -> int:
    """Delete decisions older than the retention; returns how many went."""
    cutoff = (now or utcnow()) - timedelta(days=current_app.config["ATLAS_DECISION_RETENTION_DAYS"])
    result = db.session.execute(delete(EnrollmentDecision).where(EnrollmentDecision.created_at < cutoff))
    db.session.commit()
    return result.rowcount
