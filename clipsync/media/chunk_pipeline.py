"""`transcode_chunk()`: one chunk of a source in, its part of the HLS tree out.

What the folder holds afterwards, by path in the video's HLS tree (`ChunkResult.files`):

    240p/seg_00030.m4s…   the chunk's segments of each rendition, on the whole
                          video's timeline (`chunks.shift_fragment`)
    240p/init.mp4         chunk 0 only: every chunk's init is the same (checked by
                          the join from `RenditionPart.init`)
    audio/init.mp4, audio/seg_…   chunk 0 only: the whole file's audio
    poster.jpg            the chunk that covers the poster's frame
    candidates/<n>.jpg    the thumbnail candidates whose frames the chunk covers
    parts/first.jpg       chunk 0's first frame: the poster if the video stream ends
                          before the poster's frame
    parts/thumbnails/<i>.jpg   the sprite's tiles the chunk covers; the join puts them
                          on one sheet

The playlists are written by the join from `ChunkResult.outputs`. With a follower
(`follow`: chunk 0's, services/early_playback.py), ffmpeg rewrites the chunk's playlists
as it goes (`progressive.growing_playlists`) and the follower runs beside it; what the
chunk makes is the same. Chunk 0's segments need no shift (it starts at 0, numbered
from 0), so what the follower stores early is what the chunk stores at its end.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from clipsync.media.chunk_commands import chunk_command
from clipsync.media.chunks import (
    ChunkOutputs,
    ChunkSpan,
    Picks,
    RenditionPart,
    SegmentRecord,
    init_fingerprint,
    shift_fragment,
    start_ticks,
    track_timescale,
)
from clipsync.media.commands import SpriteLayout, output_frame_rate
from clipsync.media.encoders import EncoderProfile
from clipsync.media.errors import TranscodeFailed
from clipsync.media.ladder import Variant
from clipsync.media.pipeline import run_beside
from clipsync.media.playlists import parse_media_playlist, read_video_track
from clipsync.media.probe import SourceInfo
from clipsync.media.progressive import Encoding, Follow, as_vod, growing_playlists
from clipsync.media.runner import ProgressCallback, run_ffmpeg

AUDIO_FOLDER = "audio"
PARTS = "parts"
FIRST_FRAME = f"{PARTS}/first.jpg"
THUMBNAIL_PARTS = f"{PARTS}/thumbnails"


def thumbnail_part(index: int) -> str:
    """Where chunk outputs keep sprite tile `index` until the join (tree path)."""
    return f"{THUMBNAIL_PARTS}/{int(index)}.jpg"


@dataclass(frozen=True)
class ChunkResult:
    outputs: ChunkOutputs
    # (path in the HLS tree, local file) of everything to store.
    files: list[tuple[str, Path]]


async def transcode_chunk(
    source: Path,
    info: SourceInfo,
    out_dir: Path,
    *,
    span: ChunkSpan,
    picks: Picks,
    layout: SpriteLayout,
    variants: list[Variant],
    ffmpeg: str,
    profile: EncoderProfile,
    segment_seconds: int,
    audio_bitrate: int = 128_000,
    poster_width: int = 1280,
    stall_timeout: float = 120,
    on_progress: ProgressCallback | None = None,
    follow: Follow | None = None,
) -> ChunkResult:
    """Run chunk `span`'s ffmpeg and put what it made on the whole video's timeline.

    `follow`: runs while ffmpeg does (see the module docstring). Raises
    `TranscodeFailed` or `TranscodeStalled`; progress goes 0 to 100.
    """
    await asyncio.to_thread(_clear, out_dir)
    command = chunk_command(
        ffmpeg, source, info, variants, out_dir, profile, span=span, picks=picks,
        layout=layout, segment_seconds=segment_seconds, poster_width=poster_width,
        audio_bitrate=audio_bitrate,
    )  # fmt: skip
    if follow is not None:
        command = growing_playlists(command)
    encoding = Encoding(
        out_dir, variants, info.has_audio and span.index == 0,
        float(output_frame_rate(info)), segment_seconds, audio_bitrate,
    )  # fmt: skip
    await run_beside(
        run_ffmpeg(
            command,
            duration=span.length(info.duration),
            start=span.start,
            on_progress=on_progress,
            stall_timeout=stall_timeout,
        ),
        encoding,
        follow,
    )
    return await asyncio.to_thread(_collect, out_dir, info, span, picks, variants, segment_seconds)


def _clear(out_dir: Path) -> None:
    shutil.rmtree(out_dir, ignore_errors=True)
    for folder in ("stills", "thumbnails"):
        (out_dir / folder).mkdir(parents=True)  # ffmpeg's image2 makes no folders


def _collect(
    out_dir: Path,
    info: SourceInfo,
    span: ChunkSpan,
    picks: Picks,
    variants: list[Variant],
    segment_seconds: int,
) -> ChunkResult:
    rate = output_frame_rate(info)
    files: list[tuple[str, Path]] = []
    renditions = {}
    for variant in variants:
        part, made = _shift_rendition(out_dir / variant.name, span, rate, segment_seconds)
        renditions[variant.name] = part
        files += made
    audio_playlist = audio = None
    if info.has_audio and span.index == 0:
        audio_playlist, audio, made = _audio(out_dir / AUDIO_FOLDER)
        files += made
    stills = out_dir / "stills"
    thumbnails = out_dir / "thumbnails"

    def frame(folder: Path, number: int) -> Path | None:
        path = folder / f"{number}.jpg"
        return path if path.is_file() and path.stat().st_size > 0 else None

    poster = frame(stills, picks.poster) if picks.poster is not None else None
    if poster is not None:
        files.append(("poster.jpg", poster))
    if span.index == 0:
        first = frame(stills, picks.first)
        if first is None:
            raise TranscodeFailed(
                "The video could not be converted: its first frame could not be read.",
                detail=f"ffmpeg exited 0 but did not write {stills / f'{picks.first}.jpg'}",
            )
        files.append((FIRST_FRAME, first))
    candidates = []
    for number, at in sorted(picks.candidates.items()):
        if (path := frame(stills, at)) is not None:
            files.append((f"candidates/{number}.jpg", path))
            candidates.append(number)
    tiles = []
    for index, at in sorted(picks.thumbnails.items()):
        if (path := frame(thumbnails, at)) is not None:
            files.append((thumbnail_part(index), path))
            tiles.append(index)
    outputs = ChunkOutputs(
        renditions=renditions,
        frame_rate=float(rate),
        audio_playlist=audio_playlist,
        audio=audio,
        poster=poster is not None,
        candidates=candidates,
        thumbnails=tiles,
    )
    return ChunkResult(outputs, files)


def _shift_rendition(
    folder: Path, span: ChunkSpan, rate: Fraction, segment_seconds: int
) -> tuple[RenditionPart, list[tuple[str, Path]]]:
    """Move the chunk's segments of one rendition onto the whole video's timeline."""
    playlist = parse_media_playlist((folder / "index.m3u8").read_text())
    if playlist.init_uri is None or not playlist.segments:
        raise TranscodeFailed(
            "The video could not be converted: a part of it came out empty.",
            detail=f"{folder / 'index.m3u8'} lists no segments or no init segment",
        )
    init = (folder / playlist.init_uri).read_bytes()
    ticks = start_ticks(span, rate, track_timescale(init))
    sequence = span.first_segment(segment_seconds)
    segments = []
    files = []
    for segment in playlist.segments:
        path = folder / segment.uri
        data = shift_fragment(path.read_bytes(), ticks, sequence)
        path.write_bytes(data)
        segments.append(SegmentRecord(segment.uri, segment.duration, len(data)))
        files.append((f"{folder.name}/{segment.uri}", path))
    codecs, width, height = "", 0, 0
    if span.index == 0:
        track = read_video_track(init)
        codecs, width, height = track.codecs, track.width, track.height
        kept = folder / "init.mp4"
        (folder / playlist.init_uri).replace(kept)
        files.insert(0, (f"{folder.name}/init.mp4", kept))
    part = RenditionPart(
        target_duration=playlist.target_duration,
        segments=segments,
        init=init_fingerprint(init),
        codecs=codecs,
        width=width,
        height=height,
    )
    return part, files


def _audio(folder: Path) -> tuple[str, RenditionPart, list[tuple[str, Path]]]:
    """The audio rendition as ffmpeg made it, its init named `init.mp4`."""
    text = as_vod((folder / "index.m3u8").read_text())  # `event` when followed
    playlist = parse_media_playlist(text)
    if playlist.init_uri is None or not playlist.segments:
        raise TranscodeFailed(
            "The video could not be converted: its sound came out empty.",
            detail=f"{folder / 'index.m3u8'} lists no segments or no init segment",
        )
    if playlist.init_uri != "init.mp4":
        (folder / playlist.init_uri).replace(folder / "init.mp4")
        text = text.replace(f'URI="{playlist.init_uri}"', 'URI="init.mp4"')
    files = [(f"{folder.name}/init.mp4", folder / "init.mp4")]
    files += [(f"{folder.name}/{s.uri}", folder / s.uri) for s in playlist.segments]
    part = RenditionPart(
        target_duration=playlist.target_duration,
        segments=[
            SegmentRecord(s.uri, s.duration, (folder / s.uri).stat().st_size)
            for s in playlist.segments
        ],
        init=init_fingerprint((folder / "init.mp4").read_bytes()),
    )
    return text, part, files
