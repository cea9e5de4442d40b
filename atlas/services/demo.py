"""The demo gym that `make run` creates on first start."""
import secrets

from sqlalchemy import select

from atlas.config import INSTANCE_DIR
from atlas.extensions import db
from atlas.models import Organization
from atlas.services import auth, demo_gym, workflows

DEMO_ORG = "Atlas Demo Gym"
DEMO_EMAIL = "demo@atlas.example"

# Active workflows on the demo gym's records, so that a newcomer sees triggers fire (seed_events) and runs go.
TEN_MINUTES = {"amount": 10, "unit": "minutes"}
A_WEEK = {"amount": 7, "unit": "days"}
IS_TRIAL_OR_MEMBER = {"field": "contact.status", "operator": "in", "value": ["trial", "member"]}
HI = "Hi {{ contact.first_name | default('there') }}"
SAMPLE_WORKFLOWS = [
    {"name": "New lead welcome", "category": "Lead nurture", "tags": ["leads", "sms"], "trigger_type": "lead_created",
     "description": "Text a new lead within minutes, then email a trial offer if they have not booked yet.",
     "nodes": [("welcome_sms", "send_sms", "Welcome text",
                {"body": f"{HI}, thanks for your interest in Atlas Demo Gym! Reply with a day that suits you and "
                         "we'll book your free trial class."}),
               ("wait", "wait", "Wait 10 minutes", {"duration": TEN_MINUTES}),
               ("booked", "if_else", "Booked a trial?", {"condition": IS_TRIAL_OR_MEMBER}),
               ("converted", "add_tag", "Tag as converted", {"tag": "converted"}),
               ("trial_email", "send_email", "Trial offer email",
                {"subject": "Your free class at Atlas Demo Gym", "body": f"{HI},\n\nYour first class is on us: "
                 "pick any HIIT, Yoga or Spin session this week.\n\nSee you soon!"}),
               ("call_task", "create_task", "Call the lead", {"title": "Call {{ contact.name }} about a trial class",
                                                             "dueIn": {"amount": 1, "unit": "days"}})],
     "edges": [("welcome_sms", "wait"), ("wait", "booked"), ("booked", "converted", "true"),
               ("booked", "trial_email", "false"), ("trial_email", "call_task")]},
    {"name": "Missed class win-back", "category": "Retention", "tags": ["members", "retention"],
     "trigger_type": "class_missed", "description": "Check in on a member who missed a booked class.",
     "nodes": [("checkin_email", "send_email", "We missed you",
                {"subject": "We missed you in class", "body": f"{HI},\n\nWe noticed you couldn't make it to your "
                 "class. Everything OK? Book your next session any time."}),
               ("await_booking", "wait_for_event", "Wait for the next booking",
                {"event": "class_booked", "timeout": A_WEEK}),
               ("back", "add_tag", "Tag as won back", {"tag": "won-back"}),
               ("task", "create_task", "Coach calls the member",
                {"title": "Call {{ contact.name }}: no booking since a missed class"})],
     "edges": [("checkin_email", "await_booking"), ("await_booking", "back", "event"),
               ("await_booking", "task", "timeout")]},
    {"name": "Membership renewal reminder", "category": "Billing", "tags": ["members", "billing"],
     "trigger_type": "membership_expiring", "trigger_config": {"daysBefore": 7},
     "description": "Remind members a week before their plan expires, and tell the front desk.",
     "nodes": [("reminder", "send_email", "Renewal reminder",
                {"subject": "Your membership renews soon", "body": f"{HI},\n\nYour {{{{ trigger.plan }}}} "
                 "expires on {{ trigger.expiresOn }}. Renew at the desk or online to keep your rate."}),
               ("desk", "notify_staff", "Tell the front desk",
                {"message": "{{ contact.name }}'s {{ trigger.plan }} expires on {{ trigger.expiresOn }}."})],
     "edges": [("reminder", "desk")]},
    {"name": "Failed payment follow-up", "category": "Billing", "tags": ["billing", "sms"],
     "trigger_type": "payment_failed", "description": "Ask the member to update their card, and open a task.",
     "nodes": [("card_sms", "send_sms", "Update your card",
                {"body": f"{HI}, your last membership payment didn't go through. You can update your card "
                         "at the desk or in the app."}),
               ("billing_task", "create_task", "Follow up the payment",
                {"title": "Payment failed for {{ contact.name }}", "dueIn": {"amount": 2, "unit": "days"}})],
     "edges": [("card_sms", "billing_task")]},
    {"name": "Website trial request", "category": "Lead nurture", "tags": ["leads", "website"],
     "trigger_type": "webhook", "description": "The website's free-trial form posts to a webhook: the front desk "
     "gets a call task and a notification.",
     "nodes": [("call", "create_task", "Call about the trial",
                {"title": "Call {{ trigger.body.firstName }} {{ trigger.body.lastName }} "
                          "({{ trigger.body.phone }}) to book a free trial", "dueIn": {"amount": 1, "unit": "days"}}),
               ("desk", "notify_staff", "Tell the front desk",
                {"message": "New trial request from the website: {{ trigger.body.firstName }} "
                            "{{ trigger.body.lastName }}."})],
     "edges": [("call", "desk")]},
]


def _password_file():
    return INSTANCE_DIR / "demo-password.txt"


def demo_password(configured: str | None) -> str:
    """ATLAS_DEMO_PASSWORD, else a random one generated once and kept under instance/."""
    if configured:
        return configured
    path = _password_file()
    if path.exists():
        return path.read_text().strip()
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path.write_text(password)
    path.chmod(0o600)
    return password


def seed(configured_password: str | None = None) -> dict:
    """Create the demo organization, its owner and sample workflows unless they exist; return the login."""
    password = demo_password(configured_password)
    user = auth.find_user(DEMO_EMAIL)
    if user is None:
        user = auth.create_user(DEMO_EMAIL, "Demo Manager", password)
        db.session.flush()
    elif not auth.check_password(user, password):
        user.password_hash = auth.hash_password(password)
    org = db.session.scalar(select(Organization).where(Organization.name == DEMO_ORG))
    if org is None:
        org = auth.create_organization(DEMO_ORG, user, timezone="Europe/London")
        db.session.commit()
        for sample in SAMPLE_WORKFLOWS:
            workflows.create_workflow(org.id, user.id, _workflow_body(sample))
        demo_gym.seed_gym(org, user.id)
        demo_gym.seed_events(org)
        demo_gym.seed_webhook(org, user.id, "Website trial request")
    db.session.commit()
    return {"email": DEMO_EMAIL, "password": password, "organization_id": org.id}


def _workflow_body(sample: dict) -> dict:
    nodes = [{"id": i, "type": t, "name": n, "config": c} for i, t, n, c in sample["nodes"]]
    edges = [{"source": e[0], "target": e[1], **({"branch": e[2]} if len(e) > 2 else {})} for e in sample["edges"]]
    return {"name": sample["name"], "description": sample["description"], "category": sample["category"],
            "tags": sample["tags"], "trigger_type": sample["trigger_type"], "status": "active",
            "trigger_config": sample.get("trigger_config", {}),
            "workflow_data": {"schemaVersion": 1, "nodes": nodes, "edges": edges}}


def examples() -> list[dict]:
    """The built-in examples a new workflow can start from: key, name, description, trigger and workflowData."""
    return [{"key": sample["name"].lower().replace(" ", "-"), "name": sample["name"],
             "description": sample["description"], "category": sample["category"],
             "trigger_type": sample["trigger_type"], "trigger_config": dict(sample.get("trigger_config", {})),
             "workflow_data": _workflow_body(sample)["workflow_data"]} for sample in SAMPLE_WORKFLOWS]


def example(key: str) -> dict | None:
    """One built-in example by its key, or None."""
    return next((e for e in examples() if e["key"] == key), None)
