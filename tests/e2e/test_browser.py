"""A gym manager in Chromium: sign up, sign out and in, create and filter workflows, read the API docs."""
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.e2e.server import DEMO_PASSWORD

pytestmark = pytest.mark.e2e
axe = Axe()
PASSWORD = "a-long-gym-password"


def assert_accessible(page, what: str) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    violations = [v for v in axe.run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    detail = "; ".join(f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in violations)
    assert not violations, f"{what}: {detail}"


def rows(page):
    return page.locator("#workflow-results tbody tr")


def sign_up(page, gym: str, email: str) -> None:
    """Create a gym from the login page, as a new customer does."""
    page.goto("/login")
    page.get_by_role("link", name="Create your gym's account").click()
    page.get_by_label("Gym name").fill(gym)
    page.get_by_label("Your name").fill("Morgan Manager")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():  # to the next page's load event, so its deferred htmx has run
        page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/$"))


def sign_in(page, email: str, password: str) -> None:
    """Fill in the sign-in form and wait for the page it leads to (the list, or the form again) to load."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def forget_session(page) -> None:
    """Drop the session cookie as an expiry would. The last response's refreshed cookie can be stored a moment
    after its body arrived, so clear until the jar stays empty."""
    for _ in range(20):
        page.context.clear_cookies()
        page.wait_for_timeout(100)
        if not page.context.cookies():
            return
    raise AssertionError("the session cookie kept coming back")


@pytest.fixture(scope="module")
def demo(atlas_server, browser):
    """The demo gym: its five active sample workflows seeded by the CLI, and a draft its manager adds by hand."""
    output = atlas_server.flask("atlas", "seed-demo")
    assert f"demo@atlas.example / {DEMO_PASSWORD}" in output
    context = browser.new_context(base_url=atlas_server.base_url)
    page = context.new_page()
    page.goto("/workflows/new")
    sign_in(page, "demo@atlas.example", DEMO_PASSWORD)
    page.get_by_label("Name").fill("Zumba class reminder")
    page.get_by_label("Starts when").select_option(label="Class booked")
    with page.expect_navigation():
        page.get_by_role("button", name="Create draft").click()
    expect(page).to_have_url(re.compile(r"/builder$"))  # a new workflow opens in the builder
    context.close()
    return {"email": "demo@atlas.example", "password": DEMO_PASSWORD}


def test_new_gym_signs_up_signs_out_and_signs_in_again(page):
    page.goto("/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert_accessible(page, "login")
    page.get_by_role("link", name="Create your gym's account").click()
    expect(page).to_have_url(re.compile(r"/signup$"))
    assert_accessible(page, "signup")

    page.get_by_role("button", name="Create account").click()  # nothing filled in
    expect(page.locator(".field-error")).to_have_count(4)
    expect(page.get_by_label("Gym name")).to_be_focused()
    assert_accessible(page, "signup with errors")

    sign_up(page, "Northside Boxing", "morgan@northside.example")
    expect(page.locator(".topbar")).to_contain_text("Northside Boxing")
    expect(page.get_by_role("heading", name="Create your first workflow")).to_be_visible()
    expect(page.get_by_role("search")).to_have_count(0)
    assert_accessible(page, "empty workflows list")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    sign_in(page, "morgan@northside.example", "not-my-password")
    expect(page.get_by_role("alert")).to_have_text("Email or password is incorrect.")
    sign_in(page, "morgan@northside.example", PASSWORD)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator(".topbar")).to_contain_text("Northside Boxing")


def test_htmx_2_is_loaded_and_its_sse_extension_registers(page):
    page.goto("/login")
    assert page.evaluate("window.htmx.version").startswith("2.")
    assert page.evaluate("typeof htmx.createEventSource") == "undefined"
    page.add_script_tag(url="/static/vendor/htmx/sse.min.js")  # the pinned extension, as the live pages will load it
    assert page.evaluate("typeof htmx.createEventSource") == "function"  # its init ran against this htmx


def test_manager_creates_a_workflow_with_the_form(page):
    sign_up(page, "Harbour CrossFit", "lee@harbour.example")
    page.locator(".empty-state").get_by_role("link", name="New workflow").click()
    expect(page.get_by_role("heading", name="New workflow")).to_be_visible()
    assert_accessible(page, "new workflow form")

    page.get_by_role("button", name="Create draft").click()
    expect(page.locator("#name-error")).to_have_text("Give the workflow a name.")
    expect(page.get_by_label("Name")).to_be_focused()
    assert_accessible(page, "new workflow form with errors")

    page.get_by_label("Name").fill("Trial class follow-up")
    page.get_by_label("Starts when").select_option(label="Class booked")
    page.get_by_label("Category").fill("Lead nurture")
    page.get_by_label("Description").fill("Check in the day after a trial class.")
    page.get_by_role("button", name="Create draft").click()

    expect(page).to_have_url(re.compile(r"/workflows/[^/]+/builder$"))  # a new workflow opens in the builder
    expect(page.locator(".alert-success")).to_have_text("Workflow “Trial class follow-up” created as a draft.")
    page.get_by_role("link", name="Workflows").first.click()
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Trial class follow-up")
    expect(rows(page).first).to_contain_text("Class booked")
    expect(rows(page).first).to_contain_text("Draft")


def test_filters_change_the_rows_without_reloading_the_page(page, demo):
    page.goto("/")
    sign_in(page, demo["email"], demo["password"])
    expect(rows(page)).to_have_count(6)
    assert_accessible(page, "populated workflows list")
    page.evaluate("window.atlasPageMarker = 'still the same page'")

    with page.expect_response(lambda r: "search=renewal" in r.url) as filtered:
        page.get_by_label("Search").fill("renewal")
    assert filtered.value.request.headers.get("hx-request") == "true"
    assert "<html" not in filtered.value.text()  # a fragment, not a page
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Membership renewal reminder")
    expect(page).to_have_url(re.compile(r"search=renewal"))  # the filters are in the address, to share or reload

    page.get_by_label("Search").fill("")
    expect(rows(page)).to_have_count(6)
    page.get_by_label("Status").select_option("paused")
    expect(page.get_by_role("heading", name="No workflows match these filters")).to_be_visible()
    page.get_by_label("Status").select_option("draft")
    expect(rows(page)).to_have_count(1)
    page.get_by_label("Status").select_option("active")
    expect(rows(page)).to_have_count(5)
    page.get_by_label("Category").select_option("Retention")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("Missed class win-back")
    page.get_by_label("Category").select_option("")
    page.get_by_label("Tag").select_option("members")
    expect(rows(page)).to_have_count(2)
    page.get_by_label("Tag").select_option("")
    page.get_by_label("Status").select_option("")
    expect(rows(page).locator(".wf-name")).to_have_text(
        ["Zumba class reminder", "Website trial request", "Failed payment follow-up", "Membership renewal reminder",
         "Missed class win-back", "New lead welcome"])
    page.get_by_label("Sort by").select_option("name")
    expect(rows(page).locator(".wf-name")).to_have_text(
        ["Failed payment follow-up", "Membership renewal reminder", "Missed class win-back", "New lead welcome",
         "Website trial request", "Zumba class reminder"])

    assert page.evaluate("window.atlasPageMarker") == "still the same page"
    expect(page.get_by_role("heading", name="Workflows", exact=True)).to_have_count(1)  # not nested in the results


def test_list_becomes_labelled_cards_that_fit_tablet_and_phone_widths(page, demo):
    page.goto("/")
    sign_in(page, demo["email"], demo["password"])
    label = "getComputedStyle(document.querySelector('td[data-label=Status]'), '::before').content"
    assert page.evaluate(label) == "none"  # a real table on a desktop
    for width, height in ((768, 1024), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function(f"window.matchMedia('(max-width: {width}px)').matches")  # the resize has landed
        expect(rows(page)).to_have_count(6)
        assert page.evaluate(label) == '"Status"', f"cards carry their own labels at {width}px"
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"sideways scrolling at {width}px"
        assert_accessible(page, f"workflows list at {width}px")


def test_expired_session_sends_a_filtering_user_to_sign_in_and_back(page, demo):
    page.goto("/")
    sign_in(page, demo["email"], demo["password"])
    page.get_by_label("Category").select_option("Retention")
    expect(rows(page)).to_have_count(1)
    forget_session(page)
    page.get_by_label("Status").select_option("draft")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login\?next=.*category%3DRetention"))
    expect(page.locator("#workflow-results")).to_have_count(0)  # the whole page went to sign-in, not the list's box
    sign_in(page, demo["email"], demo["password"])
    expect(page).to_have_url(re.compile(r"/\?.*category=Retention"))
    expect(rows(page)).to_have_count(1)
    expect(page.get_by_label("Category")).to_have_value("Retention")


def test_a_failed_htmx_request_shows_its_error_where_the_content_would_go(page, demo):
    page.goto("/")
    sign_in(page, demo["email"], demo["password"])
    expect(rows(page)).to_have_count(6)
    page.evaluate("htmx.ajax('GET', '/no-such-page', {target: '#workflow-results'})")
    expect(page.locator("#workflow-results").get_by_role("alert")).to_contain_text("There is no page at this address.")
    expect(rows(page)).to_have_count(0)


def test_api_docs_render_swagger_ui_from_local_files(page, atlas_server):
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/api/v2/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Atlas Workflow API")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v2/workflows").first).to_be_visible()
    fetched = [url for url in requested if url.startswith(("http:", "https:", "ws:", "wss:"))]
    assert f"{atlas_server.base_url}/static/vendor/swagger-ui/swagger-ui-bundle.js" in fetched
    assert f"{atlas_server.base_url}/api/v2/openapi.json" in fetched
    assert all(url.startswith(atlas_server.base_url + "/") for url in fetched), fetched
