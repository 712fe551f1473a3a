from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class WatchProgress(Model):
    """Where a user stopped watching a video, to resume from there."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField(
        "models.User", related_name="watch_progress", on_delete=fields.CASCADE
    )
    video = fields.ForeignKeyField(
        "models.Video", related_name="watch_progress", on_delete=fields.CASCADE
    )
    position = fields.FloatField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "watch_progress"
        unique_together = (("user", "video"),)
