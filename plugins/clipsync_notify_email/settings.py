"""`[plugins.notify_email]`: the SMTP server mail goes through, and who it comes from.

An empty `host` turns email off: the channel then writes nothing and sends nothing,
the preferences page says so and `clipsync doctor` reports it as information.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import getaddresses
from typing import Literal

from clipsync.errors import ConfigError
from clipsync.settings import Secret, check

SECTION = "[plugins.notify_email]"
# Anything that could end a header line or hide in one.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _host(value: str) -> str | None:
    if value and (CONTROL.search(value) or " " in value or "/" in value or ":" in value):
        return 'must be a host name or address without scheme or port, e.g. "smtp.example.org"'
    return None


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "must be between 1 and 65535"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def address_problem(value: str) -> str | None:
    """What is wrong with a mail address ("a@b.c" or "Name <a@b.c>"), or None."""
    if CONTROL.search(value):
        return "must not contain control characters or line breaks"
    found = getaddresses([value])
    name, addr = found[0] if len(found) == 1 else ("", "")
    try:
        parsed = Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError):
        parsed = None
    if parsed is None or not parsed.username or "." not in parsed.domain or "@" not in addr:
        return (
            'must be a mail address, e.g. "videos@example.org" or "ClipSync <videos@example.org>"'
        )
    return None


def _sender(value: str) -> str | None:
    return address_problem(value) if value else None


@dataclass(frozen=True)
class EmailSettings:
    # The SMTP server. Empty: email is off.
    host: str = check(_host, "")
    port: int = check(_port, 587)
    # "starttls" (upgrade a plain connection, refusing a server that cannot), "tls"
    # (TLS from the first byte, usually port 465) or "none" (a local relay only).
    security: Literal["none", "starttls", "tls"] = "starttls"
    # Sign in to the server when set.
    username: str = ""
    password: Secret = field(default_factory=Secret)
    # The From address; required when `host` is set.
    sender: str = check(_sender, "")
    # The longest one connection, command or reply may take.
    timeout_seconds: float = check(_positive, 30.0)
    # PEM file of the authorities that may sign the server's certificate (an internal
    # CA); empty: the system's.
    ca_file: str = ""
    # Signs unsubscribe links. Empty: generated once into the data directory (set it
    # when several hosts send mail, so every host signs alike).
    unsubscribe_secret: Secret = field(default_factory=Secret)

    def __post_init__(self) -> None:
        if self.host and not self.sender:
            raise ConfigError(
                f"{SECTION} sender is required when host is set: the address mail comes "
                'from, e.g. sender = "ClipSync <videos@example.org>"'
            )
        if self.password and not self.username:
            raise ConfigError(f"{SECTION} password is set but username is empty: set both")

    @property
    def enabled(self) -> bool:
        return bool(self.host)
