"""`flask --app wsgi atlas ...`: create-org, create-user and issue-token, through the app's CLI runner."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from atlas.extensions import db
from atlas.models import Membership, Organization
from atlas.services import auth


@pytest.fixture
def atlas(app_ctx):
    """Run `atlas <args>`; returns click's Result."""
    runner = app_ctx.test_cli_runner()

    def run(*args, **kwargs):
        return runner.invoke(args=["atlas", *args], **kwargs)

    return run


def test_create_org_prints_the_new_id(atlas):
    result = atlas("create-org", "  Iron Temple Gym ", "--timezone", "Europe/London")

    assert result.exit_code == 0, result.output
    org = db.session.get(Organization, result.output.strip())
    assert (org.name, org.timezone) == ("Iron Temple Gym", "Europe/London")
    assert db.session.scalars(select(Membership).where(Membership.organization_id == org.id)).all() == []


def test_create_org_with_an_owner(atlas, staff):
    result = atlas("create-org", "Second Gym", "--owner-email", staff.email.upper())

    membership = auth.membership(staff.id, result.output.strip())
    assert membership.role == "owner"


def test_create_org_with_an_unknown_owner_fails_and_creates_nothing(atlas):
    result = atlas("create-org", "Ghost Gym", "--owner-email", "nobody@example.com")

    assert result.exit_code == 1
    assert "Error: no user with email nobody@example.com" in result.output
    db.session.rollback()
    assert db.session.scalar(select(Organization).where(Organization.name == "Ghost Gym")) is None


def test_create_user_as_a_member(atlas, org, client):
    result = atlas("create-user", "--email", "Coach@Gym.example", "--name", "Coach", "--password",
                   "a long password", "--org", org.id, "--role", "admin")

    assert result.exit_code == 0, result.output
    user_id = result.output.strip()
    assert auth.membership(user_id, org.id).role == "admin"
    token = client.post("/api/v2/auth/token", json={"email": "coach@gym.example", "password": "a long password"})
    assert token.status_code == 200


def test_create_user_prompts_for_the_password_twice(atlas):
    result = atlas("create-user", "--email", "quiet@gym.example", "--name", "Quiet",
                   input="a long password\na long password\n")

    assert result.exit_code == 0, result.output
    user = auth.find_user("quiet@gym.example")
    assert user.id in result.output and auth.check_password(user, "a long password")
    assert auth.memberships(user) == []


def test_create_user_defaults_to_staff(atlas, org):
    result = atlas("create-user", "--email", "s@gym.example", "--name", "S", "--password", "pw-long-enough",
                   "--org", org.id)

    assert auth.membership(result.output.strip(), org.id).role == "staff"


@pytest.mark.parametrize("args, message", [
    (["--org", "no-such-org"], "Error: no organization with id no-such-org"),
    (["--role", "superuser"], "Invalid value for '--role'"),
    (["--password", "short"], "Error: Use a password of at least 10 characters."),
])
def test_create_user_refuses_bad_options(atlas, args, message):
    result = atlas("create-user", "--email", "x@gym.example", "--name", "X", "--password", "pw-long-enough", *args)

    assert result.exit_code != 0 and message in result.output
    assert auth.find_user("x@gym.example") is None


def test_create_user_refuses_a_taken_email(atlas, staff):
    result = atlas("create-user", "--email", staff.email.upper(), "--name", "X", "--password", "pw-long-enough")

    assert result.exit_code == 1
    assert "Error: An account with this email already exists." in result.output


def test_issue_token_prints_a_working_token(atlas, client, org, staff):
    result = atlas("issue-token", "--email", staff.email)

    assert result.exit_code == 0, result.output
    headers = {"Authorization": f"Bearer {result.output.strip()}", "X-Organization-ID": org.id}
    assert client.get("/api/v2/me", headers=headers).json["user"]["id"] == staff.id
    assert client.get("/api/v2/workflows", headers=headers).status_code == 200


def test_issue_token_for_an_unknown_user_fails(atlas):
    result = atlas("issue-token", "--email", "nobody@example.com")

    assert result.exit_code == 1 and "Error: no user with email nobody@example.com" in result.output


def test_the_commands_are_on_the_wsgi_app(tmp_path):
    env = {**os.environ, "ATLAS_ENV": "testing", "ATLAS_INSTANCE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "atlas", "--help"], env=env,
                            cwd=Path(__file__).parents[2], capture_output=True, text=True, check=True)

    for command in ("create-org", "create-user", "issue-token"):
        assert f"  {command} " in result.stdout


def test_seed_demo_creates_the_demo_gym_once_with_the_configured_password(atlas, app, client, monkeypatch):
    monkeypatch.setitem(app.config, "ATLAS_DEMO_PASSWORD", "demo-password-from-env")

    first = atlas("seed-demo")
    second = atlas("seed-demo")

    assert first.exit_code == 0 and first.output.strip() == "demo login: demo@atlas.example / demo-password-from-env"
    assert second.output == first.output
    gyms = db.session.scalars(select(Organization).where(Organization.name == "Atlas Demo Gym")).all()
    assert len(gyms) == 1
    token = client.post("/api/v2/auth/token", json={"email": "demo@atlas.example",
                                                    "password": "demo-password-from-env"}).json["accessToken"]
    listed = client.get("/api/v2/workflows?sortBy=name&sortOrder=asc",
                        headers={"Authorization": f"Bearer {token}", "X-Organization-ID": gyms[0].id}).json
    assert [(w["name"], w["status"]) for w in listed["workflows"]] == [
        ("Failed payment follow-up", "active"), ("Membership renewal reminder", "active"),
        ("Missed class win-back", "active"), ("New lead welcome", "active"), ("Website trial request", "active")]
    # the seeded events enrolled contacts: two new leads, the no-show and the failed card; the website form's
    # signed delivery started a run, its forged one nothing
    from atlas.models import EnrollmentDecision, Execution, WebhookDelivery

    runs = db.session.scalars(select(Execution).where(Execution.organization_id == gyms[0].id)).all()
    names = {w["id"]: w["name"] for w in listed["workflows"]}
    assert sorted(names[r.workflow_id] for r in runs) == [
        "Failed payment follow-up", "Missed class win-back", "New lead welcome", "New lead welcome",
        "Website trial request"]
    deliveries = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.organization_id == gyms[0].id))
    assert sorted((d.outcome, d.reason) for d in deliveries) == [("accepted", None),
                                                                 ("rejected", "WEBHOOK_SIGNATURE_INVALID")]
    outcomes = {d.outcome for d in db.session.scalars(select(EnrollmentDecision).where(
        EnrollmentDecision.organization_id == gyms[0].id))}
    assert outcomes >= {"enrolled", "trigger_mismatch"}


def test_seed_demo_generates_a_password_once_and_keeps_it(atlas, app, tmp_path, monkeypatch):
    from atlas.services import demo

    monkeypatch.setattr(demo, "INSTANCE_DIR", tmp_path)
    monkeypatch.setitem(app.config, "ATLAS_DEMO_PASSWORD", None)

    first, second = atlas("seed-demo").output, atlas("seed-demo").output

    password = (tmp_path / "demo-password.txt").read_text()
    assert len(password) >= 12 and first == second == f"demo login: demo@atlas.example / {password}\n"
    assert auth.authenticate("demo@atlas.example", password).email == "demo@atlas.example"


def test_the_demo_gym_has_records_that_make_triggers_fire(app_ctx):
    from datetime import date, timedelta

    from atlas.models import Booking, Contact, ContactMembership, MessageTemplate, Payment
    from atlas.services import demo_gym
    from tests import factories

    org, owner = factories.make_org("Seeded"), factories.make_user(name="Owner")
    today = date(2026, 11, 26)
    counts = demo_gym.seed_gym(org, owner.id, today=today)

    contacts = db.session.scalars(select(Contact).where(Contact.organization_id == org.id)).all()
    assert counts["contacts"] == len(contacts) == 24
    assert {c.status for c in contacts} == {"lead", "trial", "member", "former_member"}
    assert len({c.lead_source for c in contacts}) == 5
    expiring = db.session.scalars(select(ContactMembership).where(
        ContactMembership.organization_id == org.id, ContactMembership.expires_on == today + timedelta(days=7))).all()
    assert len(expiring) == 2  # the renewal reminder fires for them at the daily run
    assert sum(1 for c in contacts if c.birthday and (c.birthday.month, c.birthday.day) == (11, 26)) == 2
    no_shows = db.session.scalars(select(Booking).where(Booking.organization_id == org.id,
                                                        Booking.status == "no_show")).all()
    assert no_shows and all(b.contact_id in {c.id for c in contacts} for b in no_shows)
    assert db.session.scalar(select(Payment).where(Payment.organization_id == org.id, Payment.status == "failed"))
    assert {t.name for t in db.session.scalars(select(MessageTemplate).where(
        MessageTemplate.organization_id == org.id))} >= {"Welcome text", "Free trial offer"}
    assert org.settings["quietHours"] == {"enabled": True, "start": "21:00", "end": "08:00"}


def test_the_demo_gym_s_memberships_started_in_the_past(app_ctx):
    from datetime import date

    from atlas.models import ContactMembership
    from atlas.services import demo_gym
    from tests import factories

    org, today = factories.make_org("Seeded plans"), date(2026, 11, 26)
    demo_gym.seed_gym(org, factories.make_user(name="Owner").id, today=today)
    plans = db.session.scalars(select(ContactMembership).where(ContactMembership.organization_id == org.id)).all()
    assert plans and all(p.started_on < today < p.expires_on or p.expires_on == today for p in plans)
