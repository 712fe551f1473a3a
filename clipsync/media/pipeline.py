"""`transcode()`: a local source file in, a folder of HLS renditions, poster and sprite out.

What the folder holds afterwards (and nothing else we made):

    master.m3u8          our master playlist (see `playlists.master_playlist`)
    240p/index.m3u8      one folder per rendition: playlist, init.mp4, seg_00000.m4s…
    audio/index.m3u8     the audio rendition, when the source has sound
    poster.jpg           one frame, 10% in (at most 5 s)
    sprite.jpg           seek-preview thumbnails on one sheet
    thumbnails.vtt       cues pointing into sprite.jpg (relative URL)
    candidates/1.jpg…    poster-sized frames spread over the video, that the uploader
                         may pick as the thumbnail (`commands.candidate_times`)

One ffmpeg process makes all of it but the playlists and thumbnails.vtt: it decodes the
source once for the renditions, the poster and the sprite.

A rerun for the same folder starts by removing those (and any other `<n>p` folder, in
case the ladder changed), so a retried job is idempotent.

With a follower (`follow`, see `media/progressive.py`), ffmpeg rewrites each rendition's
playlist after every segment and the follower runs beside it, offering what is finished
(services/early_playback.py); the folder ends exactly as without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from clipsync.cancellation import outlast
from clipsync.media.commands import (
    Previews,
    SpriteLayout,
    hls_command,
    output_frame_rate,
    sprite_layout,
)
from clipsync.media.encoders import EncoderProfile
from clipsync.media.errors import TranscodeFailed
from clipsync.media.ladder import DEFAULT_LADDER, Rung, Variant, plan_ladder
from clipsync.media.playlists import (
    AudioOutput,
    RenditionOutput,
    master_playlist,
    measure_audio,
    measure_rendition,
    parse_media_playlist,
    thumbnails_vtt,
)
from clipsync.media.probe import SourceInfo
from clipsync.media.progressive import Encoding, Follow, as_vod, growing_playlists
from clipsync.media.runner import ProgressCallback, run_ffmpeg

AUDIO_FOLDER = "audio"
MASTER = "master.m3u8"
POSTER = "poster.jpg"
SPRITE = "sprite.jpg"
CANDIDATES = "candidates"
# ffmpeg's first candidate is a placeholder (commands._IMAGE_TIMING): not a candidate.
CANDIDATE_PLACEHOLDER = "0.jpg"
DEFAULT_CANDIDATES = 6
THUMBNAILS = "thumbnails.vtt"

# ffmpeg's run takes the progress bar to here; 100 is reported once every file is written.
FFMPEG_DONE = 99


@dataclass(frozen=True)
class TranscodeResult:
    """What `transcode` wrote; `files` lists every file, absolute, for storage."""

    variants: list[RenditionOutput]
    audio: AudioOutput | None
    encoder: str
    files: list[Path]
    master: Path
    poster: Path
    sprite: Path
    thumbnails: Path
    sprite_layout: SpriteLayout
    # The thumbnail candidates in the video's order (fewer than asked when the video
    # has fewer frames).
    candidates: list[Path] = field(default_factory=list)
    # Files a follower delivered while ffmpeg ran (paths in the folder, `follow`).
    delivered: frozenset[str] = frozenset()


class _Progress:
    """Maps a step's 0-100 onto a span of the job's 0-100, reporting only increases."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.reported = -1

    async def report(self, percent: int) -> None:
        if self.callback is not None and percent > self.reported:
            self.reported = percent
            await self.callback(percent)

    def span(self, start: int, end: int) -> ProgressCallback:
        async def step(percent: int) -> None:
            await self.report(start + (end - start) * percent // 100)

        return step


async def transcode(
    source: Path,
    info: SourceInfo,
    out_dir: Path,
    *,
    ffmpeg: str,
    profile: EncoderProfile,
    rungs: Iterable[Rung] = DEFAULT_LADDER,
    segment_seconds: int = 4,
    audio_bitrate: int = 128_000,
    stall_timeout: float = 120,
    on_progress: ProgressCallback | None = None,
    poster_width: int = 1280,
    sprite_interval: float = 5.0,
    sprite_columns: int = 10,
    sprite_tile_width: int = 160,
    thumbnail_candidates: int = DEFAULT_CANDIDATES,
    follow: Follow | None = None,
) -> TranscodeResult:
    """Make every rendition, the poster, the sprite and `thumbnail_candidates` candidate
    frames in one ffmpeg run, then our master.

    `follow`: runs while ffmpeg does, given what it writes (`progressive.Encoding`).
    Progress: 0 to 99 while ffmpeg runs, 100 when everything is written. Raises
    `TranscodeFailed` or `TranscodeStalled`.
    """
    progress = _Progress(on_progress)
    variants = plan_ladder(rungs, info)
    await asyncio.to_thread(_clear, out_dir, [v.name for v in variants])
    await progress.report(0)

    layout = sprite_layout(
        info.duration, sprite_interval, sprite_columns, sprite_tile_width, info.width / info.height
    )
    candidates = out_dir / CANDIDATES
    if thumbnail_candidates > 0:
        await asyncio.to_thread(candidates.mkdir)  # ffmpeg's image2 makes no folders
    previews = Previews(
        out_dir / POSTER, out_dir / SPRITE, layout, poster_width=poster_width,
        candidates=candidates, candidate_count=thumbnail_candidates,
    )  # fmt: skip
    command = hls_command(
        ffmpeg, source, info, variants, out_dir, profile, previews=previews,
        segment_seconds=segment_seconds, audio_bitrate=audio_bitrate,
    )  # fmt: skip
    frame_rate = float(output_frame_rate(info))
    encoding = Encoding(
        out_dir, variants, info.has_audio, frame_rate, segment_seconds, audio_bitrate
    )
    if follow is not None:
        command = growing_playlists(command)
    delivered = await run_beside(
        run_ffmpeg(
            command,
            duration=info.duration,
            on_progress=progress.span(0, FFMPEG_DONE),
            stall_timeout=stall_timeout,
        ),
        encoding,
        follow,
    )
    await asyncio.to_thread(_require, [previews.poster, previews.sprite])
    folders = [out_dir / v.name for v in variants]
    if info.has_audio:
        folders.append(out_dir / AUDIO_FOLDER)
    await asyncio.to_thread(_tidy, out_dir, folders)

    result = await asyncio.to_thread(
        _finish,
        out_dir,
        variants,
        info.has_audio,
        frame_rate,
        layout,
        f"{profile.video_encoder} ({profile.name})",
    )
    await progress.report(100)
    return replace(result, delivered=delivered)


async def run_beside(
    run: Awaitable[None], encoding: Encoding, follow: Follow | None
) -> frozenset[str]:
    """Await `run` (ffmpeg) with `follow` running beside it; the follower is told when
    ffmpeg has exited and waited for, so nothing of it outlives the run. Returns what it
    delivered. A follower's own failure is its business (it logs it): the transcode goes
    on without it."""
    if follow is None:
        await run
        return frozenset()
    done = asyncio.Event()
    follower = asyncio.ensure_future(follow(encoding, done))
    delivered: frozenset[str] = frozenset()
    try:
        await run
    finally:
        # The follower ends after the stores it has under way, and is waited for even
        # through cancellations: whoever cancelled the run may sweep up next.
        done.set()
        with contextlib.suppress(Exception):
            delivered = await outlast(follower)
    return delivered


_RENDITION_FOLDER = re.compile(r"\d+p")


def _clear(out_dir: Path, names: list[str]) -> None:
    """Remove what an earlier run for this folder may have left (with any ladder)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in out_dir.iterdir():
        ours = path.name in names or path.name in (AUDIO_FOLDER, CANDIDATES)
        if path.is_dir() and (ours or _RENDITION_FOLDER.fullmatch(path.name)):
            shutil.rmtree(path)
    for name in (MASTER, POSTER, SPRITE, THUMBNAILS):
        (out_dir / name).unlink(missing_ok=True)


def _require(paths: list[Path]) -> None:
    """ffmpeg can exit 0 having written nothing (every frame filtered out, say)."""
    missing = [p.name for p in paths if not p.is_file() or p.stat().st_size == 0]
    if missing:
        raise TranscodeFailed(
            "The video could not be converted: the preview images could not be made.",
            detail=f"ffmpeg exited 0 but did not write {', '.join(missing)}",
        )


_MAP = re.compile(r'^(#EXT-X-MAP:URI=)"[^"]*"', re.MULTILINE)


def _tidy(out_dir: Path, folders: list[Path]) -> None:
    """Name every init segment `init.mp4`, make every playlist `vod`, and delete what
    the playlists do not list (a followed run's `.tmp` files among them).

    ffmpeg 5.1 numbers init files per stream (`init_0.mp4`, `init_3.mp4`) whenever
    there is more than one stream, whatever `-hls_fmp4_init_filename` says.
    """
    (out_dir / MASTER).unlink(missing_ok=True)
    (out_dir / CANDIDATES / CANDIDATE_PLACEHOLDER).unlink(missing_ok=True)
    for folder in folders:
        index = folder / "index.m3u8"
        text = as_vod(index.read_text())  # written as `event` when followed
        playlist = parse_media_playlist(text)
        if playlist.init_uri and playlist.init_uri != "init.mp4":
            (folder / playlist.init_uri).replace(folder / "init.mp4")
            text = _MAP.sub(r'\1"init.mp4"', text)
        index.write_text(text)
        keep = {"index.m3u8", "init.mp4", *(s.uri for s in playlist.segments)}
        for path in folder.iterdir():
            if path.name not in keep:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()


def _finish(
    out_dir: Path,
    variants: list[Variant],
    has_audio: bool,
    frame_rate: float,
    layout: SpriteLayout,
    encoder: str,
) -> TranscodeResult:
    renditions = [measure_rendition(out_dir / v.name, frame_rate=frame_rate) for v in variants]
    audio = measure_audio(out_dir / AUDIO_FOLDER) if has_audio else None
    master = out_dir / MASTER
    master.write_text(master_playlist(renditions, audio))
    thumbnails = out_dir / THUMBNAILS
    thumbnails.write_text(thumbnails_vtt(layout, SPRITE))
    files = [master, thumbnails, out_dir / POSTER, out_dir / SPRITE]
    for name in [v.name for v in variants] + ([AUDIO_FOLDER] if has_audio else []):
        files += sorted(p for p in (out_dir / name).iterdir() if p.is_file())
    folder = out_dir / CANDIDATES
    candidates = sorted(folder.glob("*.jpg"), key=lambda p: int(p.stem)) if folder.is_dir() else []
    files += candidates
    return TranscodeResult(
        variants=renditions,
        audio=audio,
        encoder=encoder,
        files=files,
        master=master,
        poster=out_dir / POSTER,
        sprite=out_dir / SPRITE,
        thumbnails=thumbnails,
        sprite_layout=layout,
        candidates=candidates,
    )
