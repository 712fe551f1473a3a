"""Talking to the SMTP server with aiosmtplib: sending one mail, and the doctor's probe.

"starttls" insists on STARTTLS: a server (or something in the way) that does not
offer it is an error, never a silent fall back to plain text. Certificates are
verified against the system's authorities, or `ca_file`.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import aiosmtplib

from clipsync.backends import Availability

from .settings import EmailSettings


class MailNotSent(Exception):
    """The server could not be reached or refused the mail; the job tries again later."""


def _options(config: EmailSettings) -> dict[str, Any]:
    return {
        "hostname": config.host,
        "port": config.port,
        "use_tls": config.security == "tls",
        "start_tls": config.security == "starttls",
        "timeout": config.timeout_seconds,
        "cert_bundle": config.ca_file or None,
    }


def _where(config: EmailSettings) -> str:
    return f"{config.host}:{config.port} ({config.security})"


def _reason(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


async def send(config: EmailSettings, mail: EmailMessage) -> None:
    """Hand one mail to the server; `MailNotSent` says why it did not take it."""
    try:
        await aiosmtplib.send(
            mail,
            username=config.username or None,
            password=config.password.reveal() or None,
            **_options(config),
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailNotSent(f"SMTP server {_where(config)}: {_reason(exc)}") from None


async def probe(config: EmailSettings) -> Availability:
    """Connect, greet (EHLO), secure the connection and sign in, as a send would."""
    client = aiosmtplib.SMTP(**_options(config))
    try:
        await client.connect()
        try:
            if config.username:
                await client.login(config.username, config.password.reveal())
            await client.noop()
            await client.quit()
        finally:
            client.close()
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Availability.no(f"{_where(config)} does not accept mail: {_reason(exc)}")
    signed_in = f", signed in as {config.username}" if config.username else ""
    return Availability.yes(f"{_where(config)} answers{signed_in}; mail comes from {config.sender}")
