"""The ffmpeg argument list, built as pure functions so tests can pin it exactly.

One ffmpeg process decodes the source once and makes everything from that decode: every
HLS rendition, the poster, the seek-preview sprite and the thumbnail candidates (more
branches of the same `split`).

Every command reads the source with `file:` (a name is never taken for a protocol)
and only through the demuxers we accept (`probe.INPUT_GUARD`, as ffprobe does), so a
source that is really an HLS playlist or a concat list cannot make ffmpeg read other
files or URLs.
ffmpeg applies the source's rotation while decoding (its default `-autorotate`), so
sizes here are display sizes, as in `SourceInfo`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from clipsync.media.encoders import EncoderProfile
from clipsync.media.ladder import Variant
from clipsync.media.probe import INPUT_GUARD, SourceInfo

MAX_FRAME_RATE = 60
# What we use when a source states no usable frame rate at all.
FALLBACK_FRAME_RATE = 30
# The seek-preview sprite never holds more thumbnails than this.
MAX_THUMBNAILS = 100

# JPEG quality (-q:v, 2 best to 31 worst) of the poster and of the sprite's thumbnails.
POSTER_QUALITY = 3
SPRITE_QUALITY = 5
# Thumbnail candidates stay this share of the duration away from the start and the end
# (a black first frame, titles, credits).
CANDIDATE_MARGIN = 0.05

_COMMON = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats"]
_PROGRESS = ["-progress", "pipe:1"]


def _input(source: Path) -> list[str]:
    """The source as an input: always guarded (see `probe.INPUT_GUARD`), never optional."""
    return [*INPUT_GUARD, "-i", f"file:{source}"]


def output_frame_rate(info: SourceInfo) -> Fraction:
    """The constant frame rate of every rendition.

    A constant-rate source keeps its rate (30000/1001 stays exact); a variable-rate
    one gets its average rate rounded to a whole number. Both are capped at 60.
    """
    rate = Fraction(info.frame_rate).limit_denominator(1001) if info.frame_rate > 0 else None
    if rate is None or rate < 1:
        rate = Fraction(FALLBACK_FRAME_RATE) if rate is None else Fraction(1)
    elif info.variable_frame_rate:
        rate = Fraction(max(1, round(rate)))
    return min(rate, Fraction(MAX_FRAME_RATE))


def gop_frames(rate: Fraction, segment_seconds: int) -> int:
    """Frames per GOP so that a key frame starts every segment."""
    return max(1, round(rate * segment_seconds))


def _rate_text(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def hls_command(
    ffmpeg: str,
    source: Path,
    info: SourceInfo,
    variants: list[Variant],
    out_dir: Path,
    profile: EncoderProfile,
    *,
    previews: Previews,
    segment_seconds: int = 4,
    audio_bitrate: int = 128_000,
) -> list[str]:
    """One ffmpeg process that decodes once and writes every rendition as fMP4 HLS, the
    poster and the sprite.

    Output: `out_dir/<variant.name>/index.m3u8`, `init_<n>.mp4` (ffmpeg numbers init
    files per stream; the pipeline renames them `init.mp4`), `seg_00000.m4s`…, and the
    audio rendition in `out_dir/audio/`. No master playlist: `playlists.master_playlist`
    writes ours from the measured files. Then two JPEG outputs: `previews.poster` and
    `previews.sprite` (see `Previews` and `_image_output`), and the numbered thumbnail
    candidates in `previews.candidates` when it asks for any.
    """
    if not variants:
        raise ValueError("no renditions to make")
    if "%" in str(out_dir):
        # The HLS muxer reads % in output names as a pattern (%v, %05d).
        raise ValueError(f"the output folder may not contain '%': {out_dir}")
    rate = output_frame_rate(info)
    gop = gop_frames(rate, segment_seconds)
    count = len(variants)
    # fps makes the output constant-rate (VFR sources included) before the split, so
    # every rendition gets the very same frames and the same key frame instants. The
    # poster and the sprite take two more branches of the split: the source is decoded
    # once for everything.
    chain = ",".join(filter(None, [f"fps={_rate_text(rate)}", profile.source_filter(info)]))
    candidates = previews.candidates is not None and previews.candidate_count > 0
    labels = [f"[s{i}]" for i in range(count)] + ["[vp]", "[vs]"] + (["[vc]"] if candidates else [])
    graph = f"[0:{info.video_stream}]{chain},split={len(labels)}" + "".join(labels)
    for i, variant in enumerate(variants):
        scale = profile.scale_filter(variant.width, variant.height)
        graph += f";[s{i}]{scale},setsar=1[v{i}]"
    graph += f";[vp]{_poster_filter(info, rate, previews.poster_width, profile)}[poster]"
    graph += f";[vs]{_sprite_filter(previews.layout, profile)}[sprite]"
    if candidates:
        picks = _candidates_filter(
            info, rate, previews.poster_width, previews.candidate_count, profile
        )
        graph += f";[vc]{picks}[candidates]"

    command = [ffmpeg, *_COMMON, *_PROGRESS, *profile.source_args(info), *_input(source)]
    command += ["-filter_complex", graph]
    for i in range(count):
        command += ["-map", f"[v{i}]"]
    if info.has_audio:
        command += ["-map", f"0:{info.audio_stream if info.audio_stream is not None else 'a:0'}"]
    for i, variant in enumerate(variants):
        command += profile.video_args(variant, i, gop)
        command += [f"-force_key_frames:v:{i}", f"expr:gte(t,n_forced*{segment_seconds})"]
    if info.has_audio:
        command += ["-c:a", "aac", "-b:a", str(audio_bitrate), "-ac", "2", "-ar", "48000"]
    # No source metadata (a phone's GPS location, say) in what is published.
    command += ["-map_metadata", "-1", "-map_chapters", "-1"]
    names = [f"v:{i},agroup:aud,name:{v.name}" for i, v in enumerate(variants)]
    if info.has_audio:
        names.append("a:0,agroup:aud,name:audio")
    else:
        names = [f"v:{i},name:{v.name}" for i, v in enumerate(variants)]
    command += [
        "-f", "hls",
        "-hls_time", str(segment_seconds),
        "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4",
        "-hls_flags", "independent_segments",
        "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", str(out_dir / "%v" / "seg_%05d.m4s"),
        "-var_stream_map", " ".join(names),
        str(out_dir / "%v" / "index.m3u8"),
    ]  # fmt: skip
    command += _image_output("[poster]", POSTER_QUALITY, previews.poster)
    command += _image_output("[sprite]", SPRITE_QUALITY, previews.sprite)
    if candidates:
        assert previews.candidates is not None
        command += _candidates_output(previews.candidates)
    return command


# ffmpeg 5.1 writes no -progress line until every output file has written its header,
# which an image output does on its first frame; and it reports as `out_time` the end of
# whichever output stream is furthest, a frame's end being its timestamp plus one tick of
# its stream's time base. So each image branch sends a first frame at once (a placeholder
# that the final image overwrites: `-update 1`), and its frames are numbered a
# millisecond apart and written as they come, never ahead of the renditions.
_IMAGE_TIMING = "settb=1/1000,setpts=N"


def _image_output(label: str, quality: int, out: Path) -> list[str]:
    """A JPEG output from the graph's `label`: each frame replaces the file (`-update 1`),
    so the last one is what stays; `_IMAGE_TIMING` says why there are two."""
    return [
        "-map", label,
        "-fps_mode", "passthrough",
        "-enc_time_base", "1:1000",
        "-q:v", str(quality),
        "-map_metadata", "-1",
        "-f", "image2", "-update", "1",
        str(out),
    ]  # fmt: skip


def _candidates_output(folder: Path) -> list[str]:
    """The thumbnail candidates as numbered JPEGs: `0.jpg` the placeholder (see
    `_IMAGE_TIMING`; the pipeline deletes it), then `1.jpg`… in the video's order."""
    return [
        "-map", "[candidates]",
        "-fps_mode", "passthrough",
        "-enc_time_base", "1:1000",
        "-q:v", str(POSTER_QUALITY),
        "-map_metadata", "-1",
        "-f", "image2", "-start_number", "0",
        str(folder / "%d.jpg"),
    ]  # fmt: skip


def candidate_times(duration: float, count: int, margin: float = CANDIDATE_MARGIN) -> list[float]:
    """Where the `count` thumbnail candidates are taken, in seconds from the start.

    Spread evenly over the video less `margin` of it at each end: the middle of each of
    `count` equal slices of that span.
    """
    if count <= 0 or duration <= 0:
        return []
    span = 1 - 2 * margin
    return [round(duration * (margin + span * (2 * i + 1) / (2 * count)), 3) for i in range(count)]


def candidate_frames(duration: float, count: int, rate: Fraction) -> list[int]:
    """The frame numbers (after `fps=rate`) of `candidate_times`: each the first frame at
    or after its time, never frame 0 (the placeholder), each after the one before."""
    frames: list[int] = []
    for seconds in candidate_times(duration, count):
        at = math.ceil(Fraction(f"{seconds:.3f}") * rate)
        frames.append(max(at, 1, frames[-1] + 1 if frames else 1))
    return frames


def _candidates_filter(
    info: SourceInfo, rate: Fraction, width: int, count: int, profile: EncoderProfile
) -> str:
    """The candidates' branch: the first frame (the placeholder), then the first frame at
    or after each of `candidate_frames`, poster-sized.

    After `fps` every frame's pts is a whole number of frames, one after the other, so
    "at or after `f`, the frame before not" picks exactly one frame per candidate.
    """
    out_width, out_height = even_size(info.width, info.height, width)
    frames = candidate_frames(info.duration, count, rate)
    picks = "+".join(f"gte(pts\\,{f})*lt(prev_pts\\,{f})" for f in frames)
    steps = [
        f"select=eq(n\\,0)+{picks}",
        profile.download_filter,
        f"scale={out_width}:{out_height}:flags=bicubic",
        "setsar=1",
        _IMAGE_TIMING,
    ]
    return ",".join(filter(None, steps))


def even_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """`width`x`height` scaled down to at most `max_width` wide, both sides even."""
    out_width = min(width, max_width)
    out_width = max(2, out_width // 2 * 2)
    out_height = max(2, round(out_width * height / width / 2) * 2)
    return out_width, out_height


def poster_time(duration: float) -> float:
    """Where the poster frame is taken: 10% in, at most 5 s, never negative."""
    return round(max(0.0, min(duration * 0.1, 5.0)), 3)


def _poster_filter(info: SourceInfo, rate: Fraction, width: int, profile: EncoderProfile) -> str:
    """The poster's branch: the first frame (the placeholder), then the first frame at or
    after `poster_time`, at most `width` wide with even sides.

    The time counts from the start of the file, as `-ss` did when the poster was a run of
    its own. After `fps` the time base is 1/rate, so a frame's pts is a whole number of
    frames and the comparison is exact (no float rounding of `t`). When the first frame is
    already at or after that time, it is the poster and comes alone; when the video ends
    before that time, the first frame stays the poster. Only the frames picked go on, to
    the download from a device and the scale.
    """
    out_width, out_height = even_size(info.width, info.height, width)
    at = math.ceil(Fraction(f"{poster_time(info.duration):.3f}") * rate)
    steps = [
        f"select=eq(n\\,0)+gte(pts\\,{at})*lt(start_pts\\,{at})*eq(selected_n\\,1)",
        profile.download_filter,
        f"scale={out_width}:{out_height}:flags=bicubic",
        "setsar=1",
        _IMAGE_TIMING,
    ]
    return ",".join(filter(None, steps))


@dataclass(frozen=True)
class SpriteLayout:
    """Where each thumbnail of the seek-preview sprite sits, and what time it covers.

    Thumbnail `i` covers `[i * interval, (i + 1) * interval)`; the last one covers up
    to the end of the video, so `count` is the number of whole intervals (at least 1).
    """

    duration: float
    interval: float
    count: int
    columns: int
    rows: int
    tile_width: int
    tile_height: int

    @property
    def width(self) -> int:
        return self.columns * self.tile_width

    @property
    def height(self) -> int:
        return self.rows * self.tile_height

    def cue(self, index: int) -> tuple[float, float, int, int]:
        """Start, end, x and y of thumbnail `index`."""
        start = index * self.interval
        end = self.duration if index == self.count - 1 else (index + 1) * self.interval
        row, column = divmod(index, self.columns)
        return start, end, column * self.tile_width, row * self.tile_height


def sprite_layout(
    duration: float, interval: float, columns: int, tile_width: int, aspect: float
) -> SpriteLayout:
    """Plan a sprite of thumbnails every `interval` s (widened to keep at most 100).

    `aspect` is the display width over height; tiles are `tile_width` wide (made even)
    and as tall as the aspect says, rounded to the nearest even number.
    """
    if duration <= 0 or interval <= 0 or columns <= 0 or tile_width <= 0 or aspect <= 0:
        raise ValueError("sprite layout needs positive duration, interval, columns, size")
    interval = max(float(interval), math.ceil(duration / MAX_THUMBNAILS * 1000) / 1000)
    # After `setpts=PTS-STARTPTS`, `fps=1/interval:round=up` emits ceil(duration /
    # interval) frames (at 0, interval, …); counting whole intervals only (floor, at
    # least 1) means every thumbnail we reference exists, even when the video stream
    # ends a little before the container does.
    count = max(1, min(MAX_THUMBNAILS, math.floor(duration / interval + 1e-9)))
    columns = min(columns, count)
    tile_width = max(2, tile_width // 2 * 2)
    tile_height = max(2, round(tile_width / aspect / 2) * 2)
    return SpriteLayout(
        duration=duration,
        interval=interval,
        count=count,
        columns=columns,
        rows=math.ceil(count / columns),
        tile_width=tile_width,
        tile_height=tile_height,
    )


@dataclass(frozen=True)
class Previews:
    """The poster and the seek-preview sprite that `hls_command` writes too.

    `poster`: one JPEG frame at `poster_time` of the duration (the first frame when the
    video ends before that), at most `poster_width` wide with even sides, upright.
    `sprite`: one JPEG sheet of thumbnails laid out as `layout` says (`sprite_layout`):
    thumbnail `i` is the frame shown at `i * layout.interval` s from the video's start.
    Each file is written twice by the same run: a placeholder first, then the image.
    `candidates`: a folder for `candidate_count` poster-sized frames at `candidate_times`
    (`1.jpg`…, after the placeholder `0.jpg`); None or 0 makes none.
    """

    poster: Path
    sprite: Path
    layout: SpriteLayout
    poster_width: int = 1280
    candidates: Path | None = None
    candidate_count: int = 0


def _sprite_filter(layout: SpriteLayout, profile: EncoderProfile) -> str:
    """The sprite's branch: a thumbnail every `layout.interval` s from 0, on one sheet.

    The first thumbnail, padded to the sheet's size, goes out at once as the placeholder
    (see `_IMAGE_TIMING`); the sheet follows when its last thumbnail is in, or at the end
    of the video with black where thumbnails are missing. `trim` stops at `layout.count`
    thumbnails: `fps` can make one more (it counts started intervals), which would start
    a second sheet.
    """
    fps = Fraction(1) / Fraction(layout.interval).limit_denominator(1000)
    thumbnails = [
        # Without the shift, a stream starting at 0.5 s (or 0.007 s in WebM, without the
        # fps before the split) makes fps=1/5 round its first frame up to 5 s, and a
        # short clip gets no thumbnail at all.
        "setpts=PTS-STARTPTS",
        f"fps={_rate_text(fps)}:round=up",
        f"trim=end_frame={layout.count}",
        # Only the picked frames are brought back from a device and scaled.
        profile.download_filter,
        f"scale={layout.tile_width}:{layout.tile_height}:flags=bicubic",
        "setsar=1",
        "split[vs_first][vs_all]",
    ]
    return (
        ",".join(filter(None, thumbnails))
        + f";[vs_first]trim=end_frame=1,pad={layout.width}:{layout.height}[vs_placeholder]"
        + f";[vs_all]tile={layout.columns}x{layout.rows}[vs_sheet]"
        + f";[vs_placeholder][vs_sheet]concat=n=2:v=1:a=0,{_IMAGE_TIMING}"
    )
