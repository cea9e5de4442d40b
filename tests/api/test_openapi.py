"""/api/v2/openapi.json: a valid OpenAPI document that says how every operation is authenticated."""
import pytest
from openapi_spec_validator import validate

from tests import factories

METHODS = {"get", "post", "put", "patch", "delete"}
PUBLIC = {("post", "/api/v2/auth/token"), ("post", "/api/v2/auth/signup"),
          ("get", "/api/v2/schemas/workflow-definition.json"),
          ("post", "/api/v2/sms/inbound"),  # the SMS provider's webhook: authenticated by the token in its URL
          ("post", "/api/v2/webhooks/receive/{endpoint_id}")}  # signed with the endpoint's secret instead
USER_ONLY = {("get", "/api/v2/me")}


@pytest.fixture
def spec(client):
    response = client.get("/api/v2/openapi.json")  # no token needed
    assert response.status_code == 200
    return response.json


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def test_the_document_is_valid_openapi(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Atlas Workflow API"


def test_it_documents_every_api_route(app, spec):
    documented = {(m, p) for m, p, _ in operations(spec)}
    routed = {(method.lower(), rule.rule.replace("<", "{").replace(">", "}"))
              for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/v2/") and not rule.endpoint.startswith("api-docs")
              for method in rule.methods & {m.upper() for m in METHODS}}

    assert documented == routed
    assert {("get", "/api/v2/workflows"), ("put", "/api/v2/workflows/{workflow_id}"),
            ("get", "/api/v2/audit-logs")} <= documented


def test_bearer_auth_is_declared(spec):
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer",
                                                                   "bearerFormat": "JWT"}


def test_every_operation_but_sign_in_and_sign_up_requires_the_bearer_token(spec):
    for method, path, operation in operations(spec):
        expected = [] if (method, path) in PUBLIC else [{"bearerAuth": []}]
        assert operation.get("security") == expected, (method, path)


def test_organization_scoped_operations_document_the_organization_header(spec):
    for method, path, operation in operations(spec):
        headers = [p for p in operation.get("parameters", []) if p["in"] == "header"]
        if (method, path) in PUBLIC | USER_ONLY:
            assert headers == [], (method, path)
        else:
            assert [(h["name"], h["required"]) for h in headers] == [("X-Organization-ID", True)], (method, path)


def test_the_list_query_is_documented_in_camel_case(spec):
    names = {p["name"] for p in spec["paths"]["/api/v2/workflows"]["get"]["parameters"] if p["in"] == "query"}

    assert names == {"status", "category", "search", "tags", "page", "limit", "sortBy", "sortOrder"}


def test_request_bodies_reference_the_camel_case_schemas(spec):
    create = spec["paths"]["/api/v2/workflows"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = spec["components"]["schemas"][create["$ref"].rsplit("/", 1)[1]]

    assert {"name", "workflowData", "triggerType"} <= set(schema["required"])
    assert "trigger_type" not in schema["properties"]
    assert schema.get("additionalProperties") is False


def test_the_error_envelope_is_documented(spec):
    envelope = spec["components"]["schemas"]["ApiErrorResponse"]["properties"]
    error = spec["components"]["schemas"]["ErrorBody"]["properties"]

    assert set(envelope) == {"error", "validation"}
    assert set(error) == {"code", "message", "details", "timestamp", "requestId"}


def test_the_document_is_served_the_same_to_a_signed_in_client(client, spec, staff, org):
    assert client.get("/api/v2/openapi.json", headers=factories.headers(staff, org)).json == spec
