"""A gym manager in Chromium on the demo gym's CRM pages: the contacts list and its htmx filters, one contact with its
tags, the outbox, and the messaging settings (contact policy and templates)."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.server import DEMO_PASSWORD
from tests.e2e.test_browser import assert_accessible, sign_in

pytestmark = pytest.mark.e2e
MARKER = "window.atlasPageMarker"  # set on a page; still there afterwards = no reload happened


@pytest.fixture(scope="module")
def demo(atlas_server):
    """The demo gym with its contacts, classes, plans and templates, seeded by the CLI (idempotent)."""
    assert "demo@atlas.example" in atlas_server.flask("atlas", "seed-demo")
    return {"email": "demo@atlas.example", "password": DEMO_PASSWORD}


def open_signed_in(page, demo, path: str) -> None:
    """Go to a page; sign-in comes first and leads back to it."""
    page.goto(path)
    sign_in(page, demo["email"], demo["password"])
    expect(page).to_have_url(re.compile(re.escape(path) + r"$"))


def rows(page):
    return page.locator("#contact-results tbody tr")


def mark_page(page) -> None:
    page.evaluate(f"{MARKER} = 'same page'")


def assert_same_page(page) -> None:
    assert page.evaluate(MARKER) == "same page", "the page reloaded"


def open_contact(page, name: str) -> None:
    """Find a contact with the list's search box and open their page."""
    page.get_by_label("Search").fill(name)
    expect(rows(page)).to_have_count(1)
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()


def test_contacts_list_searches_filters_and_pages_without_reloading(page, demo):
    open_signed_in(page, demo, "/contacts")
    expect(page.get_by_role("heading", name="Contacts", level=1)).to_be_visible()
    expect(rows(page)).to_have_count(20)  # one page of the demo gym's two dozen contacts
    expect(page.locator("#contact-results .pager")).to_contain_text(re.compile(r"Page 1 of 2 · 2\d contacts"))
    expect(rows(page).filter(has_text="amira.nasser@example.com").get_by_role("cell").nth(4)).to_have_text("Instagram")
    assert_accessible(page, "contacts list")
    mark_page(page)

    with page.expect_response(lambda r: "search=okafor" in r.url) as searched:
        page.get_by_label("Search").fill("okafor")
    assert searched.value.request.headers.get("hx-request") == "true"
    assert "<html" not in searched.value.text()  # the results fragment, not a page
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("James Okafor")
    expect(page).to_have_url(re.compile(r"/contacts\?search=okafor"))

    page.get_by_label("Search").fill("")
    page.get_by_label("Status").select_option("trial")
    expect(rows(page)).to_have_count(4)
    expect(rows(page).locator("td[data-label=Status]")).to_have_text(["Trial"] * 4)
    expect(page).to_have_url(re.compile(r"status=trial"))
    page.get_by_label("Status").select_option("")
    page.get_by_label("Tag").select_option("vip")
    expect(rows(page)).to_have_count(2)
    assert sorted(rows(page).locator(".contact-name").all_inner_texts()) == ["Amira Nasser", "Sofia Garcia"]
    page.get_by_label("Status").select_option("lead")
    expect(page.get_by_role("heading", name="No contacts match these filters")).to_be_visible()
    page.get_by_label("Status").select_option("")
    page.get_by_label("Tag").select_option("")
    expect(rows(page)).to_have_count(20)

    page.get_by_role("link", name="Next →").click()
    expect(page.locator("#contact-results .pager")).to_contain_text("Page 2 of 2")
    expect(page).to_have_url(re.compile(r"page=2"))
    assert 1 <= rows(page).count() <= 20
    page.get_by_role("link", name="← Previous").click()
    expect(rows(page)).to_have_count(20)
    assert_same_page(page)
    expect(page.get_by_role("heading", name="Contacts", level=1)).to_have_count(1)  # not nested in the results


def test_contacts_list_fits_a_tablet_as_labelled_cards(page, demo):
    page.set_viewport_size({"width": 768, "height": 1024})
    open_signed_in(page, demo, "/contacts")
    expect(rows(page)).to_have_count(20)
    label = "getComputedStyle(document.querySelector('#contact-results td[data-label=Email]'), '::before').content"
    assert page.evaluate(label) == '"Email"'
    assert page.evaluate("document.documentElement.scrollWidth") <= 768, "sideways scrolling at 768px"
    email = rows(page).first.locator("td[data-label=Email]")
    assert email.evaluate("e => e.scrollWidth <= e.clientWidth"), "an email address overflows its cell"
    assert_accessible(page, "contacts list at 768px")


def test_contact_page_shows_the_member_and_their_classes(page, demo):
    open_signed_in(page, demo, "/contacts")
    open_contact(page, "Amira Nasser")
    details = page.locator("section", has=page.get_by_role("heading", name="Details"))
    expect(details).to_contain_text("amira.nasser@example.com")
    expect(details).to_contain_text("Fitness goal")  # the custom field's label, not its key
    expect(page.locator(".contact-facts")).to_contain_text("Lead source: Instagram")
    expect(page.locator("#contact-tags .tag")).to_have_text(["member", "vip"])
    classes = page.locator("section", has=page.get_by_role("heading", name="Classes and membership"))
    expect(classes).to_contain_text("Monthly unlimited")
    expect(classes.locator("[class*=badge-booking-]")).to_have_count(4)  # the four seeded bookings
    decisions = page.locator("section", has=page.get_by_role("heading", name="Why wasn't this contact enrolled?"))
    expect(decisions).to_be_visible()
    expect(decisions).to_contain_text(re.compile(r"Outcome|No workflow has evaluated an event"))
    assert_accessible(page, "contact page")
    page.set_viewport_size({"width": 768, "height": 1024})
    page.wait_for_function("window.matchMedia('(max-width: 768px)').matches")
    assert page.evaluate("document.documentElement.scrollWidth") <= 768, "sideways scrolling at 768px"
    assert_accessible(page, "contact page at 768px")


def test_staff_tag_and_untag_a_contact_in_place_and_it_sticks(page, demo):
    open_signed_in(page, demo, "/contacts")
    open_contact(page, "Zara Ali")
    tags = page.locator("#contact-tags .tag")
    expect(tags).to_have_text(["hot-lead", "trial"])
    mark_page(page)

    with page.expect_response(lambda r: r.url.endswith("/tags") and r.request.method == "POST") as added:
        page.get_by_label("Add a tag").fill("pt-interest")
        page.get_by_role("button", name="Add tag").click()
    assert added.value.request.headers.get("hx-request") == "true"
    expect(tags).to_have_text(["hot-lead", "pt-interest", "trial"])
    expect(page.get_by_label("Add a tag")).to_have_value("")
    page.get_by_role("button", name="Remove tag hot-lead").click()
    expect(tags).to_have_text(["pt-interest", "trial"])
    assert_same_page(page)
    assert_accessible(page, "contact page after tag changes")

    page.reload()
    expect(tags).to_have_text(["pt-interest", "trial"])
    page.get_by_role("button", name="Remove tag pt-interest").click()
    expect(tags).to_have_text(["trial"])  # the tags block was swapped: fill the new form, not the old one
    page.get_by_label("Add a tag").fill("hot-lead")
    page.get_by_role("button", name="Add tag").click()
    expect(tags).to_have_text(["hot-lead", "trial"])  # as seeded again, for whoever looks next


def test_outbox_filters_and_says_when_no_provider_is_configured(page, demo):
    open_signed_in(page, demo, "/outbox")
    expect(page.get_by_role("heading", name="Outbox", level=1)).to_be_visible()
    results = page.locator("#outbox-results")
    expect(results.locator("table, .empty-state")).to_have_count(1)
    assert_accessible(page, "outbox")
    mark_page(page)
    with page.expect_response(lambda r: "channel=sms" in r.url) as filtered:
        page.get_by_label("Channel").select_option("sms")
    assert filtered.value.request.headers.get("hx-request") == "true"
    expect(page).to_have_url(re.compile(r"/outbox\?.*channel=sms"))
    expect(results.locator("table, .empty-state")).to_have_count(1)
    channels = results.locator("td[data-label=Channel]").all_inner_texts()
    assert set(channels) <= {"SMS"}, channels
    if not channels:
        expect(results.get_by_role("heading", name="No messages match these filters")).to_be_visible()
    assert_same_page(page)

    page.get_by_role("link", name="Messaging settings").click()
    expect(page.get_by_role("heading", name="Messaging settings", level=1)).to_be_visible()
    providers = page.locator("section", has=page.get_by_role("heading", name="Providers"))
    expect(providers.locator("tbody tr td[data-label=Status]")).to_have_text(["Not configured", "Not configured"])
    expect(providers).to_contain_text("With no provider configured, messages stay in the outbox marked “not sent”.")


def test_messaging_settings_save_the_contact_policy(page, demo):
    open_signed_in(page, demo, "/settings/messaging")
    emails = page.locator("section", has=page.get_by_role("heading", name="Email templates"))
    expect(emails.locator(".template-name")).to_have_text(["Free trial offer", "Renewal reminder", "We missed you"])
    sms = page.locator("section", has=page.get_by_role("heading", name="SMS templates"))
    expect(sms.locator(".template-name")).to_contain_text(["Welcome text"])
    expect(page.get_by_label("From", exact=True)).to_have_value("21:00")
    assert_accessible(page, "messaging settings")

    page.get_by_label("From", exact=True).fill("22:30")
    page.get_by_label("until", exact=True).fill("07:00")
    page.locator("#sms_max").fill("2")
    page.locator("#sms_days").fill("5")
    page.get_by_label("When a contact reaches a cap").select_option("skip")
    page.get_by_role("button", name="Save contact policy").click()
    expect(page.get_by_role("status")).to_have_text("Contact policy saved.")
    page.reload()
    expect(page.get_by_label("From", exact=True)).to_have_value("22:30")
    expect(page.get_by_label("until", exact=True)).to_have_value("07:00")
    expect(page.locator("#sms_max")).to_have_value("2")
    expect(page.locator("#sms_days")).to_have_value("5")
    expect(page.get_by_label("When a contact reaches a cap")).to_have_value("skip")

    page.locator("#email_max").fill("lots")
    page.get_by_role("button", name="Save contact policy").click()
    expect(page.locator(".policy-form .field-error")).to_have_text(["The number of messages must be 1 to 1000."])
    expect(page.locator("#email_max")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#email_max")).to_have_value("lots")  # what was typed stays, beside its error
    assert_accessible(page, "messaging settings with an error")
    page.goto("/settings/messaging")
    expect(page.locator("#email_max")).to_have_value("5")  # the refused form changed nothing

    page.get_by_label("From", exact=True).fill("21:00")  # back to the demo gym's policy
    page.get_by_label("until", exact=True).fill("08:00")
    page.locator("#sms_max").fill("3")
    page.locator("#sms_days").fill("7")
    page.get_by_label("When a contact reaches a cap").select_option("defer")
    page.get_by_role("button", name="Save contact policy").click()
    expect(page.get_by_role("status")).to_have_text("Contact policy saved.")


def test_manager_writes_an_sms_template_and_is_told_about_a_broken_one(page, demo):
    open_signed_in(page, demo, "/settings/messaging")
    page.get_by_role("link", name="New SMS template").click()
    expect(page.get_by_role("heading", name="New SMS template")).to_be_visible()
    assert_accessible(page, "new SMS template form")

    page.get_by_label("Name", exact=True).fill("Class tomorrow")
    page.get_by_label("Message", exact=True).fill("Hi {{ contact.first_name, see you at {{ trigger.className }} tomorrow!")
    page.get_by_role("button", name="Save template").click()
    body = page.get_by_label("Message", exact=True)
    expect(body).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#body-error")).to_be_visible()
    expect(body).to_have_value("Hi {{ contact.first_name, see you at {{ trigger.className }} tomorrow!")
    assert_accessible(page, "SMS template form with an error")

    body.fill("Hi {{ contact.first_name }}, see you at {{ trigger.className | default('class') }} tomorrow!")
    page.get_by_role("button", name="Save template").click()
    expect(page).to_have_url(re.compile(r"/settings/messaging$"))
    expect(page.get_by_role("status")).to_have_text("Template “Class tomorrow” saved.")
    sms = page.locator("section", has=page.get_by_role("heading", name="SMS templates"))
    saved = sms.locator("li", has_text="Class tomorrow")
    expect(saved).to_contain_text("see you at {{ trigger.className | default('class') }} tomorrow!")

    page.once("dialog", lambda dialog: dialog.accept())  # "Delete the template …? This cannot be undone."
    saved.get_by_role("button", name="Delete Class tomorrow").click()
    expect(page.get_by_role("status")).to_have_text("Template “Class tomorrow” deleted.")
    expect(sms.locator("li", has_text="Class tomorrow")).to_have_count(0)
