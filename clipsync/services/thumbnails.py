"""Thumbnails: which picture stands for a video (the player's poster, the card's image).

Every transcode makes the automatic poster (`hls/poster.jpg`) and, in the same ffmpeg
run, `[transcoder] thumbnail_candidates` frames spread over the video
(`hls/candidates/<n>.jpg`, see `media/commands.candidate_times`). The uploader, or a
moderator of the video, makes one of them the poster, or uploads an image: it is
checked and re-encoded by `media/images.py` (a real JPEG, PNG, WebP or GIF, at most
`MAX_POSTER_BYTES` and `images.MAX_PIXELS`, turned upright, cropped to the size of the
automatic poster, EXIF and the rest left behind) and stored as
`hls/posters/<version>.jpg`, a new key each time so its URL changes.

`Video.poster_key` says which file is the poster; all three live in the HLS tree, so
`/hls/<id>/…` serves them with the same authorisation as the video. A new transcode
(`services/transcoding.py`) keeps an uploaded poster and a picked candidate (the new
run's frame of that number); anything else falls back to the automatic poster.

The thumbnail changes only while the video is READY or APPROVED: while it transcodes,
its candidates are being replaced.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from clipsync import events
from clipsync.errors import Conflict, PayloadTooLarge, ValidationFailed
from clipsync.media import images
from clipsync.media.commands import even_size
from clipsync.models import User, Video, VideoStatus
from clipsync.services.library import LibraryService, library_for
from clipsync.services.moderation import record
from clipsync.sizes import format_size
from clipsync.storage import keys

log = logging.getLogger(__name__)

MAX_POSTER_BYTES = 10 * 1024 * 1024
# As wide as the automatic poster at most (`media/pipeline.transcode`'s poster_width).
POSTER_WIDTH = 1280
POSTER_TYPE = "image/jpeg"
CHANGEABLE = (VideoStatus.READY, VideoStatus.APPROVED)
_CANDIDATE = re.compile(r"^([1-9][0-9]{0,3})\.jpg$")


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"Thumbnail images can be at most {format_size(MAX_POSTER_BYTES)}.")


def poster_url(video: Video) -> str | None:
    """Where `/hls/` serves the video's poster, whichever file it is; None without one."""
    if not video.poster_key:
        return None
    return f"/hls/{video.id}/{keys.hls_path(video.id, video.poster_key)}"


def thumbnails_json(video: Video, numbers: list[int]) -> dict[str, Any]:
    """The API's answer about a video's thumbnail: its candidates, its poster."""
    candidates = []
    for number in numbers:
        key = keys.candidate_key(video.id, number)
        candidates.append(
            {
                "number": number,
                "url": f"/hls/{video.id}/{keys.hls_path(video.id, key)}",
                "chosen": video.poster_key == key,
            }
        )
    uploaded = keys.uploaded_posters_prefix(video.id) + "/"
    return {
        "candidates": candidates,
        "poster": poster_url(video),
        "uploaded": bool(video.poster_key and video.poster_key.startswith(uploaded)),
        "changeable": video.status in CHANGEABLE,
    }


class ThumbnailService:
    def __init__(self, library: LibraryService) -> None:
        self.library = library
        self.storage = library.storage

    async def candidates(self, user: User, video_id: Any) -> tuple[Video, list[int]]:
        """The video and the numbers of its candidates, for its uploader and moderators."""
        video = await self.library.manageable(user, video_id)
        return video, await self._numbers(video)

    async def choose(self, user: User, video_id: Any, number: Any) -> Video:
        """Make candidate `number` (from 1) the poster."""
        video = await self.library.manageable(user, video_id)
        _expect_changeable(video)
        numbers = await self._numbers(video)
        if isinstance(number, bool) or not isinstance(number, int) or number not in numbers:
            choices = f"1 to {len(numbers)}" if numbers else "none: upload an image instead"
            raise ValidationFailed(
                f"candidate is the number of one of the video's frames ({choices}).",
                field="candidate",
            )
        return await self._set_poster(user, video, keys.candidate_key(video.id, number), number)

    async def upload(self, user: User, video_id: Any, chunks: AsyncIterator[bytes]) -> Video:
        """Make an uploaded image (checked and re-encoded) the poster."""
        video = await self.library.manageable(user, video_id)
        _expect_changeable(video)
        data = await images.read_bounded(chunks, MAX_POSTER_BYTES, too_large)
        if not data:
            raise ValidationFailed("Choose an image file.", field="file")
        size = even_size(video.width or 1280, video.height or 720, POSTER_WIDTH)
        image = await asyncio.to_thread(images.render, data, size, "JPEG", "thumbnails")
        key = keys.uploaded_poster_key(video.id, secrets.token_hex(8))

        async def one_chunk() -> AsyncIterator[bytes]:
            yield image

        await self.storage.put_stream(key, one_chunk(), POSTER_TYPE)
        try:
            return await self._set_poster(user, video, key, None)
        except BaseException:
            await asyncio.shield(self._delete_quietly(key))
            raise

    async def _numbers(self, video: Video) -> list[int]:
        folder = keys.candidates_prefix(video.id)
        names = [key.rsplit("/", 1)[-1] for key in await self.storage.list(folder)]
        return sorted(int(m.group(1)) for m in map(_CANDIDATE.match, names) if m)

    async def _set_poster(self, actor: User, video: Video, key: str, number: int | None) -> Video:
        old = video.poster_key
        unchanged = {"poster_key": old} if old else {"poster_key__isnull": True}
        # Only if nothing changed meanwhile: not a transcode begun, not another choice.
        if not await Video.filter(id=video.id, status__in=CHANGEABLE, **unchanged).update(
            poster_key=key, updated_at=datetime.now(UTC)
        ):
            raise Conflict("This video changed meanwhile: reload and try again.")
        video.poster_key = key
        if old and old != key and old.startswith(keys.uploaded_posters_prefix(video.id) + "/"):
            await self._delete_quietly(old)
        await record(
            actor,
            "thumbnail",
            video=video,
            candidate=number,
            uploaded=number is None,
            byOwner=actor.id == video.owner_id,
        )
        await events.publish_video("video.edited", video, changed=["thumbnail"])
        return video

    async def _delete_quietly(self, key: str) -> None:
        # The row no longer names it: a file left behind costs space, not correctness.
        try:
            await self.storage.delete_prefix(key)
        except Exception:
            log.exception("could not delete the replaced poster %s", key)


def _expect_changeable(video: Video) -> None:
    if video.status not in CHANGEABLE:
        raise Conflict(
            f"The thumbnail can be changed once the video is converted; it is {video.status}.",
            details={"status": str(video.status)},
        )


def thumbnails_for(ctx: Any) -> ThumbnailService:
    """The service for an app's context (`app.ctx`)."""
    return ThumbnailService(library_for(ctx))
