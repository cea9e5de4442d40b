"""The builder's "Done means" journeys, driven in Chromium as a gym manager would: build the lead-nurture example from
blank with the mouse, fix what the builder flags, publish and watch a test run light every card on its path; undo and
redo across a reload; a two-step workflow made with the keyboard alone; and two staff members on one stale draft.
Each test signs up a gym of its own through the API, so the demo gym's workflows are never touched."""
import re
import uuid

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.test_browser import assert_accessible, sign_in

pytestmark = pytest.mark.e2e
PASSWORD = "a-long-gym-password"
COMPLETED = re.compile(r"\btest-completed\b")


@pytest.fixture
def gym(atlas_server):
    """A new gym signed up through the API: its manager's email and the organization's id."""
    email = f"journey-{uuid.uuid4().hex[:8]}@example.com"
    answer = requests.post(f"{atlas_server.base_url}/api/v2/auth/signup", timeout=10, json={
        "email": email, "password": PASSWORD, "name": "Morgan Manager", "organizationName": "Journey Gym"})
    assert answer.status_code == 201, answer.text
    org_id = answer.json()["organizations"][0]["id"]
    headers = {"Authorization": f"Bearer {answer.json()['token']['accessToken']}", "X-Organization-ID": org_id}
    lead = requests.post(f"{atlas_server.base_url}/api/v2/contacts", headers=headers, timeout=10, json={
        "firstName": "Lee", "lastName": "Lead", "email": "lee.lead@example.com"})
    assert lead.status_code == 201, lead.text
    return {"email": email, "org_id": org_id, "contact_id": lead.json()["id"]}


def card(page, node_id: str):
    return page.locator(f'.fc-card[data-node-id="{node_id}"]')


def new_workflow(page, email: str, name: str, trigger: str) -> None:
    """Sign in on the way to the new-workflow form, create a blank workflow, land in its builder."""
    page.goto("/workflows/new")
    sign_in(page, email, PASSWORD)
    page.get_by_label("Name").fill(name)
    page.get_by_label("Starts when").select_option(label=trigger)
    with page.expect_navigation():
        page.get_by_role("button", name="Create draft").click()
    expect(page).to_have_url(re.compile(r"/workflows/[^/]+/builder$"))
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()


def add_step(page, plus, step: str):
    """Click a connector's "+", find the step in the picker by its search box, choose it; returns its open panel."""
    plus.click()
    picker = page.get_by_role("dialog", name="Choose a step")
    picker.get_by_label("Search steps").fill(step.lower())
    picker.locator(".picker-item:visible").filter(has=page.get_by_text(step, exact=True)).click()
    panel = page.get_by_role("dialog", name=step)
    expect(panel.locator(".node-form")).to_be_visible()
    settled(page)
    return panel


def enter(field, text: str) -> None:
    """Type into a field and leave it (Tab): its change event is what saves."""
    field.fill(text)
    field.press("Tab")


def saved(page, action) -> None:
    """Do something that saves the draft and wait for the builder's answer."""
    with page.expect_response(lambda r: r.request.method == "POST" and "/builder/" in r.url) as answer:
        action()
    assert answer.value.status == 200, answer.value.text()
    settled(page)


def settled(page) -> None:
    """Wait until htmx has swapped and settled every answer (new buttons only work once htmx has processed them)."""
    page.wait_for_function("!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")


def test_a_manager_builds_the_lead_nurture_example_from_blank_with_the_mouse(page, gym, worker):
    new_workflow(page, gym["email"], "Lead nurture", "Lead created")
    expect(page.locator("#trigger-card")).to_contain_text("Lead created")
    expect(page.locator(".fc-card")).to_have_count(0)

    sms = add_step(page, page.get_by_role("button", name="Add a step here"), "Send SMS")
    expect(card(page, "send_sms")).to_have_class(re.compile(r"\bhas-errors\b"))  # nothing to send yet
    saved(page, lambda: enter(sms.get_by_label("Body"), "Thanks for your interest! Reply with a day for a free class."))
    expect(card(page, "send_sms")).not_to_have_class(re.compile(r"\bhas-errors\b"))

    wait = add_step(page, card(page, "send_sms").locator("xpath=..").get_by_role("button", name="Add a step here"),
                    "Wait")
    wait.get_by_label("Duration: amount").fill("10")
    saved(page, lambda: wait.get_by_label("Duration: unit").select_option("minutes"))
    expect(card(page, "wait")).to_contain_text("10 minutes")

    branch = add_step(page, card(page, "wait").locator("xpath=..").get_by_role("button", name="Add a step here"),
                      "If / else")
    with page.expect_response(lambda r: r.url.endswith("/nodes/if_else/config")):
        branch.get_by_role("button", name="Add rule").click()
    rule = branch.get_by_role("group", name="Rule")
    rule.get_by_label("Field").fill("contact.tags")
    rule.get_by_label("Comparison").select_option(label="contains")
    saved(page, lambda: enter(rule.get_by_label("Value"), "booked"))
    expect(card(page, "if_else")).to_contain_text("booked")
    expect(page.locator(".fc-arm .fc-label")).to_have_text(["Yes", "No"])

    # The Yes branch: an email, added empty. The builder flags it on its card and in the problems panel.
    yes_plus = page.locator('.fc-arm[data-branch="true"] .fc-add').first
    email = add_step(page, yes_plus, "Send email")
    expect(card(page, "send_email")).to_have_class(re.compile(r"\bhas-errors\b"))
    expect(card(page, "send_email").locator(".fc-badge-error")).to_have_text("1 error")
    problem = page.locator("#problems .problem-error", has=page.get_by_role("link", name="Send email"))
    expect(problem).to_contain_text("Choose a template (templateId) or write the subject and body.")
    expect(email.locator(".node-panel-issues")).to_contain_text("write the subject and body")

    no_plus = page.locator('.fc-arm[data-branch="false"] .fc-add').first
    task = add_step(page, no_plus, "Create task")
    saved(page, lambda: enter(task.get_by_label(re.compile("^Title")), "Call the new lead about a trial class"))
    expect(card(page, "create_task")).to_contain_text("Call the new lead")
    assert_accessible(page, "builder in the middle of building the lead nurture")

    # Fix the email from its problem's link: the link moves focus to the card, the card opens its panel.
    page.get_by_role("link", name="Close step details").click()  # the panel lies over the problems
    problem.get_by_role("link", name="Send email").click()
    expect(card(page, "send_email")).to_be_focused()
    card(page, "send_email").click()
    email = page.get_by_role("dialog", name="Send email")
    email.get_by_label("Subject").fill("Your free class")
    saved(page, lambda: enter(email.get_by_label("Body"), "Your first class is on us: pick any session this week."))
    expect(card(page, "send_email")).not_to_have_class(re.compile(r"\bhas-errors\b"))
    expect(page.locator("#problems")).to_contain_text("No problems found")
    expect(page.locator(".fc-card .fc-name")).to_have_text(["Send SMS", "Wait", "If / else", "Send email",
                                                            "Create task"])

    page.get_by_role("button", name="Publish and turn on").click()
    publish = page.get_by_role("dialog", name="Publish")
    expect(publish.locator(".pub-changes")).to_contain_text("First version")
    saved(page, lambda: publish.get_by_role("button", name="Publish and turn on").click())
    expect(page.locator("#workflow-status")).to_have_text("Active")

    page.get_by_role("button", name="Test", exact=True).click()
    test = page.get_by_role("dialog", name="Test Lead nurture")
    test.get_by_label("Sample contact").select_option(gym["contact_id"])  # a lead without the "booked" tag
    test.get_by_role("button", name="Run test").click()
    for node_id in ("send_sms", "wait", "if_else", "create_task"):
        expect(card(page, node_id)).to_have_class(COMPLETED)
    expect(page.locator("#test-result .test-result-title")).to_contain_text("Completed")
    expect(page.locator(".fc-card.test-completed")).to_have_count(4)
    expect(card(page, "send_email")).not_to_have_class(re.compile(r"\btest-"))
    expect(page.locator(".fc-card.test-failed")).to_have_count(0)


def test_undo_and_redo_walk_the_history_across_a_reload(page, gym):
    new_workflow(page, gym["email"], "Tag new leads", "Lead created")
    tag = add_step(page, page.get_by_role("button", name="Add a step here"), "Add tag")
    saved(page, lambda: enter(tag.get_by_label(re.compile("^Tag")), "lead"))
    expect(card(page, "add_tag")).to_contain_text("lead")
    page.keyboard.press("Escape")

    page.reload()
    undo = page.get_by_role("button", name="Undo: Changed config of 'Add tag'")
    expect(undo).to_be_enabled()
    expect(page.get_by_role("button", name="Redo")).to_be_disabled()
    saved(page, lambda: page.locator("body").press("Control+z"))
    expect(card(page, "add_tag")).not_to_contain_text("lead")
    saved(page, lambda: page.get_by_role("button", name="Undo: Added step 'Add tag'").click())
    expect(page.locator(".fc-card")).to_have_count(0)

    page.reload()  # both undos are in the draft, and so is what can be redone
    expect(page.locator(".fc-card")).to_have_count(0)
    redo = page.get_by_role("button", name="Redo: Added step 'Add tag'")
    expect(redo).to_be_enabled()
    saved(page, lambda: redo.click())
    expect(page.locator(".fc-card")).to_have_count(1)
    saved(page, lambda: page.locator("body").press("Control+Shift+z"))
    expect(card(page, "add_tag")).to_contain_text("lead")

    page.reload()
    expect(card(page, "add_tag")).to_contain_text("lead")
    expect(page.get_by_role("button", name="Redo")).to_be_disabled()
    expect(page.get_by_role("button", name="Undo: Changed config of 'Add tag'")).to_be_enabled()


def tab_to(page, locator, limit: int = 80) -> None:
    """Press Tab until the locator has focus (as a keyboard user moves through the page)."""
    for _ in range(limit):
        if locator.evaluate("e => e === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {locator}")


def test_a_two_step_workflow_made_with_the_keyboard_alone(page, gym):
    page.goto("/workflows/new")
    sign_in(page, gym["email"], PASSWORD)
    expect(page.get_by_label("Name")).to_be_focused()  # the form starts where the typing starts
    page.keyboard.type("Keyboard welcome")
    tab_to(page, page.get_by_label("Starts when"))
    page.keyboard.type("Lead created")  # a select takes typed letters
    expect(page.get_by_label("Starts when")).to_have_value("lead_created")
    tab_to(page, page.get_by_role("button", name="Create draft"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/builder$"))

    # The first step: the "+" under the trigger, the picker's search, Enter on the first match.
    tab_to(page, page.get_by_role("button", name="Add a step here"))
    page.keyboard.press("Enter")
    search = page.get_by_role("dialog", name="Choose a step").get_by_label("Search steps")
    tab_to(page, search)
    page.keyboard.type("add tag")
    page.keyboard.press("Tab")
    expect(page.locator(".picker-item:visible").first).to_be_focused()
    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog", name="Add tag")
    expect(panel.get_by_role("heading", name="Add tag")).to_be_focused()
    tag = panel.get_by_label(re.compile("^Tag"))
    tab_to(page, tag)
    page.keyboard.type("keyboard-lead")
    saved(page, lambda: page.keyboard.press("Tab"))  # the change saves the draft
    expect(card(page, "add_tag")).to_contain_text("keyboard-lead")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(card(page, "add_tag")).to_be_focused()  # back on the card the panel belonged to

    # The second: the "+" right after the card, then Create task.
    page.keyboard.press("Tab")
    expect(card(page, "add_tag").locator("xpath=..").get_by_role("button", name="Add a step here")).to_be_focused()
    page.keyboard.press("Enter")
    search = page.get_by_role("dialog", name="Choose a step").get_by_label("Search steps")
    tab_to(page, search)
    page.keyboard.type("create task")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog", name="Create task")
    expect(panel.get_by_role("heading", name="Create task")).to_be_focused()
    tab_to(page, panel.get_by_label(re.compile("^Title")))
    page.keyboard.type("Welcome call for {{ contact.name }}")
    saved(page, lambda: page.keyboard.press("Tab"))
    expect(card(page, "create_task")).to_contain_text("Welcome call")
    page.keyboard.press("Escape")
    expect(card(page, "create_task")).to_be_focused()

    expect(page.locator(".fc-card .fc-name")).to_have_text(["Add tag", "Create task"])
    expect(page.locator("#problems")).to_contain_text("No problems found")
    page.reload()  # all of it is in the draft
    expect(page.locator(".fc-card .fc-name")).to_have_text(["Add tag", "Create task"])


def test_the_second_save_on_a_stale_draft_is_refused_with_a_reload(browser, atlas_server, gym):
    robin = f"robin-{uuid.uuid4().hex[:8]}@example.com"
    atlas_server.flask("atlas", "create-user", "--email", robin, "--name", "Robin Coach", "--password", PASSWORD,
                       "--org", gym["org_id"], "--role", "staff")
    contexts = [browser.new_context(base_url=atlas_server.base_url, viewport={"width": 1280, "height": 900})
                for _ in range(2)]
    try:
        first, second = (context.new_page() for context in contexts)
        for context in contexts:
            context.set_default_timeout(5000)
        new_workflow(first, gym["email"], "Shared draft", "Lead created")
        tag = add_step(first, first.get_by_role("button", name="Add a step here"), "Add tag")
        saved(first, lambda: enter(tag.get_by_label(re.compile("^Tag")), "lead"))
        builder_url = first.url.split("/nodes/")[0]

        second.goto(builder_url)
        sign_in(second, robin, PASSWORD)
        expect(second).to_have_url(re.compile(r"/builder$"))
        expect(card(second, "add_tag")).to_contain_text("lead")

        saved(first, lambda: enter(tag.get_by_label(re.compile("^Tag")), "first-wins"))  # the first saves a change
        expect(card(first, "add_tag")).to_contain_text("first-wins")

        card(second, "add_tag").click()  # the second still has the older draft on screen
        stale = second.get_by_role("dialog", name="Add tag")
        with second.expect_response(lambda r: r.url.endswith("/nodes/add_tag/config")) as refused:
            enter(stale.get_by_label(re.compile("^Tag")), "second-loses")
        assert refused.value.status == 409
        conflict = second.get_by_role("dialog", name="Someone else changed this workflow")
        expect(conflict.get_by_role("alert")).to_contain_text("Morgan Manager saved a newer version of this draft")
        expect(conflict.get_by_role("alert")).to_contain_text("your change was not saved")
        assert_accessible(second, "builder with the conflict message")
        with second.expect_navigation():
            conflict.get_by_role("link", name="Reload the builder").click()
        expect(card(second, "add_tag")).to_contain_text("first-wins")
        expect(second.locator(".fc-card", has_text="second-loses")).to_have_count(0)

        first.reload()  # nothing of the second's reached the draft
        expect(card(first, "add_tag")).to_contain_text("first-wins")
    finally:
        for context in contexts:
            context.close()
