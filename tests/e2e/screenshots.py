"""Screenshots of the pages as a person sees them: `python -m tests.e2e.screenshots [DIR] [--all]`.

Without --all it refreshes the demo gym's pages in docs/screenshots/ at 1280 and 768 px: workflows, contacts, one
contact, the outbox, the messaging settings, the builder (with a step's form open) and the webhooks (list and one
endpoint); with --all it also takes login, sign-up, the empty list and the new-workflow form. Runs its own server,
like the e2e tests.
"""
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, DEMO_PASSWORD, ROOT, running_atlas
from tests.support.workers import Worker

WIDTHS = {1280: 800, 768: 1024}
SHOWN_CONTACT = "Noah Bennett"  # a member with a plan and bookings, whose failed card payment started a run


def main(argv: list[str]) -> int:
    """Start Atlas, seed the demo gym, and save the screenshots."""
    out = Path(next((a for a in argv if not a.startswith("--")), ROOT / "docs" / "screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="atlas-shots-") as instance, running_atlas(Path(instance)) as server:
        server.flask("atlas", "seed-demo")
        worker = Worker("shots-worker", server.env, Path(instance))  # runs the demo's runs: messages for the outbox
        try:
            _shoot(server, out, argv)
        finally:
            worker.kill()
    print(f"screenshots in {out}")
    return 0


def _shoot(server, out: Path, argv: list[str]) -> None:
    """Every page at every width."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for width, height in WIDTHS.items():
            context = browser.new_context(base_url=server.base_url, viewport={"width": width, "height": height})
            if "--all" in argv:
                _new_gym_pages(context.new_page(), out, width)
                context.clear_cookies()
            tab = context.new_page()
            _demo_list(tab, out, width)
            _crm_pages(tab, out, width)
            _builder(tab, out, width)
            _webhooks(tab, out, width)
            context.close()
        browser.close()


def _demo_list(page, out: Path, width: int) -> None:
    """The demo gym's populated workflows list."""
    page.goto("/login")
    page.fill("#email", "demo@atlas.example")
    page.fill("#password", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#workflow-results tbody tr")
    page.screenshot(path=out / f"workflows-{width}.png", full_page=True)


def _crm_pages(page, out: Path, width: int) -> None:
    """The demo gym's contacts, one member's page, the outbox and the messaging settings (already signed in)."""
    page.goto("/contacts")
    page.wait_for_selector("#contact-results tbody tr")
    page.screenshot(path=out / f"contacts-{width}.png", full_page=True)
    page.fill("#c-search", SHOWN_CONTACT)
    page.wait_for_selector(f"#contact-results tbody tr:only-child a.contact-name:text-is('{SHOWN_CONTACT}')")
    page.click("#contact-results a.contact-name")
    page.wait_for_selector("#contact-tags")
    page.screenshot(path=out / f"contact-{width}.png", full_page=True)
    page.goto("/outbox")
    for _ in range(40):  # the worker sends the demo's first messages within seconds of the seed
        if page.locator("#outbox-results tbody tr").count():
            break
        page.wait_for_timeout(250)
        page.reload()
    page.screenshot(path=out / f"outbox-{width}.png", full_page=True)
    page.goto("/settings/messaging")
    page.wait_for_selector("#policy-heading")
    page.screenshot(path=out / f"messaging-settings-{width}.png", full_page=True)


def _builder(page, out: Path, width: int) -> None:
    """The demo's "New lead welcome" in the builder, then with its first step's form open (already signed in)."""
    page.goto("/")
    row = page.locator("#workflow-results tbody tr", has=page.get_by_role("link", name="New lead welcome", exact=True))
    row.locator("a.steps-link").click()
    page.wait_for_selector(".fc-card")
    page.screenshot(path=out / f"builder-{width}.png", full_page=True)
    page.click('.fc-card[data-node-id="wait"]')
    page.wait_for_selector("#builder-panel:not([hidden]) .node-form")
    page.screenshot(path=out / f"builder-step-{width}.png", full_page=True)


def _webhooks(page, out: Path, width: int) -> None:
    """The demo's webhook endpoints, then the website form's endpoint with its delivery log (already signed in)."""
    page.goto("/webhooks")
    page.wait_for_selector(".wh-card, .wh-endpoint, main a:text-is('Website trial form')")
    page.screenshot(path=out / f"webhooks-{width}.png", full_page=True)
    page.get_by_role("link", name="Website trial form", exact=True).first.click()
    page.wait_for_selector("h1:text-is('Website trial form')")
    page.screenshot(path=out / f"webhook-{width}.png", full_page=True)


def _new_gym_pages(page, out: Path, width: int) -> None:
    """Login, sign-up, the empty list and the new-workflow form of a gym that signs up now."""
    page.goto("/login")
    page.screenshot(path=out / f"login-{width}.png", full_page=True)
    page.goto("/signup")
    page.screenshot(path=out / f"signup-{width}.png", full_page=True)
    page.fill("#organization_name", f"Screenshot Gym {width}")
    page.fill("#name", "Pat Manager")
    page.fill("#email", f"pat{width}@example.com")
    page.fill("#password", "a-long-password")
    page.click("main button[type=submit]")
    page.wait_for_selector(".empty-state")
    page.screenshot(path=out / f"workflows-empty-{width}.png", full_page=True)
    page.goto("/workflows/new")
    page.screenshot(path=out / f"new-workflow-{width}.png", full_page=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
