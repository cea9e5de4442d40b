"""A gym manager in Chromium tests the demo gym's "New lead welcome" from the builder: the cards light up live as the
steps complete (the POST's answer is held back until they have, so the lighting can only come from the stream), then
the results show each step, and a failed step shows its error on its card."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import assert_accessible
from tests.e2e.test_builder import demo, open_builder  # noqa: F401 (demo is a fixture)

pytestmark = pytest.mark.e2e
PATH = ["welcome_sms", "wait", "booked", "trial_email"]  # a lead, or no contact: the "not booked" way


def card(page, node_id: str):
    return page.locator(f'.fc-card[data-node-id="{node_id}"]')


def hold_test_answers(page) -> list:
    """Hold the test POST's answer back (the run itself happens) until the test releases it."""
    held: list = []

    def handle(route):
        if route.request.method != "POST":
            route.continue_()
            return
        held.append((route, route.fetch()))

    page.route(re.compile(r"/builder/test$"), handle)
    return held


def release(page, held: list) -> None:
    """Let the held answer through (once the handler, which fetched it, has finished)."""
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(100)  # the route handler runs while Playwright waits
    route, response = held.pop()
    route.fulfill(response=response)


def test_a_test_run_lights_the_cards_live_and_shows_each_step(page, demo, worker):  # noqa: F811
    open_builder(page, demo)
    held = hold_test_answers(page)
    page.get_by_role("button", name="Test", exact=True).click()
    panel = page.get_by_role("dialog", name="Test New lead welcome")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading", name="Test New lead welcome")).to_be_focused()
    expect(panel).to_contain_text("Nothing is sent.")
    expect(panel.get_by_label("Trigger payload (JSON)")).to_have_value(re.compile(r'"leadSource": "website"'))

    # No contact: the task's title needs contact.name, so the last step fails, live, with its error on its card.
    panel.get_by_role("button", name="Run test").click()
    for node_id in PATH:
        expect(card(page, node_id)).to_have_class(re.compile(r"\btest-completed\b"))
    expect(card(page, "call_task")).to_have_class(re.compile(r"\btest-failed\b"))
    expect(card(page, "call_task").locator(".fc-test-error")).to_contain_text("contact.name is not defined")
    expect(card(page, "converted")).not_to_have_class(re.compile(r"\btest-"))
    expect(page.locator("#test-result")).to_be_empty()  # all of that came over the stream
    release(page, held)
    results = page.locator("#test-result")
    expect(results.locator("[data-step-id]")).to_have_count(5)
    expect(results.locator(".test-result-title")).to_contain_text("Failed")
    expect(results.locator('[data-step-id="call_task"] .step-error')).to_contain_text("contact.name is not defined")
    expect(results.locator('[data-step-id="wait"]')).to_contain_text("Fast-forwarded: a real run would wait 10 minutes")
    expect(results.locator("details.step-data").first).not_to_have_attribute("open", "")
    expect(page.locator("#test-live")).to_have_text("Test failed: 5 steps ran; Call the lead failed.")
    assert_accessible(page, "builder with the test panel and its results")

    # A contact from the gym, found by typing: the cards start again and every step of the way completes.
    options = panel.locator("#test-contact option")
    first = options.nth(1)
    contact_id, label = first.get_attribute("value"), first.inner_text()
    panel.get_by_label("Search contacts by name, email or phone").fill(label.split(" ")[0])
    expect(options.first).to_have_text("No contact")
    expect(panel.locator(f'#test-contact option[value="{contact_id}"]')).to_have_count(1)
    panel.get_by_label("Sample contact").select_option(contact_id)
    panel.get_by_role("button", name="Run test").click()
    expect(card(page, "welcome_sms")).to_have_class(re.compile(r"\btest-completed\b"))
    expect(card(page, "call_task").locator(".fc-test-error")).to_have_count(0)  # the last run's caption is gone
    release(page, held)
    expect(results.locator(".test-result-title")).to_contain_text("Completed")
    expect(page.locator(".fc-card.test-failed")).to_have_count(0)
    ran = results.locator("[data-step-id]").count()
    assert ran in (4, 5)  # a lead goes on to the email and the task; a trial or a member is tagged
    expect(page.locator(".fc-card.test-completed")).to_have_count(ran)
    expect(results.locator('[data-step-id="welcome_sms"] details.step-data pre').last).to_contain_text('"mocked"')
    assert_accessible(page, "builder after a passing test")

    page.keyboard.press("Escape")  # the panel closes; the cards keep what the test showed
    expect(page.locator("#builder-panel")).to_be_hidden()
    expect(card(page, "welcome_sms")).to_have_class(re.compile(r"\btest-completed\b"))
