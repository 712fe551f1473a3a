"""Read what a source file is with ffprobe, and refuse what we cannot turn into a stream.

`parse_probe` is pure (ffprobe's JSON in, `SourceInfo` or `UnsupportedMedia` out) so
every refusal can be tested from captured JSON; `probe` runs ffprobe and turns its
failures (empty, text, cut-off files) into messages the uploader can act on.
ffprobe and ffmpeg read an upload only through `INPUT_GUARD`: as a local file, with
the demuxers of the containers we accept and no other.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from clipsync.media.errors import TooLong, UnsupportedMedia

# ffprobe's format names (the demuxer names) that we accept, and how people call them.
ACCEPTED_FORMATS: dict[str, str] = {
    "mov,mp4,m4a,3gp,3g2,mj2": "MP4/MOV",
    "matroska,webm": "MKV/WebM",
    "avi": "AVI",
}
ACCEPTED_LABEL = ", ".join(ACCEPTED_FORMATS.values())
# The same demuxers as ffmpeg's `-format_whitelist` wants them: the first name of each.
DEMUXER_WHITELIST = ",".join(name.split(",")[0] for name in ACCEPTED_FORMATS)
# What goes before every upload that ffprobe or ffmpeg reads, always as `file:<path>`
# (object storage downloads the source first: `StorageBackend.open_local`). An upload
# may really be an HLS playlist, a concat list or an image2 pattern, and their demuxers
# open the files and URLs named inside: another user's video, or whether a path exists.
# ffmpeg checks the format whitelist after guessing the format from the upload's own
# bytes and before the demuxer opens anything, so such a file is refused without
# touching what it names, and the answer cannot depend on it.
INPUT_GUARD = ("-protocol_whitelist", "file", "-format_whitelist", DEMUXER_WHITELIST)
# ffprobe's line for a format left out by the whitelist: "[hls @ 0x55…] Format not on…".
_NOT_ON_WHITELIST = re.compile(r"^\[([^\]@]+?) @ 0x[0-9a-f]+\] Format not on whitelist", re.M)
# Demuxers that hold sound only, and how people call the other containers we refuse.
AUDIO_DEMUXERS = frozenset(
    {"mp3", "aac", "ac3", "eac3", "flac", "wav", "w64", "aiff", "ape", "wv", "tta", "amr"}
    | {"caf", "au", "mpc", "mpc8", "tak", "dts", "truehd", "mlp", "dsf", "loas"}
)
OTHER_CONTAINERS = {
    "mpegts": "MPEG-TS",
    "flv": "FLV",
    "asf": "WMV/ASF",
    "mpeg": "MPEG-PS",
    "mxf": "MXF",
    "ogg": "Ogg",
    "gif": "GIF",
    "h264": "raw H.264",
    "hevc": "raw HEVC",
}

# Codecs that are pictures rather than moving video when they hold a single frame.
IMAGE_CODECS = frozenset(
    {"png", "mjpeg", "jpegls", "bmp", "gif", "webp", "tiff", "jpeg2000", "jpegxl", "ppm", "pgm"}
)
# Below this a "video" is a still picture for our purposes (one or two frames).
MIN_DURATION = 0.1

PREFIX = "This file is not a video we can read: "
_STILL_IMAGE = f"it is a still image. Please upload a video file ({ACCEPTED_LABEL})."
_ONLY_SOUND = f"it has no video, only sound. Please upload a video file ({ACCEPTED_LABEL})."
_TEXT = f"it is a text file, not a video. We accept {ACCEPTED_LABEL} videos."


def _unsupported(reason: str, detail: str = "") -> UnsupportedMedia:
    return UnsupportedMedia(PREFIX + reason, detail=detail)


@dataclass(frozen=True)
class SourceInfo:
    """What ffprobe says about a source, with the size as it is displayed."""

    format_name: str
    duration: float
    # Display size: sample aspect ratio and rotation applied, as a player shows it.
    width: int
    height: int
    # Rotation from the display matrix (or the old `rotate` tag), snapped to 0/90/180/270.
    # ffmpeg applies it while decoding, so commands only need the display size.
    rotation: int
    video_codec: str
    pix_fmt: str
    frame_rate: float
    variable_frame_rate: bool
    audio_codec: str | None
    bitrate: int | None
    size: int
    # ffprobe stream indexes of the video and audio streams to use (cover art skipped).
    video_stream: int = 0
    audio_stream: int | None = None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _rate(value: Any) -> Fraction | None:
    """ffprobe's "30000/1001"; None for "0/0", missing or nonsense."""
    if not isinstance(value, str) or "/" not in value:
        return None
    num, _, den = value.partition("/")
    try:
        rate = Fraction(int(num), int(den))
    except (ValueError, ZeroDivisionError):
        return None
    return rate if 0 < rate < 1000 else None


def _rotation(stream: dict[str, Any]) -> int:
    degrees: float | None = None
    for side in stream.get("side_data_list") or ():
        if "rotation" in side:
            degrees = _number(side["rotation"])
            break
    if degrees is None:
        degrees = _number((stream.get("tags") or {}).get("rotate"))
    if degrees is None:
        return 0
    return round(degrees / 90.0) * 90 % 360


def _is_attached_picture(stream: dict[str, Any]) -> bool:
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def parse_probe(
    data: dict[str, Any], size: int, *, max_duration: float | None = None
) -> SourceInfo:
    """Turn `ffprobe -show_format -show_streams` JSON into a `SourceInfo`.

    Raises `UnsupportedMedia` for anything that is not a moving video in an accepted
    container, and `TooLong` when `max_duration` (seconds) is given and exceeded.
    """
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    format_name = str(fmt.get("format_name") or "")
    long_name = str(fmt.get("format_long_name") or format_name or "unknown")
    videos = [s for s in streams if s.get("codec_type") == "video" and not _is_attached_picture(s)]
    audios = [s for s in streams if s.get("codec_type") == "audio"]

    if format_name == "image2" or format_name.endswith("_pipe"):
        raise _unsupported(_STILL_IMAGE)
    if not videos:
        if audios:
            raise _unsupported(_ONLY_SOUND)
        raise _unsupported(f"it has no video in it. We accept {ACCEPTED_LABEL} videos.")
    if format_name not in ACCEPTED_FORMATS:
        raise _unsupported(
            f"it is a {long_name} file, and we accept {ACCEPTED_LABEL}. "
            "Please convert it to MP4 and upload it again."
        )

    video = videos[0]
    codec = str(video.get("codec_name") or "")
    duration = _number(fmt.get("duration"))
    if duration is None or duration <= 0:
        duration = _number(video.get("duration"))
    frames = _number(video.get("nb_frames"))
    if duration is None or duration <= 0:
        if codec in IMAGE_CODECS:
            raise _unsupported("it is a still image. Please upload a video file.")
        raise _unsupported(
            "we cannot tell how long it is; it may be damaged or incomplete. "
            "Try exporting it again as MP4."
        )
    if duration < MIN_DURATION or frames == 1:
        raise _unsupported("it holds a single picture, not a moving video.")
    if max_duration is not None and duration > max_duration:
        raise TooLong(
            f"This video is {_clock(duration)} long, and videos here may be at most "
            f"{_clock(max_duration)}. Please trim it and upload it again."
        )

    coded_width = int(_number(video.get("width")) or 0)
    coded_height = int(_number(video.get("height")) or 0)
    if coded_width <= 0 or coded_height <= 0:
        raise _unsupported("we cannot read the size of its picture; it may be damaged.")
    width, height = coded_width, coded_height
    sar = _rate(str(video.get("sample_aspect_ratio") or "").replace(":", "/"))
    if sar is not None and sar != 1:
        width = max(1, round(coded_width * sar))
    rotation = _rotation(video)
    if rotation in (90, 270):
        width, height = height, width

    average = _rate(video.get("avg_frame_rate"))
    nominal = _rate(video.get("r_frame_rate"))
    rate = average or nominal
    variable = bool(average and nominal and abs(average - nominal) / average > 0.01)

    bitrate = _number(fmt.get("bit_rate"))
    return SourceInfo(
        format_name=format_name,
        duration=duration,
        width=width,
        height=height,
        rotation=rotation,
        video_codec=codec,
        pix_fmt=str(video.get("pix_fmt") or ""),
        frame_rate=float(rate) if rate else 0.0,
        variable_frame_rate=variable,
        audio_codec=str(audios[0].get("codec_name") or "unknown") if audios else None,
        bitrate=int(bitrate) if bitrate else None,
        size=size,
        video_stream=int(video.get("index", 0)),
        audio_stream=int(audios[0].get("index", 0)) if audios else None,
    )


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def probe_command(path: Path, ffprobe: str = "ffprobe") -> list[str]:
    """ffprobe's command line for `path`: JSON of the format and streams, input guarded."""
    return [
        ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
        *INPUT_GUARD, f"file:{path}",
    ]  # fmt: skip


async def probe(
    path: Path,
    ffprobe: str = "ffprobe",
    *,
    probe_timeout: float = 60.0,
    max_duration: float | None = None,
) -> SourceInfo:
    """Run ffprobe on `path` and return what it is, or raise `UnsupportedMedia`/`TooLong`."""
    size, head = await asyncio.to_thread(_size_and_head, path)
    if size == 0:
        raise _unsupported("it is empty. The upload may have failed; please try again.")
    try:
        process = await asyncio.create_subprocess_exec(
            *probe_command(path, ffprobe),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise UnsupportedMedia(
            "We could not check this file because the video tools are missing on the server.",
            detail=f"{ffprobe}: {exc}",
        ) from exc
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), probe_timeout)
    except TimeoutError:
        raise _unsupported(
            "reading it took too long; it may be damaged.", detail="ffprobe timed out"
        ) from None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    error = stderr.decode("utf-8", "replace").strip()
    if process.returncode != 0:
        refused = _NOT_ON_WHITELIST.search(error)
        if refused:
            raise _unsupported(_explain_refused(refused.group(1), head), detail=error)
        raise _unsupported(_explain_unreadable(head), detail=error)
    try:
        data = json.loads(stdout)
    except ValueError:
        raise _unsupported("ffprobe's answer could not be read.", detail=error) from None
    info = parse_probe(data, size, max_duration=max_duration)
    if info.format_name == "mov,mp4,m4a,3gp,3g2,mj2":
        problem = await asyncio.to_thread(mp4_truncation, path)
        if problem:
            raise _unsupported(_CUT_OFF, detail=problem)
    return info


_CUT_OFF = (
    "the file is incomplete (it looks cut off, as if the upload or the copy stopped "
    "early). Please upload the whole file again."
)


def _size_and_head(path: Path) -> tuple[int, bytes]:
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
            return path.stat().st_size, head
    except OSError as exc:
        raise UnsupportedMedia(
            "The uploaded file could not be read on the server.", detail=f"{path}: {exc}"
        ) from None


def _explain_unreadable(head: bytes) -> str:
    """Say why ffprobe could not open a file, from its first bytes."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return _CUT_OFF
    if head.startswith(b"\x1a\x45\xdf\xa3") or (head.startswith(b"RIFF") and head[8:11] == b"AVI"):
        return _CUT_OFF
    if head and _looks_like_text(head):
        return _TEXT
    return f"it is damaged or in a format we do not know. We accept {ACCEPTED_LABEL} videos."


def _explain_refused(demuxer: str, head: bytes) -> str:
    """Say why a file in a format outside `INPUT_GUARD`'s whitelist is refused.

    Only the format ffmpeg guessed from the file's own first bytes is used, never what
    the file names: a playlist gets the same answer whatever it points at.
    """
    if demuxer == "image2" or demuxer.endswith("_pipe"):
        return _STILL_IMAGE
    if demuxer in AUDIO_DEMUXERS:
        return _ONLY_SOUND
    if _looks_like_text(head):  # playlists, concat lists, subtitles
        return _TEXT
    return (
        f"it is a {OTHER_CONTAINERS.get(demuxer, demuxer)} file, and we accept "
        f"{ACCEPTED_LABEL}. Please convert it to MP4 and upload it again."
    )


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the sample is still text.
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * max(1, len(text))


def mp4_truncation(path: Path) -> str | None:
    """Walk the top-level boxes of an MP4/MOV; describe the first one cut off, if any.

    ffprobe opens a "fast start" MP4 whose media data was cut short (the index comes
    first), so a partial upload would only fail halfway through transcoding.
    """
    size = path.stat().st_size
    position = 0
    with path.open("rb") as fh:
        while position + 8 <= size:
            fh.seek(position)
            header = fh.read(16)
            box_size = int.from_bytes(header[0:4], "big")
            kind = header[4:8].decode("latin-1")
            if box_size == 1 and len(header) == 16:
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:  # the box runs to the end of the file
                box_size = size - position
            if box_size < 8:
                return f"box {kind!r} at {position} has an impossible size {box_size}"
            if position + box_size > size:
                return (
                    f"box {kind!r} at {position} needs {box_size} bytes, "
                    f"only {size - position} are there"
                )
            position += box_size
    return None


async def sha256_file(path: Path, chunk_size: int = 1024 * 1024) -> str:
    """The hex SHA-256 of a file, read in chunks in a worker thread."""

    def digest() -> str:
        hasher = hashlib.sha256()
        with Path(path).open("rb") as fh:
            while chunk := fh.read(chunk_size):
                hasher.update(chunk)
        return hasher.hexdigest()

    return await asyncio.to_thread(digest)
