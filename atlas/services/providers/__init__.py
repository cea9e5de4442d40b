"""Provider adapters: email over SMTP, SMS over a Twilio-style HTTP API. None configured means nothing is sent.

Each adapter exposes `configured(config) -> bool` and `send(config, outgoing) -> provider id`, and raises
ProviderError on failure, saying whether another attempt may succeed (an outage) or not (a refusal).
"""
from __future__ import annotations

from dataclasses import dataclass


class ProviderError(Exception):
    """A provider did not take a message; `retryable` is True for an outage (refused connection, 5xx, timeout)."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.message, self.retryable = message, retryable


@dataclass(frozen=True)
class Outgoing:
    """One message as a provider sees it."""

    to: str
    body: str
    idempotency_key: str
    subject: str | None = None
    from_name: str | None = None


def adapter(channel: str):
    """The adapter module for a channel."""
    from atlas.services.providers import sms, smtp

    return {"email": smtp, "sms": sms}[channel]
