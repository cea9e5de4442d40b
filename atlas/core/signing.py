"""The Standard Webhooks signature scheme (https://www.standardwebhooks.com), both directions, in pure Python.

A message is signed as "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), sent in the webhook-id,
webhook-timestamp and webhook-signature headers; the signature header may hold several space-separated signatures
(key rotation). Secrets read "whsec_" + base64 of the key bytes. The published `standardwebhooks` and `svix`
packages sign and verify the same way, which the tests prove.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as random

PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60
KEY_BYTES = 24


class SignatureError(Exception):
    """Why a message's signature was not accepted; `code` is the API error code."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message, self.code = message, code


def new_secret() -> str:
    """A fresh signing secret: "whsec_" + base64 of 24 random bytes."""
    return PREFIX + base64.b64encode(random.token_bytes(KEY_BYTES)).decode()


def key_of(secret: str) -> bytes:
    """The key bytes of a "whsec_…" secret (raises ValueError for one that is not base64)."""
    body = secret[len(PREFIX):] if secret.startswith(PREFIX) else secret
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc
    if not key:
        raise ValueError("a webhook secret cannot be empty")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The v1 signature of one message: "v1,<base64 HMAC-SHA256>"."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str | list[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers that carry a signed message; several secrets (a rotation) give several signatures."""
    keys = [secret] if isinstance(secret, str) else secret
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(sign(key, message_id, timestamp, body) for key in keys)}


def verify(secrets: list[str], message_id: str | None, timestamp: str | None, signature: str | None, body: bytes,
           now: float) -> int:
    """Check a received message against any of the secrets; its timestamp, else raise SignatureError."""
    if not (message_id and timestamp and signature):
        raise SignatureError("The webhook-id, webhook-timestamp and webhook-signature headers are all required.",
                             "WEBHOOK_SIGNATURE_MISSING")
    try:
        sent = int(timestamp.strip())
    except ValueError:
        raise SignatureError("webhook-timestamp must be whole seconds since 1970 (Unix time).",
                             "WEBHOOK_TIMESTAMP_INVALID") from None
    if abs(now - sent) > TOLERANCE_SECONDS:
        raise SignatureError(f"webhook-timestamp is {int(abs(now - sent))} s from the server's clock; messages "
                             f"older or newer than {TOLERANCE_SECONDS // 60} minutes are refused.",
                             "WEBHOOK_TIMESTAMP_STALE")
    offered = [s.split(",", 1)[1] for s in signature.split() if s.startswith("v1,")]
    for secret in secrets:
        expected = sign(secret, message_id, sent, body).split(",", 1)[1]
        if any(hmac.compare_digest(expected.encode(), s.encode()) for s in offered):
            return sent
    raise SignatureError("The signature does not match the body with this endpoint's secret.",
                         "WEBHOOK_SIGNATURE_INVALID")
