"""Webhook endpoints: create, change, delete, rotate the secret; their deliveries and statistics.

The plain secret exists only in the answer to create and rotate; the row stores it encrypted (atlas.services.secrets).
Receiving a delivery is atlas.services.webhook_receive's job; it asks valid_secrets() which secrets verify.
"""
from __future__ import annotations

import shlex
from collections import Counter
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from flask import current_app, has_request_context, request
from sqlalchemy import func, select

from atlas.core import signing
from atlas.core import webhook_payloads as payloads
from atlas.errors import NotFound, ValidationFailed
from atlas.extensions import db
from atlas.models import WebhookDelivery, WebhookEndpoint, Workflow
from atlas.models.base import utcnow
from atlas.services import secrets
from atlas.services.pagination import paginate
from atlas.services.tenancy import get_scoped, scoped
from atlas.services.workflows import get_workflow

OUTCOMES = ("accepted", "filtered", "duplicate", "rejected")
MAX_GRACE_SECONDS = 7 * 24 * 3600
MAX_ORIGINS = 50
PREVIEW_CHARS = len(signing.PREFIX) + 4
DEFAULTS = {"workflow_id": None, "allowed_origins": [], "rate_limit": None, "transform": None,
            "filter_conditions": [], "active": True}
SAMPLE_BODY = '{"type":"lead.created","email":"jane@example.com","firstName":"Jane"}'


class WebhookNotFound(NotFound):
    code, message = "WEBHOOK_NOT_FOUND", "Webhook endpoint not found."


class WebhookDeliveryNotFound(NotFound):
    code, message = "WEBHOOK_DELIVERY_NOT_FOUND", "Webhook delivery not found."


# --- endpoints ------------------------------------------------------------------------------------------------

def create_endpoint(org_id: str, user_id: str | None, data: dict) -> tuple[WebhookEndpoint, str]:
    """A new endpoint with a fresh secret; returns it and the plain secret (shown once)."""
    values = _checked(org_id, {**DEFAULTS, **data})
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(organization_id=org_id, created_by=user_id, secret_encrypted=secrets.encrypt(secret),
                               **values)
    db.session.add(endpoint)
    db.session.commit()
    return endpoint, secret


def list_endpoints(org_id: str) -> list[WebhookEndpoint]:
    """The organization's endpoints, newest first."""
    query = scoped(WebhookEndpoint, org_id).order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id)
    return list(db.session.scalars(query))


def get_endpoint(org_id: str, endpoint_id: str) -> WebhookEndpoint:
    """One endpoint of the organization; WEBHOOK_NOT_FOUND otherwise (another organization's included)."""
    return get_scoped(WebhookEndpoint, org_id, endpoint_id, WebhookNotFound)


def update_endpoint(org_id: str, endpoint_id: str, data: dict) -> WebhookEndpoint:
    """Change the fields given (snake_case keys as the model's); the others keep their value."""
    endpoint = get_endpoint(org_id, endpoint_id)
    for key, value in _checked(org_id, data).items():
        setattr(endpoint, key, value)
    db.session.commit()
    return endpoint


def delete_endpoint(org_id: str, endpoint_id: str) -> None:
    """Delete an endpoint; its deliveries and accepted message ids go with it (ON DELETE CASCADE)."""
    db.session.delete(get_endpoint(org_id, endpoint_id))
    db.session.commit()


def _checked(org_id: str, data: dict) -> dict:
    """The fields an endpoint stores, each checked; 422 (or 404 WORKFLOW_NOT_FOUND) naming the first bad one."""
    values = {key: data[key] for key in ("name", *DEFAULTS) if key in data}
    if values.get("workflow_id") is not None:
        values["workflow_id"] = get_workflow(org_id, values["workflow_id"]).id
    if "allowed_origins" in values:
        values["allowed_origins"] = normalized_origins(values["allowed_origins"] or [])
    if values.get("transform") is not None:
        _refuse_problems(payloads.check_transform(values["transform"]), "transformPayload", "INVALID_TRANSFORM")
    if "filter_conditions" in values:
        _refuse_problems(payloads.check_filter(values["filter_conditions"]), "filterConditions", "INVALID_FILTER")
        values["filter_conditions"] = payloads.filter_list(values["filter_conditions"])
    return values


def _refuse_problems(problems: list[str], field: str, code: str) -> None:
    if problems:
        raise ValidationFailed(f"{field}: {problems[0]}", code=code,
                               validation=[{"field": field, "message": p} for p in problems])


def normalized_origins(origins: list[str]) -> list[str]:
    """Each origin as a browser sends it (lower case, no default port); INVALID_ORIGIN for the first bad one."""
    if len(origins) > MAX_ORIGINS:
        raise ValidationFailed(f"allowedOrigins holds at most {MAX_ORIGINS} origins.", code="INVALID_ORIGIN",
                               validation=[{"field": "allowedOrigins", "message": f"At most {MAX_ORIGINS}."}])
    out = []
    for index, origin in enumerate(origins):
        problem, clean = _origin(origin)
        if problem:
            raise ValidationFailed(f"allowedOrigins[{index}] {origin!r}: {problem}", code="INVALID_ORIGIN",
                                   details={"origin": origin},
                                   validation=[{"field": f"allowedOrigins.{index}", "message": problem}])
        if clean not in out:
            out.append(clean)
    return out


def _origin(origin: str) -> tuple[str | None, str]:
    """(a problem in words, or None; the normalized origin) for one "scheme://host[:port]"."""
    usage = "an origin is scheme://host[:port], e.g. https://www.example.com, with nothing after the host or port"
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return f"not a valid origin: {usage}.", origin
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "://" not in origin:
        return f"not a valid origin: {usage}.", origin
    if parts.path or parts.query or parts.fragment or "?" in origin or "#" in origin:
        return f"an origin has no path, query or fragment: {usage}.", origin
    if parts.username is not None or parts.password is not None or "*" in origin or len(origin) > 255:
        return f"not a valid origin (no user, wildcard or over 255 characters): {usage}.", origin
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}[scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return None, f"{scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


# --- secrets --------------------------------------------------------------------------------------------------

def rotate_secret(org_id: str, endpoint_id: str, grace_seconds: int | None = None) -> tuple[WebhookEndpoint, str]:
    """A new secret; the current one keeps verifying for grace_seconds (the configured default when None)."""
    endpoint = get_endpoint(org_id, endpoint_id)
    if grace_seconds is None:
        grace_seconds = current_app.config["ATLAS_WEBHOOK_SECRET_GRACE_SECONDS"]
    grace_seconds = max(0, min(int(grace_seconds), MAX_GRACE_SECONDS))
    secret = signing.new_secret()
    if grace_seconds:
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_expires_at = utcnow() + timedelta(seconds=grace_seconds)
    else:
        endpoint.previous_secret_encrypted = endpoint.previous_secret_expires_at = None
    endpoint.secret_encrypted = secrets.encrypt(secret)
    db.session.commit()
    return endpoint, secret


def valid_secrets(endpoint: WebhookEndpoint, now: datetime | float) -> list[str]:
    """The secrets that verify a delivery at `now` (a datetime or Unix seconds): current first, then the previous."""
    if not isinstance(now, datetime):
        now = datetime.fromtimestamp(now, timezone.utc)
    out = [secrets.decrypt(endpoint.secret_encrypted)]
    if endpoint.previous_secret_encrypted and previous_secret_expires_at(endpoint, now):
        out.append(secrets.decrypt(endpoint.previous_secret_encrypted))
    return out


def previous_secret_expires_at(endpoint: WebhookEndpoint, now: datetime | None = None) -> datetime | None:
    """When the rotated-out secret stops verifying; None when there is none (or it has already expired)."""
    expires = endpoint.previous_secret_expires_at
    if not endpoint.previous_secret_encrypted or expires is None or expires <= (now or utcnow()):
        return None
    return expires


def secret_preview(endpoint: WebhookEndpoint) -> str:
    """The first characters of the secret, to tell secrets apart ("whsec_abcd…"); never the whole secret."""
    return secrets.decrypt(endpoint.secret_encrypted)[:PREVIEW_CHARS] + "…"


# --- statistics -----------------------------------------------------------------------------------------------

def statistics(org_id: str, endpoint_id: str | None = None) -> dict:
    """Deliveries counted by outcome and rejection reason, for one endpoint or the whole organization."""
    if endpoint_id is not None:
        get_endpoint(org_id, endpoint_id)
    return _merged(_count_rows(org_id, endpoint_id))


def statistics_by_endpoint(org_id: str) -> tuple[dict, dict[str, dict]]:
    """The organization's statistics and each endpoint's, from one GROUP BY query."""
    rows = _count_rows(org_id)
    per: dict[str, list] = {}
    for row in rows:
        per.setdefault(row[0], []).append(row)
    return _merged(rows), {endpoint: _merged(its) for endpoint, its in per.items()}


def _count_rows(org_id: str, endpoint_id: str | None = None) -> list[tuple]:
    """(endpoint id, outcome, reason, count, last received) per group; test-mode deliveries are not counted."""
    d = WebhookDelivery
    query = (select(d.endpoint_id, d.outcome, d.reason, func.count(), func.max(d.received_at))
             .where(d.organization_id == org_id, d.test_mode.is_(False))
             .group_by(d.endpoint_id, d.outcome, d.reason))
    if endpoint_id is not None:
        query = query.where(d.endpoint_id == endpoint_id)
    return [tuple(row) for row in db.session.execute(query)]


def _merged(rows: list[tuple]) -> dict:
    """The statistics block from grouped rows."""
    outcomes, rejected = Counter(), Counter()
    last = None
    for _, outcome, reason, count, received in rows:
        outcomes[outcome] += count
        if outcome == "rejected":
            rejected[reason or "UNKNOWN"] += count
        last = received if last is None or (received and received > last) else last
    return {"received": sum(outcomes.values()), "accepted": outcomes["accepted"], "filtered": outcomes["filtered"],
            "duplicates": outcomes["duplicate"], "rejected": dict(sorted(rejected.items())),
            "rejectedTotal": outcomes["rejected"], "lastReceivedAt": last}


# --- views for the API and the page ---------------------------------------------------------------------------

def endpoint_view(endpoint: WebhookEndpoint, stats: dict | None = None, workflow_name: str | None = None) -> dict:
    """An endpoint as the API shows it (snake_case keys; the schema camelCases them)."""
    stats = stats if stats is not None else _merged([])
    limit = endpoint.rate_limit or current_app.config["ATLAS_WEBHOOK_RATE_LIMIT"]
    return {"id": endpoint.id, "name": endpoint.name, "workflow_id": endpoint.workflow_id,
            "workflow_name": workflow_name, "endpoint_url": endpoint_url(endpoint),
            "allowed_origins": endpoint.allowed_origins or [], "rate_limit": limit,
            "rate_limit_is_default": endpoint.rate_limit is None, "transform_payload": endpoint.transform,
            "filter_conditions": endpoint.filter_conditions or [], "active": endpoint.active,
            "secret_preview": secret_preview(endpoint),
            "previous_secret_expires_at": previous_secret_expires_at(endpoint),
            "last_received_at": stats["lastReceivedAt"] or endpoint.last_received_at,
            "created_at": endpoint.created_at, "updated_at": endpoint.updated_at, "statistics": stats}


def endpoint_views(org_id: str) -> dict:
    """GET /api/v2/webhooks: every endpoint with its statistics, and the organization's (three queries)."""
    endpoints = list_endpoints(org_id)
    overall, per = statistics_by_endpoint(org_id)
    names = _workflow_names(org_id, {e.workflow_id for e in endpoints if e.workflow_id})
    return {"webhooks": [endpoint_view(e, per.get(e.id), names.get(e.workflow_id)) for e in endpoints],
            "statistics": overall}


def one_view(org_id: str, endpoint: WebhookEndpoint) -> dict:
    """One endpoint with its statistics and its workflow's name."""
    names = _workflow_names(org_id, {endpoint.workflow_id} if endpoint.workflow_id else set())
    return endpoint_view(endpoint, statistics(org_id, endpoint.id), names.get(endpoint.workflow_id))


def _workflow_names(org_id: str, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    query = select(Workflow.id, Workflow.name).where(Workflow.organization_id == org_id, Workflow.id.in_(ids))
    return dict(db.session.execute(query).all())


def endpoint_url(endpoint: WebhookEndpoint) -> str:
    """The absolute URL other systems post to: POST /api/v2/webhooks/receive/<id>."""
    base = request.host_url.rstrip("/") if has_request_context() else "http://localhost"
    return f"{base}/api/v2/webhooks/receive/{endpoint.id}"


def test_instructions(endpoint: WebhookEndpoint, secret: str) -> dict:
    """A signed curl command (openssl computes the signature) and a Python example with `standardwebhooks`."""
    url = endpoint_url(endpoint)
    return {"curl": _curl(url, secret), "python": _python(url, secret),
            "headers": [{"name": "webhook-id", "description": "a unique id per message; a repeat within 24 h is "
                                                             "acknowledged and starts nothing"},
                        {"name": "webhook-timestamp", "description": "Unix seconds; refused beyond 5 minutes"},
                        {"name": "webhook-signature", "description": "v1,<base64 HMAC-SHA256 of "
                                                                     "id.timestamp.body> (space-separated list)"},
                        {"name": "Content-Type", "description": "application/json; the body is a JSON object"}],
            "notes": ["The secret is shown only now (and on rotation); Atlas stores it encrypted.",
                      "Sign with any Standard Webhooks library (standardwebhooks, svix) or as the curl shows.",
                      "Sign the exact bytes you send: re-serializing the JSON changes the signature."]}


def _curl(url: str, secret: str) -> str:
    """A bash script that signs SAMPLE_BODY with openssl and posts it with curl."""
    return "\n".join([
        f"URL={shlex.quote(url)}",
        f"SECRET={shlex.quote(secret)}",
        f"BODY={shlex.quote(SAMPLE_BODY)}",
        'MSG_ID="msg_$(openssl rand -hex 12)"',
        'TS="$(date +%s)"',
        'KEY_HEX="$(printf \'%s\' "${SECRET#whsec_}" | openssl base64 -d -A | od -An -v -tx1 | tr -d \' \\n\')"',
        'SIG="$(printf \'%s\' "$MSG_ID.$TS.$BODY" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEY_HEX" '
        '-binary | openssl base64 -A)"',
        'curl -sS -X POST "$URL" -H "Content-Type: application/json" -H "webhook-id: $MSG_ID" \\',
        '  -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG" --data-binary "$BODY"',
    ])


def _python(url: str, secret: str) -> str:
    """A Python script that signs with the standardwebhooks package and posts with the standard library."""
    return "\n".join([
        "# pip install standardwebhooks",
        "import json, urllib.request, uuid",
        "from datetime import datetime, timezone",
        "from standardwebhooks.webhooks import Webhook",
        "",
        f"URL = {url!r}",
        f"SECRET = {secret!r}",
        f"body = json.dumps({SAMPLE_BODY})",
        'msg_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(timezone.utc)',
        'headers = {"Content-Type": "application/json", "webhook-id": msg_id,',
        '           "webhook-timestamp": str(int(now.timestamp())),',
        '           "webhook-signature": Webhook(SECRET).sign(msg_id, now, body)}',
        'request = urllib.request.Request(URL, data=body.encode(), headers=headers, method="POST")',
        "with urllib.request.urlopen(request, timeout=10) as response:",
        "    print(response.status, response.read().decode())",
    ])


# --- deliveries -----------------------------------------------------------------------------------------------

def list_deliveries(org_id: str, endpoint_id: str, *, page: int = 1, limit: int = 25,
                    outcome: str | None = None) -> tuple[list[WebhookDelivery], int]:
    """One page of an endpoint's deliveries, newest first, and how many there are in all."""
    rows, pagination = deliveries_page(org_id, endpoint_id, page=page, limit=limit, outcome=outcome)
    return rows, pagination["total"]


def deliveries_page(org_id: str, endpoint_id: str, *, page: int = 1, limit: int = 25,
                    outcome: str | None = None) -> tuple[list[WebhookDelivery], dict]:
    """One page of an endpoint's deliveries and the pagination block (WEBHOOK_NOT_FOUND for an unknown endpoint)."""
    endpoint = get_endpoint(org_id, endpoint_id)
    query = scoped(WebhookDelivery, org_id).where(WebhookDelivery.endpoint_id == endpoint.id)
    if outcome:
        query = query.where(WebhookDelivery.outcome == outcome)
    query = query.order_by(WebhookDelivery.received_at.desc(), WebhookDelivery.id.desc())
    return paginate(query, page, limit)


def get_delivery(org_id: str, delivery_id: str) -> WebhookDelivery:
    """One delivery of the organization; WEBHOOK_DELIVERY_NOT_FOUND otherwise."""
    return get_scoped(WebhookDelivery, org_id, delivery_id, WebhookDeliveryNotFound)
