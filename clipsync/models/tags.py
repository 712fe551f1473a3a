"""Tags: free words on videos, shared across the library."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Tag(Model):
    """A tag, as first written (`label`) and case-folded (`name`, unique)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    label = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "tags"


class VideoTag(Model):
    """`video` carries `tag`."""

    id = fields.IntField(primary_key=True)
    video = fields.ForeignKeyField(
        "models.Video", related_name="video_tags", on_delete=fields.CASCADE
    )
    tag = fields.ForeignKeyField("models.Tag", related_name="video_tags", on_delete=fields.CASCADE)

    class Meta:
        table = "video_tags"
        unique_together = (("video_id", "tag_id"),)
        indexes = (("tag_id", "video_id"),)
