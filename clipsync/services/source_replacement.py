"""A new source file for an existing video: same id, views, comments, likes, captions
and thumbnail choice; transcoded again.

The uploader, or a moderator of the video, sends the file like a new upload
(`POST /api/videos/<id>/source`, a streamed multipart form) and it meets the same
rules: the size limit, the disk reserve and the owner's storage quota before a byte is
stored and at every chunk (the source it replaces does not count twice), then ffprobe,
the duration limit and the `validate_upload` hooks (a virus scan) on the stored file.
It is stored beside the current source under a key of its own
(`keys.replacement_source_key`): a refused file is deleted and the video is as it was.

Once accepted, the video goes through the transcode as a new upload does, and like a
re-transcode by a moderator (`services/moderation.py`):

- it is PROCESSING until its new renditions are stored: not playable, hidden from
  viewers, as any video being converted;
- then APPROVED again when it was approved (with `[moderation] reapprove_on_edit`: READY,
  and a moderator approves the new file first); any other video becomes READY;
- the old source file is deleted at once (the row names the new one); the old HLS
  tree stays stored until the job stores the new one in its place
  (`transcoding._store`); a transcode that fails leaves the video FAILED with the
  reason, as for an upload: its owner may send another file, a moderator may try again.

Only a video that is converted (READY, APPROVED) or FAILED takes a new file: one being
converted is refused (409), as is a rejected one (the decision stands).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from clipsync import events
from clipsync.errors import Conflict, QueueUnavailable
from clipsync.models import User, Video, VideoStatus
from clipsync.services import quotas
from clipsync.services.library import LibraryService, library_for
from clipsync.services.moderation import record
from clipsync.services.transcoding import queue_transcode
from clipsync.services.uploads import MAX_FILENAME, UploadService
from clipsync.storage import keys

log = logging.getLogger(__name__)

REPLACEABLE = (VideoStatus.READY, VideoStatus.APPROVED, VideoStatus.FAILED)


class SourceReplacement:
    def __init__(self, library: LibraryService, uploads: UploadService) -> None:
        self.library = library
        self.uploads = uploads
        self.settings = uploads.settings
        self.storage = uploads.storage

    async def prepare(self, actor: User, video_id: Any, declared: int) -> Video:
        """The video, if `actor` may give it a new file of `declared` bytes (0: unknown)
        now; checked before the upload's body is read."""
        video = await self.library.manageable(actor, video_id)
        if video.status not in REPLACEABLE:
            raise Conflict(
                f"A new file can be sent once the video is converted or has failed; "
                f"it is {video.status}.",
                details={"status": str(video.status)},
            )
        await self._allowed(video, declared)
        return video

    async def replace(
        self,
        actor: User,
        video: Video,
        filename: str,
        chunks: AsyncIterator[bytes],
        content_type: str | None,
    ) -> Video:
        """Store and check the new file, point the video at it, queue its transcode."""
        key = keys.replacement_source_key(video.id, filename, secrets.token_hex(6))
        allowed = await self._allowed(video, 0)
        received = await self.uploads.store_stream(
            key, chunks, content_type, allowed, cleanup=key, counted_before=video.size or 0
        )
        try:
            info = await self.uploads.inspect(video, key)
        except BaseException:
            await self.storage.delete_prefix(key)
            raise
        old_status, old_key = video.status, video.source_key
        back_to_moderation = (
            old_status == VideoStatus.APPROVED and self.settings.moderation.reapprove_on_edit
        )
        fields: dict[str, Any] = {
            "source_key": key,
            "original_filename": filename[:MAX_FILENAME],
            "size": received.size,
            "checksum": received.checksum,
            "duration": info.duration,
            "width": info.width,
            "height": info.height,
            "video_codec": info.video_codec,
            "audio_codec": info.audio_codec,
            "bitrate": info.bitrate,
            "status": VideoStatus.PROCESSING,
            "progress": 0,
            "attempts": 0,
            "error": None,
            "worker_lease": None,
            "updated_at": datetime.now(UTC),
        }
        if old_status != VideoStatus.APPROVED or back_to_moderation:
            # Moderated afresh once converted (services/transcoding.py: only a video
            # approved and not sent back since returns to APPROVED).
            fields |= {"moderated_at": None, "moderation_reason": None}
        unchanged = {"source_key": old_key} if old_key else {"source_key__isnull": True}
        # Only if nothing happened meanwhile (another file, a decision, a deletion).
        if not await Video.filter(id=video.id, status=old_status, **unchanged).update(**fields):
            await self.storage.delete_prefix(key)
            raise Conflict("This video changed meanwhile: reload and try again.")
        await video.refresh_from_db()
        if old_key and old_key != key:
            try:
                await self.storage.delete_prefix(old_key)
            except Exception:  # the row names the new file: the old one only costs space
                log.exception("could not delete the replaced source %s", old_key)
        await record(
            actor,
            "replace_source",
            video=video,
            old=str(old_status),
            filename=video.original_filename,
            size=received.size,
            backToModeration=back_to_moderation,
        )
        await events.status_changed(self.library.plugins, video, old_status)
        try:
            await queue_transcode(self.uploads.enqueue_transcode, video.id)
        except QueueUnavailable:
            # The file is in place: the reaper queues a PROCESSING video that has no
            # job as soon as the queue answers again.
            log.warning("video %s is queued for transcoding once the queue is back", video.id)
        return video

    async def _allowed(self, video: Video, size: int) -> quotas.Usage:
        """The owner's usage, refused when `size` more bytes (less the replaced source)
        would not fit their quotas."""
        owner = await User.get(id=video.owner_id)
        used = await quotas.usage(self.settings, owner)
        quotas.check_size(used, max(0, size - (video.size or 0)))
        return used


def source_replacement_for(ctx: Any) -> SourceReplacement:
    """The service for an app's context (`app.ctx`)."""
    return SourceReplacement(library_for(ctx), ctx.uploads)
