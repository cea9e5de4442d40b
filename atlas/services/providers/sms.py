"""SMS over a Twilio-style HTTP API: a form post (To, From, Body) with basic auth to SMS_PROVIDER_URL.

Settings: SMS_PROVIDER_URL (the Messages endpoint), SMS_ACCOUNT_SID and SMS_AUTH_TOKEN (basic auth), SMS_FROM.
The provider's JSON "sid" becomes the message's provider id. An Idempotency-Key header lets a provider that
honours it drop a repeat.
"""
from __future__ import annotations

import requests

from atlas.services.providers import Outgoing, ProviderError

NAME = "sms"
CONNECT_TIMEOUT = 5.0


def configured(config) -> bool:
    """Whether an SMS provider is set."""
    return bool(config.get("SMS_PROVIDER_URL"))


def send(config, outgoing: Outgoing) -> str | None:
    """Post the message; returns the provider's sid."""
    timeout = float(config["ATLAS_HTTP_TIMEOUT"])
    auth = (config["SMS_ACCOUNT_SID"], config["SMS_AUTH_TOKEN"] or "") if config.get("SMS_ACCOUNT_SID") else None
    headers = {"Idempotency-Key": outgoing.idempotency_key} if outgoing.idempotency_key else {}
    form = {"To": outgoing.to, "From": config.get("SMS_FROM") or "", "Body": outgoing.body}
    try:
        response = requests.post(config["SMS_PROVIDER_URL"], data=form, auth=auth, headers=headers,
                                 timeout=(min(CONNECT_TIMEOUT, timeout), timeout), allow_redirects=False)
    except requests.Timeout:
        raise ProviderError(f"The SMS provider did not answer within {timeout:g} seconds.", retryable=True) from None
    except requests.RequestException as exc:
        raise ProviderError(f"The SMS provider could not be reached: {type(exc).__name__}", retryable=True) from None
    if response.status_code >= 300:
        raise _refusal(response)
    return _sid(response)


def _sid(response: requests.Response) -> str | None:
    """The JSON "sid" of an accepted message (None if the provider did not say)."""
    try:
        body = response.json()
    except ValueError:
        return None
    sid = body.get("sid") if isinstance(body, dict) else None
    return str(sid)[:120] if sid else None


def _refusal(response: requests.Response) -> ProviderError:
    """A non-2xx answer: 429 and 5xx are outages worth retrying, other 4xx (and redirects) are refusals."""
    detail = ""
    try:
        body = response.json()
        detail = str(body.get("message") or "") if isinstance(body, dict) else ""
    except ValueError:
        detail = response.text[:200]
    retryable = response.status_code == 429 or response.status_code >= 500
    verb = "is unavailable" if retryable else "refused the message"
    return ProviderError(f"The SMS provider {verb} (HTTP {response.status_code}){': ' + detail if detail else ''}",
                         retryable=retryable)
