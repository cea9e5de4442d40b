"""Browser fixtures: the real app (see server.py) once per session, Chromium once, a fresh context per test."""
import pytest

from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, running_atlas
from tests.support.workers import Worker


@pytest.fixture(scope="session")
def atlas_server(tmp_path_factory):
    """gunicorn + Redis + a migrated SQLite file, stopped by PID when the session ends."""
    with running_atlas(tmp_path_factory.mktemp("atlas-instance")) as server:
        yield server


@pytest.fixture(scope="session")
def worker(atlas_server, tmp_path_factory):
    """A real worker process on the server's database and Redis (runs and the builder's tests); killed by PID."""
    process = Worker("e2e-worker", atlas_server.env, tmp_path_factory.mktemp("e2e-worker"))
    yield process
    process.kill()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, atlas_server):
    """A fresh browser context (no cookies) at desktop size; afterwards, no request may have left the server."""
    context = browser.new_context(base_url=atlas_server.base_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(5000)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    tab = context.new_page()
    yield tab
    context.close()
    elsewhere = [url for url in requested if url.startswith(("http:", "https:", "ws:", "wss:"))
                 and not url.startswith(atlas_server.base_url + "/")]
    assert not elsewhere, f"the page sent requests away from the test server: {elsewhere}"
