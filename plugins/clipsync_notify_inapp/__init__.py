"""The in-app inbox channel: each message becomes a row in the person's notifications.

After writing them, `notification.changed` (with `userIds`) tells those people's
open bells, in every process, to show the new unread count.
"""

from __future__ import annotations

from typing import Any, ClassVar

from clipsync import events, hookimpl
from clipsync.models import Notification

# People named in one `notification.changed` event (PostgreSQL NOTIFY carries < 8 kB).
NEWS_BATCH = 500


class InAppNotifier:
    """Writes the notification that `/api/notifications` and the bell show."""

    name: ClassVar[str] = "inapp"

    def __init__(self, context: Any = None) -> None:
        self.context = context

    async def deliver(self, message: Any) -> None:
        await self.deliver_many([message])

    async def deliver_many(self, messages: list[Any]) -> None:
        """All rows in one insert; then one `notification.changed` per few hundred people."""
        rows = [
            Notification(
                user_id=m.user_id,
                type=m.type,
                title=m.title,
                body=m.body,
                url=m.url,
                video_id=m.video_id,
            )
            for m in messages
            if m.user_id is not None  # a message to an address only (an invite)
        ]
        if not rows:
            return
        await Notification.bulk_create(rows)
        people = sorted({row.user_id for row in rows})
        for start in range(0, len(people), NEWS_BATCH):
            await events.publish("notification.changed", userIds=people[start : start + NEWS_BATCH])


@hookimpl
def register_notifiers() -> list[type]:
    return [InAppNotifier]
