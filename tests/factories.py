"""Rows for tests, built through the same services the app uses."""
import itertools

from atlas.extensions import db
from atlas.models import Membership, Organization, Role, User
from atlas.services import auth, workflows

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def make_org(name: str | None = None, timezone: str = "UTC") -> Organization:
    """A committed organization."""
    org = Organization(name=name or f"Gym {next(_seq)}", timezone=timezone)
    db.session.add(org)
    db.session.commit()
    return org


def make_user(org: Organization | None = None, role: str = Role.STAFF, email: str | None = None,
              password: str = PASSWORD, name: str = "Sam Staff") -> User:
    """A committed user, a member of org with role when org is given."""
    user = auth.create_user(email or f"user{next(_seq)}@example.com", name, password)
    db.session.flush()
    if org is not None:
        db.session.add(Membership(user_id=user.id, organization_id=org.id, role=role))
    db.session.commit()
    return user


def headers(user: User, org: Organization | None = None) -> dict:
    """Authorization (and organization) headers for API calls as user."""
    out = {"Authorization": f"Bearer {auth.issue_token(user)['access_token']}"}
    if org is not None:
        out["X-Organization-ID"] = org.id
    return out


def definition(*node_ids: str) -> dict:
    """A valid straight-line workflowData with these node ids (each sets a variable)."""
    nodes = [{"id": n, "type": "set_variable", "name": n, "config": {"name": f"v_{n}", "value": n}}
             for n in node_ids]
    edges = [{"source": a, "target": b} for a, b in zip(node_ids, node_ids[1:])]
    return {"schemaVersion": 1, "nodes": nodes, "edges": edges}


def workflow_body(**overrides) -> dict:
    """A valid CreateWorkflowRequest in the API's camelCase."""
    body = {"name": f"Workflow {next(_seq)}", "triggerType": "lead_created", "workflowData": definition("a", "b")}
    body.update(overrides)
    return body


def make_workflow(org: Organization, user: User | None = None, **fields):
    """A committed workflow created through the service (snake_case fields)."""
    data = {"name": f"Workflow {next(_seq)}", "trigger_type": "lead_created", "workflow_data": definition("a", "b")}
    data.update(fields)
    return workflows.create_workflow(org.id, user.id if user else None, data).workflow


def make_contact(org: Organization, **fields):
    """A committed CRM contact (a lead unless status says otherwise); tags=[...] adds tags."""
    from atlas.models import Contact, ContactTag

    tags = fields.pop("tags", [])
    n = next(_seq)
    data = {"first_name": f"Casey{n}", "last_name": "Lead", "email": f"casey{n}@example.com",
            "phone": f"+1555000{n:04d}"}
    data.update(fields)
    contact = Contact(organization_id=org.id, **data)
    contact.tag_rows = [ContactTag(organization_id=org.id, tag=t) for t in tags]
    db.session.add(contact)
    db.session.commit()
    return contact


def make_webhook(org: Organization, secret: str | None = None, **fields):
    """A committed webhook endpoint and its plain secret (a new one unless given)."""
    from atlas.core import signing
    from atlas.models import WebhookEndpoint
    from atlas.services import secrets

    secret = secret or signing.new_secret()
    data = {"name": f"Website form {next(_seq)}", "allowed_origins": [], "filter_conditions": []}
    data.update(fields)
    endpoint = WebhookEndpoint(organization_id=org.id, secret_encrypted=secrets.encrypt(secret), **data)
    db.session.add(endpoint)
    db.session.commit()
    return endpoint, secret
