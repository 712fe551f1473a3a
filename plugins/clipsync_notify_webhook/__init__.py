"""The webhook channel: a signed JSON POST to each URL an admin registered, per event.

Admins register URLs and the events each hears at `/admin/webhooks` (or `/api/admin/
webhooks`, see `clipsync.services.webhooks`). When a video event is published,
`broadcast` writes one `Delivery` per webhook that asked for it, with the event's
payload, and queues it; the job consumer then calls `send`, which POSTs it:

    POST <url>
    Content-Type: application/json
    X-ClipSync-Event: video.approved
    X-ClipSync-Delivery: 42            (the same on every retry: drop duplicates by it)
    X-ClipSync-Timestamp: 1765108800   (Unix seconds of this attempt)
    X-ClipSync-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>." + body>

    {"event":"video.approved","occurredAt":"…","data":{"videoId":…,"title":…,"url":…}}

The HMAC key is the webhook's secret as shown once at creation. A 2xx answer is a
delivery; anything else (a redirect included), a timeout or a refused connection
raises, and the core tries again with back-off (`[notifications]`). `format` picks
the body: "json" (the above), "slack" and "mattermost" (`{"text": …}`), "teams" (a
MessageCard).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from clipsync import hookimpl
from clipsync.events import Event
from clipsync.models import Delivery, Webhook
from clipsync.services import notifications
from clipsync.services.webhooks import EVENTS, redact
from clipsync.settings import check

from .bodies import body_for, encode, event_data, payload_for, signature
from .sending import WebhookError, post, refusal

log = logging.getLogger(__name__)

USER_AGENT = "ClipSync-Webhooks/1"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _response_bytes(value: int) -> str | None:
    return None if 1 <= value <= 16 * 1024 * 1024 else "must be between 1 and 16777216 (16 MiB)"


@dataclass(frozen=True)
class WebhookSettings:
    # Allow webhook URLs whose host is a loopback, private, link-local or otherwise
    # non-public address (a receiver on this host or the local network).
    allow_private: bool = False
    # The longest one POST may take, from resolving the host to the last byte read.
    timeout_seconds: float = check(_positive, 10.0)
    # At most this much of a receiver's answer is read (for the error shown to admins).
    max_response_bytes: int = check(_response_bytes, 64 * 1024)


class WebhookNotifier:
    """Broadcasts video events to the registered webhooks; sends each from a job."""

    name: ClassVar[str] = "webhook"

    def __init__(self, context: Any) -> None:
        self.settings = context.settings
        self.config: WebhookSettings = context.config or WebhookSettings()

    async def deliver(self, message: Any) -> None:
        """Webhooks hear events (`broadcast`), not a person's messages."""

    async def deliver_many(self, messages: list[Any]) -> None:
        """Nor a batch of them: taken at once, so a big audience costs nothing here."""

    async def broadcast(self, event: Event) -> None:
        """One queued delivery per active webhook that asked for this event."""
        if event.name not in EVENTS:
            return
        hooks = [h for h in await Webhook.filter(active=True) if event.name in (h.events or [])]
        if not hooks:
            return
        payload = payload_for(event, await event_data(event, self.settings.server.base_url))
        for hook in hooks:
            delivery = await Delivery.create(
                channel=self.name,
                type=event.name,
                recipient=redact(hook.url)[:2048],
                webhook_id=hook.id,
                payload=payload,
            )
            notifications.queue_delivery(delivery)

    async def send(self, delivery: Delivery) -> None:
        """POST the delivery once; raises unless the webhook answered 2xx."""
        delivery.response_status = None  # this attempt's, not the last one's
        hook = await Webhook.get_or_none(id=delivery.webhook_id)
        if hook is None:
            raise WebhookError("the webhook was deleted")
        if not hook.active:
            raise WebhookError("the webhook is turned off")
        body = encode(body_for(delivery.payload, hook.format))
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-ClipSync-Event": delivery.type,
            "X-ClipSync-Delivery": str(delivery.id),
            "X-ClipSync-Timestamp": timestamp,
            "X-ClipSync-Signature": signature(hook.secret, timestamp, body),
        }
        answer = await post(
            hook.url,
            body,
            headers,
            allow_private=self.config.allow_private,
            seconds=self.config.timeout_seconds,
            max_bytes=self.config.max_response_bytes,
        )
        delivery.response_status = answer.status
        if not 200 <= answer.status < 300:
            raise WebhookError(refusal(answer))


@hookimpl
def settings_schema() -> type:
    return WebhookSettings


@hookimpl
def register_notifiers() -> list[type]:
    return [WebhookNotifier]
