from __future__ import annotations

import uuid
from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class VideoStatus(StrEnum):
    """UPLOADED → PROCESSING → READY → APPROVED, or FAILED / REJECTED."""

    UPLOADED = "UPLOADED"
    PROCESSING = "PROCESSING"
    READY = "READY"
    APPROVED = "APPROVED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"


class Video(Model):
    # Random ids: a guessed id says nothing about whether a video exists.
    id = fields.UUIDField(primary_key=True, default=uuid.uuid4)
    owner = fields.ForeignKeyField("models.User", related_name="videos", on_delete=fields.CASCADE)
    title = fields.CharField(max_length=200, default="")
    original_filename = fields.CharField(max_length=255, default="")
    description = fields.TextField(default="")
    # The uploader's category when the video was registered.
    category = fields.CharField(max_length=64, db_index=True)
    status = fields.CharEnumField(VideoStatus, max_length=16, default=VideoStatus.UPLOADED)

    source_key = fields.CharField(max_length=512, null=True)
    hls_key = fields.CharField(max_length=512, null=True)
    poster_key = fields.CharField(max_length=512, null=True)
    sprite_key = fields.CharField(max_length=512, null=True)
    thumbnails_key = fields.CharField(max_length=512, null=True)

    duration = fields.FloatField(null=True)
    width = fields.IntField(null=True)
    height = fields.IntField(null=True)
    video_codec = fields.CharField(max_length=32, null=True)
    audio_codec = fields.CharField(max_length=32, null=True)
    bitrate = fields.BigIntField(null=True)
    size = fields.BigIntField(null=True)
    checksum = fields.CharField(max_length=64, null=True)

    progress = fields.IntField(default=0)
    # What made the renditions, and why not the configured or first choice when it
    # was not: "libx264 (cpu) after h264_vaapi (vaapi) failed: <reason>".
    encoder = fields.TextField(null=True)
    attempts = fields.IntField(default=0)
    error = fields.TextField(null=True)
    # The last moderation decision, shown to the uploader (the audit log keeps all).
    moderation_reason = fields.TextField(null=True)
    moderated_at = fields.DatetimeField(null=True)
    # The job working on the video holds this lease and renews it with the heartbeat
    # as it reports progress; a lease whose heartbeat has gone stale is free again, so
    # a worker that died never blocks the video (see services/transcoding.py).
    worker_lease = fields.CharField(max_length=64, null=True)
    heartbeat_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    # Whether people may comment (the uploader or a moderator turns it off).
    comments_enabled = fields.BooleanField(default=True)
    # Whether viewers may download it, when [sharing] allow_download permits at all.
    download_allowed = fields.BooleanField(default=True)

    class Meta:
        table = "videos"
        # Each serves one branch of the visibility rule (services/videos.py) in the
        # list's order, newest first, so a page is read from an index, never a sort of
        # the library: a category's videos of one status, a category's videos in any
        # status (editors), an uploader's own, and all of them (admins).
        indexes = (
            ("category", "status", "created_at", "id"),
            ("category", "created_at", "id"),
            ("owner_id", "created_at", "id"),
            ("created_at", "id"),
        )

    def __str__(self) -> str:
        return f"{self.title or 'untitled'} ({self.id})"


class Rendition(Model):
    """One rung of a video's HLS ladder."""

    id = fields.IntField(primary_key=True)
    video = fields.ForeignKeyField(
        "models.Video", related_name="renditions", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=32)
    width = fields.IntField()
    height = fields.IntField()
    # Peak and average bits per second, as in the master playlist.
    bitrate = fields.IntField()
    average_bitrate = fields.IntField()
    frame_rate = fields.FloatField()
    codecs = fields.CharField(max_length=64)
    playlist_key = fields.CharField(max_length=512)

    class Meta:
        table = "renditions"
        unique_together = (("video", "name"),)
