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

    page.get_by_role("link", name="Runs").focus()
    page.keyboard.press("Tab")  # the disabled "+" buttons are skipped: the first card is next
    welcome = page.locator('.fc-card[data-node-id="welcome_sms"]')
    expect(welcome).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator('.fc-card[data-node-id="wait"]')).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog", name="Welcome text")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading", name="Welcome text")).to_be_focused()
    expect(panel.locator(".config-list")).to_contain_text("thanks for your interest in Atlas Demo Gym")
    expect(welcome).to_have_attribute("aria-expanded", "true")
    assert_accessible(page, "builder with the step panel open")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(welcome).to_be_focused()
    expect(welcome).not_to_have_attribute("aria-expanded", "true")

    page.locator('.fc-card[data-node-id="booked"]').click()  # the mouse works as well; the close button too
    expect(page.get_by_role("dialog", name="Booked a trial?")).to_contain_text("contact.status is one of trial, member")
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
