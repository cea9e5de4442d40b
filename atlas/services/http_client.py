"""Outgoing HTTP with an SSRF guard: the http_request step and POST /webhooks/send go out through send().

The guard resolves the host once, refuses when any address is loopback, private, link-local (cloud metadata
included), unspecified, multicast, reserved or otherwise not globally routable (IPv4-mapped IPv6 unwrapped first)
unless the organization's allowlist names the host or the address, and then connects to the very address it checked
(the Host header and TLS SNI keep the name), so a second DNS answer cannot rebind the request. Redirects are followed
here, at most MAX_REDIRECTS, and every hop is checked the same way. No proxy from the environment is used.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from atlas.core.steps.base import StepError

MAX_REDIRECTS = 5
MAX_BODY_BYTES = 64 * 1024
USER_AGENT = "Atlas-Workflows/1.0"
REDIRECTS = {301, 302, 303, 307, 308}
_DROPPED_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}  # http.client sets these
_CREDENTIAL_HEADERS = {"authorization", "cookie", "proxy-authorization"}
_ALWAYS_BLOCKED = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "2002::/16", "2001::/32")]  # NAT64, 6to4, Teredo

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass
class Response:
    """What came back: status, headers (lower-case names), the body up to MAX_BODY_BYTES, timings in ms."""

    status: int
    reason: str
    headers: dict
    body: bytes
    truncated: bool
    final_url: str
    timing: dict = field(default_factory=dict)  # {"dns", "connect", "total"} in milliseconds
    redirects: int = 0

    def content(self):
        """The body parsed as JSON when it says it is JSON (and is whole), else as text."""
        text = self.body.decode("utf-8", errors="replace")
        if "json" in self.headers.get("content-type", "") and not self.truncated:
            try:
                return json.loads(text)
            except ValueError:
                return text
        return text


@dataclass(frozen=True)
class Target:
    """One checked hop: where to connect (the checked addresses, tried in order) and what to call the host."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


# --- the guard ---------------------------------------------------------------------------------------------------

def unwrap(address: Address) -> Address:
    """The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:10.0.0.1), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_blocked(address: Address) -> bool:
    """Whether an address is one an outgoing request must not reach without an allowlist entry."""
    address = unwrap(address)
    return (not address.is_global or address.is_loopback or address.is_private or address.is_link_local
            or address.is_unspecified or address.is_multicast or address.is_reserved
            or any(address in net for net in _ALWAYS_BLOCKED if net.version == address.version))


def allowed_by(allowlist: list[str] | None, host: str, address: Address) -> bool:
    """Whether the organization's allowlist names this host (exact, or *.suffix) or a network holding the address."""
    host, address = host.lower().rstrip("."), unwrap(address)
    for entry in allowlist or []:
        entry = str(entry).strip().lower().rstrip(".")
        network = _network(entry)
        if network is not None:
            if address.version == network.version and address in network:
                return True
        elif entry == host or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


def _network(entry: str):
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None


def check_url(url: str, allowlist: list[str] | None) -> tuple[Target, float]:
    """Parse, resolve and check one URL; the Target to connect to and the DNS time in ms. Raises StepError."""
    parts = _parse(url)
    started = time.perf_counter()
    addresses = resolve(parts.hostname, parts.port)
    dns_ms = (time.perf_counter() - started) * 1000
    for address in addresses:
        if is_blocked(address) and not allowed_by(allowlist, parts.hostname, address):
            raise StepError(f"Refused to connect to {parts.hostname} ({address}): the address is loopback, private, "
                            "link-local or otherwise internal. An admin can add it to the organization's HTTP "
                            "allowlist.", code="SSRF_BLOCKED")
    path = parts.path or "/"
    target = Target(parts.scheme, parts.hostname, parts.port, path + (f"?{parts.query}" if parts.query else ""),
                    tuple(str(a) for a in addresses))
    return target, dns_ms


@dataclass(frozen=True)
class _Parts:
    scheme: str
    hostname: str
    port: int
    path: str
    query: str


def _parse(url: str) -> _Parts:
    """The pieces of an http(s) URL; anything else is a permanent INVALID_URL."""
    try:
        split = urlsplit(url.strip())
        port = split.port
    except ValueError as exc:
        raise StepError(f"The URL {url!r} is not valid: {exc}.", code="INVALID_URL")
    if split.scheme not in ("http", "https"):
        raise StepError(f"Only http and https URLs can be requested, not {url!r}.", code="INVALID_URL")
    if not split.hostname:
        raise StepError(f"The URL {url!r} has no host.", code="INVALID_URL")
    if split.username is not None or split.password is not None:
        raise StepError("Credentials in the URL are not allowed; send them in an Authorization header.",
                        code="INVALID_URL")
    return _Parts(split.scheme, split.hostname, port or (443 if split.scheme == "https" else 80), split.path,
                  split.query)


def resolve(host: str, port: int) -> list[Address]:
    """Every address the host resolves to (one DNS lookup); a failure may be transient, so it is retryable."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise StepError(f"Could not resolve {host}: {exc}.", code="DNS_FAILED", retryable=True)
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise StepError(f"{host} resolved to no address.", code="DNS_FAILED", retryable=True)
    return addresses


# --- pinned connections ----------------------------------------------------------------------------------------

class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to the checked addresses only (no lookup of its own); the Host header keeps the name."""

    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.pinned = target.addresses

    def connect(self):
        error = None
        for address in self.pinned:
            try:
                self.sock = socket.create_connection((address, self.port), self.timeout)
                break
            except OSError as exc:
                error = exc
        else:
            raise error
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(_PinnedHTTP):
    """An HTTPS connection to a checked address; SNI and certificate checks use the name."""

    default_port = 443

    def connect(self):
        super().connect()
        self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=self.host)


# --- sending -----------------------------------------------------------------------------------------------------

def send(org_id: str | None, method: str, url: str, *, headers: dict | None = None, body: bytes | str | None = None,
         timeout: float = 10.0, allowlist: list[str] | None = None, max_body: int = MAX_BODY_BYTES) -> Response:
    """Send one request (redirects followed and checked) within `timeout` seconds in all; raises StepError.

    allowlist None means the organization's own (Organization.settings["httpAllowlist"]).
    """
    if allowlist is None:
        allowlist = organization_allowlist(org_id)
    method, headers = method.upper(), _clean_headers(headers or {})
    data = body.encode() if isinstance(body, str) else body
    started, deadline = time.perf_counter(), time.perf_counter() + timeout
    for hop in range(MAX_REDIRECTS + 1):
        target, dns_ms = check_url(url, allowlist)
        response = _exchange(target, method, headers, data, deadline, max_body)
        response.timing = {"dns": round(dns_ms, 3), "connect": response.timing["connect"],
                           "total": round((time.perf_counter() - started) * 1000, 3)}
        location = response.headers.get("location")
        if response.status not in REDIRECTS or not location:
            response.final_url, response.redirects = url, hop
            return response
        next_url = urljoin(url, location)
        if urlsplit(next_url).hostname != target.host:  # credentials stay with the host they were meant for
            headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
        if response.status in (301, 302, 303) and method != "HEAD":
            method, data = "GET", None
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        url = next_url
    raise StepError(f"More than {MAX_REDIRECTS} redirects; the last pointed to {url}.", code="TOO_MANY_REDIRECTS")


def _clean_headers(headers: dict) -> dict:
    """The caller's headers minus those the connection sets; CR or LF in a value is refused (header injection)."""
    out = {"User-Agent": USER_AGENT}
    for name, value in headers.items():
        name, value = str(name).strip(), str(value)
        if any(ch in name + value for ch in "\r\n\0") or not name:
            raise StepError(f"The header {name!r} has a line break or NUL in its name or value.", code="INVALID_HEADER")
        if name.lower() not in _DROPPED_HEADERS:
            out[name] = value
    return out


def _exchange(target: Target, method: str, headers: dict, data: bytes | None, deadline: float,
              max_body: int) -> Response:
    """One request to one checked target; timeouts and connection failures are retryable StepErrors."""
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        raise _timeout(target)
    kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    conn = kind(target, timeout=remaining)
    try:
        began = time.perf_counter()
        conn.connect()
        connect_ms = (time.perf_counter() - began) * 1000
        conn.request(method, target.path, body=data, headers=headers)
        raw = conn.getresponse()
        body, truncated = _read(raw, deadline, max_body, target)
        return Response(status=raw.status, reason=raw.reason, headers={k.lower(): v for k, v in raw.getheaders()},
                        body=body, truncated=truncated, final_url="", timing={"connect": round(connect_ms, 3)})
    except (socket.timeout, TimeoutError):
        raise _timeout(target)
    except ssl.SSLError as exc:
        raise StepError(f"TLS with {target.host} failed: {exc}.", code="TLS_FAILED")
    except (OSError, http.client.HTTPException) as exc:
        raise StepError(f"Could not talk to {target.host} ({', '.join(target.addresses)}): {exc}.",
                        code="CONNECTION_FAILED",
                        retryable=True)
    finally:
        conn.close()


def _read(raw: http.client.HTTPResponse, deadline: float, max_body: int, target: Target) -> tuple[bytes, bool]:
    """Up to max_body bytes of the body, within the deadline; whether more was left unread."""
    chunks, size = [], 0
    while size <= max_body:
        if time.perf_counter() > deadline:
            raise _timeout(target)
        chunk = raw.read1(min(16384, max_body + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    return body[:max_body], len(body) > max_body


def _timeout(target: Target) -> StepError:
    return StepError(f"{target.host} did not answer in time.", code="TIMEOUT", retryable=True)


def organization_allowlist(org_id: str | None) -> list[str]:
    """The hostnames and CIDRs an organization lets its requests reach despite the guard."""
    if not org_id:
        return []
    from atlas.extensions import db
    from atlas.models import Organization

    org = db.session.get(Organization, org_id)
    entries = (org.settings or {}).get("httpAllowlist") if org is not None else None
    return [str(e) for e in entries] if isinstance(entries, list) else []
