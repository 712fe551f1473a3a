from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ResumableUpload(Model):
    """A tus upload on its way in: what has arrived, and where it is kept meanwhile.

    The row is a checkpoint, written every few MiB and when a request ends, not on
    every chunk: after a crash the staged files on disk (and the parts already in the
    bucket) are trusted over it (see `clipsync.services.resumable`).
    """

    # Becomes the video's id when the last byte arrives.
    id = fields.UUIDField(primary_key=True)
    owner = fields.ForeignKeyField(
        "models.User", related_name="resumable_uploads", on_delete=fields.CASCADE
    )
    filename = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=255, default="")
    # The Upload-Metadata header as the client sent it, echoed back by HEAD.
    metadata = fields.TextField(default="")
    length = fields.BigIntField()
    # Bytes received at the last checkpoint; equal to `length` once finished.
    offset = fields.BigIntField(default=0)
    storage_key = fields.CharField(max_length=512)
    # S3-style multipart upload (storage that has the multipart capability).
    multipart_id = fields.CharField(max_length=1024, null=True)
    # [[part number, etag, size], ...] of the parts already stored.
    parts = fields.JSONField(default=list)
    # The SHA-256 of bytes 0..offset as a resumable state (see services/checksums.py);
    # null when it could not be kept.
    sha256_state = fields.TextField(null=True)
    expires_at = fields.DatetimeField(db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "resumable_uploads"

    @property
    def finished(self) -> bool:
        return self.offset >= self.length
