"""Membership in more than one category, for people and for videos.

`User.category` and `Video.category` stay the primary one (what an account is shown
with, where an upload starts); these rows add the others. The visibility rule in
services/videos.py reads both.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class UserCategory(Model):
    """`user` also belongs to `category` (besides `User.category`, the primary one)."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField(
        "models.User", related_name="extra_categories", on_delete=fields.CASCADE
    )
    category = fields.CharField(max_length=64)

    class Meta:
        table = "user_categories"
        unique_together = (("user_id", "category"),)
        indexes = (("category", "user_id"),)


class VideoCategory(Model):
    """`video` is also published to `category` (besides `Video.category`)."""

    id = fields.IntField(primary_key=True)
    video = fields.ForeignKeyField(
        "models.Video", related_name="extra_categories", on_delete=fields.CASCADE
    )
    category = fields.CharField(max_length=64)
    added_by = fields.ForeignKeyField(
        "models.User", related_name="video_categories_added", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "video_categories"
        unique_together = (("video_id", "category"),)
        indexes = (("category", "video_id"),)
