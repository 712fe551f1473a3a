"""Playlists that grow while ffmpeg runs: what may be offered before a transcode ends.

One ffmpeg process writes every rendition at once, so a video can be watched as soon
as each rendition has its first segment. ffmpeg's HLS muxer writes a `vod` playlist
only when it ends; an `event` one it rewrites after every segment it finishes, listing
only finished segments, and with the `temp_file` flag it replaces it in one rename, so
a reader never sees half of it. `growing_playlists` turns an HLS command into that;
the segments and init files it writes are byte for byte those of the `vod` run (only
the playlist's `#EXT-X-PLAYLIST-TYPE` line differs: `as_vod` puts it back).

While it runs, `services/early_playback.py` reads each rendition's playlist
(`finished_segments`), stores what is new, and stores our own EVENT playlist
(`event_playlist`: no `#EXT-X-ENDLIST`, so players reload it) and, once every rendition
has a segment, a master whose bandwidths are the ladder's (`early_master`); the job's
end replaces both with the measured VOD ones.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from clipsync.media.ladder import Variant
from clipsync.media.playlists import (
    AUDIO_CODEC,
    AudioOutput,
    RenditionOutput,
    Segment,
    master_playlist,
    parse_media_playlist,
    read_video_track,
)

AUDIO_FOLDER = "audio"
PLAYLIST = "index.m3u8"
INIT = "init.mp4"
_PLAYLIST_TYPE = re.compile(r"^#EXT-X-PLAYLIST-TYPE:EVENT$", re.MULTILINE)


@dataclass(frozen=True)
class Encoding:
    """What one ffmpeg run is writing, for whoever follows it while it runs.

    `out_dir/<folder>/index.m3u8` per rendition (`folders`: the video renditions, then
    `audio` when there is sound); bitrates in bit/s, from the ladder.
    """

    out_dir: Path
    variants: list[Variant]
    has_audio: bool
    frame_rate: float
    segment_seconds: int
    audio_bitrate: int

    @property
    def folders(self) -> list[str]:
        return [v.name for v in self.variants] + ([AUDIO_FOLDER] if self.has_audio else [])


# Runs beside ffmpeg (`pipeline.transcode`, `chunk_pipeline.transcode_chunk`); the event
# is set once ffmpeg has exited, and the follower then returns soon, leaving the files
# to the pipeline, with the paths (in `out_dir`) of those it delivered for good.
Follow = Callable[[Encoding, asyncio.Event], Awaitable[frozenset[str]]]


def growing_playlists(command: list[str]) -> list[str]:
    """An HLS ffmpeg command (`commands.hls_command`, `chunk_commands.chunk_command`)
    that rewrites its playlists after each segment (`event`), in one rename each."""
    out = list(command)
    try:
        kind = out.index("-hls_playlist_type")
        flags = out.index("-hls_flags")
    except ValueError:
        raise ValueError("not an HLS command: no -hls_playlist_type or -hls_flags") from None
    out[kind + 1] = "event"
    if "temp_file" not in out[flags + 1].split("+"):
        out[flags + 1] += "+temp_file"
    return out


def as_vod(text: str) -> str:
    """A playlist ffmpeg wrote as `event`, as its `vod` run writes it."""
    return _PLAYLIST_TYPE.sub("#EXT-X-PLAYLIST-TYPE:VOD", text)


def finished_segments(text: str | None) -> tuple[str | None, list[Segment]]:
    """The init URI and the segments a playlist ffmpeg is still writing lists.

    ffmpeg lists a segment only once it has closed its file, after the init file; a
    playlist not there yet, or not one (None, empty), lists none.
    """
    if not text:
        return None, []
    try:
        playlist = parse_media_playlist(text)
    except ValueError:
        return None, []
    if playlist.init_uri is None:
        return None, []
    return playlist.init_uri, list(playlist.segments)


def event_playlist(segments: list[Segment], segment_seconds: int, init_uri: str = INIT) -> str:
    """An EVENT media playlist of `segments`, with no end: players reload it to see more.

    The target duration is set once, from the segment length asked for (or a longer
    segment already listed), as the EVENT type wants it never to change.
    """
    longest = max((s.duration for s in segments), default=0.0)
    target = max(int(segment_seconds), math.ceil(longest))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:EVENT",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{init_uri}"',
    ]
    for segment in segments:
        lines += [f"#EXTINF:{segment.duration:.6f},", segment.uri]
    return "\n".join(lines) + "\n"


def early_master(encoding: Encoding, inits: dict[str, bytes]) -> str:
    """The master playlist offered while the video transcodes.

    Sizes and codecs come from each rendition's init segment (`inits`, by folder), as
    in the final master; bandwidths are the ladder's (peak: its maxrate), since the
    segments are not all there to measure.
    """
    renditions = []
    for variant in encoding.variants:
        track = read_video_track(inits[variant.name])
        renditions.append(
            RenditionOutput(
                name=variant.name,
                width=track.width,
                height=track.height,
                bandwidth=variant.maxrate,
                average_bandwidth=variant.video_bitrate,
                codecs=track.codecs,
                frame_rate=encoding.frame_rate,
                playlist=f"{variant.name}/{PLAYLIST}",
            )
        )
    audio = None
    if encoding.has_audio:
        rate = encoding.audio_bitrate
        audio = AudioOutput(AUDIO_FOLDER, rate, rate, AUDIO_CODEC, f"{AUDIO_FOLDER}/{PLAYLIST}")
    return master_playlist(renditions, audio)
