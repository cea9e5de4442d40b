"""The first end-to-end path through the API: token, me, create, list."""
from tests import factories


def test_token_me_create_and_list(client, org, staff):
    token = client.post("/api/v2/auth/token", json={"email": staff.email, "password": factories.PASSWORD})
    assert token.status_code == 200, token.json
    assert token.json["tokenType"] == "Bearer" and token.json["expiresIn"] == 3600
    auth = {"Authorization": f"Bearer {token.json['accessToken']}", "X-Organization-ID": org.id}

    me = client.get("/api/v2/me", headers=auth)
    assert me.json["organizations"] == [{"id": org.id, "name": "Iron Temple Gym", "role": "staff", "timezone": "UTC"}]

    created = client.post("/api/v2/workflows", headers=auth, json=factories.workflow_body(name="Welcome"))
    assert created.status_code == 201, created.json
    assert created.json["workflow"]["name"] == "Welcome"
    assert created.json["estimatedPerformance"]["basis"] == "defaults"

    listed = client.get("/api/v2/workflows", headers=auth)
    assert [w["name"] for w in listed.json["workflows"]] == ["Welcome"]
    assert listed.json["pagination"] == {"total": 1, "page": 1, "limit": 20, "totalPages": 1}
