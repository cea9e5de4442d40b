"""Who may open a workflow's event stream, and what it says first (the content over real HTTP: tests/e2e)."""
from atlas import realtime
from tests import factories
from tests.api.helpers import assert_error


def first_chunk(response) -> str:
    try:
        return next(iter(response.response)).decode()
    finally:
        response.close()


def test_bearer_and_organization_headers_open_the_stream(client, org, staff, staff_headers):
    workflow = factories.make_workflow(org, staff)
    response = client.get(f"/api/v2/workflows/{workflow.id}/stream", headers=staff_headers, buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert first_chunk(response) == "retry: 3000\nevent: heartbeat\ndata: {}\n\n"


def test_a_page_s_session_opens_the_stream(client, org, staff):
    workflow = factories.make_workflow(org, staff)
    with client.session_transaction() as session:
        session["user_id"], session["org_id"] = staff.id, org.id
    response = client.get(f"/api/v2/workflows/{workflow.id}/stream", buffered=False)
    assert response.status_code == 200 and "heartbeat" in first_chunk(response)


def test_no_credentials_and_foreign_tickets_are_refused(client, org, staff, staff_headers):
    mine, other = factories.make_workflow(org, staff), factories.make_workflow(org, staff)
    assert_error(client.get(f"/api/v2/workflows/{mine.id}/stream"), 401, "UNAUTHENTICATED")
    ticket = client.post(f"/api/v2/workflows/{other.id}/stream-tickets", headers=staff_headers).json["ticket"]
    response = client.get(f"/api/v2/workflows/{mine.id}/stream?ticket={ticket}")
    assert_error(response, 401, "INVALID_TICKET")


def test_a_ticket_is_short_lived_and_names_its_stream(client, org, staff, staff_headers):
    workflow = factories.make_workflow(org, staff)
    body = client.post(f"/api/v2/workflows/{workflow.id}/stream-tickets", headers=staff_headers).json
    assert body["expiresIn"] == 60 and body["streamUrl"].endswith(f"/stream?ticket={body['ticket']}")


def test_oversized_event_data_is_slimmed_not_dropped():
    encoded = realtime._encode({"executionId": "e1", "output": {"blob": "x" * 20000}})
    assert encoded == '{"executionId":"e1","truncated":true}'
