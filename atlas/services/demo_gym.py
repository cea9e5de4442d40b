"""The demo gym's records: members and leads, classes and bookings, plans, payments, templates and policy.

Deterministic (a fixed random seed) and dated relative to today, so that a newcomer running `make run` sees a
living gym: classes this week, memberships about to expire, a failed payment, leads from several sources.
"""
from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from atlas.extensions import db
from atlas.models import (
    Booking,
    ClassSession,
    Contact,
    ContactMembership,
    ContactTag,
    CustomField,
    Form,
    LeadSource,
    MessageTemplate,
    Payment,
)

FIRST = ["Sarah", "James", "Priya", "Tom", "Aisha", "Liam", "Mei", "Daniel", "Chloe", "Omar", "Grace", "Jack",
         "Zara", "Ben", "Hannah", "Luca", "Amira", "Noah", "Ella", "Kofi", "Sofia", "Ryan", "Isla", "Marcus"]
LAST = ["Mitchell", "Okafor", "Patel", "Hughes", "Khan", "Walsh", "Chen", "Evans", "Martin", "Haddad", "Lewis",
        "Turner", "Ali", "Cooper", "Wright", "Rossi", "Nasser", "Bennett", "Clarke", "Mensah", "Garcia", "Doyle",
        "Fraser", "Reid"]
SOURCES = [("website", "Website"), ("instagram", "Instagram"), ("walk_in", "Walk-in"), ("referral", "Referral"),
           ("facebook_ads", "Facebook ads")]
GOALS = ["Lose weight", "Build strength", "Train for a race", "Feel better", "Rehab after injury"]
CLASSES = [("HIIT Blast", "Sam", 6), ("Morning Yoga", "Priya", 7), ("Spin", "Leo", 18), ("Strength 101", "Sam", 17),
           ("Boxfit", "Dana", 19)]
TEMPLATES = [
    ("sms", "Welcome text", None, "Hi {{ contact.first_name }}, thanks for your interest in Atlas Demo Gym! "
                                  "Reply with a day that suits you and we'll book your free trial class."),
    ("email", "Free trial offer", "Your free class at Atlas Demo Gym, {{ contact.first_name }}",
     "Hi {{ contact.first_name }},\n\nYour first class is on us. Pick any HIIT, Yoga or Spin session this week and "
     "show this email at the desk.\n\nSee you soon,\nThe Atlas Demo Gym team"),
    ("email", "We missed you", "We missed you in class, {{ contact.first_name }}",
     "Hi {{ contact.first_name }},\n\nWe noticed you couldn't make it to your class. Everything OK? "
     "Book your next session any time in the app.\n\nThe coaches"),
    ("email", "Renewal reminder", "Your membership renews soon",
     "Hi {{ contact.first_name }},\n\nYour {{ trigger.plan | default('membership') }} expires on "
     "{{ trigger.expiresOn | default('soon') }}. Renew at the desk or online to keep your rate."),
]
POLICY = {"quietHours": {"enabled": True, "start": "21:00", "end": "08:00"},
          "frequencyCaps": {"sms": {"max": 3, "days": 7}, "email": {"max": 5, "days": 7}},
          "cappedAction": "defer", "dailyRunTime": "09:00"}


def seed_gym(org, owner_id: str, today: date | None = None) -> dict:
    """Fill an empty organization with a gym's records; returns how many of each were made."""
    rng, today = random.Random(7), today or date.today()
    org.settings = {**POLICY, **(org.settings or {})}
    for key, name in SOURCES:
        db.session.add(LeadSource(organization_id=org.id, key=key, name=name))
    db.session.add(CustomField(organization_id=org.id, key="fitness_goal", label="Fitness goal",
                               field_type="select", options=GOALS))
    db.session.add(CustomField(organization_id=org.id, key="injuries", label="Injuries or conditions"))
    db.session.add(Form(organization_id=org.id, name="Free trial class", fields=["first_name", "email", "phone"]))
    db.session.add(Form(organization_id=org.id, name="Contact us", fields=["first_name", "email", "message"]))
    for channel, name, subject, body in TEMPLATES:
        db.session.add(MessageTemplate(organization_id=org.id, channel=channel, name=name, subject=subject, body=body))
    contacts = [_contact(org.id, owner_id, i, rng, today) for i in range(len(FIRST))]
    db.session.add_all(contacts)
    db.session.flush()
    sessions = _sessions(org.id, today)
    db.session.add_all(sessions)
    db.session.flush()
    members = [c for c in contacts if c.status in ("member", "trial")]
    bookings = _bookings(org.id, members, sessions, rng, today)
    plans = _memberships(org.id, [c for c in contacts if c.status == "member"], today)
    payments = _payments(org.id, [c for c in contacts if c.status == "member"], today)
    db.session.add_all(bookings + plans + payments)
    db.session.commit()
    return {"contacts": len(contacts), "classes": len(sessions), "bookings": len(bookings), "memberships": len(plans),
            "payments": len(payments)}


def _contact(org_id: str, owner_id: str, i: int, rng: random.Random, today: date) -> Contact:
    status = ["lead"] * 9 + ["trial"] * 4 + ["member"] * 9 + ["former_member"] * 2
    first, last = FIRST[i], LAST[i]
    contact = Contact(organization_id=org_id, first_name=first, last_name=last,
                      email=f"{first.lower()}.{last.lower()}@example.com", phone=f"+4477009{i:05d}",
                      status=status[i], lead_source=SOURCES[i % len(SOURCES)][0], owner_id=owner_id,
                      timezone="Europe/London", sms_opt_out=(i == 5),
                      # two birthdays today (in leap years, so that Feb 29 works too)
                      birthday=date(1984 if i == 3 else 1992, today.month, today.day) if i in (3, 14) else
                      date(1985 + i % 15, 1 + i % 12, 1 + (i * 3) % 28),
                      custom_fields={"fitness_goal": GOALS[i % len(GOALS)]},
                      created_at=datetime.now(timezone.utc) - timedelta(days=rng.randint(0, 200)))
    tags = {"lead": ["new-lead"], "trial": ["trial"], "member": ["member"], "former_member": ["lapsed"]}[status[i]]
    if i % 4 == 0:
        tags.append("vip" if status[i] == "member" else "hot-lead")
    contact.tag_rows = [ContactTag(organization_id=org_id, tag=t) for t in tags]
    return contact


def _sessions(org_id: str, today: date) -> list[ClassSession]:
    """The timetable from a week ago to a week ahead."""
    out = []
    for offset in range(-7, 8):
        day = today + timedelta(days=offset)
        for name, coach, hour in CLASSES:
            starts = datetime.combine(day, time(hour), tzinfo=timezone.utc)
            out.append(ClassSession(organization_id=org_id, name=name, coach=coach, starts_at=starts,
                                    ends_at=starts + timedelta(minutes=45), capacity=16))
    return out


def _bookings(org_id: str, people: list[Contact], sessions: list[ClassSession], rng: random.Random,
              today: date) -> list[Booking]:
    out = []
    now = datetime.now(timezone.utc)
    for person in people:
        for session in rng.sample(sessions, 4):
            past = session.starts_at < now
            status = rng.choice(["attended", "attended", "attended", "no_show", "cancelled"]) if past else "booked"
            out.append(Booking(organization_id=org_id, class_session_id=session.id, contact_id=person.id,
                               status=status))
    return out


def _memberships(org_id: str, members: list[Contact], today: date) -> list[ContactMembership]:
    """Active plans; two expire in exactly a week (the renewal reminder's day) and one tomorrow."""
    plans = ["Monthly unlimited", "Off-peak", "Annual"]
    out = []
    for i, member in enumerate(members):
        expires = today + timedelta(days=7 if i < 2 else 1 if i == 2 else 30 + i * 11)
        out.append(ContactMembership(organization_id=org_id, contact_id=member.id, plan=plans[i % 3],
                                     status="active", started_on=today - timedelta(days=40 + 37 * i),
                                     expires_on=expires))
    return out


def _payments(org_id: str, members: list[Contact], today: date) -> list[Payment]:
    out = []
    for i, member in enumerate(members):
        failed = i == 4
        out.append(Payment(organization_id=org_id, contact_id=member.id, amount_cents=4900, currency="GBP",
                           status="failed" if failed else "succeeded", description="Monthly membership",
                           failure_reason="card_declined" if failed else None,
                           created_at=datetime.combine(today - timedelta(days=i + 1), time(6), tzinfo=timezone.utc)))
    return out


def seed_events(org) -> int:
    """A few things that just happened at the gym, reported as events: they enroll contacts in the active demo
    workflows (a new lead from Instagram, a no-show, a failed card, a lead who opted out of texts) so that runs,
    outbox messages and enrollment decisions are there to look at. Returns how many runs they started."""
    from atlas.services import events

    members = db.session.scalars(select(Contact).where(Contact.organization_id == org.id, Contact.status == "member")
                                 .order_by(Contact.created_at)).all()
    opted_out = db.session.scalar(select(Contact).where(Contact.organization_id == org.id,
                                                        Contact.sms_opt_out.is_(True)))
    failed = db.session.scalar(select(Payment).where(Payment.organization_id == org.id, Payment.status == "failed"))
    happened = [
        ("lead_created", {"contact": {"first_name": "Nadia", "last_name": "Brooks", "email": "nadia.brooks@example.com",
                                      "phone": "+447700900123", "lead_source": "instagram"}}),
        ("lead_created", {"contact_id": opted_out.id}),
        ("class_missed", {"contact_id": members[0].id, "payload": {"className": "HIIT Blast"}}),
        ("payment_failed", {"contact_id": failed.contact_id,
                            "payload": {"amountCents": failed.amount_cents, "currency": failed.currency,
                                        "failureReason": failed.failure_reason}}),
    ]
    started = 0
    for kind, fields in happened:
        answer = events.record_event(org.id, kind, source="demo", idempotency_key=f"demo-{kind}-{len(fields)}-"
                                     f"{fields.get('contact_id', 'new')}", **fields)
        started += sum(1 for d in answer["decisions"] if d.outcome == "enrolled")
    return started


def seed_webhook(org, owner_id: str, workflow_name: str) -> dict:
    """The website's trial form as a webhook endpoint starting `workflow_name`, with two deliveries in its log: one
    signed request from a prospect (accepted: it starts a run) and one with a wrong signature (rejected)."""
    import json
    import time as clock

    from atlas.core import signing
    from atlas.errors import AtlasError
    from atlas.models import Workflow
    from atlas.services import webhook_receive, webhooks

    workflow = db.session.scalar(select(Workflow).where(Workflow.organization_id == org.id,
                                                        Workflow.name == workflow_name))
    endpoint, secret = webhooks.create_endpoint(org.id, owner_id, {
        "name": "Website trial form", "workflow_id": workflow.id,
        "allowed_origins": ["https://www.atlasdemogym.example"]})
    body = json.dumps({"firstName": "Priya", "lastName": "Shah", "email": "priya.shah@example.com",
                       "phone": "+447700900456", "form": "Free trial class"}).encode()
    now = int(clock.time())
    accepted = webhook_receive.receive(endpoint.id, body, signing.headers(secret, "msg_demo_trial_1", now, body),
                                       "127.0.0.1")
    try:  # a sender with an old secret: refused, and counted
        webhook_receive.receive(endpoint.id, body, signing.headers(signing.new_secret(), "msg_demo_trial_2", now,
                                                                   body), "127.0.0.1")
    except AtlasError:
        pass
    return {"endpoint": endpoint.id, "runs": len(accepted["workflows_triggered"])}
