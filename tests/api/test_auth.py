"""POST /auth/token, POST /auth/signup and GET /me; the bearer token and how a bad one is refused."""
import base64
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import jwt
import pytest
from sqlalchemy import func, select

from atlas.config import TestingConfig
from atlas.extensions import db
from atlas.models import Membership, Organization, User
from atlas.services import auth
from tests import factories
from tests.api.helpers import assert_error, validation, without_timestamp

SECRET = TestingConfig.SECRET_KEY
OTHER_KEY = "a-different-key-that-is-long-enough-for-hs256"


def sign_in(client, email, password=factories.PASSWORD, **kwargs):
    return client.post("/api/v2/auth/token", json={"email": email, "password": password}, **kwargs)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def claims_for(user, **changes) -> dict:
    now = datetime.now(timezone.utc)
    claims = {"sub": user.id, "iss": TestingConfig.JWT_ISSUER, "iat": now, "exp": now + timedelta(minutes=5)}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


# --- POST /auth/token ---------------------------------------------------------------------------------------------

def test_token_is_a_signed_hs256_jwt_with_the_required_claims(app, client, staff):
    ttl, issuer = app.config["JWT_TTL_SECONDS"], app.config["JWT_ISSUER"]
    response = sign_in(client, staff.email)

    assert response.status_code == 200
    assert set(response.json) == {"accessToken", "tokenType", "expiresIn"}
    assert response.json["tokenType"] == "Bearer" and response.json["expiresIn"] == ttl
    token = response.json["accessToken"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer=issuer)
    assert claims["sub"] == staff.id
    assert claims["exp"] - claims["iat"] == ttl
    assert abs(claims["iat"] - datetime.now(timezone.utc).timestamp()) < 60


def test_token_works_for_the_api_and_records_the_sign_in_time(client, org, staff):
    assert staff.last_login_at is None
    token = sign_in(client, staff.email).json["accessToken"]

    response = client.get("/api/v2/workflows", headers={**bearer(token), "X-Organization-ID": org.id})

    assert response.status_code == 200
    assert db.session.get(User, staff.id).last_login_at is not None


def test_email_is_matched_case_insensitively(client, staff):
    assert sign_in(client, staff.email.upper()).status_code == 200


def test_wrong_password_and_unknown_email_are_indistinguishable(client, staff):
    wrong = sign_in(client, staff.email, "not the password", headers={"X-Request-ID": "same"})
    unknown = sign_in(client, "nobody@example.com", "not the password", headers={"X-Request-ID": "same"})

    error = assert_error(wrong, 401, "INVALID_CREDENTIALS")
    assert error["message"] == "Email or password is incorrect."
    assert without_timestamp(wrong) == without_timestamp(unknown)


@pytest.mark.parametrize("body, field, message", [
    ({"password": "x"}, "email", "Missing data for required field."),
    ({"email": "a@example.com"}, "password", "Missing data for required field."),
    ({"email": "not-an-email", "password": "x"}, "email", "Not a valid email address."),
    ({"email": "a@example.com", "password": ""}, "password", "Length must be between 1 and 256."),
    ({"email": "a@example.com", "password": "x", "remember": True}, "remember", "Unknown field."),
])
def test_token_request_is_validated(client, body, field, message):
    response = client.post("/api/v2/auth/token", json=body)

    assert validation(response)[field] == message
    assert message in response.json["error"]["message"]


def test_malformed_json_to_token_is_a_400(client):
    response = client.post("/api/v2/auth/token", data='{"email": "a@example.com",', content_type="application/json")

    error = assert_error(response, 400, "MALFORMED_JSON")
    assert error["message"].startswith("The request body is not valid JSON")


def test_json_array_to_token_is_a_clear_422(client):
    response = client.post("/api/v2/auth/token", json=[{"email": "a@example.com", "password": "x"}])

    error = assert_error(response, 422, "VALIDATION_FAILED")
    assert error["message"] == "The request body must be a JSON object, not an array."
    assert response.json["validation"] == [{"field": None, "message": error["message"]}]


# --- how tokens are refused ---------------------------------------------------------------------------------------

def test_no_authorization_header_is_401(client, org):
    response = client.get("/api/v2/workflows", headers={"X-Organization-ID": org.id})
    error = assert_error(response, 401, "UNAUTHENTICATED")
    assert "Authorization: Bearer" in error["message"]
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="atlas"'  # RFC 6750


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "token-without-scheme"])
def test_authorization_header_must_be_bearer(client, header):
    error = assert_error(client.get("/api/v2/me", headers={"Authorization": header}), 401, "INVALID_TOKEN")
    assert error["message"] == "The Authorization header must be 'Bearer <token>'."


def _unsigned(claims: dict) -> str:
    def part(data):
        encoded = json.dumps(data, default=lambda when: int(when.timestamp())).encode()
        return base64.urlsafe_b64encode(encoded).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _tampered(user, other) -> str:
    """A genuine token whose payload is swapped for one naming another user, keeping the signature."""
    header, _, signature = auth.issue_token(user)["access_token"].split(".")
    payload = jwt.encode(claims_for(other), OTHER_KEY, algorithm="HS256").split(".")[1]
    return f"{header}.{payload}.{signature}"


@pytest.mark.parametrize("make_token", [
    pytest.param(lambda u, o: _unsigned(claims_for(u)), id="alg-none"),
    pytest.param(lambda u, o: jwt.encode(claims_for(u), SECRET, algorithm="HS512"), id="other-algorithm"),
    pytest.param(lambda u, o: jwt.encode(claims_for(u), OTHER_KEY, algorithm="HS256"), id="wrong-key"),
    pytest.param(_tampered, id="tampered-payload"),
    pytest.param(lambda u, o: jwt.encode(claims_for(u, iss="someone-else"), SECRET, algorithm="HS256"),
                 id="wrong-issuer"),
    pytest.param(lambda u, o: jwt.encode(claims_for(u, iss=None), SECRET, algorithm="HS256"), id="no-issuer"),
    pytest.param(lambda u, o: jwt.encode(claims_for(u, exp=None), SECRET, algorithm="HS256"), id="no-expiry"),
    pytest.param(lambda u, o: jwt.encode(claims_for(u, iat=None), SECRET, algorithm="HS256"), id="no-iat"),
    pytest.param(lambda u, o: jwt.encode(claims_for(u, sub="no-such-user"), SECRET, algorithm="HS256"),
                 id="unknown-user"),
    pytest.param(lambda u, o: "not.a.jwt", id="garbage"),
])
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512 with the app's secret
def test_bad_tokens_are_refused(client, staff, make_token):
    other = factories.make_user(name="Other")
    token = make_token(staff, other)

    error = assert_error(client.get("/api/v2/me", headers=bearer(token)), 401, "INVALID_TOKEN")
    assert error["message"] in {"The access token is invalid.", "The access token names no existing user."}


def test_expired_token_is_refused_with_its_own_code(client, staff):
    past = datetime.now(timezone.utc) - timedelta(hours=2)
    token = jwt.encode(claims_for(staff, iat=past, exp=past + timedelta(hours=1)), SECRET, algorithm="HS256")

    error = assert_error(client.get("/api/v2/me", headers=bearer(token)), 401, "TOKEN_EXPIRED")
    assert error["message"] == "The access token has expired; request a new one."


def test_a_token_from_another_installation_is_refused(client, staff, build_app):
    foreign = build_app(SECRET_KEY=OTHER_KEY)
    with foreign.app_context():
        token = auth.issue_token(staff)["access_token"]

    assert_error(client.get("/api/v2/me", headers=bearer(token)), 401, "INVALID_TOKEN")


# --- GET /me ------------------------------------------------------------------------------------------------------

def test_me_lists_the_user_and_every_organization_with_its_role(client, org, staff, other_org):
    db.session.add(Membership(user_id=staff.id, organization_id=other_org.id, role="admin"))
    db.session.commit()

    response = client.get("/api/v2/me", headers=factories.headers(staff))

    assert response.status_code == 200
    assert set(response.json["user"]) == {"id", "email", "name", "createdAt", "lastLoginAt"}
    assert response.json["user"]["email"] == staff.email
    assert response.json["organizations"] == [
        {"id": org.id, "name": "Iron Temple Gym", "role": "staff", "timezone": "UTC"},
        {"id": other_org.id, "name": "Rival Barbell Club", "role": "admin", "timezone": "UTC"},
    ]


def test_me_needs_a_token_but_no_organization(client, staff):
    assert_error(client.get("/api/v2/me"), 401, "UNAUTHENTICATED")
    assert client.get("/api/v2/me", headers=factories.headers(staff)).status_code == 200


# --- POST /auth/signup --------------------------------------------------------------------------------------------

SIGNUP = {"email": "Owner@NewGym.example", "password": "a long enough password", "name": "  Nia Owner ",
          "organizationName": "New Gym"}


def test_signup_creates_a_user_who_owns_a_new_organization(client):
    response = client.post("/api/v2/auth/signup", json=SIGNUP)

    assert response.status_code == 201, response.json
    assert response.json["user"]["email"] == "owner@newgym.example"
    assert response.json["user"]["name"] == "Nia Owner"
    [organization] = response.json["organizations"]
    assert organization["name"] == "New Gym" and organization["role"] == "owner"
    token = response.json["token"]
    assert token["tokenType"] == "Bearer"
    headers = {**bearer(token["accessToken"]), "X-Organization-ID": organization["id"]}
    assert client.get("/api/v2/audit-logs", headers=headers).status_code == 200  # owners read the audit log
    assert sign_in(client, "owner@newgym.example", SIGNUP["password"]).status_code == 200


def test_signup_with_a_taken_email_is_409(client, staff):
    response = client.post("/api/v2/auth/signup", json={**SIGNUP, "email": staff.email.upper()})

    error = assert_error(response, 409, "EMAIL_TAKEN")
    assert error["details"] == {"field": "email"}


def test_concurrent_signup_with_the_same_email_is_409_not_500(client, staff, monkeypatch):
    """Both requests pass the 'is the email free' check; the second loses on the unique index."""
    organizations_before = db.session.scalar(select(func.count()).select_from(Organization))
    monkeypatch.setattr(auth, "find_user", lambda email: None)

    response = client.post("/api/v2/auth/signup", json={**SIGNUP, "email": staff.email})

    assert_error(response, 409, "EMAIL_TAKEN")
    assert db.session.scalar(select(func.count()).select_from(Organization)) == organizations_before


@pytest.mark.parametrize("change, field, message", [
    ({"password": "short"}, "password", "Use a password of at least 10 characters."),
    ({"password": "x" * 257}, "password", "Longer than maximum length 256."),
    ({"name": "   "}, "name", "Must not be blank."),
    ({"organizationName": "x" * 121}, "organizationName", "Longer than maximum length 120."),
    ({"email": "nobody"}, "email", "Not a valid email address."),
    ({"plan": "gold"}, "plan", "Unknown field."),
])
def test_signup_is_validated(client, change, field, message):
    response = client.post("/api/v2/auth/signup", json={**SIGNUP, **change})

    assert validation(response)[field] == message
    assert auth.find_user(SIGNUP["email"]) is None


def test_signup_can_be_turned_off(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "ATLAS_ALLOW_SIGNUP", False)

    error = assert_error(client.post("/api/v2/auth/signup", json=SIGNUP), 403, "SIGNUP_DISABLED")
    assert error["message"] == "Sign-up is turned off on this Atlas installation."
    assert auth.find_user(SIGNUP["email"]) is None


@pytest.mark.parametrize("value, allowed", [("false", False), ("off", False), (None, True)])
def test_atlas_allow_signup_is_read_from_the_environment(value, allowed):
    env = {k: v for k, v in os.environ.items() if k != "ATLAS_ALLOW_SIGNUP"}
    if value is not None:
        env["ATLAS_ALLOW_SIGNUP"] = value
    result = subprocess.run([sys.executable, "-c", "from atlas.config import Config; print(Config.ATLAS_ALLOW_SIGNUP)"],
                            env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == str(allowed)
