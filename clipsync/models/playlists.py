"""Playlists: a person's own ordered lists of videos."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class PlaylistAudience(StrEnum):
    """Who may open a playlist. Each video in it is still shown only to those the
    visibility rule lets see it."""

    PRIVATE = "private"  # the owner alone
    CATEGORY = "category"  # people of the playlist's category
    SIGNED_IN = "signed_in"  # anyone signed in


class Playlist(Model):
    id = fields.IntField(primary_key=True)
    owner = fields.ForeignKeyField(
        "models.User", related_name="playlists", on_delete=fields.CASCADE
    )
    title = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    audience = fields.CharEnumField(
        PlaylistAudience, max_length=16, default=PlaylistAudience.PRIVATE
    )
    # The category that may open it when audience is "category".
    category = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "playlists"
        indexes = (("owner_id", "updated_at"),)


class PlaylistItem(Model):
    """`video` at `position` (0 first) in `playlist`."""

    id = fields.IntField(primary_key=True)
    playlist = fields.ForeignKeyField(
        "models.Playlist", related_name="items", on_delete=fields.CASCADE
    )
    video = fields.ForeignKeyField(
        "models.Video", related_name="playlist_items", on_delete=fields.CASCADE
    )
    position = fields.IntField()
    added_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "playlist_items"
        unique_together = (("playlist_id", "video_id"),)
        indexes = (("playlist_id", "position"),)
