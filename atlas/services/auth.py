"""Passwords, access tokens, sign-in and sign-up."""
from __future__ import annotations

from datetime import timedelta

import jwt
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from atlas.errors import Conflict, SignupDisabled, Unauthenticated, ValidationFailed
from atlas.extensions import db
from atlas.models import Membership, Organization, Role, User
from atlas.models.base import utcnow
from atlas.services import audit

ALGORITHM = "HS256"
MIN_PASSWORD_LENGTH = 10
# Verifying a password for an unknown email still costs one hash, so timing does not reveal which emails exist.
_DUMMY_HASH = generate_password_hash("atlas-timing-equaliser", method="scrypt")


def hash_password(password: str) -> str:
    """scrypt, werkzeug's memory-hard KDF."""
    return generate_password_hash(password, method="scrypt")


def check_password(user: User, password: str) -> bool:
    """Whether the password is the user's."""
    return check_password_hash(user.password_hash, password)


def issue_token(user: User) -> dict:
    """A signed HS256 access token for the user, in the shape POST /auth/token returns."""
    ttl = current_app.config["JWT_TTL_SECONDS"]
    now = utcnow()
    claims = {"sub": user.id, "iss": current_app.config["JWT_ISSUER"], "iat": now, "exp": now + timedelta(seconds=ttl)}
    token = jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ALGORITHM)
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}


def user_from_token(token: str) -> User:
    """The user a token names; Unauthenticated for a bad, expired, foreign or unsigned token."""
    try:
        claims = jwt.decode(token, current_app.config["SECRET_KEY"], algorithms=[ALGORITHM],
                            issuer=current_app.config["JWT_ISSUER"], options={"require": ["exp", "iat", "sub", "iss"]})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("The access token has expired; request a new one.", code="TOKEN_EXPIRED")
    except jwt.InvalidTokenError:
        raise Unauthenticated("The access token is invalid.", code="INVALID_TOKEN")
    user = db.session.get(User, claims["sub"])
    if user is None:
        raise Unauthenticated("The access token names no existing user.", code="INVALID_TOKEN")
    return user


def find_user(email: str) -> User | None:
    """A user by email, case-insensitively."""
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def authenticate(email: str, password: str) -> User:
    """The user with these credentials, with last_login_at updated; Unauthenticated otherwise."""
    user = find_user(email)
    if not check_password_hash(user.password_hash if user else _DUMMY_HASH, password) or user is None:
        raise Unauthenticated("Email or password is incorrect.", code="INVALID_CREDENTIALS")
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def sign_in(email: str, password: str, *, ip: str | None, request_id: str | None, channel: str) -> User:
    """authenticate() with an audit entry for success and failure alike."""
    try:
        user = authenticate(email, password)
    except Unauthenticated:
        audit.record("auth.login_failed", request_id=request_id, ip=ip, status_code=401,
                     details={"email": email.strip().lower()[:254], "channel": channel})
        raise
    # One entry per organization, so each one's log shows it; a user of no organization still leaves one.
    for org_id in [m.organization_id for m in memberships(user)] or [None]:
        audit.record("auth.login", organization_id=org_id, user_id=user.id, target_type="user",
                     target_id=user.id, status_code=200, request_id=request_id, ip=ip, details={"channel": channel})
    return user


def create_user(email: str, name: str, password: str) -> User:
    """A new user (not yet committed); Conflict if the email is taken."""
    if find_user(email) is not None:
        raise _email_taken()
    user = User(email=email.strip().lower(), name=name.strip(), password_hash=hash_password(password))
    db.session.add(user)
    return user


def _email_taken() -> Conflict:
    """The 409 for an email that already has an account."""
    return Conflict("An account with this email already exists.", code="EMAIL_TAKEN", details={"field": "email"})


def create_organization(name: str, owner: User, timezone: str = "UTC") -> Organization:
    """A new organization with `owner` as its owner (not yet committed)."""
    org = Organization(name=name.strip(), timezone=timezone)
    db.session.add(org)
    db.session.flush()
    db.session.add(Membership(user_id=owner.id, organization_id=org.id, role=Role.OWNER))
    return org


def signup(email: str, password: str, name: str, organization_name: str, *, ip: str | None = None,
           request_id: str | None = None) -> tuple[User, Organization]:
    """A new gym signing up: a user who owns a new organization."""
    if not current_app.config["ATLAS_ALLOW_SIGNUP"]:
        raise SignupDisabled()
    problems = signup_problems(email, password, name, organization_name)
    if problems:
        raise ValidationFailed("Sign-up details are incomplete: " + " ".join(p["message"] for p in problems),
                               validation=problems)
    user = create_user(email, name, password)
    try:
        db.session.flush()
        org = create_organization(organization_name, user)
        db.session.commit()
    except IntegrityError:  # a concurrent sign-up with the same email committed first
        db.session.rollback()
        raise _email_taken()
    audit.record("auth.signup", organization_id=org.id, user_id=user.id, target_type="organization",
                 target_id=org.id, status_code=201, request_id=request_id, ip=ip)
    return user, org


def signup_problems(email: str, password: str, name: str, organization_name: str) -> list[dict]:
    """What is wrong with sign-up details, field by field (the same rules for the page and the API)."""
    problems = []
    for field, value, label in (("name", name, "Your name"), ("organization_name", organization_name, "The gym's name")):
        if not (value or "").strip():
            problems.append({"field": field, "message": f"{label} is required."})
        elif len(value.strip()) > 120:
            problems.append({"field": field, "message": f"{label} must be at most 120 characters."})
    local, _, domain = (email or "").strip().partition("@")
    if not local or "." not in domain or len(email) > 254:
        problems.append({"field": "email", "message": "Enter a valid email address."})
    if len(password or "") < MIN_PASSWORD_LENGTH:
        problems.append({"field": "password", "message": f"Use a password of at least {MIN_PASSWORD_LENGTH} characters."})
    return problems


def membership(user_id: str, organization_id: str) -> Membership | None:
    """The user's membership in the organization (with the organization, in the same query), if any."""
    return db.session.scalar(select(Membership).options(joinedload(Membership.organization)).where(
        Membership.user_id == user_id, Membership.organization_id == organization_id))


def memberships(user: User) -> list[Membership]:
    """Every organization the user belongs to, by name."""
    return list(db.session.scalars(select(Membership).join(Organization)
                                   .where(Membership.user_id == user.id).order_by(Organization.name)))
