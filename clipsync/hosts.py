"""Host names: the public URL links start with, and the Host headers ClipSync answers.

`[server] public_url` is where people reach ClipSync; every absolute link is built
from it, never from a request's Host header, which the client chooses. `[server]
allowed_hosts` lists the Host values requests may carry (`clipsync.http_security`
refuses the others). Both have defaults that work on one machine: the address
served on, and loopback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

# Addresses that mean "listen on every interface": no use in a link.
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::", "[::]"})
# The names of this machine that requests may always use unless configured otherwise.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# A Host value: a DNS name or IPv4 address, or a bracketed IPv6 address, with an
# optional port.
HOST_NAME = re.compile(r"^(?:[a-z0-9_.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$", re.IGNORECASE)


def public_url_problem(value: str) -> str | None:
    """What is wrong with a `public_url` setting, or None ("" means derived)."""
    if not value:
        return None
    example = 'must be an address like "https://videos.example.org"'
    try:
        parts = urlsplit(value)
    except ValueError:
        return example
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return example
    if parts.path.strip("/") or parts.query or parts.fragment or "@" in parts.netloc:
        return "must be just scheme, host and port, without a path, query or user"
    if not HOST_NAME.match(parts.netloc):
        return "names a host that is not a valid host name"
    return None


def allowed_hosts_problem(value: list[str]) -> str | None:
    """What is wrong with an `allowed_hosts` setting, or None."""
    for name in value:
        if name != "*" and not HOST_NAME.match(name):
            return f'has {name!r}, which is not a host name like "videos.example.org" or "*"'
    return None


def base_url(public_url: str, host: str, port: int) -> str:
    """`public_url` without a trailing slash, or http://<host>:<port> when it is empty."""
    if public_url:
        return public_url.rstrip("/")
    host = "127.0.0.1" if host in WILDCARD_ADDRESSES else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}" + ("" if port == 80 else f":{port}")


def host_names(allowed_hosts: Sequence[str], url: str) -> tuple[str, ...]:
    """The configured Host values, or by default the host of `url` plus loopback names."""
    if allowed_hosts:
        return tuple(name.lower() for name in allowed_hosts)
    public = urlsplit(url).hostname or ""
    return (f"[{public}]" if ":" in public else public, *LOOPBACK_HOSTS)


def split_host(host: str) -> tuple[str, str]:
    """`(name, port)` of a Host value; the port is "" when there is none."""
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return f"{name}]", rest.removeprefix(":")
    name, _, port = host.partition(":")
    # "example.org." is the same name as "example.org".
    return name.rstrip("."), port


@dataclass(frozen=True)
class AllowedHosts:
    """The Host values this server answers to: a bare name matches it on any port."""

    any_host: bool
    names: frozenset[str]
    names_with_port: frozenset[str]

    @classmethod
    def of(cls, entries: Sequence[str]) -> AllowedHosts:
        names, with_port = set(), set()
        for entry in entries:
            name, port = split_host(entry.lower())
            if port:
                with_port.add(f"{name}:{port}")
            else:
                names.add(name)
        return cls("*" in entries, frozenset(names), frozenset(with_port))

    def allows(self, host: str) -> bool:
        if self.any_host:
            return True
        host = host.strip().lower()
        if not HOST_NAME.match(host):
            return False
        name, port = split_host(host)
        return name in self.names or f"{name}:{port}" in self.names_with_port
