"""Captions: subtitle tracks of a video, one per language."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Caption(Model):
    """A WebVTT track (SRT is converted when uploaded), stored beside the video's HLS."""

    id = fields.IntField(primary_key=True)
    video = fields.ForeignKeyField(
        "models.Video", related_name="captions", on_delete=fields.CASCADE
    )
    # A BCP 47 language tag ("fr", "pt-BR"): one track per language and video.
    language = fields.CharField(max_length=35)
    # What the player's captions menu shows ("Français").
    label = fields.CharField(max_length=64)
    # The WebVTT file in the store (see storage/keys.py).
    key = fields.CharField(max_length=512)
    size = fields.IntField(default=0)
    created_by = fields.ForeignKeyField(
        "models.User", related_name="captions_added", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "captions"
        unique_together = (("video_id", "language"),)
