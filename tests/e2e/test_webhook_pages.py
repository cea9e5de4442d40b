"""A gym manager in Chromium on the webhooks page: create an endpoint, copy its secret, and watch a delivery signed
with the `standardwebhooks` package arrive over HTTP in the log and the live counters; the test form and replay.
Each module signs up a gym of its own through the API. (The webhook pages in docs/screenshots come from
tests/e2e/screenshots.py, on the demo gym.)"""
import json
import re
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

import pytest
import requests
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook

from tests.e2e.test_browser import assert_accessible, sign_in

pytestmark = pytest.mark.e2e
PASSWORD = "a-long-gym-password"
WIDTHS = {1280: 800, 768: 1024}
WELCOME = {"schemaVersion": 1, "edges": [], "nodes": [
    {"id": "note", "type": "set_variable", "name": "Note the trial", "config": {"name": "trial", "value": "booked"}}]}


@pytest.fixture(scope="module")
def gym(atlas_server):
    """A new gym with a lead and an active workflow, signed up through the API."""
    base, email = atlas_server.base_url, f"webhooks-{uuid.uuid4().hex[:8]}@example.com"
    signup = requests.post(f"{base}/api/v2/auth/signup", timeout=10, json={
        "email": email, "password": PASSWORD, "name": "Morgan Manager", "organizationName": "Harbour Strength"}).json()
    headers = {"Authorization": f"Bearer {signup['token']['accessToken']}",
               "X-Organization-ID": signup["organizations"][0]["id"]}
    lead = requests.post(f"{base}/api/v2/contacts", headers=headers, timeout=10, json={
        "firstName": "Sarah", "lastName": "Lee", "email": "sarah.lee@example.com"})
    assert lead.status_code == 201, lead.text
    created = requests.post(f"{base}/api/v2/workflows", headers=headers, timeout=10, json={
        "name": "Free trial welcome", "triggerType": "manual", "status": "active", "workflowData": WELCOME})
    assert created.status_code == 201, created.text
    return {"email": email, "base": base, "workflow_id": created.json()["workflow"]["id"]}


def post_signed(url: str, secret: str, body: dict, *, wrong: bool = False) -> tuple[int, dict]:
    """POST a delivery signed as a sender would sign it with the standardwebhooks package (wrong: another secret)."""
    text, msg_id, now = json.dumps(body), f"msg_{uuid.uuid4().hex}", datetime.now(timezone.utc)
    signer = Webhook("whsec_" + "d3Jvbmctc2VjcmV0LWZvci10ZXN0cw==" if wrong else secret)
    headers = {"Content-Type": "application/json", "webhook-id": msg_id,
               "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signer.sign(msg_id, now, text)}
    assert url.startswith("http://127.0.0.1:")  # never anywhere but the test server
    request = urllib.request.Request(url, data=text.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def no_sideways_scroll(page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": WIDTHS[width]})
    page.wait_for_timeout(100)  # let the layout settle at the new width
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"sideways scrolling at {width}px"


def stat(page, name: str):
    return page.locator(f'.wh-overview [data-stat="{name}"]')


def test_a_manager_creates_a_webhook_and_watches_a_signed_delivery_arrive(page, gym):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/webhooks")
    sign_in(page, gym["email"], PASSWORD)
    expect(page.get_by_role("heading", name="No webhooks yet")).to_be_visible()
    expect(page.get_by_text("Your website's trial form or booking widget can start a workflow")).to_be_visible()
    assert_accessible(page, "webhooks empty state")

    page.get_by_role("link", name="Create a webhook").click()
    page.get_by_label("Name").fill("Website trial form")
    page.get_by_label("Workflow it starts").select_option(label="Free trial welcome")
    page.get_by_label("Allowed origins").fill("https://www.harbourstrength.example")
    assert_accessible(page, "the new-webhook form")
    with page.expect_navigation():
        page.get_by_role("button", name="Create webhook").click()
    expect(page.get_by_text("You will not see this secret again.")).to_be_visible()
    secret, url = page.locator("#secret-value").inner_text(), page.locator("#secret-url").inner_text()
    assert secret.startswith("whsec_") and url == f"{gym['base']}/api/v2/webhooks/receive/{url.rsplit('/', 1)[1]}"
    copy = page.get_by_role("button", name="Copy signing secret")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    expect(page.get_by_role("button", name="Copy curl (bash with openssl)")).to_be_visible()
    expect(page.locator("#example-python")).to_contain_text(f"SECRET = '{secret}'")
    assert_accessible(page, "the new webhook's secret")

    with page.expect_navigation():
        page.get_by_role("link", name="I saved the secret: open the webhook").click()
    expect(page.get_by_role("heading", name="Website trial form", level=1)).to_be_visible()
    assert secret not in page.content()
    expect(page.get_by_role("heading", name="No deliveries yet")).to_be_visible()
    expect(stat(page, "received")).to_have_text("0")

    status, answer = post_signed(url, secret, {"email": "sarah.lee@example.com", "firstName": "Sarah"})
    assert status == 200 and answer["success"] and len(answer["workflowsTriggered"]) == 1, answer
    status, answer = post_signed(url, secret, {"email": "sarah.lee@example.com"}, wrong=True)
    assert status == 401 and answer["error"]["code"] == "WEBHOOK_SIGNATURE_INVALID"

    expect(stat(page, "received")).to_have_text("2", timeout=15_000)  # the counters poll every 5 seconds
    expect(stat(page, "accepted")).to_have_text("1")
    expect(stat(page, "rejected")).to_have_text("1")
    expect(page.locator(".wh-overview .wh-reasons")).to_have_text("1 wrong signature")
    page.get_by_role("button", name="Show 2 new deliveries").click()
    deliveries = page.locator(".wh-delivery")
    expect(deliveries).to_have_count(2)
    expect(deliveries.nth(0).locator(".badge")).to_have_text("Rejected")
    expect(deliveries.nth(0)).to_contain_text("Wrong signature")
    expect(deliveries.nth(1).locator(".badge")).to_have_text("Accepted")
    run_link = deliveries.nth(1).get_by_role("link", name="Free trial welcome")
    expect(run_link).to_have_attribute("href", re.compile(rf"/workflows/{gym['workflow_id']}/executions/[\w-]+$"))
    expect(page.get_by_role("button", name=re.compile("new deliver"))).to_have_count(0)
    deliveries.nth(1).get_by_text("Headers and payload").click()
    expect(deliveries.nth(1).locator("pre").nth(1)).to_contain_text('"email": "sarah.lee@example.com"')
    assert_accessible(page, "the endpoint page")
    no_sideways_scroll(page, 768)
    assert_accessible(page, "the endpoint page at 768px")

    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("link", name="Webhooks", exact=True).first.click()
    card = page.locator(".wh-card")
    expect(card).to_have_count(1)
    expect(card.locator('[data-stat="received"]')).to_have_text("2")
    expect(card.get_by_role("link", name="Free trial welcome")).to_be_visible()
    expect(card.get_by_role("button", name="Copy endpoint URL")).to_be_visible()
    assert_accessible(page, "the webhooks list")
    no_sideways_scroll(page, 768)
    assert_accessible(page, "the webhooks list at 768px")


def test_the_test_form_shows_each_step_and_a_replay_lands_on_top_of_the_log(page, gym):
    page.goto("/webhooks")
    sign_in(page, gym["email"], PASSWORD)
    page.locator(".wh-card a.wh-name").first.click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.get_by_label("Payload").fill('{"email": "jo.walker@example.com", "form": "Free trial week"}')
    page.get_by_role("button", name="Send test delivery").click()
    result = page.locator(".wh-test-result")
    expect(result).to_be_visible()
    expect(result.locator(".wh-check").first).to_be_visible()
    assert result.locator(".wh-check-failed").count() == 0
    expect(result).to_contain_text("Free trial welcome")
    assert_accessible(page, "the test result")

    first = page.locator(".wh-delivery").filter(has=page.locator(".badge-wh-accepted")).first
    first.get_by_text("Replay…").click()
    first.get_by_role("button", name="As a test (nothing sent)").click()
    expect(page.get_by_text("Replayed: the new delivery is at the top.")).to_be_visible()
    newest = page.locator(".wh-delivery").first
    expect(newest.locator(".tag")).to_have_text(["Test", "Replay"])
    assert_accessible(page, "the log after a replay")


def test_the_owner_shows_the_outgoing_signing_secret_and_rotates_it(page, gym):
    page.goto("/login")
    sign_in(page, gym["email"], PASSWORD)  # the gym's owner
    page.goto("/webhooks")
    section = page.get_by_role("region", name="Outgoing webhooks")
    expect(section).not_to_contain_text("whsec_")  # shown only on asking
    section.get_by_role("button", name="Show the signing secret").click()
    secret = section.locator("#wh-signing-value")
    expect(secret).to_contain_text("whsec_")
    first = secret.inner_text()
    expect(section.get_by_role("button", name="Copy signing secret")).to_be_visible()
    section.locator("summary", has_text="Rotate the signing secret").click()
    section.get_by_label("The current secret also signs for").select_option("hour")
    section.get_by_role("button", name="Make a new secret").click()
    expect(section.get_by_role("status")).to_contain_text("The previous one also signs until")
    expect(secret).not_to_have_text(first)
    assert_accessible(page, "webhooks page with the signing secret")
