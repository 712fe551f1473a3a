"""The in-app inbox: one row per notification a person received."""

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
