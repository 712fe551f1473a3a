"""A real SMTP server on loopback for the email tests: aiosmtpd, TLS on a self-signed cert.

By default it insists on STARTTLS before anything is sent (`require_starttls`) and
on a sign-in over TLS, so a mail that arrives proves the client secured the
connection and signed in. It records each mail with how it came. `stop()` and
`start()` take it down and bring it back on the same port ("SMTP down, then up");
`refusing = True` makes it answer 451 (try later) to every recipient instead.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from certificates import self_signed

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    return self_signed(
        folder, "clipsync test smtp", dns_names=["localhost"], addresses=[LOOPBACK], stem="smtp"
    )


@dataclass(frozen=True)
class Received:
    """One mail as the server took it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    # The session was under TLS (STARTTLS, or TLS from the start) when the mail came.
    tls: bool
    # Who signed in, if anyone.
    login: str | None

    def part(self, content_type: str) -> str:
        """The body of the `text/plain` or `text/html` part."""
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return part.get_content()
        raise AssertionError(f"no {content_type} part in {self.message}")


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self.server.refusing:
            return "451 4.3.0 Mailbox temporarily unavailable, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.original_content, policy=default_policy)
        login = session.auth_data.login.decode() if session.authenticated else None
        received = Received(
            envelope.mail_from,
            tuple(envelope.rcpt_tos),
            message,  # type: ignore[arg-type]
            tls=server.transport.get_extra_info("ssl_object") is not None,
            login=login,
        )
        with self.server.lock:
            self.server.received.append(received)
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on a loopback port (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        *,
        username: str = "mailer",
        password: str = "mail password",
        starttls: bool = True,
        implicit_tls: bool = False,
    ) -> None:
        self.cert_file, self.key_file = self_signed_cert(folder)
        self.username = username
        self.password = password
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.port = free_port()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.refusing = False
        self._controller: Controller | None = None

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def start(self) -> SmtpServer:
        options: dict[str, Any] = {
            "authenticator": self._authenticate,
            # aiosmtpd counts only STARTTLS as TLS for AUTH: with TLS from the first
            # byte, or none at all, sign-in is offered but not required.
            "auth_require_tls": False,
        }
        if self.implicit_tls:
            options["ssl_context"] = self._tls_context()
        elif self.starttls:
            options |= {
                "tls_context": self._tls_context(),
                "require_starttls": True,
                "auth_required": bool(self.username),
                "auth_require_tls": True,
            }
        self._controller = Controller(_Handler(self), hostname=LOOPBACK, port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Close the port: connections are refused until `start()`."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def mails(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def mails_to(self, address: str) -> list[Received]:
        return [m for m in self.mails() if address in m.rcpt_tos]

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Received]:
        """Wait until `count` mails came (no more, no less at that moment)."""
        deadline = time.monotonic() + timeout
        while len(self.mails()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.mails())} mail(s) came, not {count}")
            time.sleep(0.05)
        return self.mails()

    def config(self, sender: str = "ClipSync <videos@example.org>") -> dict[str, Any]:
        """The `[plugins.notify_email]` table that sends through this server."""
        security = "tls" if self.implicit_tls else ("starttls" if self.starttls else "none")
        table: dict[str, Any] = {
            "host": LOOPBACK,
            "port": self.port,
            "security": security,
            "sender": sender,
            "ca_file": str(self.cert_file),
            "timeout_seconds": 5,
        }
        if self.username:
            table |= {"username": self.username, "password": self.password}
        return table
