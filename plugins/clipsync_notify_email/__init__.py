"""The email notification channel: one mail per notification, through an SMTP server.

`deliver(message)` runs in the process that published the event: it finds the
address (an invite's own, or the person's while their account is active), writes a
`Delivery` row with everything the mail needs, and queues its job. `send(delivery)`
runs in the job consumer: it renders the theme's `emails/` templates (plain text and
HTML), makes every link absolute with `[server] public_url`, and hands the mail to
the SMTP server; raising there means "try again later", with back-off, until
`[notifications] delivery_attempts` is spent. Types marked `digest` are grouped (see
`digest`). Every mail a person can turn off carries `List-Unsubscribe` and a
one-click unsubscribe link that works without signing in (see `unsubscribe`).

With no `[plugins.notify_email] host`, email is off: nothing is written or sent.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from tortoise.transactions import in_transaction

from clipsync import hookimpl
from clipsync.backends import Availability, BackendContext
from clipsync.models import Delivery, DeliveryStatus, User
from clipsync.plugins import Route
from clipsync.services import notification_types, notifications

from . import compose, digest, smtp, unsubscribe
from .settings import EmailSettings, address_problem

log = logging.getLogger(__name__)

__all__ = ["EmailNotifier", "EmailSettings"]


def _payload(message: Any) -> dict[str, Any]:
    """What `send` needs, as JSON (an invite's data may hold dates)."""
    return {
        "type": message.type,
        "title": message.title,
        "body": message.body,
        "url": message.url,
        "video_id": None if message.video_id is None else str(message.video_id),
        "data": json.loads(json.dumps(message.data or {}, default=str)),
    }


class EmailNotifier:
    """The `email` channel (see the module docstring)."""

    name: ClassVar[str] = "email"

    def __init__(self, context: BackendContext) -> None:
        self.settings = context.settings
        self.config: EmailSettings = context.config or EmailSettings()
        self._templates: compose.Templates | None = None

    @property
    def enabled(self) -> bool:
        """False without an SMTP host: the channel then does nothing."""
        return self.config.enabled

    @property
    def templates(self) -> compose.Templates:
        if self._templates is None:
            self._templates = compose.Templates(self.settings)
        return self._templates

    async def _addresses(self, messages: list[Any]) -> dict[int, str]:
        """The address of each active person among the messages, in one query."""
        people = {m.user_id for m in messages if m.user_id is not None}
        if not people:
            return {}
        found = await User.filter(id__in=people, is_active=True).values_list("id", "email")
        return dict(found)

    @staticmethod
    def _address_only(message: Any) -> str:
        address = (message.email or "").strip()
        if address_problem(address):
            log.warning("not mailing %s: %r is not a mail address", message.type, address)
            return ""
        return address

    async def deliver(self, message: Any) -> None:
        """Write the mail's `Delivery` row and queue its job; never sends here."""
        await self.deliver_many([message])

    async def deliver_many(self, messages: list[Any]) -> None:
        """`deliver` for a batch (an event that tells a whole category): one query for
        the addresses, one transaction for the rows, then their jobs."""
        if not self.enabled:
            return
        addresses = await self._addresses(messages)
        rows: list[tuple[Delivery, bool]] = []
        async with in_transaction():
            for message in messages:
                if message.user_id is None:
                    address = self._address_only(message)
                else:
                    address = addresses.get(message.user_id, "")
                if not address:
                    continue  # no such person, or no longer active
                wait = digest.batched(self.settings, message.type, message.user_id)
                row = await Delivery.create(
                    channel=self.name,
                    type=message.type,
                    recipient=address,
                    user_id=message.user_id,
                    payload=_payload(message),
                    status=DeliveryStatus.BATCHED if wait else DeliveryStatus.PENDING,
                )
                rows.append((row, wait))
        # Queued once the rows are committed, so a job never looks for a row in vain.
        due: dict[int, float] = {}
        for row, wait in rows:
            delay = 0.0
            if wait and row.user_id is not None:
                if row.user_id not in due:
                    due[row.user_id] = await digest.seconds_until_due(self.settings, row.user_id)
                delay = due[row.user_id]
            notifications.queue_delivery(row, delay)

    async def send(self, delivery: Delivery) -> None:
        """Send one row's mail, or the person's digest for a BATCHED row (in the job)."""
        if not self.enabled:
            raise smtp.MailNotSent("email is off: [plugins.notify_email] host is empty")
        if delivery.status != DeliveryStatus.BATCHED:
            await smtp.send(self.config, self._single(delivery))
            return
        rows = await digest.take(delivery)
        if not rows:
            return  # another job's digest lists it
        try:
            mail = self._single(delivery) if len(rows) == 1 else self._digest(delivery, rows)
            await smtp.send(self.config, mail)
        except BaseException:
            await digest.give_back(rows)
            raise

    def _unsubscribe_url(self, user_id: int | None, type_name: str) -> str | None:
        if user_id is None:
            return None  # an invite: there is nothing to unsubscribe from
        return unsubscribe.url(self.settings, self.config, user_id, type_name)

    def _single(self, delivery: Delivery) -> Any:
        item = compose.item_of(self.settings, delivery.payload)
        unsubscribe_url = self._unsubscribe_url(delivery.user_id, item.type)
        text, html = self.templates.render(
            item.type,
            {"item": item, "address": delivery.recipient, "unsubscribe_url": unsubscribe_url},
        )
        return compose.message(
            sender=self.config.sender,
            recipient=delivery.recipient,
            subject=item.title,
            text=text,
            html=html,
            unsubscribe_url=unsubscribe_url,
        )

    def _digest(self, delivery: Delivery, rows: list[Delivery]) -> Any:
        items = [compose.item_of(self.settings, row.payload) for row in rows]
        types = sorted({item.type for item in items})
        # One header link can stop one type; a digest mixing types links each in its body.
        unsubscribe_urls = {t: self._unsubscribe_url(delivery.user_id, t) for t in types}
        header_url = unsubscribe_urls[types[0]] if len(types) == 1 else None
        labels = {t: notification_types.TYPES[t].label for t in types}
        text, html = self.templates.render(
            "digest",
            {
                "items": items,
                "address": delivery.recipient,
                "unsubscribe_url": header_url,
                "unsubscribe_urls": unsubscribe_urls,
                "labels": labels,
            },
        )
        return compose.message(
            sender=self.config.sender,
            recipient=delivery.recipient,
            subject=f"{items[0].title} and {len(items) - 1} more",
            text=text,
            html=html,
            unsubscribe_url=header_url,
        )

    async def probe(self) -> Availability:
        """For `clipsync doctor`: can mail be sent now? (Off is information, not a fault.)"""
        if not self.enabled:
            return Availability.no("off: no SMTP host in [plugins.notify_email]")
        return await smtp.probe(self.config)


@hookimpl
def settings_schema() -> type:
    return EmailSettings


@hookimpl
def register_notifiers() -> list[type]:
    return [EmailNotifier]


@hookimpl
def register_routes() -> list[Route]:
    return [
        Route(unsubscribe.PATH, unsubscribe.confirm_page, ("GET",), name="unsubscribe_confirm"),
        # The one-click POST comes from mail clients, without cookies or a CSRF token;
        # the signed token in the path is what authorises it (see `unsubscribe`).
        Route(unsubscribe.PATH, unsubscribe.unsubscribe, ("POST",), name="unsubscribe", csrf=False),
    ]
