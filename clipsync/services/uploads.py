"""Uploads: receiving a file, then registering it as a video to transcode.

Two steps, so every way of getting bytes into storage (a streamed form upload
today, a presigned or resumable upload tomorrow) ends in the same `register()`:
the file is checked with ffprobe against the limits and the `validate_upload`
hook, its metadata is kept, and a transcoding job is queued. A refused file is
deleted together with its row: nothing half-accepted is left behind.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from clipsync.backends import StorageBackend
from clipsync.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    UnsupportedUpload,
    ValidationFailed,
)
from clipsync.media.errors import MediaError
from clipsync.media.probe import SourceInfo, probe
from clipsync.models import User, Video, VideoStatus
from clipsync.plugins import PluginHost
from clipsync.settings import Settings
from clipsync.storage import keys

log = logging.getLogger(__name__)

MAX_TITLE = 200
MAX_DESCRIPTION = 5000


def too_large(settings: Settings) -> PayloadTooLarge:
    limit = settings.uploads.max_size
    return PayloadTooLarge(f"Videos can be at most {limit / 1024**3:.1f} GiB ({limit} bytes).")


@dataclass
class Received:
    size: int = 0
    checksum: str = ""


class UploadService:
    def __init__(
        self,
        settings: Settings,
        storage: StorageBackend,
        plugins: PluginHost,
        enqueue_transcode: Callable[[uuid.UUID], Any],
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.plugins = plugins
        self.enqueue_transcode = enqueue_transcode

    async def receive(
        self, owner: User, filename: str, chunks: AsyncIterator[bytes], content_type: str | None
    ) -> Video:
        """Store an upload as it streams in; the size limit holds at every chunk."""
        video_id = uuid.uuid4()
        key = keys.source_key(video_id, filename)
        received = Received()
        digest = hashlib.sha256()
        limit = self.settings.uploads.max_size

        async def counted() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                received.size += len(chunk)
                if received.size > limit:
                    raise too_large(self.settings)
                digest.update(chunk)
                yield chunk

        await self.storage.put_stream(key, counted(), content_type)
        if received.size == 0:
            await self.storage.delete_prefix(keys.video_prefix(video_id))
            raise UnsupportedUpload("The file is empty.")
        return await Video.create(
            id=video_id,
            owner=owner,
            category=owner.category,
            status=VideoStatus.UPLOADED,
            source_key=key,
            size=received.size,
            checksum=digest.hexdigest(),
            original_filename=filename[:255],
        )

    async def register(self, owner: User, video_id: Any, title: Any, description: Any) -> Video:
        """Check an uploaded file, keep its metadata and queue its transcoding."""
        title, description = self._details(title, description)
        video = await self._own_upload(owner, video_id)
        info = await self._check(video)
        video.title = title
        video.description = description
        video.category = owner.category
        video.duration = info.duration
        video.width = info.width
        video.height = info.height
        video.video_codec = info.video_codec
        video.audio_codec = info.audio_codec
        video.bitrate = info.bitrate
        video.status = VideoStatus.PROCESSING
        video.progress = 0
        video.error = None
        await video.save()
        await self.plugins.notify("video_uploaded", video=video)
        await self.plugins.notify(
            "video_status_changed",
            video=video,
            old=str(VideoStatus.UPLOADED),
            new=str(video.status),
        )
        self.enqueue_transcode(video.id)
        return video

    @staticmethod
    def _details(title: Any, description: Any) -> tuple[str, str]:
        if not isinstance(title, str) or not title.strip():
            raise ValidationFailed("Give the video a title.", field="title")
        if len(title.strip()) > MAX_TITLE:
            raise ValidationFailed(f"Titles can be at most {MAX_TITLE} characters.", field="title")
        description = description or ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise ValidationFailed(
                f"The description can be at most {MAX_DESCRIPTION} characters.", field="description"
            )
        return title.strip(), description.strip()

    @staticmethod
    async def _own_upload(owner: User, video_id: Any) -> Video:
        try:
            key = uuid.UUID(str(video_id))
        except ValueError:
            raise NotFound("There is no such upload.") from None
        # Someone else's upload answers like a missing one: ids are not to be probed.
        video = await Video.get_or_none(id=key, owner_id=owner.id)
        if video is None:
            raise NotFound("There is no such upload.")
        if video.status != VideoStatus.UPLOADED:
            raise Conflict(f"This upload is already registered (status {video.status}).")
        return video

    async def _check(self, video: Video) -> SourceInfo:
        """Probe the stored file; refuse it (deleting its bytes and row) when unusable."""
        assert video.source_key is not None
        try:
            async with self.storage.open_local(video.source_key) as path:
                info = await probe(path, self.settings.uploads.ffprobe)
        except MediaError as exc:
            await self.discard(video)
            raise UnsupportedUpload(exc.message) from None
        limit = self.settings.uploads.max_duration_seconds
        refusal: str | None = None
        if info.duration > limit:
            refusal = (
                f"This video is {info.duration / 60:.0f} minutes long; "
                f"the limit is {limit / 60:.0f} minutes."
            )
        else:
            refusal = await self.plugins.decide("validate_upload", video=video, source=info)
        if refusal:
            await self.discard(video)
            raise UnsupportedUpload(str(refusal))
        return info

    async def discard(self, video: Video) -> None:
        """Delete an upload that will not become a video: its bytes and its row."""
        await self.storage.delete_prefix(keys.video_prefix(video.id))
        await video.delete()
        log.info("discarded upload %s of user %s", video.id, video.owner_id)
