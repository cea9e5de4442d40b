"""Email over SMTP: SMTP_URL is smtp://user:pass@host:port (smtps:// for implicit TLS, ?starttls=true for STARTTLS).

The Message-ID is derived from the idempotency key, so a message sent again after a crash carries the same id and
receivers that deduplicate on it see one message. SMTP has no provider id: the Message-ID stands in for it.
"""
from __future__ import annotations

import hashlib
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from atlas.services.providers import Outgoing, ProviderError

NAME = "smtp"
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class Server:
    """Where and how to connect, from SMTP_URL."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None


def configured(config) -> bool:
    """Whether an SMTP server is set."""
    return bool(config.get("SMTP_URL"))


def server(url: str) -> Server:
    """SMTP_URL parsed; a malformed one is a permanent error (retrying will not fix it)."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ProviderError("SMTP_URL must look like smtp://user:pass@host:port or smtps://...", retryable=False)
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ProviderError("SMTP_URL has an invalid port.", retryable=False) from None
    starttls = parse_qs(parts.query).get("starttls", ["false"])[0].lower() in ("true", "1", "yes")
    return Server(parts.hostname, port, parts.scheme == "smtps", starttls,
                  unquote(parts.username) if parts.username else None,
                  unquote(parts.password) if parts.password else None)


def build(outgoing: Outgoing, sender: str) -> EmailMessage:
    """The email: plain text, a stable Message-ID and the idempotency key in headers."""
    name, address = parseaddr(sender)
    domain = address.rpartition("@")[2] or "atlas.local"
    message = EmailMessage()
    message["From"] = formataddr((outgoing.from_name or name, address))
    message["To"] = outgoing.to
    message["Subject"] = outgoing.subject or ""
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id(outgoing.idempotency_key, domain)
    if outgoing.idempotency_key:
        message["Idempotency-Key"] = message["X-Atlas-Idempotency-Key"] = outgoing.idempotency_key
    message.set_content(outgoing.body)
    return message


def message_id(key: str, domain: str) -> str:
    """<hash-of-key@domain>, the same for every send of one message; a fresh id without a key."""
    if not key:
        return make_msgid(domain=domain)
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def send(config, outgoing: Outgoing) -> str:
    """Hand the email to the SMTP server; returns its Message-ID."""
    target = server(config["SMTP_URL"])
    message = build(outgoing, config["EMAIL_FROM"])
    try:
        with _connect(target, float(config["ATLAS_HTTP_TIMEOUT"])) as client:
            client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        raise _refusal(code, text, "The SMTP server refused the recipient") from None
    except smtplib.SMTPResponseException as exc:
        raise _refusal(exc.smtp_code, exc.smtp_error, "The SMTP server refused the message") from None
    except (smtplib.SMTPException, OSError) as exc:  # refused connection, timeout, TLS failure, dropped link
        raise ProviderError(f"The SMTP server could not be reached: {exc or type(exc).__name__}",
                            retryable=True) from None
    return message["Message-ID"]


def _connect(target: Server, timeout: float) -> smtplib.SMTP:
    """An open, authenticated connection."""
    if target.implicit_tls:
        client = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=timeout)
    try:
        if target.starttls and not target.implicit_tls:
            client.starttls(context=ssl.create_default_context())
        if target.username:
            client.login(target.username, target.password or "")
    except BaseException:
        client.close()
        raise
    return client


def _refusal(code: int, text, what: str) -> ProviderError:
    """An SMTP reply as an error: 4xx is temporary (retry), 5xx permanent."""
    detail = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return ProviderError(f"{what}: {code} {detail}", retryable=400 <= code < 500)
