"""/api/v2/auth and /api/v2/me: tokens, sign-up and the caller's identity."""
from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from atlas.api.context import PUBLIC, USER, access
from atlas.api.schemas import CamelSchema, Trimmed
from atlas.services import auth

blp = Blueprint("auth", __name__, url_prefix="/api/v2", description="Sign-in, sign-up and the current user")


class TokenRequest(CamelSchema):
    email = fields.Email(required=True)
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class TokenResponse(CamelSchema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


class SignupRequest(CamelSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=[validate.Length(
        min=auth.MIN_PASSWORD_LENGTH, error="Use a password of at least 10 characters."), validate.Length(max=256)])
    name = Trimmed(required=True, validate=validate.Length(max=120))
    organization_name = Trimmed(required=True, validate=validate.Length(max=120))


class OrganizationMembership(CamelSchema):
    id = fields.String()
    name = fields.String()
    role = fields.String()
    timezone = fields.String()


class UserSchema(CamelSchema):
    id = fields.String()
    email = fields.String()
    name = fields.String()
    created_at = fields.DateTime()
    last_login_at = fields.DateTime(allow_none=True)


class MeResponse(CamelSchema):
    user = fields.Nested(UserSchema)
    organizations = fields.List(fields.Nested(OrganizationMembership))


class SignupResponse(MeResponse):
    token = fields.Nested(TokenResponse)


def _me(user) -> dict:
    orgs = [{"id": m.organization.id, "name": m.organization.name, "role": m.role,
             "timezone": m.organization.timezone} for m in auth.memberships(user)]
    return {"user": user, "organizations": orgs}


@blp.route("/auth/token")
@access(PUBLIC)
class Token(MethodView):
    rate_limit = "RATELIMIT_AUTH"  # per client address: no organization is known yet

    @blp.arguments(TokenRequest)
    @blp.response(200, TokenResponse)
    def post(self, body):
        """Exchange email and password for a bearer token"""
        user = auth.sign_in(body["email"], body["password"], ip=request.remote_addr, request_id=g.request_id,
                            channel="api")
        return auth.issue_token(user)


@blp.route("/auth/signup")
@access(PUBLIC)
class Signup(MethodView):
    rate_limit = "RATELIMIT_AUTH"

    @blp.arguments(SignupRequest)
    @blp.response(201, SignupResponse)
    def post(self, body):
        """Create a user who owns a new organization (a gym signing up)"""
        user, _ = auth.signup(body["email"], body["password"], body["name"], body["organization_name"],
                              ip=request.remote_addr, request_id=g.request_id)
        return {**_me(user), "token": auth.issue_token(user)}


@blp.route("/me")
@access(USER)
class Me(MethodView):
    @blp.response(200, MeResponse)
    def get(self):
        """The signed-in user and the organizations they belong to"""
        return _me(g.user)
