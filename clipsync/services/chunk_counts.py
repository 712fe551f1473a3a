"""How many chunks a video's last transcode used, for its JSON (`chunks`).

See services/chunked_transcoding.py: a chunked transcode keeps one row per chunk
until the video is transcoded again.
"""

from __future__ import annotations

from tortoise.functions import Count

from clipsync.models import TranscodeChunk, Video


async def attach(videos: list[Video]) -> None:
    """Set `chunk_count` on each video, with one query for a whole page.

    The chunks of its last transcode (of the one running, while it runs); 1 for a
    video made in one process, 0 for one never transcoded. Videos that already have
    one (a page attached before each of its videos is shown) are not asked again.
    """
    videos = [video for video in videos if not hasattr(video, "chunk_count")]
    if not videos:
        return
    rows = (
        await TranscodeChunk.filter(video_id__in=[video.id for video in videos])
        .annotate(count=Count("id"))
        .group_by("video_id")
        .values("video_id", "count")
    )
    counts = {str(row["video_id"]): row["count"] for row in rows}
    for video in videos:
        made = 1 if video.hls_key else 0
        video.chunk_count = counts.get(str(video.id), made)  # type: ignore[attr-defined]


def count(video: Video) -> int:
    """`chunk_count` as `attach` set it; without it, what a one-process transcode says."""
    return getattr(video, "chunk_count", 1 if video.hls_key else 0)
