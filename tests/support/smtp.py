"""A real SMTP server for tests: aiosmtpd on 127.0.0.1 and a free port, in a thread, keeping what it receives."""
from __future__ import annotations

import socket
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Handler:
    """Collects each delivered message; can refuse recipients (550) or answer 451 to the next N messages."""

    def __init__(self):
        self.messages: list = []
        self.refuse: set[str] = set()
        self.fail_next = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.fail_next:
            self.fail_next -= 1
            return "451 4.3.0 Try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "message": message})
        return "250 Message accepted for delivery"


class SmtpServer:
    """`with SmtpServer() as smtp:` ... smtp.url, smtp.messages; stopped on exit."""

    def __init__(self, auth: tuple[str, str] | None = None):
        self.handler = _Handler()
        self.port = free_port()
        self.auth = auth
        kwargs = {}
        if auth:
            kwargs = {"authenticator": self._authenticate, "auth_require_tls": False}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login.decode(), auth_data.password.decode()) == self.auth
        return AuthResult(success=ok)

    @property
    def url(self) -> str:
        creds = f"{self.auth[0]}:{self.auth[1]}@" if self.auth else ""
        return f"smtp://{creds}127.0.0.1:{self.port}"

    @property
    def messages(self) -> list:
        return self.handler.messages

    def start(self) -> "SmtpServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

