"""The in-app inbox channel: each message becomes a row in the person's notifications.

After writing it, `notification.changed` (with `userId`) tells the person's open
bells, in every process, to show the new unread count.
"""

from __future__ import annotations

from typing import Any, ClassVar

from clipsync import events, hookimpl
from clipsync.models import Notification


class InAppNotifier:
    """Writes the notification that `/api/notifications` and the bell show."""

    name: ClassVar[str] = "inapp"

    def __init__(self, context: Any = None) -> None:
        self.context = context

    async def deliver(self, message: Any) -> None:
        if message.user_id is None:
            return  # a message to an address only (an invite): not for an inbox
        await Notification.create(
            user_id=message.user_id,
            type=message.type,
            title=message.title,
            body=message.body,
            url=message.url,
            video_id=message.video_id,
        )
        await events.publish("notification.changed", userId=message.user_id)


@hookimpl
def register_notifiers() -> list[type]:
    return [InAppNotifier]
