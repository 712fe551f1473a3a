"""Per-video grants: a video shared with named people, whatever their category."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class VideoGrant(Model):
    """`user` may watch `video` until `until` (None: until the grant is removed)."""

    id = fields.IntField(primary_key=True)
    video = fields.ForeignKeyField("models.Video", related_name="grants", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("models.User", related_name="grants", on_delete=fields.CASCADE)
    granted_by = fields.ForeignKeyField(
        "models.User", related_name="grants_given", null=True, on_delete=fields.SET_NULL
    )
    until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "video_grants"
        unique_together = (("video_id", "user_id"),)
        indexes = (("user_id", "video_id"),)
