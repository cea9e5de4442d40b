"""A gym manager in Chromium drags a step card below the next one; the order holds after a reload; a refused move
puts the card back and says why."""
import uuid

import pytest
import requests
from playwright.sync_api import expect

from tests.e2e.test_browser import assert_accessible, sign_in

pytestmark = pytest.mark.e2e
PASSWORD = "a-long-gym-password"
TAGS = {"schemaVersion": 1, "nodes": [
    {"id": "first", "type": "add_tag", "name": "Tag as lead", "config": {"tag": "lead"}},
    {"id": "second", "type": "add_tag", "name": "Tag as local", "config": {"tag": "local"}},
    {"id": "third", "type": "add_tag", "name": "Tag as welcomed", "config": {"tag": "welcomed"}},
    {"id": "done", "type": "end", "name": "Done", "config": {}}],
    "edges": [{"source": "first", "target": "second"}, {"source": "second", "target": "third"},
              {"source": "third", "target": "done"}]}


@pytest.fixture(scope="module")
def gym(atlas_server):
    """A gym of its own, signed up through the API, with a three-step workflow nobody else edits."""
    base, email = atlas_server.base_url, f"mover-{uuid.uuid4().hex[:8]}@example.com"
    signup = requests.post(f"{base}/api/v2/auth/signup", timeout=10, json={
        "email": email, "password": PASSWORD, "name": "Morgan Manager", "organizationName": "Drag Gym"}).json()
    headers = {"Authorization": f"Bearer {signup['token']['accessToken']}",
               "X-Organization-ID": signup["organizations"][0]["id"]}
    created = requests.post(f"{base}/api/v2/workflows", headers=headers, timeout=10, json={
        "name": "Tag new leads", "triggerType": "lead_created", "workflowData": TAGS})
    assert created.status_code == 201, created.text
    return {"email": email, "workflow_id": created.json()["workflow"]["id"]}


def drag(page, source, target, fraction: float = 0.85) -> None:
    """Press on the source card, move in small steps to a point down the target card (0.85: its lower part), let go."""
    start, end = source.bounding_box(), target.bounding_box()
    x, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y + 8, steps=4)  # past SortableJS's tolerance: the drag starts
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] * fraction, steps=12)
    page.wait_for_timeout(150)  # SortableJS checks where the pointer is every 50 ms
    page.mouse.up()


def test_a_manager_drags_a_step_below_the_next_one(page, gym):
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto("/")
    sign_in(page, gym["email"], PASSWORD)
    page.set_viewport_size({"width": 1280, "height": 1100})  # every card on screen, so a drag can reach it
    page.goto(f"/workflows/{gym['workflow_id']}/builder")
    names = page.locator(".fc-card .fc-name")
    expect(names).to_have_text(["Tag as lead", "Tag as local", "Tag as welcomed", "Done"])

    with page.expect_response(lambda r: r.url.endswith("/nodes/first/move") and r.status == 200):
        drag(page, page.locator('.fc-card[data-node-id="first"]'), page.locator('.fc-card[data-node-id="second"]'))
    expect(names).to_have_text(["Tag as local", "Tag as lead", "Tag as welcomed", "Done"])
    expect(page.get_by_role("button", name="Undo: Moved step 'Tag as lead' after 'Tag as local'")).to_be_enabled()
    expect(page.locator("#builder-panel")).to_be_hidden()  # letting go of the card is not a click that opens it
    expect(page.locator("#builder-move-status")).to_be_empty()
    assert_accessible(page, "builder after a drag")

    page.reload()  # the move is in the draft
    expect(names).to_have_text(["Tag as local", "Tag as lead", "Tag as welcomed", "Done"])
    expect(page.locator("#builder-status")).to_contain_text("not published yet")

    with page.expect_response(lambda r: r.url.endswith("/nodes/third/move") and r.status == 200):
        drag(page, page.locator('.fc-card[data-node-id="third"]'), page.locator('.fc-card[data-node-id="second"]'),
             0.15)
    expect(names).to_have_text(["Tag as welcomed", "Tag as local", "Tag as lead", "Done"])  # to the very top

    with page.expect_response(lambda r: r.url.endswith("/nodes/done/move") and r.status == 422):
        drag(page, page.locator('.fc-card[data-node-id="done"]'), page.locator('.fc-card[data-node-id="third"]'), 0.15)
    expect(page.get_by_role("alert")).to_contain_text("'Done' ends the run, so it can only go where a path ends.")
    expect(names).to_have_text(["Tag as welcomed", "Tag as local", "Tag as lead", "Done"])  # put back
    assert_accessible(page, "builder with a refused move")
    assert [e for e in errors if "422" not in e] == []  # the refusal's status is the only complaint
