"""`flask --app wsgi atlas ...`: create organizations and users, issue tokens, seed the demo, run a worker or the
scheduler."""
import json
import time
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import AppGroup

from atlas.errors import AtlasError
from atlas.extensions import db
from atlas.models import Membership, Organization, Role
from atlas.services import auth, demo

atlas_cli = AppGroup("atlas", help="Atlas administration.")


@atlas_cli.command("create-org")
@click.argument("name")
@click.option("--timezone", default="UTC", show_default=True)
@click.option("--owner-email", help="An existing user who becomes the owner.")
def create_org(name, timezone, owner_email):
    """Create an organization and print its id."""
    org = Organization(name=name.strip(), timezone=timezone)
    db.session.add(org)
    db.session.flush()
    if owner_email:
        user = auth.find_user(owner_email) or _fail(f"no user with email {owner_email}")
        db.session.add(Membership(user_id=user.id, organization_id=org.id, role=Role.OWNER))
    db.session.commit()
    click.echo(org.id)


@atlas_cli.command("create-user")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--org", "org_id", help="Organization id to join.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default="staff", show_default=True)
def create_user(email, name, password, org_id, role):
    """Create a user, optionally as a member of an organization; prints the user id."""
    if org_id and db.session.get(Organization, org_id) is None:
        _fail(f"no organization with id {org_id}")
    problems = auth.signup_problems(email, password, name, "-")
    if problems:
        _fail(" ".join(p["message"] for p in problems))
    try:
        user = auth.create_user(email, name, password)
    except AtlasError as exc:
        _fail(exc.message)
    db.session.flush()
    if org_id:
        db.session.add(Membership(user_id=user.id, organization_id=org_id, role=role))
    db.session.commit()
    click.echo(user.id)


@atlas_cli.command("issue-token")
@click.option("--email", required=True)
def issue_token(email):
    """Print a bearer token for a user (for scripts and API clients)."""
    user = auth.find_user(email) or _fail(f"no user with email {email}")
    click.echo(auth.issue_token(user)["access_token"])


@atlas_cli.command("seed-demo")
def seed_demo():
    """Create the demo gym and its staff user once; print how to sign in."""
    login = demo.seed(current_app.config.get("ATLAS_DEMO_PASSWORD"))
    click.echo(f"demo login: {login['email']} / {login['password']}")


@atlas_cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
def worker(burst):
    """Run an RQ worker (no fork per job) on Atlas's queues, highest priority first."""
    from jobs.worker import run_worker

    run_worker(burst=burst)


@atlas_cli.command("tick")
@click.option("--now", "now", help="Evaluate as if it were this ISO instant (UTC if no offset); for tests and drills.")
@click.option("--no-lock", is_flag=True, help="Skip the Redis lock (the unique key alone keeps fires exactly once).")
def tick(now, no_lock):
    """Fire the scheduled and date-based triggers that are due, once, and print a JSON summary."""
    from atlas.services import scheduler

    click.echo(json.dumps(scheduler.tick(_instant(now) if now else None, lock=not no_lock)))


@atlas_cli.command("scheduler")
@click.option("--interval", type=float, help="Seconds between ticks [default: ATLAS_RECONCILE_SECONDS].")
def scheduler_loop(interval):
    """Tick forever (workers already tick; a separate scheduler process is optional and safe beside them)."""
    from atlas.services import scheduler

    while True:
        try:
            summary = scheduler.tick()
            if summary["fired"] or summary["errors"]:
                click.echo(json.dumps(summary))
        except Exception as exc:  # keep ticking through a database or Redis hiccup
            click.echo(f"tick failed: {exc}", err=True)
        db.session.remove()
        time.sleep(interval or current_app.config["ATLAS_RECONCILE_SECONDS"])


def _instant(value: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"--now {value!r} is not an ISO date and time")
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _fail(message: str):
    raise click.ClickException(message)


def init_cli(app) -> None:
    """Attach the atlas command group."""
    app.cli.add_command(atlas_cli)
