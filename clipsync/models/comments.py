"""Comments on videos, threaded one level, and likes."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Comment(Model):
    """A comment, or a reply to one (replies have a parent; replies to replies do not exist)."""

    id = fields.IntField(primary_key=True)
    video = fields.ForeignKeyField(
        "models.Video", related_name="comments", on_delete=fields.CASCADE
    )
    author = fields.ForeignKeyField(
        "models.User", related_name="comments", null=True, on_delete=fields.SET_NULL
    )
    # The comment this one answers. A plain column, not a foreign key: Tortoise cannot
    # create a table that refers to itself. The comments service deletes replies with
    # their comment.
    parent_id = fields.IntField(null=True)
    # The markdown as written (a small subset, rendered and sanitised when shown).
    body = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    edited_at = fields.DatetimeField(null=True)
    # Hidden by a moderator (audited): kept, but shown to nobody but moderators.
    hidden_at = fields.DatetimeField(null=True)
    hidden_by = fields.ForeignKeyField(
        "models.User", related_name="comments_hidden", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "comments"
        indexes = (("video_id", "created_at"), ("parent_id", "created_at"))


class Like(Model):
    """A person likes a video (at most once)."""

    id = fields.IntField(primary_key=True)
    video = fields.ForeignKeyField("models.Video", related_name="likes", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("models.User", related_name="likes", on_delete=fields.CASCADE)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "likes"
        unique_together = (("video_id", "user_id"),)
