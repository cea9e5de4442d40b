"""The demo gym that `make run` creates on first start."""
import secrets

from sqlalchemy import select

from atlas.config import INSTANCE_DIR
from atlas.extensions import db
from atlas.models import Organization
from atlas.services import auth, demo_gym, workflows

DEMO_ORG = "Atlas Demo Gym"
DEMO_EMAIL = "demo@atlas.example"

# Three drafts so that a newcomer sees a populated list. Their messaging steps (send_sms, send_email, create_task)
# are registered by the actions issue; until then those steps show as unknown types in validation.
TEN_MINUTES = {"amount": 10, "unit": "minutes"}
BOOKED = {"field": "contact.has_booking", "operator": "equals", "value": True}
SAMPLE_WORKFLOWS = [
    {"name": "New lead welcome", "category": "Lead nurture", "tags": ["leads", "sms"], "trigger_type": "lead_created",
     "description": "Text a new lead within minutes, then email them if they have not booked a trial class.",
     "nodes": [("welcome_sms", "send_sms", "Welcome text", {}), ("wait", "wait", "Wait 10 minutes",
                                                                  {"duration": TEN_MINUTES}),
               ("booked", "if_else", "Booked a trial?", {"condition": BOOKED}), ("done", "end", "Booked", {}),
               ("follow_up", "send_email", "Trial offer email", {})],
     "edges": [("welcome_sms", "wait"), ("wait", "booked"), ("booked", "done", "true"),
               ("booked", "follow_up", "false")]},
    {"name": "Missed class win-back", "category": "Retention", "tags": ["members", "retention"],
     "trigger_type": "class_missed", "description": "Check in on a member who missed a booked class.",
     "nodes": [("checkin_email", "send_email", "We missed you", {}), ("task", "create_task", "Call the member", {})],
     "edges": [("checkin_email", "task")]},
    {"name": "Membership renewal reminder", "category": "Billing", "tags": ["members", "billing"],
     "trigger_type": "membership_expiring", "description": "Remind members a week before their plan expires.",
     "nodes": [("reminder", "send_email", "Renewal reminder", {})], "edges": []},
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
    db.session.commit()
    return {"email": DEMO_EMAIL, "password": password, "organization_id": org.id}


def _workflow_body(sample: dict) -> dict:
    nodes = [{"id": i, "type": t, "name": n, "config": c} for i, t, n, c in sample["nodes"]]
    edges = [{"source": e[0], "target": e[1], **({"branch": e[2]} if len(e) > 2 else {})} for e in sample["edges"]]
    return {"name": sample["name"], "description": sample["description"], "category": sample["category"],
            "tags": sample["tags"], "trigger_type": sample["trigger_type"],
            "workflow_data": {"schemaVersion": 1, "nodes": nodes, "edges": edges}}
