"""A video's master playlist as players get it, rendered once and kept in the cache.

The stored master playlist, with the video's caption tracks merged in as a
SUBTITLES group when it has any (`playlists.master_with_subtitles`). It is the same
for everyone who may watch the video (its URIs are relative: every file they name is
authorised on its own request), so it is kept once per video, tagged `video:<id>`:
a re-transcode, a deletion, and a caption track added, replaced or deleted (the
`cache.stale` of a caption row) drop it. The master of a video still PROCESSING is the
early one (services/early_playback.py), read afresh each time: it is replaced when the
video is READY.
"""

from __future__ import annotations

from typing import Any

from clipsync import cache
from clipsync.errors import NotFound
from clipsync.media import playlists
from clipsync.models import Video, VideoStatus
from clipsync.services.captions import tracks_of
from clipsync.storage import keys

MASTER = "master.m3u8"
# Where the caption playlists are, relative to the master (see api/hls.py).
CAPTIONS = "captions/"


async def master_playlist(storage: Any, video: Video) -> str:
    """The master playlist of `video` (a video the caller may watch); NotFound without one."""

    async def render() -> str:
        try:
            chunks = [chunk async for chunk in storage.read(keys.hls_key(video.id, MASTER))]
        except FileNotFoundError:
            raise NotFound("There is no such file.") from None
        text = b"".join(chunks).decode()
        tracks = await tracks_of(video.id)
        if not tracks:
            return text
        subtitles = [
            playlists.SubtitleTrack(t.language, t.label, f"{CAPTIONS}{t.language}.m3u8")
            for t in tracks
        ]
        return playlists.master_with_subtitles(text, subtitles)

    if video.status == VideoStatus.PROCESSING:
        return await render()
    return await cache.current().get_or_fill(
        f"master:{video.id}", [cache.video_tag(video.id)], render
    )
