"""The in-app inbox (one row per notification a person received) and preferences."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Notification(Model):
    """Something that happened that a person should know (their video is ready, ...)."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField(
        "models.User", related_name="notifications", on_delete=fields.CASCADE
    )
    # A notification type such as `video.ready` (the event it came from).
    type = fields.CharField(max_length=64)
    title = fields.CharField(max_length=200)
    body = fields.TextField(default="")
    url = fields.CharField(max_length=512, default="")
    # No foreign key: the notification outlives a deleted video.
    video_id = fields.UUIDField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    read_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notifications"
        indexes = (("user_id", "read_at"),)


class NotificationPreference(Model):
    """A person's choice for one notification type on one channel.

    Only choices that differ from the default are stored (see
    `services/notification_types.py` for the types and their defaults).
    """

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField(
        "models.User", related_name="notification_preferences", on_delete=fields.CASCADE
    )
    type = fields.CharField(max_length=64)
    # A notifier's name: "inapp", "email".
    channel = fields.CharField(max_length=32)
    enabled = fields.BooleanField()

    class Meta:
        table = "notification_preferences"
        unique_together = (("user_id", "type", "channel"),)


class KnownDevice(Model):
    """A browser (by its user agent) a person has signed in from.

    A sign-in from one not seen before sends the "new sign-in" security notification.
    """

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField(
        "models.User", related_name="known_devices", on_delete=fields.CASCADE
    )
    # SHA-256 of the User-Agent header: the device, without keeping the header itself.
    fingerprint = fields.CharField(max_length=64)
    first_seen_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "known_devices"
        unique_together = (("user_id", "fingerprint"),)
