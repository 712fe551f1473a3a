"""The ffmpeg command of one chunk of a chunked transcode (see `media/chunks.py`).

It is `commands.hls_command` for a time range: the same graph (`fps`, the profile's
pre-filter, `split`, one scale and one encoder per rendition), the same encoder
options and the same HLS output, with these differences:

- the source is read from a little before the chunk (`PREROLL`, for the `fps` filter
  to see the frame that covers the chunk's first instant) to a little after it, with
  accurate seeking, and timestamps are kept as in the whole file (`-copyts
  -start_at_zero`: the times a one-process run sees), so after `fps` a frame's pts is
  its frame number in the whole video and `trim` keeps exactly the chunk's frames;
- key frames are forced at `start + n * segment_seconds`: the instants the one run
  forces them; segments are numbered from the chunk's first (`-start_number`);
- chunk 0 (and no other) reads the source a second time, whole, for the audio
  rendition: one continuous AAC encode, as the one run makes it;
- instead of the poster and sprite outputs, two JPEG outputs of picked frames:
  poster-sized stills and sprite-sized thumbnails, each named by its frame number
  (`-frame_pts`), the chunk's first frame being the early one every image output needs
  (`commands._IMAGE_TIMING`).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from clipsync.media.chunks import ChunkSpan, Picks
from clipsync.media.commands import SpriteLayout, even_size, gop_frames, output_frame_rate
from clipsync.media.encoders import EncoderProfile
from clipsync.media.ladder import Variant
from clipsync.media.probe import INPUT_GUARD, SourceInfo

# Seconds read before a chunk's start (and after its end): VFR sources can have a frame
# a while before the instant it covers.
PREROLL = 1.0
POSTER_QUALITY = 3
THUMBNAIL_QUALITY = 5

_COMMON = ["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats"]


def _seconds(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _rate_text(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def _select(frames: list[int], first: int) -> str:
    """Pass the first frame and each of `frames` (pts in frames after `fps`)."""
    picks = [f"eq(pts\\,{frame})" for frame in frames if frame != first]
    return "select=" + "+".join(["eq(n\\,0)", *picks])


def chunk_command(
    ffmpeg: str,
    source: Path,
    info: SourceInfo,
    variants: list[Variant],
    out_dir: Path,
    profile: EncoderProfile,
    *,
    span: ChunkSpan,
    picks: Picks,
    layout: SpriteLayout,
    segment_seconds: int,
    poster_width: int = 1280,
    audio_bitrate: int = 128_000,
) -> list[str]:
    """One ffmpeg run making chunk `span` of every rendition, and its picked frames.

    Output: `out_dir/<variant.name>/index.m3u8`, `init_<n>.mp4` and `seg_<n>.m4s` from
    the chunk's first segment number; `out_dir/audio/` (chunk 0, when the source has
    sound) for the whole file; `out_dir/stills/<frame>.jpg` and
    `out_dir/thumbnails/<frame>.jpg`.
    """
    if not variants:
        raise ValueError("no renditions to make")
    if "%" in str(out_dir):
        raise ValueError(f"the output folder may not contain '%': {out_dir}")
    rate = output_frame_rate(info)
    gop = gop_frames(rate, segment_seconds)
    first = span.first_frame(rate)
    end = span.end_frame(rate)
    audio = info.has_audio and span.index == 0

    trim = f"trim=start_pts={first}" + (f":end_pts={end}" if end is not None else "")
    chain = ",".join(filter(None, [f"fps={_rate_text(rate)}", trim, profile.source_filter(info)]))
    labels = [f"[s{i}]" for i in range(len(variants))] + ["[vst]", "[vth]"]
    graph = f"[0:{info.video_stream}]{chain},split={len(labels)}" + "".join(labels)
    for i, variant in enumerate(variants):
        graph += f";[s{i}]{profile.scale_filter(variant.width, variant.height)},setsar=1[v{i}]"
    still_w, still_h = even_size(info.width, info.height, poster_width)
    for label, frames, width, height, out in (
        ("vst", picks.still_frames, still_w, still_h, "stills"),
        ("vth", picks.thumbnail_frames, layout.tile_width, layout.tile_height, "thumbnails"),
    ):
        steps = [
            _select(frames, picks.first),
            profile.download_filter,
            f"scale={width}:{height}:flags=bicubic",
            "setsar=1",
        ]
        graph += f";[{label}]" + ",".join(filter(None, steps)) + f"[{out}]"

    command = [ffmpeg, *_COMMON, "-progress", "pipe:1", "-copyts", "-start_at_zero"]
    command += profile.source_args(info)
    if span.start > 0:
        command += ["-ss", _seconds(max(0.0, span.start - PREROLL))]
    if span.end is not None:
        command += ["-to", _seconds(span.end + PREROLL)]
    command += [*INPUT_GUARD, "-i", f"file:{source}"]
    if audio:
        command += [*INPUT_GUARD, "-i", f"file:{source}"]
    command += ["-filter_complex", graph]
    for i in range(len(variants)):
        command += ["-map", f"[v{i}]"]
    if audio:
        command += ["-map", f"1:{info.audio_stream if info.audio_stream is not None else 'a:0'}"]
    for i, variant in enumerate(variants):
        command += profile.video_args(variant, i, gop)
        command += [
            f"-force_key_frames:v:{i}",
            f"expr:gte(t,{span.start}+n_forced*{segment_seconds})",
        ]
    if audio:
        command += ["-c:a", "aac", "-b:a", str(audio_bitrate), "-ac", "2", "-ar", "48000"]
    command += ["-map_metadata", "-1", "-map_chapters", "-1"]
    if audio:
        names = [f"v:{i},agroup:aud,name:{v.name}" for i, v in enumerate(variants)]
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
        "-start_number", str(span.first_segment(segment_seconds)),
        "-hls_segment_filename", str(out_dir / "%v" / "seg_%05d.m4s"),
        "-var_stream_map", " ".join(names),
        str(out_dir / "%v" / "index.m3u8"),
    ]  # fmt: skip
    frame_base = f"{rate.denominator}:{rate.numerator}"
    for label, quality in (("stills", POSTER_QUALITY), ("thumbnails", THUMBNAIL_QUALITY)):
        command += [
            "-map", f"[{label}]",
            "-fps_mode", "passthrough",
            "-enc_time_base", frame_base,
            "-q:v", str(quality),
            "-map_metadata", "-1",
            "-f", "image2", "-frame_pts", "1",
            str(out_dir / label / "%d.jpg"),
        ]  # fmt: skip
    return command
