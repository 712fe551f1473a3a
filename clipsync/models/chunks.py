from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class ChunkStatus(StrEnum):
    """PENDING → RUNNING → DONE → JOINED, or FAILED; RUNNING goes back to PENDING for a retry."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    # Joined into the video's playlists: the row stays as the record of how many
    # chunks the last transcode used.
    JOINED = "JOINED"
    FAILED = "FAILED"


class TranscodeChunk(Model):
    """One time range of a video transcoded by its own job (services/chunked_transcoding.py).

    A plan is every row of one `plan` id; a new transcode of the video deletes the
    rows of the old. The chunk's job works under a lease on its row, as a video's
    does on the video's, so the reaper can tell a chunk whose worker died.
    """

    id = fields.IntField(primary_key=True)
    video = fields.ForeignKeyField(
        "models.Video", related_name="transcode_chunks", on_delete=fields.CASCADE
    )
    plan = fields.CharField(max_length=32)
    index = fields.IntField()
    # Seconds of the source: `start` is a whole number of segments; `end` null: to the end.
    start = fields.IntField()
    end = fields.IntField(null=True)
    # The transcoder every chunk of the plan uses: their outputs must be alike.
    transcoder = fields.CharField(max_length=64)
    # The source the plan was made for: a plan of another file is never joined.
    source_key = fields.CharField(max_length=512)
    status = fields.CharEnumField(ChunkStatus, max_length=16, default=ChunkStatus.PENDING)
    progress = fields.IntField(default=0)
    attempts = fields.IntField(default=0)
    error = fields.TextField(null=True)
    worker_lease = fields.CharField(max_length=64, null=True)
    heartbeat_at = fields.DatetimeField(null=True)
    # What the chunk stored, for the join (`media.chunks.ChunkOutputs` as JSON).
    outputs = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "transcode_chunks"
        unique_together = (("video", "plan", "index"),)
        indexes = (("status", "heartbeat_at"),)
