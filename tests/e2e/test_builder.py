"""A gym manager in Chromium opens the demo gym's "New lead welcome" in the builder and reads it with the keyboard."""
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.server import DEMO_PASSWORD
from tests.e2e.test_browser import assert_accessible, sign_in

pytestmark = pytest.mark.e2e
WORKFLOW = "New lead welcome"
CARDS = ["Welcome text", "Wait 10 minutes", "Booked a trial?", "Tag as converted", "Trial offer email", "Call the lead"]


@pytest.fixture(scope="module")
def demo(atlas_server):
    """The demo gym, seeded by the CLI (idempotent)."""
    assert "demo@atlas.example" in atlas_server.flask("atlas", "seed-demo")
    return {"email": "demo@atlas.example", "password": DEMO_PASSWORD}


def open_builder(page, demo, name: str = WORKFLOW) -> None:
    """Sign in, then open the workflow's builder from its row in the list."""
    page.goto("/")
    sign_in(page, demo["email"], demo["password"])
    row = page.locator("#workflow-results tbody tr", has=page.get_by_role("link", name=name, exact=True))
    with page.expect_navigation():
        row.locator("a.steps-link").click()
    expect(page).to_have_url(re.compile(r"/workflows/[^/]+/builder$"))


def shoot(page, out: Path, width: int) -> Path:
    """The builder as a person sees it at this width (docs/screenshots/builder-<width>.png when out is docs)."""
    page.set_viewport_size({"width": width, "height": 800 if width >= 1280 else 1024})
    path = out / f"builder-{width}.png"
    page.screenshot(path=path, full_page=True)
    return path


def test_the_builder_draws_the_workflow_and_opens_a_step_with_the_keyboard(page, demo, tmp_path):
    open_builder(page, demo)
    expect(page.get_by_role("heading", name=WORKFLOW, level=1)).to_be_visible()
    expect(page.locator("#trigger-card")).to_contain_text("Lead created")
    expect(page.locator(".fc-card .fc-name")).to_have_text(CARDS)
    expect(page.locator(".fc-arm .fc-label")).to_have_text(["Yes", "No"])
    expect(page.locator(".fc-end")).to_have_count(2)
    expect(page.locator('.fc-card[data-node-id="wait"]')).to_contain_text("Wait 10 minutes")
    expect(page.locator('.fc-card[data-node-id="call_task"] .fc-summary')).to_contain_text("due in 1 day")
    expect(page.get_by_role("button", name="Add a step here")).to_have_count(8)
    expect(page.locator("#problems")).to_contain_text("No problems found")
    assert_accessible(page, "builder at 1280 px")

    welcome = page.locator('.fc-card[data-node-id="welcome_sms"]')
    welcome.focus()
    page.keyboard.press("Tab")  # the connector's "+" comes between two cards
    expect(page.get_by_role("button", name="Add a step here").nth(1)).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator('.fc-card[data-node-id="wait"]')).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog", name="Welcome text")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading", name="Welcome text")).to_be_focused()
    expect(panel.locator("textarea").first).to_have_value(re.compile("thanks for your interest in Atlas Demo Gym"))
    expect(welcome).to_have_attribute("aria-expanded", "true")
    assert_accessible(page, "builder with the step panel open")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(welcome).to_be_focused()
    expect(welcome).not_to_have_attribute("aria-expanded", "true")

    page.locator('.fc-card[data-node-id="booked"]').click()  # the mouse works as well; the close button too
    booked = page.get_by_role("dialog", name="Booked a trial?")
    expect(booked.get_by_role("button", name="Add rule")).to_be_visible()  # the condition builder
    expect(booked.get_by_label("Values (one a line)")).to_have_value("trial\nmember")
    page.get_by_role("link", name="Close step details").click()
    expect(page.locator("#builder-panel")).to_be_hidden()

    shoot(page, tmp_path, 1280)
    shoot(page, tmp_path, 768)
    assert_accessible(page, "builder at 768 px")
    assert page.evaluate("document.documentElement.scrollWidth") <= 768  # only the canvas may scroll sideways
    expect(page.locator(".fc-card").first).to_be_visible()


def test_a_wider_workflow_scrolls_inside_the_canvas_at_tablet_width(page, demo):
    open_builder(page, demo, "Missed class win-back")
    expect(page.locator(".fc-arm .fc-label")).to_have_text(["Event arrived", "Timed out"])
    page.set_viewport_size({"width": 768, "height": 1024})
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    assert_accessible(page, "win-back builder at 768 px")


def test_a_manager_adds_a_step_sets_it_up_and_undoes_it(page, demo):
    """"+" opens the picker, the search finds the step, its form saves on change, the card follows; Ctrl+Z undoes."""
    open_builder(page, demo, "Failed payment follow-up")
    expect(page.locator(".fc-card")).to_have_count(2)
    page.get_by_role("button", name="Add a step here").nth(1).click()  # between the text and the task
    picker = page.get_by_role("dialog", name="Choose a step")
    expect(picker).to_be_visible()
    picker.get_by_label("Search steps").fill("add tag")
    expect(picker.locator(".picker-item:visible")).to_have_count(1)
    expect(picker.locator(".picker-group:visible legend")).to_have_text(["CRM"])
    assert_accessible(page, "builder with the step picker")
    picker.locator(".picker-item:visible", has_text="Add tag").click()

    panel = page.get_by_role("dialog", name="Add tag")
    expect(panel).to_be_visible()
    expect(page.locator(".fc-card")).to_have_count(3)
    tag = panel.get_by_label(re.compile("^Tag"))
    tag.fill("card-declined")
    tag.press("Tab")  # the change event saves the draft
    new_card = page.locator(".fc-card", has_text="card-declined")
    expect(new_card).to_be_visible()
    expect(page.locator("#builder-status")).to_contain_text("not published yet")
    assert_accessible(page, "builder with a step's form")

    page.keyboard.press("Escape")
    page.locator("body").press("Control+z")  # the tag back to empty
    expect(page.locator(".fc-card", has_text="card-declined")).to_have_count(0)
    expect(page.get_by_role("button", name="Undo: Added step 'Add tag'")).to_be_enabled()  # the new revision is in
    page.locator("body").press("Control+z")  # the step gone
    expect(page.locator(".fc-card")).to_have_count(2)
    page.locator("body").press("Control+Shift+z")
    expect(page.locator(".fc-card")).to_have_count(3)
    page.reload()  # the history is in the database
    expect(page.locator(".fc-card")).to_have_count(3)
    expect(page.get_by_role("button", name=re.compile("^Undo"))).to_be_enabled()
