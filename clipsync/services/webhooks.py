"""Webhooks: the URLs admins register, the checks on those URLs, their last deliveries.

The channel that sends to them is the `notify_webhook` plugin; this module is what
the admin API and console call, and the URL check both share. A webhook URL is
checked when it is created and again before every POST (its name may resolve
elsewhere by then): http or https only, and, unless `[plugins.notify_webhook]
allow_private = true`, every address the host resolves to must be public. The
sender connects to the address that was checked, never resolving the name twice,
so a name that changes between the check and the connection cannot slip through.

Errors never repeat credentials written in a URL (`user:password@`), and the secret
of a webhook is returned only once, by `create`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from clipsync.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed
from clipsync.models import Delivery, Role, User, Webhook
from clipsync.plugins import PluginHost
from clipsync.services.moderation import record

# The plugin whose `[plugins.notify_webhook]` settings apply.
PLUGIN = "notify_webhook"
# The events a webhook may hear: a video's life. Progress (`video.status`) is too
# chatty, and account events are a person's own business.
EVENTS = (
    "video.uploaded",
    "video.ready",
    "video.failed",
    "video.approved",
    "video.rejected",
    "video.moved",
    "video.deleted",
)
# ClipSync's own JSON body, or the incoming-webhook body of a chat service.
FORMATS = ("json", "slack", "mattermost", "teams")
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION = 200
# A console, not a fan-out service: more than this is a mistake or an abuse.
MAX_WEBHOOKS = 50
# Deliveries shown per webhook, and at most when asked.
RECENT_DELIVERIES = 10
MAX_DELIVERIES = 100
# How long creating a webhook waits for its host name to resolve.
RESOLVE_SECONDS = 5.0


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where to connect (`address`) and what to call it."""

    url: str
    scheme: str
    host: str
    port: int
    address: str

    @property
    def host_is_address(self) -> bool:
        return _literal_address(self.host) is not None


def redact(url: str) -> str:
    """The URL without the credentials it may carry, for errors, lists and the audit log."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        netloc = parts.netloc.rpartition("@")[2]
        return SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment).geturl()
    except ValueError:
        return "the URL"


def address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a webhook may not be sent to `address` (None for a public address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        # Shared (carrier-grade NAT) space and the like: neither private nor public.
        (not address.is_global, "not a public address"),
    )
    return next((why for failed, why in checks if failed), None)


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _parse(url: Any) -> tuple[SplitResult, str, int]:
    """The URL's parts, host and port, or a 400 that says what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise BadRequest("Give the webhook's URL, e.g. https://example.org/hooks/clipsync.")
    if len(url) > MAX_URL_LENGTH:
        raise BadRequest(f"The webhook URL is longer than {MAX_URL_LENGTH} characters.")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise BadRequest("The webhook URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadRequest(f"{redact(url)} is not a valid URL (check its host and port).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BadRequest(
            f"Webhook URLs must start with http:// or https://, not {scheme or 'nothing'}:."
        )
    host = parts.hostname or ""
    if not host:
        raise BadRequest(f"The webhook URL {redact(url)} has no host name.")
    return parts, host, port or (443 if scheme == "https" else 80)


async def check_url(
    url: Any, *, allow_private: bool, resolve_seconds: float = RESOLVE_SECONDS
) -> Target:
    """Check a webhook URL and resolve its host; raises `BadRequest` naming the problem.

    Every address the host resolves to must be public unless `allow_private`: a name
    with one private address among public ones could be answered either way.
    """
    parts, host, port = _parse(url)
    shown = redact(url)
    literal = _literal_address(host)
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
                resolve_seconds,
            )
        except TimeoutError:
            raise BadRequest(
                f"The host {host} did not resolve within {resolve_seconds:g} s."
            ) from None
        except (OSError, UnicodeError):
            raise BadRequest(f"The host {host} of {shown} could not be resolved.") from None
        # An IPv6 address may carry its zone ("fe80::1%eth0").
        found = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
        if not found:
            raise BadRequest(f"The host {host} of {shown} could not be resolved.")
    if not allow_private:
        for text in found:
            problem = address_problem(ipaddress.ip_address(text))
            if problem:
                where = (
                    f"The webhook address {text} is {problem}"
                    if literal is not None
                    else f"The webhook host {host} resolves to {text}, {problem}"
                )
                raise BadRequest(
                    f"{where}. ClipSync sends webhooks only to public addresses, unless "
                    "an administrator sets [plugins.notify_webhook] allow_private = true."
                )
    return Target(url, parts.scheme.lower(), host, port, found[0])


# --- administration --------------------------------------------------------------------


def require_admin(user: User) -> User:
    if user.role != Role.ADMIN:
        raise Forbidden("Only administrators can manage webhooks.")
    return user


def settings_of(plugins: PluginHost) -> Any:
    """The `[plugins.notify_webhook]` settings; Conflict when that plugin is not loaded."""
    config = plugins.plugin_config(PLUGIN)
    if config is None:
        raise Conflict(
            "Webhooks are off: the notify_webhook plugin is disabled in the configuration."
        )
    return config


def _events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ValidationFailed("Choose at least one event for the webhook.", field="events")
    unknown = [str(v) for v in value if v not in EVENTS]
    if unknown:
        raise ValidationFailed(
            f"Unknown event {unknown[0]!r}; webhooks can hear: {', '.join(EVENTS)}.",
            field="events",
        )
    return [name for name in EVENTS if name in value]


def _format(value: Any) -> str:
    if value is None or value == "":
        return "json"
    if value not in FORMATS:
        raise ValidationFailed(f"format is one of: {', '.join(FORMATS)}.", field="format")
    return str(value)


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value.strip()) > MAX_DESCRIPTION:
        raise ValidationFailed(
            f"The description is text of at most {MAX_DESCRIPTION} characters.",
            field="description",
        )
    return value.strip()


async def create(
    admin: User,
    plugins: PluginHost,
    *,
    url: Any,
    events: Any,
    format: Any = None,
    description: Any = None,
) -> tuple[Webhook, str]:
    """Register a webhook; returns it and its signing secret, which is never shown again."""
    require_admin(admin)
    config = settings_of(plugins)
    chosen, body_format, text = _events(events), _format(format), _description(description)
    target = await check_url(url, allow_private=config.allow_private)
    if await Webhook.all().count() >= MAX_WEBHOOKS:
        raise Conflict(f"There are {MAX_WEBHOOKS} webhooks already: delete one first.")
    secret = secrets.token_hex(32)
    webhook = await Webhook.create(
        url=target.url,
        secret=secret,
        events=chosen,
        format=body_format,
        description=text,
        created_by=admin,
    )
    # The host only: a chat service's URL path is itself a secret.
    await record(admin, "webhook_create", webhook=webhook.id, host=target.host, events=chosen)
    return webhook, secret


async def list_webhooks(admin: User) -> list[Webhook]:
    require_admin(admin)
    return list(await Webhook.all().order_by("-created_at", "-id"))


async def _get(webhook_id: Any) -> Webhook:
    webhook = None
    if isinstance(webhook_id, int) and 1 <= webhook_id <= 2**31 - 1:
        webhook = await Webhook.get_or_none(id=webhook_id)
    if webhook is None:
        raise NotFound("There is no such webhook.")
    return webhook


async def delete(admin: User, webhook_id: Any) -> None:
    """Delete a webhook and its deliveries (queued ones are not sent)."""
    require_admin(admin)
    webhook = await _get(webhook_id)
    await webhook.delete()
    host = urlsplit(webhook.url).hostname or ""
    await record(admin, "webhook_delete", webhook=webhook.id, host=host)


async def recent_deliveries(
    admin: User, webhook_id: Any = None, limit: int = RECENT_DELIVERIES
) -> list[Delivery]:
    """The last deliveries of one webhook (or of all of them), newest first."""
    require_admin(admin)
    query = Delivery.filter(channel="webhook")
    if webhook_id is not None:
        query = query.filter(webhook_id=(await _get(webhook_id)).id)
    limit = max(1, min(limit, MAX_DELIVERIES))
    return list(await query.order_by("-created_at", "-id").limit(limit))


def webhook_json(webhook: Webhook) -> dict[str, Any]:
    """A webhook as the API shows it: never its secret."""
    return {
        "id": webhook.id,
        "url": redact(webhook.url),
        "events": list(webhook.events or []),
        "format": webhook.format,
        "description": webhook.description,
        "active": webhook.active,
        "createdAt": webhook.created_at.isoformat() if webhook.created_at else None,
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": delivery.id,
        "webhookId": delivery.webhook_id,
        "event": delivery.type,
        "status": str(delivery.status),
        "attempts": delivery.attempts,
        "responseStatus": delivery.response_status,
        "lastError": delivery.last_error or None,
        "createdAt": when(delivery.created_at),
        "lastAttemptAt": when(delivery.last_attempt_at),
        "sentAt": when(delivery.sent_at),
    }
