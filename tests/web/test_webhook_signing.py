"""The organization's outgoing signing secret on the webhooks page: admins show and rotate it; staff and viewers
learn that it exists and who can see it, and are refused if they ask anyway."""
import html
import re

import pytest

from atlas.services import signing_secrets
from tests import factories
from tests.web.test_pages import sign_in

HTMX = {"HX-Request": "true"}


def secret_on(page: str) -> str:
    return html.unescape(re.search(r'<code id="wh-signing-value" class="wh-value">([^<]+)</code>', page).group(1))


@pytest.fixture
def admin_client(client, org):
    sign_in(client, factories.make_user(org, "admin"), org)
    return client


def test_an_admin_is_offered_the_secret_and_sees_it_only_on_asking(admin_client, org):
    page = admin_client.get("/webhooks").get_data(as_text=True)
    assert "Outgoing webhooks" in page and "Show the signing secret" in page and "whsec_" not in page
    shown = admin_client.get("/webhooks/signing-secret", headers=HTMX)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    assert secret_on(shown.get_data(as_text=True)) == signing_secrets.signing_secret(org.id)


def test_rotating_makes_a_new_secret_and_the_old_one_signs_for_the_chosen_time(admin_client, org):
    before = signing_secrets.signing_secret(org.id)
    rotated = admin_client.post("/webhooks/signing-secret/rotate", data={"grace": "hour"}, headers=HTMX)
    page = rotated.get_data(as_text=True)
    assert rotated.status_code == 200 and "A new signing secret is in use." in page
    assert "The previous one also signs until" in page
    assert secret_on(page) == signing_secrets.signing_secret(org.id) != before
    assert signing_secrets.signing_keys(org.id)[1] == before

    stopped = admin_client.post("/webhooks/signing-secret/rotate", data={"grace": "now"}, headers=HTMX)
    assert "previous one also signs" not in stopped.get_data(as_text=True)
    assert signing_secrets.signing_keys(org.id) == [secret_on(stopped.get_data(as_text=True))]


@pytest.mark.parametrize("role", ["staff", "viewer"])
def test_below_admin_the_page_says_who_can_and_the_routes_refuse(client, org, role):
    sign_in(client, factories.make_user(org, role), org)
    page = client.get("/webhooks").get_data(as_text=True)
    assert "An admin or the owner can show and rotate the signing secret." in page
    assert "Show the signing secret" not in page
    assert client.get("/webhooks/signing-secret", headers=HTMX).status_code == 403
    before = signing_secrets.signing_secret(org.id)
    assert client.post("/webhooks/signing-secret/rotate", data={"grace": "now"}, headers=HTMX).status_code == 403
    assert signing_secrets.signing_secret(org.id) == before
