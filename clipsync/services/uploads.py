"""Uploads: receiving a file, then registering it as a video to transcode.

Two steps, so every way of getting bytes into storage (a streamed form upload
today, a presigned or resumable upload tomorrow) ends in the same `register()`:
the file is checked with ffprobe against the limits and the `validate_upload`
hook, its metadata is kept, and a transcoding job is queued. A refused file is
deleted together with its row: nothing half-accepted is left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from clipsync import events, metrics
from clipsync.backends import PresigningStorage, StorageBackend
from clipsync.errors import (
    Conflict,
    DirectUploadUnavailable,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    QueueUnavailable,
    UnsupportedUpload,
    UploadNotArrived,
    ValidationFailed,
)
from clipsync.media.errors import MediaError
from clipsync.media.probe import SourceInfo, probe, sha256_file
from clipsync.models import User, Video, VideoStatus
from clipsync.plugins import PluginHost
from clipsync.services import quotas
from clipsync.services import tags as video_tags
from clipsync.services.memberships import categories_of
from clipsync.services.transcoding import queue_transcode
from clipsync.settings import Settings
from clipsync.sizes import format_size
from clipsync.storage import keys
from clipsync.text_rules import clean_field

log = logging.getLogger(__name__)

MAX_TITLE = 200
MAX_DESCRIPTION = 5000
MAX_FILENAME = 255
# A video MIME type as it may appear in a Content-Type header (RFC 6838 names).
VIDEO_TYPE = re.compile(r"^video/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")


def too_large(settings: Settings) -> PayloadTooLarge:
    limit = settings.uploads.max_size
    return PayloadTooLarge(f"Videos can be at most {format_size(limit)} ({limit} bytes).")


async def record_upload(
    owner: User,
    video_id: uuid.UUID,
    key: str,
    filename: str,
    size: int,
    checksum: str | None,
) -> Video:
    """The row of an upload stored under `key`: UPLOADED, waiting for `register()`.

    Every way in makes it: the streamed form upload and the resumable upload once
    the file has wholly arrived, a direct upload when its URL is handed out (with
    the declared size and no checksum yet).
    """
    return await Video.create(
        id=video_id,
        owner=owner,
        category=owner.category,
        status=VideoStatus.UPLOADED,
        source_key=key,
        size=size,
        checksum=checksum,
        original_filename=filename[:MAX_FILENAME],
    )


@dataclass
class Received:
    size: int = 0
    checksum: str = ""


@dataclass(frozen=True)
class DirectUpload:
    """Where a client PUTs its file (`upload_url`), and the key it registers (`file_key`)."""

    video: Video
    upload_url: str
    file_key: str


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
        allowed = await quotas.ensure_allowed(self.settings, owner, 0)
        received = await self.store_stream(
            key, chunks, content_type, allowed, cleanup=keys.video_prefix(video_id)
        )
        return await record_upload(owner, video_id, key, filename, received.size, received.checksum)

    async def store_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str | None,
        allowed: quotas.Usage,
        *,
        cleanup: str,
        counted_before: int = 0,
    ) -> Received:
        """Store a streamed file under `key`, within the size limit and the quotas at every
        chunk (`counted_before`: bytes of it the quotas do not count, a source it replaces).

        Whatever goes wrong, `cleanup` (a prefix or `key` itself) is deleted: the store
        drops its partial file, and local storage the folder it made for it.
        """
        received = Received()
        digest = hashlib.sha256()
        limit = self.settings.uploads.max_size

        async def counted() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                received.size += len(chunk)
                if received.size > limit:
                    raise too_large(self.settings)
                # A body sent without a length is held to the quotas here.
                quotas.check_size(allowed, max(0, received.size - counted_before))
                digest.update(chunk)
                yield chunk

        try:
            await self.storage.put_stream(key, counted(), content_type)
        except BaseException:
            metrics.upload_failed("receiving")
            try:
                await asyncio.shield(self.storage.delete_prefix(cleanup))
            except Exception:  # the upload's own error is the one to report
                log.exception("could not clean up the refused upload %s", cleanup)
            raise
        if received.size == 0:
            await self.storage.delete_prefix(cleanup)
            raise UnsupportedUpload("The file is empty.")
        received.checksum = digest.hexdigest()
        return received

    async def register(
        self,
        owner: User,
        video_id: Any,
        title: Any,
        description: Any,
        tags: Any = None,
        category: Any = None,
    ) -> Video:
        """Check an uploaded file, keep its metadata and queue its transcoding.

        `category`: the one the video starts in, any the owner belongs to (their
        primary one when not given)."""
        title, description = self._details(title, description)
        labels = video_tags.parse(tags)
        category = self._category(owner, category)
        video = await self._own_upload(owner, video_id)
        await video_tags.replace(video, labels)  # before plugins and events hear of it
        return await self._accept(owner, video, title, description, category)

    # -- direct uploads: the client PUTs the file straight to the store ------------------

    async def presign(
        self, owner: User, filename: Any, size: Any, content_type: Any
    ) -> DirectUpload:
        """A presigned PUT URL for one upload, and the row that remembers whose it is.

        The row (UPLOADED, `size` as declared, no checksum yet) is what makes the key
        this user's: `register_key` only accepts keys with a row of theirs, and the
        reaper deletes rows (and whatever was PUT) never registered within
        `[uploads] abandoned_after_hours`.
        """
        if not isinstance(self.storage, PresigningStorage):
            raise DirectUploadUnavailable()
        filename = self._filename(filename)
        size = self._declared_size(size)
        await quotas.ensure_allowed(self.settings, owner, size)
        if not isinstance(content_type, str) or not VIDEO_TYPE.match(content_type):
            raise ValidationFailed(
                "contentType must be a video type, such as video/mp4.", field="contentType"
            )
        video_id = uuid.uuid4()
        key = keys.source_key(video_id, filename)
        url = self.storage.presigned_put(
            key, self.settings.storage.upload_url_seconds, content_type
        )
        video = await record_upload(owner, video_id, key, filename, size, checksum=None)
        log.info("direct upload %s of user %s: %d bytes declared", video_id, owner.id, size)
        return DirectUpload(video, url, key)

    async def register_key(
        self,
        owner: User,
        file_key: Any,
        title: Any,
        description: Any,
        tags: Any = None,
        category: Any = None,
    ) -> Video:
        """Register a direct upload by the key `presign` gave this user."""
        title, description = self._details(title, description)
        labels = video_tags.parse(tags)
        category = self._category(owner, category)
        video = await self._own_key(owner, file_key)
        await video_tags.replace(video, labels)
        return await self._accept(owner, video, title, description, category)

    @staticmethod
    def _filename(filename: Any) -> str:
        if not isinstance(filename, str) or not filename.strip():
            raise ValidationFailed("Give the file's name.", field="filename")
        if len(filename) > MAX_FILENAME:
            raise ValidationFailed(
                f"File names can be at most {MAX_FILENAME} characters.", field="filename"
            )
        if not filename.lower().endswith(keys.SOURCE_EXTENSIONS):
            accepted = ", ".join(keys.SOURCE_EXTENSIONS)
            raise UnsupportedUpload(f"Only video files can be uploaded ({accepted}).")
        return filename.strip()

    def _declared_size(self, size: Any) -> int:
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValidationFailed("size must be the file's size in bytes.", field="size")
        if size > self.settings.uploads.max_size:
            raise too_large(self.settings)
        return size

    @staticmethod
    async def _own_key(owner: User, file_key: Any) -> Video:
        try:
            key = keys.check_key(file_key) if isinstance(file_key, str) else None
        except ValueError:
            key = None
        return await UploadService._pending(owner, {"source_key": key} if key else None)

    async def _arrived(self, video: Video) -> None:
        """The stored file is there, within the limit and as large as declared.

        A presigned PUT's signature does not cover the body's length, so what was
        declared is checked against what really arrived before anything reads it.
        """
        assert video.source_key is not None
        size = await self.storage.size(video.source_key)
        if size is None:
            raise UploadNotArrived()
        problem = ""
        if size == 0:
            problem = "The file is empty."
        elif size > self.settings.uploads.max_size:
            problem = too_large(self.settings).message
        elif video.size is not None and size != video.size:
            problem = (
                f"The stored file has {size} bytes, not the {video.size} declared: "
                "the upload was cut short or replaced. Please upload it again."
            )
        if problem:
            await self.discard(video)
            raise UnsupportedUpload(problem)
        video.size = size

    # -- every way in ends here -------------------------------------------------------

    async def _accept(
        self, owner: User, video: Video, title: str, description: str, category: str
    ) -> Video:
        await self._arrived(video)
        info = await self._check(video)
        video.title = title
        video.description = description
        video.category = category
        video.duration = info.duration
        video.width = info.width
        video.height = info.height
        video.video_codec = info.video_codec
        video.audio_codec = info.audio_codec
        video.bitrate = info.bitrate
        video.status = VideoStatus.PROCESSING
        video.progress = 0
        video.error = None
        # Out of UPLOADED in one statement: two registrations of one upload at once
        # queue it once.
        if not await Video.filter(id=video.id, status=VideoStatus.UPLOADED).update(
            status=VideoStatus.PROCESSING
        ):
            raise Conflict("This upload is already registered.")
        await video.save()
        try:
            await queue_transcode(self.enqueue_transcode, video.id)
        except QueueUnavailable:
            # Nothing was queued: the upload waits for its registration again, so it
            # can be registered once the queue is back. Should this write fail too,
            # the reaper queues the video (PROCESSING, no job) when the queue answers.
            await Video.filter(
                id=video.id, status=VideoStatus.PROCESSING, worker_lease__isnull=True
            ).update(status=VideoStatus.UPLOADED)
            raise
        metrics.upload_accepted(video.size)
        # Plugins hear of the video once it is queued, never of one that was not.
        await self.plugins.notify("video_uploaded", video=video)
        await events.status_changed(
            self.plugins, video, VideoStatus.UPLOADED, name="video.uploaded"
        )
        return video

    def _category(self, owner: User, value: Any) -> str:
        """The category a new video starts in. Checked before the upload is touched, so
        a refused one leaves the upload to be registered again."""
        if value is None or value == "":
            return owner.category
        mine = categories_of(owner)
        if not isinstance(value, str):
            raise ValidationFailed(
                "category is the name of a category you belong to.", field="category"
            )
        if value not in mine:
            labels = ", ".join(self._label(name) for name in mine)
            raise Forbidden(
                f"You cannot upload to {value!r}: you may upload only to the categories "
                f"you belong to ({labels})."
            )
        return value

    def _label(self, name: str) -> str:
        found = self.settings.category(name)
        return found.label if found is not None else name

    @staticmethod
    def _details(title: Any, description: Any) -> tuple[str, str]:
        if not isinstance(title, str) or not title.strip():
            raise ValidationFailed("Give the video a title.", field="title")
        title = clean_field(title.strip(), field="title", what="Titles")
        if len(title) > MAX_TITLE:
            raise ValidationFailed(f"Titles can be at most {MAX_TITLE} characters.", field="title")
        description = description or ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise ValidationFailed(
                f"The description can be at most {MAX_DESCRIPTION} characters.", field="description"
            )
        description = clean_field(
            description.strip(), field="description", what="Descriptions", multiline=True
        )
        return title, description

    @staticmethod
    async def _own_upload(owner: User, video_id: Any) -> Video:
        try:
            where = {"id": uuid.UUID(str(video_id))}
        except ValueError:
            where = None
        return await UploadService._pending(owner, where)

    @staticmethod
    async def _pending(owner: User, where: dict[str, Any] | None) -> Video:
        """The owner's upload matching `where` that is not registered yet.

        Someone else's upload answers like a missing one: ids and keys are not to be probed.
        """
        video = await Video.get_or_none(**where, owner_id=owner.id) if where else None
        if video is None:
            raise NotFound("There is no such upload.")
        if video.status != VideoStatus.UPLOADED:
            raise Conflict(f"This upload is already registered (status {video.status}).")
        return video

    async def _check(self, video: Video) -> SourceInfo:
        """Probe the stored file; refuse it (deleting its bytes and row) when unusable."""
        assert video.source_key is not None
        try:
            return await self.inspect(video, video.source_key)
        except UnsupportedUpload:
            await self.discard(video)
            raise

    async def inspect(self, video: Video, key: str) -> SourceInfo:
        """Probe the file stored under `key` for `video`, within the duration limit and
        past the `validate_upload` hooks; `UnsupportedUpload` says why not. Deletes
        nothing: the caller decides what a refusal removes."""
        limit = self.settings.uploads.max_duration_seconds
        refusal: str | None = None
        try:
            async with self.storage.open_local(key) as path:
                info = await probe(path, self.settings.uploads.ffprobe)
                if not video.checksum:
                    # A direct upload never passed through ClipSync: hash the local
                    # copy ffprobe needed anyway (object storage downloads it whole).
                    video.checksum = await sha256_file(path)
                if info.duration > limit:
                    refusal = (
                        f"This video is {info.duration / 60:.0f} minutes long; "
                        f"the limit is {limit / 60:.0f} minutes."
                    )
                else:
                    # While the local file exists: a plugin may read it (a virus scan).
                    refusal = await self.plugins.decide(
                        "validate_upload", video=video, source=info, path=path, plugins=self.plugins
                    )
        except MediaError as exc:
            raise UnsupportedUpload(exc.message) from None
        if refusal:
            raise UnsupportedUpload(str(refusal))
        return info

    async def discard(self, video: Video) -> None:
        """Delete an upload that will not become a video: its bytes and its row."""
        metrics.upload_failed("checking")
        await self.storage.delete_prefix(keys.video_prefix(video.id))
        await video.delete()
        log.info("discarded upload %s of user %s", video.id, video.owner_id)
