"""How many chunks a video's last transcode used, for its JSON (`chunks`).

See services/chunked_transcoding.py: a chunked transcode keeps one row per chunk
until the video is transcoded again. The rows change only while the video is
PROCESSING, and every change of status is published (`video:<id>`), so the count of a
video in any other status is kept in the cache (`chunks:<id>`, tagged `video:<id>`):
an entry filled while a transcode was still planning is dropped when the video
leaves PROCESSING, and a PROCESSING video's count is always read afresh.
"""

from __future__ import annotations

from typing import Any

from tortoise.functions import Count

from clipsync import cache
from clipsync.models import TranscodeChunk, Video, VideoStatus


async def _counted(ids: list[str]) -> dict[str, int]:
    rows = (
        await TranscodeChunk.filter(video_id__in=ids)
        .annotate(count=Count("id"))
        .group_by("video_id")
        .values("video_id", "count")
    )
    counts = {str(row["video_id"]): row["count"] for row in rows}
    return {video_id: counts.get(video_id, 0) for video_id in ids}


async def attach(videos: list[Video]) -> None:
    """Set `chunk_count` on each video: from the cache, the others in one query for
    a whole page (two when some are being transcoded).

    The chunks of its last transcode (of the one running, while it runs); 1 for a
    video made in one process, 0 for one never transcoded. Videos that already have
    one (a page attached before each of its videos is shown) are not asked again.
    """
    videos = [video for video in videos if not hasattr(video, "chunk_count")]
    if not videos:
        return
    ids = [str(video.id) for video in videos]
    settled = [
        video_id
        for video_id, video in zip(ids, videos, strict=True)
        if video.status != VideoStatus.PROCESSING
    ]

    async def fill(keys: list[str]) -> dict[str, Any]:
        found = await _counted([key.split(":", 1)[1] for key in keys])
        return {f"chunks:{video_id}": n for video_id, n in found.items()}

    values = await cache.current().get_many_or_fill(
        [f"chunks:{video_id}" for video_id in settled],
        lambda key: [cache.video_tag(key.split(":", 1)[1])],
        fill,
    )
    counts = dict(zip(settled, values, strict=True))
    running = [video_id for video_id in ids if video_id not in counts]
    if running:  # read afresh: its rows may be changing
        counts |= await _counted(running)
    for video_id, video in zip(ids, videos, strict=True):
        made = 1 if video.hls_key else 0
        video.chunk_count = counts[video_id] or made  # type: ignore[attr-defined]


def count(video: Video) -> int:
    """`chunk_count` as `attach` set it; without it, what a one-process transcode says."""
    return getattr(video, "chunk_count", 1 if video.hls_key else 0)
