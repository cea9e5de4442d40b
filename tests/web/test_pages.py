"""The HTML surface through Flask's test client: sign-in, sign-up, the workflows list and the new-workflow form."""
import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from atlas.extensions import db
from atlas.models import Membership, Organization, User, Workflow
from tests import factories
from tests.conftest import make_app


def sign_in(client, user, org=None):
    """Put the user (working in org) in the session cookie, as a successful sign-in does."""
    with client.session_transaction() as session:
        session["user_id"] = user.id
        session["org_id"] = org.id if org else user.memberships[0].organization_id


def names(page: str) -> list[str]:
    """The workflow names in a rendered list, in display order."""
    return [html.unescape(n) for n in re.findall(r'<a class="wf-name" href="[^"]*">([^<]*)</a>', page)]


def field_error(page: str, field: str) -> str | None:
    """The message shown under one form field, if any."""
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page)
    return html.unescape(match.group(1)) if match else None


def options(page: str, select_id: str) -> dict[str, bool]:
    """A picker's options as {label: selected}."""
    block = re.search(rf'<select id="{select_id}".*?</select>', page, re.S).group(0)
    return {html.unescape(label): "selected" in attrs
            for attrs, label in re.findall(r"<option([^>]*)>([^<]*)</option>", block)}


HTMX = {"HX-Request": "true", "HX-Target": "workflow-results"}


# Sign in and out

def test_login_success_signs_in_and_lands_on_workflows(client, org, staff):
    response = client.post("/login", data={"email": staff.email.upper(), "password": factories.PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Iron Temple Gym" in page and "Sam Staff" in page and "<h1>Workflows</h1>" in page


@pytest.mark.parametrize("email", ["known", "nobody@example.com"])
def test_login_failure_is_401_with_one_message_and_no_session(client, org, staff, email):
    email = staff.email if email == "known" else email
    response = client.post("/login", data={"email": email, "password": "not the password"})
    page = response.get_data(as_text=True)
    assert response.status_code == 401
    assert 'role="alert">Email or password is incorrect.</p>' in page
    assert f'value="{email}"' in page  # the email stays filled in; the password does not
    assert client.get("/").status_code == 302


def test_signed_out_visit_goes_to_login_and_comes_back(client, org, staff):
    response = client.get("/?status=draft&search=lead")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    back = parse_qs(location.query)["next"][0]
    assert back == "/?status=draft&search=lead"
    signed_in = client.post(f"/login?{location.query}", data={"email": staff.email, "password": factories.PASSWORD})
    assert signed_in.headers["Location"] == back


@pytest.mark.parametrize("target", [
    "//evil.example/path", "http://evil.example/", "https://evil.example", "/\\evil.example", "/\t/evil.example",
    "/\n/evil.example", "javascript:alert(1)", "evil.example", "",
])
def test_next_never_leaves_the_site(client, org, staff, target):
    response = client.post("/login", query_string={"next": target},
                           data={"email": staff.email, "password": factories.PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_signed_out_htmx_request_navigates_instead_of_swapping_the_login_page(client):
    response = client.get("/?search=x", headers={**HTMX, "HX-Current-URL": "http://localhost/?status=paused"})
    assert response.status_code == 401
    assert response.get_data() == b""
    location = urlsplit(response.headers["HX-Redirect"])
    assert location.path == "/login" and parse_qs(location.query)["next"] == ["/?status=paused"]


def test_logout_ends_the_session(client, org, staff):
    sign_in(client, staff, org)
    assert client.get("/").status_code == 200
    assert client.get("/logout").status_code == 405  # a link or a prefetch cannot sign anyone out
    response = client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/").headers["Location"].startswith("/login")


@pytest.mark.parametrize("path", ["/login", "/signup"])
def test_sign_in_and_sign_up_forms_share_the_api_rate_limit(app, client, org, staff, monkeypatch, path):
    monkeypatch.setitem(app.config, "RATELIMIT_AUTH", "3 per minute")
    for _ in range(3):
        assert client.post(path, data={"email": staff.email, "password": "wrong"}).status_code in (401, 422)
    assert client.get(path).status_code == 200  # reading the form costs nothing
    refused = client.post(path, data={"email": staff.email, "password": factories.PASSWORD})
    assert refused.status_code == 429
    assert "Too many attempts" in refused.get_data(as_text=True)


# Sign up

def test_signup_creates_gym_and_owner_and_signs_in(client):
    response = client.post("/signup", data={"organization_name": " Pulse Fitness ", "name": "Ria Owner",
                                             "email": "ria@pulse.example", "password": "long-enough-pw"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    user = db.session.scalar(select(User).where(User.email == "ria@pulse.example"))
    member = db.session.scalar(select(Membership).where(Membership.user_id == user.id))
    assert member.role == "owner" and member.organization.name == "Pulse Fitness"
    page = client.get("/").get_data(as_text=True)
    assert "Pulse Fitness" in page and "(owner)" in page and "Create your first workflow" in page


def test_signup_shows_every_problem_next_to_its_field(client):
    response = client.post("/signup", data={"organization_name": "", "name": "Ria", "email": "not-an-email",
                                             "password": "short"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_error(page, "organization_name") == "The gym's name is required."
    assert field_error(page, "email") == "Enter a valid email address."
    assert field_error(page, "password") == "Use a password of at least 10 characters."
    assert field_error(page, "name") is None
    assert 'aria-invalid="true" aria-describedby="email-error"' in page
    assert 'value="Ria"' in page and 'value="short"' not in page  # kept, except the password
    assert db.session.scalar(select(User)) is None


def test_signup_with_a_taken_email_says_so_on_the_email_field(client, org, staff):
    response = client.post("/signup", data={"organization_name": "Other Gym", "name": "Sam",
                                            "email": staff.email.upper(), "password": "long-enough-pw"})
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "email") == "An account with this email already exists."
    assert db.session.scalar(select(Organization).where(Organization.name == "Other Gym")) is None


@pytest.fixture
def closed_app(app_ctx, database_url, redis_server):
    """A second app on the same database with sign-up turned off."""
    closed = make_app(database_url, redis_server.url, ATLAS_ALLOW_SIGNUP=False)
    yield closed
    with closed.app_context():
        db.engine.dispose()


def test_signup_disabled_shows_403_page_and_creates_nothing(closed_app):
    client = closed_app.test_client()
    page = client.get("/signup")
    assert page.status_code == 403 and "Sign-up is closed" in page.get_data(as_text=True)
    posted = client.post("/signup", data={"organization_name": "Sneaky Gym", "name": "Eve",
                                          "email": "eve@example.com", "password": "long-enough-pw"})
    assert posted.status_code == 403
    assert "Create your gym" not in client.get("/login").get_data(as_text=True)
    db.session.rollback()
    assert db.session.scalar(select(User).where(User.email == "eve@example.com")) is None


# The workflows list

@pytest.fixture
def catalogue(org, staff):
    """Five workflows with different statuses, categories and tags."""
    made = {
        "New lead welcome": dict(category="Lead nurture", tags=["leads", "sms"], description="Text new leads fast"),
        "Missed class win-back": dict(category="Retention", tags=["members"], trigger_type="class_missed"),
        "Renewal reminder": dict(category="Billing", tags=["members", "billing"],
                                 description="Before the membership expires"),
        "Paused promo": dict(category="Lead nurture", tags=["promo"]),
        "Old welcome": dict(category="Lead nurture", tags=["leads"]),
    }
    rows = {name: factories.make_workflow(org, staff, name=name, **fields) for name, fields in made.items()}
    rows["Paused promo"].status = "paused"
    rows["Old welcome"].status = "archived"
    db.session.commit()
    return rows


@pytest.mark.parametrize("query, expected", [
    ("", ["Paused promo", "Renewal reminder", "Missed class win-back", "New lead welcome"]),
    ("status=paused", ["Paused promo"]),
    ("status=archived", ["Old welcome"]),
    ("category=Retention", ["Missed class win-back"]),
    ("search=WELCOME", ["New lead welcome"]),
    ("search=expires", ["Renewal reminder"]),
    ("tags=leads", ["New lead welcome"]),
    ("tags=members&sort_by=name", ["Missed class win-back", "Renewal reminder"]),
    ("sort_by=name", ["Missed class win-back", "New lead welcome", "Paused promo", "Renewal reminder"]),
    ("category=Lead+nurture&status=draft", ["New lead welcome"]),
    ("status=bogus&sort_by=bogus&page=x", ["Paused promo", "Renewal reminder", "Missed class win-back",
                                           "New lead welcome"]),
])
def test_list_filters(staff_client, catalogue, query, expected):
    response = staff_client.get(f"/?{query}")
    assert response.status_code == 200
    assert names(response.get_data(as_text=True)) == expected


def test_list_shows_status_trigger_category_and_tags(staff_client, catalogue):
    page = staff_client.get("/").get_data(as_text=True)
    assert '<span class="badge badge-paused">Paused</span>' in page
    assert "Class missed (no-show)" in page  # the trigger in words, not its key
    assert '<span class="tag">sms</span>' in page
    assert "4 workflows" in page
    assert options(page, "f-category") == {"All categories": False, "Billing": False, "Lead nurture": False,
                                           "Retention": False}
    assert options(page, "f-tags") == {"All tags": False, "billing": False, "leads": False, "members": False,
                                       "promo": False, "sms": False}


def test_the_last_run_column_says_how_many_runs_are_in_progress(staff_client, org, catalogue):
    from datetime import timedelta

    from atlas.models import Execution
    from atlas.models.base import utcnow

    welcome, renewal = catalogue["New lead welcome"], catalogue["Renewal reminder"]
    runs = [Execution(organization_id=org.id, workflow_id=welcome.id, version=1, status=status)
            for status in ("waiting", "queued", "completed")]
    runs.append(Execution(organization_id=org.id, workflow_id=welcome.id, version=1, status="running",
                          test_mode=True))  # a test run is not the gym's
    runs.append(Execution(organization_id=org.id, workflow_id=renewal.id, version=1, status="waiting"))
    renewal.last_run_at = utcnow() - timedelta(days=1)
    db.session.add_all(runs)
    db.session.commit()
    page = staff_client.get("/").get_data(as_text=True)

    def cell(name: str) -> str:
        return re.search(rf'>{name}</a>.*?data-label="Last run">(.*?)</td>', page, re.S).group(1)

    assert "2 in progress" in cell("New lead welcome") and "Never" not in cell("New lead welcome")
    assert "1 in progress" in cell("Renewal reminder") and "<time" in cell("Renewal reminder")
    assert "Never" in cell("Missed class win-back") and "in progress" not in cell("Missed class win-back")


def test_filter_pickers_keep_the_chosen_values(staff_client, catalogue):
    page = staff_client.get("/?status=paused&category=Retention&tags=promo&search=pro").get_data(as_text=True)
    assert options(page, "f-status")["Paused"] and not options(page, "f-status")["Not archived"]
    assert options(page, "f-category")["Retention"] and options(page, "f-tags")["promo"]
    assert not options(page, "f-tags")["All tags"]
    assert 'name="search" value="pro"' in page


def test_htmx_filter_request_gets_only_the_results_block(staff_client, catalogue):
    response = staff_client.get("/?status=paused", headers=HTMX)
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200
    assert names(fragment) == ["Paused promo"]
    assert fragment.lstrip().startswith("<table")
    for chrome in ("<html", "<header", 'class="filters"', "<h1>", 'id="workflow-results"'):
        assert chrome not in fragment
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_request_for_another_target_gets_the_full_page(staff_client, catalogue):
    """History restore sends HX-Request without our target: it must get a whole page to put back."""
    response = staff_client.get("/?status=paused", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    page = response.get_data(as_text=True)
    assert "<html" in page and 'id="workflow-results"' in page and names(page) == ["Paused promo"]


def test_empty_state_for_a_new_gym(staff_client):
    page = staff_client.get("/").get_data(as_text=True)
    assert "Create your first workflow" in page
    assert 'role="search"' not in page  # nothing to filter yet
    assert page.count('href="/workflows/new"') == 1  # one clear next step
    assert "No workflows match" not in page


def test_no_match_state_differs_from_the_empty_state(staff_client, catalogue):
    page = staff_client.get("/?search=zzz").get_data(as_text=True)
    assert "No workflows match these filters" in page and 'href="/">clear all filters</a>' in page
    assert "Create your first workflow" not in page and 'role="search"' in page
    fragment = staff_client.get("/?search=zzz", headers=HTMX).get_data(as_text=True)
    assert "No workflows match these filters" in fragment and "<html" not in fragment


def test_pages_of_workflows(staff_client, org, staff):
    for i in range(21):
        factories.make_workflow(org, staff, name=f"Flow {i:02}")
    first = staff_client.get("/?sort_by=name").get_data(as_text=True)
    assert len(names(first)) == 20 and "Page 1 of 2 · 21 workflows" in first
    assert 'href="?sort_by=name&amp;page=2"' in first
    second = staff_client.get("/?sort_by=name&page=2").get_data(as_text=True)
    assert names(second) == ["Flow 20"]
    past_the_end = staff_client.get("/?sort_by=name&page=7").get_data(as_text=True)
    assert names(past_the_end) == ["Flow 20"] and "Page 2 of 2" in past_the_end
    for nonsense in ("99999999999999999999999", "²", "-1", "0"):
        response = staff_client.get(f"/?page={nonsense}")
        assert response.status_code == 200 and len(names(response.get_data(as_text=True))) == 20, nonsense


# Roles

@pytest.fixture
def viewer_client(client, org):
    """A test client signed in as a viewer, who may look but not create."""
    viewer = factories.make_user(org, "viewer", name="Vic Viewer")
    sign_in(client, viewer, org)
    return client


def test_viewer_sees_no_new_workflow_button(viewer_client, org, staff):
    empty = viewer_client.get("/").get_data(as_text=True)
    assert "/workflows/new" not in empty and "your role can view workflows" in empty
    factories.make_workflow(org, staff, name="Visible to viewers")
    listed = viewer_client.get("/").get_data(as_text=True)
    assert names(listed) == ["Visible to viewers"] and "/workflows/new" not in listed


def test_viewer_cannot_open_or_post_the_new_workflow_form(viewer_client):
    page = viewer_client.get("/workflows/new")
    assert page.status_code == 403 and "Your role does not allow this action." in page.get_data(as_text=True)
    posted = viewer_client.post("/workflows/new", data={"name": "Sneaky", "trigger_type": "manual"})
    assert posted.status_code == 403
    assert db.session.scalar(select(Workflow)) is None


# The new-workflow form

def test_new_workflow_form_creates_a_draft(staff_client, org, staff):
    form = staff_client.get("/workflows/new").get_data(as_text=True)
    assert options(form, "trigger_type")["Class missed (no-show)"] is False and len(options(form, "trigger_type")) == 14
    response = staff_client.post("/workflows/new", data={
        "name": "  Trial follow-up ", "trigger_type": "class_booked", "category": "Lead nurture",
        "description": "After a trial class"})
    workflow = db.session.scalar(select(Workflow).where(Workflow.organization_id == org.id))
    assert response.status_code == 302 and response.headers["Location"] == f"/workflows/{workflow.id}/builder"
    assert (workflow.name, workflow.status, workflow.trigger_type, workflow.category, workflow.description) == \
        ("Trial follow-up", "draft", "class_booked", "Lead nurture", "After a trial class")
    assert workflow.created_by == staff.id and workflow.workflow_data["nodes"] == []
    builder = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Workflow “Trial follow-up” created as a draft." in builder and "<h1>Trial follow-up</h1>" in builder
    assert names(staff_client.get("/").get_data(as_text=True)) == ["Trial follow-up"]


def test_new_workflow_form_offers_blank_and_the_built_in_examples(staff_client):
    form = staff_client.get("/workflows/new").get_data(as_text=True)
    starts = re.findall(r'<input type="radio" id="start-[^"]*" name="start" value="([^"]*)" ?(checked)?>', form)
    assert starts == [("blank", "checked"), ("new-lead-welcome", ""), ("missed-class-win-back", ""),
                      ("membership-renewal-reminder", ""), ("failed-payment-follow-up", ""),
                      ("website-trial-request", "")]
    assert "<legend>Start from</legend>" in form
    assert "Text a new lead within minutes, then email a trial offer if they have not booked yet." in form


def test_new_workflow_from_an_example_gets_its_steps_and_trigger_as_a_draft(staff_client, org):
    response = staff_client.post("/workflows/new", data={
        "start": "membership-renewal-reminder", "name": "Our renewal reminder", "trigger_type": "manual"})
    workflow = db.session.scalar(select(Workflow).where(Workflow.organization_id == org.id))
    assert response.status_code == 302 and response.headers["Location"] == f"/workflows/{workflow.id}/builder"
    assert (workflow.name, workflow.status, workflow.trigger_type, workflow.trigger_config) == \
        ("Our renewal reminder", "draft", "membership_expiring", {"daysBefore": 7})
    assert [n["id"] for n in workflow.workflow_data["nodes"]] == ["reminder", "desk"]
    assert workflow.workflow_data["edges"] == [{"source": "reminder", "target": "desk"}]
    assert (workflow.category, workflow.description) == \
        ("Billing", "Remind members a week before their plan expires, and tell the front desk.")
    builder = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-node-id="reminder"' in builder and 'data-node-id="desk"' in builder
    assert "problem-error" not in builder  # an example starts without errors (a tip or two at most)


def test_new_workflow_from_an_example_keeps_the_category_and_description_typed(staff_client, org):
    staff_client.post("/workflows/new", data={"start": "new-lead-welcome", "name": "Welcome", "trigger_type": "manual",
                                              "category": "Ours", "description": "Our words"})
    workflow = db.session.scalar(select(Workflow).where(Workflow.organization_id == org.id))
    assert (workflow.trigger_type, workflow.category, workflow.description) == ("lead_created", "Ours", "Our words")
    assert len(workflow.workflow_data["nodes"]) == 6


def test_new_workflow_with_an_unknown_start_is_refused_on_the_field(staff_client):
    response = staff_client.post("/workflows/new", data={"start": "teleport", "name": "X", "trigger_type": "manual"})
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "start") == "Choose a blank workflow or one of the examples."
    assert db.session.scalar(select(Workflow)) is None


def test_new_workflow_form_shows_each_problem_on_its_field(staff_client):
    response = staff_client.post("/workflows/new", data={"name": " ", "trigger_type": "teleport",
                                                          "category": "x" * 65, "description": "kept"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_error(page, "name") == "Give the workflow a name."
    assert field_error(page, "trigger_type") == "Choose what starts the workflow."
    assert field_error(page, "category") == "Keep the category to 64 characters."
    assert 'aria-describedby="name-error"' in page and ">kept</textarea>" in page
    assert db.session.scalar(select(Workflow)) is None


def test_new_workflow_with_a_taken_name(staff_client, org, staff):
    factories.make_workflow(org, staff, name="Welcome")
    response = staff_client.post("/workflows/new", data={"name": "welcome", "trigger_type": "manual"})
    assert response.status_code == 422
    assert "already exists" in field_error(response.get_data(as_text=True), "name")


# Organizations

def test_organization_switcher(client, org, staff):
    other = factories.make_org("Zen Yoga Loft")
    db.session.add(Membership(user_id=staff.id, organization_id=other.id, role="viewer"))
    stranger = factories.make_org("Not Yours Gym")
    factories.make_workflow(org, staff, name="Iron flow")
    factories.make_workflow(other, staff, name="Zen flow")
    factories.make_workflow(stranger, None, name="Secret flow")
    sign_in(client, staff, org)

    page = client.get("/").get_data(as_text=True)
    assert names(page) == ["Iron flow"]
    assert options(page, "org-switch") == {"Iron Temple Gym": True, "Zen Yoga Loft": False}
    assert f'value="{other.id}"' in page and "Not Yours Gym" not in page

    switched = client.post("/organizations/switch", data={"organization_id": other.id})
    assert switched.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert names(page) == ["Zen flow"] and "(viewer)" in page and "/workflows/new" not in page
    assert options(page, "org-switch") == {"Iron Temple Gym": False, "Zen Yoga Loft": True}

    client.post("/organizations/switch", data={"organization_id": stranger.id})
    assert names(client.get("/").get_data(as_text=True)) == ["Zen flow"]  # not a member: nothing changes


def test_single_organization_shows_its_name_without_a_switcher(staff_client):
    page = staff_client.get("/").get_data(as_text=True)
    assert '<span class="org-name">Iron Temple Gym</span>' in page and 'id="org-switch"' not in page


# CSRF

@pytest.fixture
def csrf_app(app_ctx, database_url, redis_server):
    """A second app on the same database with CSRF protection on, as in production."""
    protected = make_app(database_url, redis_server.url, WTF_CSRF_ENABLED=True)
    yield protected
    with protected.app_context():
        db.engine.dispose()


def test_csrf_token_is_required_on_forms(csrf_app, org, staff):
    client = csrf_app.test_client()
    refused = client.post("/login", data={"email": staff.email, "password": factories.PASSWORD})
    assert refused.status_code == 400
    assert "The CSRF token is missing." in refused.get_data(as_text=True)

    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    wrong = client.post("/login", data={"email": staff.email, "password": factories.PASSWORD, "csrf_token": "x"})
    assert wrong.status_code == 400
    accepted = client.post("/login", data={"email": staff.email, "password": factories.PASSWORD,
                                           "csrf_token": token})
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/"
    assert client.post("/logout").status_code == 400  # still signed in: a forged sign-out is refused
    assert client.get("/").status_code == 200


def test_a_request_that_does_not_change_the_session_does_not_resend_its_cookie(client, staff):
    """Otherwise a slow background request can overwrite the cookie a form post just set (and lose its flash)."""
    response = client.post("/login", data={"email": staff.email, "password": factories.PASSWORD})
    assert "session=" in response.headers.get("Set-Cookie", "")
    client.get("/")  # the first page stores the CSRF token in the session
    assert "Set-Cookie" not in client.get("/").headers
